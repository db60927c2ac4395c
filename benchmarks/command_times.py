"""How long bench's commands take before (and after) any work: process start to exit.

    python benchmarks/command_times.py [--rounds 7]

Contenders, each a fresh process, alternating round by round:
  python       `python -c pass`: the interpreter alone, the floor of every command
  help         `bench --help`                                   (target ≤ 0.5 s)
  validate     `bench validate suites/quickstart.toml`           (target ≤ 1.5 s)
  torch        `python -c "import torch"`: what any PyTorch script pays first
  run          `bench run` on benchmarks/run_e2e.py's one-cell FGSM suite (2,000 MNIST-format
               images, 7 ε), fresh results folder: with its report (the default) and with
               `--no-report`
The fixed cost of `bench run` (target ≤ 3 s) is its wall time less the cell's own `seconds`
from the journal (the cell's own imports and data loading count as the cell's): the
interpreter, imports, validation, planning, the executor and the tables.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout

from benchmarks._common import alternate, fmt_load, machine_lines, quartiles  # noqa: E402
from benchmarks.run_e2e import run, write_job  # noqa: E402

TARGETS = {"help": 0.5, "validate": 1.5, "run fixed cost": 3.0, "run --no-report fixed cost": 3.0}
IMAGES = 2_000


def commands(work: Path, cell_seconds: dict[str, list[float]]) -> dict:
    counter = [0]

    def bench_run(name: str, *extra: str):
        def call():
            counter[0] += 1
            results = work / "results" / f"r{counter[0]}"
            run([sys.executable, "-m", "bench", "run", str(work / "suite.toml"), "--results-dir",
                 str(results), "--no-progress", *extra])
            entries = [json.loads(p.read_text()) for p in results.rglob("cells/*.json")]
            assert len(entries) == 1 and entries[0]["status"] == "ok", entries
            cell_seconds.setdefault(name, []).append(entries[0]["seconds"])
        return call

    return {
        "python": lambda: run([sys.executable, "-c", "pass"]),
        "help": lambda: run([sys.executable, "-m", "bench", "--help"]),
        "validate": lambda: run([sys.executable, "-m", "bench", "validate",
                                 str(ROOT / "suites" / "quickstart.toml")]),
        "torch": lambda: run([sys.executable, "-c", "import torch"]),
        "run": bench_run("run"),
        "run --no-report": bench_run("run --no-report", "--no-report"),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(argv)
    print("bench command times, process start to exit")
    for line in machine_lines():
        print(line)
    with tempfile.TemporaryDirectory(prefix="bench-cmd-") as tmp:
        work = Path(tmp)
        write_job(work, IMAGES)
        cell_seconds: dict[str, list[float]] = {}
        times = alternate(commands(work, cell_seconds), rounds=args.rounds, warmup=1)
    for name, cells in cell_seconds.items():  # the warm-up round is not timed
        times[f"{name} fixed cost"] = [t - c for t, c in zip(times[name], cells[1:])]
    print(f"\nseconds (median [IQR], n={args.rounds}); load after: {fmt_load()}")
    for name, ts in times.items():
        q1, med, q3 = quartiles(ts)
        target = f"   target ≤ {TARGETS[name]} s: {'met' if med <= TARGETS[name] else 'NOT met'}" \
            if name in TARGETS else ""
        print(f"  {name:<26s} {med:6.2f} [{q1:.2f}, {q3:.2f}]{target}")
    q1, med, q3 = quartiles(cell_seconds["run"][1:])
    print(f"  {'(the cell)':<26s} {med:6.2f} [{q1:.2f}, {q3:.2f}]")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
