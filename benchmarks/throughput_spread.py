"""How much does a throughput figure move between two runs of the same code on one machine?

    python benchmarks/throughput_spread.py [--runs 5] [--suite suites/throughput.toml]

Runs the suite `--runs` times, one after the other (`bench run`, its default executor), and
reports, per configuration, the spread of the run's median images/s and of its peak memory
across runs: the largest relative difference between any two runs. The 95th percentile of
that over configurations is what `bench compare`'s run-to-run tolerances
(bench/compare/rules.py) are set from: timing repeats within one run share the machine's state
and are no evidence of a change between runs, so the gate compares runs against this spread.
Prints the load average, since on a shared machine that is what the spread depends on.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ["workload", "target", "batch_size", "precision", "channels_last", "compile"]


def run_suite(suite: Path, results: Path, run_id: str) -> Path:
    cmd = [sys.executable, "-m", "bench.cli", "run", str(suite), "--results-dir", str(results),
           "--run-id", run_id, "--no-report", "--no-progress"]
    subprocess.run(cmd, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    return next(results.glob(f"*/{run_id}"))


def spreads(tables: list[pd.DataFrame], metric: str) -> pd.Series:
    """Per configuration: max over run pairs of |a / b - 1|, with a, b the runs' medians."""
    per_run = [t[~t["skipped"].fillna(False).astype(bool)].groupby(CONFIG)[metric].median()
               for t in tables]
    both = pd.concat(per_run, axis=1).dropna()
    values = both.to_numpy(float)
    return pd.Series(values.max(1) / values.min(1) - 1, index=both.index)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--suite", type=Path, default=ROOT / "suites" / "throughput.toml")
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()}")
    with tempfile.TemporaryDirectory() as tmp:
        runs = [run_suite(args.suite, Path(tmp), f"r{i}") for i in range(args.runs)]
        tables = [pd.read_parquet(r / "tables" / "throughput.parquet") for r in runs]
    print(f"load average after: {os.getloadavg()}")
    for metric in ("images_per_s", "peak_memory_bytes"):
        s = spreads(tables, metric)
        q50, q95, q100 = np.quantile(s, [0.5, 0.95, 1.0])
        print(f"{metric}: largest run-to-run difference per configuration over {args.runs} runs "
              f"and {len(s)} configurations: median {q50:.1%}, 95th percentile {q95:.1%}, "
              f"max {q100:.1%}")
        worst = s.sort_values(ascending=False).head(5)
        for key, value in worst.items():
            print(f"    {value:.1%}  {dict(zip(CONFIG, key))}")


if __name__ == "__main__":
    main()
