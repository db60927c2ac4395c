"""Wall time of `bench run` with cells one by one in-process (--workers 1) against cells side
by side in worker processes (--workers N, default: bench's own default), on real suites.

Each round runs both, in an order rotated by the round, as the command a user types (a fresh
process each, so start-up and worker spawning are included), each with an empty cache so
that every model is trained and every FID reference computed again. Then it checks that the
two runs' tables agree on every column but the wall-clock ones.

    python benchmarks/parallel_wall.py                          # quickstart, 2 rounds
    python benchmarks/parallel_wall.py --suite gan-digits --rounds 1
    python benchmarks/parallel_wall.py --suite quickstart --suite gan-digits

Target (issue 14): parallel <= 0.6x sequential on 2 cores, identical non-timing columns.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._common import fmt_load, machine_lines, quartiles  # noqa: E402
from tests.helpers.tables import comparable_tables  # noqa: E402


def bench_run(suite: Path, out: Path, workers: str) -> tuple[float, Path]:
    """Seconds for one `bench run` (fresh results and cache folders) and its run folder."""
    cmd = [sys.executable, "-m", "bench", "run", str(suite), "--results-dir", str(out / "results"),
           "--cache-dir", str(out / "cache"), "--no-progress", "--no-report"]
    if workers != "auto":
        cmd += ["--workers", workers]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} exited {done.returncode}:\n{done.stdout}{done.stderr}")
    (run_dir,) = [p for p in (out / "results").glob("*/*") if p.is_dir()]
    return seconds, run_dir


def differing_tables(a: Path, b: Path) -> list[str]:
    """Tables whose non-timing columns differ between two run folders (empty: identical)."""
    ta, tb = comparable_tables(a), comparable_tables(b)
    names = sorted(set(ta) | set(tb))
    bad = []
    for name in names:
        try:
            pd.testing.assert_frame_equal(ta[name], tb[name], check_exact=True)
        except (KeyError, AssertionError):
            bad.append(name)
    return bad


def compare_suite(suite: Path, rounds: int, workers: str, scratch: Path) -> dict:
    times: dict[str, list[float]] = {"sequential": [], "parallel": []}
    settings = {"sequential": "1", "parallel": workers}
    mismatches = []
    for r in range(rounds):
        order = ["sequential", "parallel"][r % 2:] + ["sequential", "parallel"][:r % 2]
        runs = {}
        for mode in order:
            seconds, runs[mode] = bench_run(suite, scratch / f"round{r}-{mode}", settings[mode])
            times[mode].append(seconds)
        mismatches += differing_tables(runs["sequential"], runs["parallel"])
        print(f"  round {r + 1}/{rounds}: sequential {times['sequential'][-1]:.1f} s, parallel "
              f"{times['parallel'][-1]:.1f} s, ratio "
              f"{times['parallel'][-1] / times['sequential'][-1]:.3f}; load {fmt_load()}",
              flush=True)
    ratios = np.asarray(times["parallel"]) / np.asarray(times["sequential"])
    return {"times": times, "ratios": ratios.tolist(), "mismatches": sorted(set(mismatches))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", action="append",
                        help="quickstart, gan-digits or a path (repeatable; default quickstart)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--workers", default="auto", help="the parallel run's --workers")
    parser.add_argument("--keep", type=Path, default=None,
                        help="keep the run folders here (default: a temporary folder, deleted)")
    args = parser.parse_args()
    for line in machine_lines():
        print(line)
    print(f"uptime: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")
    for name in args.suite or ["quickstart"]:
        suite = Path(name) if name.endswith(".toml") else ROOT / "suites" / f"{name}.toml"
        print(f"\n{suite.name}: {args.rounds} round(s), sequential (--workers 1) vs parallel "
              f"(--workers {args.workers})", flush=True)
        if args.keep is not None:
            result = compare_suite(suite, args.rounds, args.workers, args.keep / suite.stem)
        else:
            with tempfile.TemporaryDirectory(prefix="parallel-wall-") as scratch:
                result = compare_suite(suite, args.rounds, args.workers, Path(scratch))
        q1, med, q3 = quartiles(result["ratios"])
        seq, par = (np.median(result["times"][m]) for m in ("sequential", "parallel"))
        print(f"{suite.name}: median sequential {seq:.1f} s, parallel {par:.1f} s; parallel / "
              f"sequential: median of per-round ratios {med:.3f} [IQR {q1:.3f}, {q3:.3f}], ratio "
              f"of medians {par / seq:.3f} (target <= 0.6)")
        same = "identical" if not result["mismatches"] else f"DIFFER in {result['mismatches']}"
        print(f"{suite.name}: non-timing columns of every table: {same}")
    print(f"\nuptime: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")


if __name__ == "__main__":
    main()
