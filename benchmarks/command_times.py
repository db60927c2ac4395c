"""How long bench's commands take before (and after) any work: process start to exit.

    python benchmarks/command_times.py [--rounds 7] [--against CHECKOUT]

Contenders, each a fresh process, alternating round by round:
  python         `python -c pass`: the interpreter alone, the floor of every command
  help           `bench --help`                                 (target ≤ 0.5 s)
  validate       `bench validate suites/quickstart.toml`         (target ≤ 0.5 s)
  torch          `python -c "import torch"`: what any PyTorch script pays first
  torch, pandas  `python -c "import torch, pandas"`: what `bench run` cannot avoid
  torch, pandas, no teardown   the same, ending with os._exit(0) as `bench` itself ends
                 (bench.cli.command): the interpreter's teardown of torch is ~0.45 s of the
                 bare import's wall time, which bench does not pay, so its own share is
                 also given against this stricter floor
  run            `bench run` on benchmarks/run_e2e.py's one-cell FGSM suite (2,000 MNIST-format
                 images, 7 ε), fresh results folder: with its report (the default) and with
                 `--no-report`
The fixed cost of `bench run` is its wall time less the cell's own `seconds` from the
journal (the cell's own imports and data loading count as the cell's): the interpreter,
imports, validation, planning, the executor, the tables and the report. Bench's own share
(target ≤ 0.6 s) is the fixed cost less `import torch, pandas` measured in the same round.
The figures are read on two clocks, wall time and the CPU time of the command's processes
(user + system), which a loaded machine disturbs far less; and bench's own share is also
measured in CPU seconds inside the `bench run` process itself (PROBE: its CPU time after
`import torch, pandas`, less the cell's), where waiting for a CPU counts for nothing.

A before/after comparison is only as good as the machine is steady between the two, and a
shared VM's speed drifts by tens of percent within an hour: `--against CHECKOUT` runs another
checkout's validate and run commands in the same rounds (tagged @against) and gives the
differences round by round.

Bytecode: the commands run with Python's default, compiled modules cached in __pycache__
(the warm-up round writes bench's; pip wrote torch's and pandas' at install), so bench and the
floor it is measured against are on the same footing. An environment with
PYTHONDONTWRITEBYTECODE set (some CI images and sandboxes) would compile bench's modules
from source in every command and never torch's: `--keep-env` measures that case (delete
bench's __pycache__ folders first, or the caches already there are read).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout

from benchmarks._common import alternate_clocks, fmt_load, machine_lines, quartiles  # noqa: E402
from benchmarks.run_e2e import run, write_job  # noqa: E402

TARGETS = {"help": 0.5, "validate": 0.5, "run own share": 0.6, "run --no-report own share": 0.6}
IMAGES = 2_000
AGAINST = " @against"  # the tag of the --against checkout's contenders


# Bench's own CPU share, measured inside one `bench run` process: its CPU time after
# `import torch, pandas`, less the cell's (execute_cell's own CPU time). Immune to the cell
# waiting for a CPU on a loaded machine, which the wall-time figures are not.
PROBE = """
import json, sys, time
T = time.process_time
import torch, pandas
start = T()
import bench.executors.execute as ex
from bench import cli
cell, real = [0.0], ex._execute
def timed(*args, **kwargs):
    begin = T()
    try:
        return real(*args, **kwargs)
    finally:
        cell[0] += T() - begin
ex._execute = timed
real_main = cli.main
def main():  # through cli.command(), as `bench run` goes, up to its exit
    code = real_main(["run", sys.argv[1], "--results-dir", sys.argv[2], "--no-progress",
                      *sys.argv[3:]])
    print(json.dumps({"own": T() - start - cell[0], "cell": cell[0], "code": code}))
    return code
cli.main = main
cli.command()
"""


def commands(work: Path, cell_seconds: dict[str, list[float]],
             own_cpu: dict[str, list[float]], against: Path | None = None) -> dict:
    counter = [0]

    def bench_run(name: str, root: Path, *extra: str):
        def call():
            counter[0] += 1
            results = work / "results" / f"r{counter[0]}"
            run([sys.executable, "-m", "bench", "run", str(work / "suite.toml"), "--results-dir",
                 str(results), "--no-progress", *extra], root)
            entries = [json.loads(p.read_text()) for p in results.rglob("cells/*.json")]
            assert len(entries) == 1 and entries[0]["status"] == "ok", entries
            cell_seconds.setdefault(name, []).append(entries[0]["seconds"])
        return call

    def probe(name: str, root: Path, *extra: str):
        def call():
            counter[0] += 1
            env = {**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1"}
            out = subprocess.run([sys.executable, "-c", PROBE, str(work / "suite.toml"),
                                  str(work / "results" / f"r{counter[0]}"), *extra],
                                 cwd=root, env=env, capture_output=True, text=True, check=True)
            result = json.loads(out.stdout.strip().splitlines()[-1])
            assert result["code"] == 0, out.stderr[-2000:]
            own_cpu.setdefault(name, []).append(result["own"])
        return call

    def bench_commands(root: Path, tag: str = "") -> dict:
        validate = [sys.executable, "-m", "bench", "validate",
                    str(ROOT / "suites" / "quickstart.toml")]
        return {
            f"validate{tag}": lambda: run(validate, root),
            f"run{tag}": bench_run(f"run{tag}", root),
            f"run --no-report{tag}": bench_run(f"run --no-report{tag}", root, "--no-report"),
            f"probe{tag}": probe(f"run own share{tag}", root),
            f"probe --no-report{tag}": probe(f"run --no-report own share{tag}", root,
                                             "--no-report"),
        }

    floors = {
        "python": lambda: run([sys.executable, "-c", "pass"]),
        "help": lambda: run([sys.executable, "-m", "bench", "--help"]),
        "torch": lambda: run([sys.executable, "-c", "import torch"]),
        "torch, pandas": lambda: run([sys.executable, "-c", "import torch, pandas"]),
        "torch, pandas, no teardown": lambda: run(
            [sys.executable, "-c", "import os, torch, pandas; os._exit(0)"]),
    }
    return {**floors, **bench_commands(ROOT),
            **(bench_commands(against, AGAINST) if against is not None else {})}


def children_cpu() -> float:
    """User + system seconds of this process's finished children (each command, once waited)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def derived(times: dict[str, list[float]], cells: dict[str, list[float]]) -> None:
    """Per round: each run's fixed cost (less its cell) and bench's own share of it (less
    `import torch, pandas` of the same round)."""
    for name, cell in cells.items():
        times[f"{name} fixed cost"] = [t - c for t, c in zip(times[name], cell)]
        times[f"{name} own share"] = [f - b for f, b in zip(times[f"{name} fixed cost"],
                                                            times["torch, pandas"])]
        times[f"{name} own share, no-teardown floor"] = [
            f - b for f, b in zip(times[f"{name} fixed cost"],
                                  times["torch, pandas, no teardown"])]


def differences(times: dict[str, list[float]]) -> dict[str, list[float]]:
    """This checkout less the --against one, round by round (both ran in the same round)."""
    return {f"{name} − @against": [a - b for a, b in zip(times[name], values)]
            for other, values in times.items() if AGAINST in other
            for name in [other.replace(AGAINST, "")] if name in times}


def print_times(title: str, times: dict[str, list[float]], rounds: int) -> None:
    print(f"\n{title} (median [IQR], n={rounds}); load after: {fmt_load()}")
    for name, ts in times.items():
        q1, med, q3 = quartiles(ts)
        target = f"   target ≤ {TARGETS[name]} s: {'met' if med <= TARGETS[name] else 'NOT met'}" \
            if name in TARGETS else ""
        print(f"  {name:<28s} {med:6.2f} [{q1:.2f}, {q3:.2f}]{target}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--against", type=Path, metavar="CHECKOUT",
                        help="another checkout of bench (for example `git worktree add "
                             "/tmp/base main`): its validate and run commands run in the same "
                             "rounds, and the differences are given round by round")
    parser.add_argument("--keep-env", action="store_true",
                        help="keep PYTHONDONTWRITEBYTECODE as this environment sets it")
    args = parser.parse_args(argv)
    if not args.keep_env:
        os.environ.pop("PYTHONDONTWRITEBYTECODE", None)  # the commands inherit os.environ
    print("bench command times, process start to exit")
    for line in machine_lines():
        print(line)
    cached = "PYTHONDONTWRITEBYTECODE" not in os.environ
    print(f"bytecode: {'cached (Python default)' if cached else 'PYTHONDONTWRITEBYTECODE set'}; "
          f"bench's own caches before the warm-up: "
          f"{'yes' if any(ROOT.glob('bench/**/__pycache__/*.pyc')) else 'none'}")
    with tempfile.TemporaryDirectory(prefix="bench-cmd-") as tmp:
        work = Path(tmp)
        write_job(work, IMAGES)
        cell_seconds: dict[str, list[float]] = {}
        own_cpu: dict[str, list[float]] = {}
        contenders = commands(work, cell_seconds, own_cpu,
                              args.against.resolve() if args.against else None)
        clocks = alternate_clocks(contenders, rounds=args.rounds,
                                  warmup=1, clocks={"wall": time.perf_counter, "cpu": children_cpu})
    cells = {name: cell[1:] for name, cell in cell_seconds.items()}  # the warm-up is not timed
    derived(clocks["wall"], cells)
    for name in [n for n in clocks["wall"] if n.startswith("probe")]:
        del clocks["wall"][name], clocks["cpu"][name]
    print_times("seconds, wall", clocks["wall"], args.rounds)
    print_times("seconds, CPU (user + system) of the command's processes", clocks["cpu"],
                args.rounds)
    own = {name: values[1:] for name, values in own_cpu.items()}
    print_times("bench's own share in CPU seconds, measured in the `bench run` process",
                own, args.rounds)
    if args.against:
        print(f"\n@against: {args.against.resolve()}")
        print_times("this checkout less @against, same round (wall seconds)",
                    differences(clocks["wall"]), args.rounds)
        print_times("this checkout less @against, same round (own share in CPU seconds)",
                    differences(own), args.rounds)
    q1, med, q3 = quartiles(cells["run"])
    print(f"  {'(the cell, wall)':<28s} {med:6.2f} [{q1:.2f}, {q3:.2f}]")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
