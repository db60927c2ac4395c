"""The `bench` command line: run, validate, report, compare, history, export.

User errors print one line and exit 2 (no traceback); a run exits 0 when every cell
succeeded and 1 when some failed; compare and history exit 3 on an internal error.
"""

from __future__ import annotations

import argparse
import atexit
import os
import sys
from pathlib import Path

from bench import __version__, defaults
from bench.errors import UserError, one_line
from bench.gc_freeze import imports_frozen
from bench.interrupts import imports_held_back, interrupts_unwrapped, sigterm_interrupts


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bench", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"bench {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run a suite file")
    run.add_argument("suite", type=Path)
    run.add_argument("--results-dir", type=Path, default=defaults.RESULTS_DIR,
                     help="where run folders go (default: %(default)s)")
    run.add_argument("--run-id", help="run folder name; an existing one is resumed")
    run.add_argument("--no-resume", dest="resume", action="store_false",
                     help="always start a new run instead of resuming an unfinished one")
    run.add_argument("--executor", choices=["local", "ray"], help="override [suite].executor")
    run.add_argument("--ray-address", help="Ray cluster address ('auto' joins a running cluster)")
    run.add_argument("--workers", type=_positive_int,
                     help="cells run at once by the local executor, each in a worker process "
                          "(default: [suite].workers, else cores // threads; 1: in-process)")
    run.add_argument("--device", help="override [suite].device (auto, cpu, cuda, cuda:N)")
    run.add_argument("--cache-dir", type=Path,
                     help=f"trained weights and FID statistics (default: RESULTS_DIR/{defaults.CACHE_SUBDIR})")
    run.add_argument("--no-progress", dest="progress", action="store_false",
                     help="no progress bars (they are off anyway when stderr is not a terminal)")
    run.add_argument("--no-report", dest="report", action="store_false")
    run.add_argument("--reuse-other-code", action="store_true",
                     help="resume a run, and reuse cached trained weights, made by a different "
                          "version of bench's code (recorded in the manifest)")

    val = sub.add_parser("validate", help="check a suite file without running anything")
    val.add_argument("suite", type=Path, nargs="+")

    rep = sub.add_parser("report", help="write report.md and report.html for a run folder")
    rep.add_argument("run_dir", type=Path)
    rep.add_argument("--baseline", type=Path, help="a baseline run to compare against")

    cmp_ = sub.add_parser("compare", help="compare two runs; exit 1 on a regression")
    cmp_.add_argument("baseline", type=Path)
    cmp_.add_argument("candidate", type=Path)
    cmp_.add_argument("--rules", type=Path, help="a TOML file of per-metric rules")
    cmp_.add_argument("--format", choices=["text", "markdown", "json"], default="text")
    cmp_.add_argument("--allow-cross-device", action="store_true",
                      help="gate throughput even when the runs used different devices")
    cmp_.add_argument("--allow-missing", action="store_true",
                      help="accept cells or metrics of the baseline that the candidate lacks, "
                           "and incomplete runs (intended removals)")
    add_history_parser(sub)
    exp = sub.add_parser("export", help="write a run's results in another project's format")
    exp.add_argument("format", choices=["robustbench"],
                     help="robustbench: a model card (model_info/DATASET/THREAT_MODEL/MODEL.json) "
                          "per evaluated model")
    exp.add_argument("run_dir", type=Path)
    exp.add_argument("--output", "-o", type=Path,
                     help="folder to write to (default: RUN_DIR/export/FORMAT)")
    return parser


def add_history_parser(sub) -> None:
    hist = sub.add_parser("history", help="find the runs where a metric moved; with "
                                          "--fail-on-step, exit 1 when the latest run regressed")
    hist.add_argument("suite_dir", type=Path, help="RESULTS_DIR/<suite>: one folder per run")
    hist.add_argument("--metric", action="extend", nargs="+", metavar="M",
                      help="only these metrics ('robust_acc' or 'robustness.robust_acc')")
    hist.add_argument("--since", metavar="DATE|RUN",
                      help="runs from this date (ISO 8601) or this run id on")
    hist.add_argument("--last", type=int, metavar="N", help="only the last N runs (after --since)")
    hist.add_argument("--format", choices=["text", "markdown", "json", "html"], default="text")
    hist.add_argument("--output", "-o", type=Path, help="write to this file instead of stdout")
    hist.add_argument("--rules", type=Path, help="a TOML file of per-metric rules, as for compare")
    hist.add_argument("--fail-on-step", action="store_true",
                      help="exit 1 when the most recent run starts a regression step")
    hist.add_argument("--repo", type=Path, default=Path("."),
                      help="git repository whose commit order orders the runs (default: the "
                           "current directory; runs are ordered by time if it lacks a commit)")
    hist.add_argument("--no-index", dest="index", action="store_false",
                      help=f"read every run, neither using nor writing RESULTS_DIR/"
                           f"{defaults.CACHE_SUBDIR}/history/<suite>.parquet")


# Commands whose exit code is a verdict read by CI: an internal error there must not look like
# a regression (1) or bad input (2), so it exits INTERNAL_ERROR with one line.
VERDICT_COMMANDS = {"compare", "history"}
INTERNAL_ERROR = 3


def command() -> None:
    """`bench` as a program (the console script, `python -m bench`): main(), then out.

    Past main() nothing of bench is left to do, and tearing the interpreter down (freeing
    every module torch, torchvision and the cells loaded) took ~1 s of `bench run`'s wall
    time, twice what a bare `import torch, pandas` pays. So the process ends at its last exit
    handler: registered first, it runs after every other one (the interpreter has joined
    the threads before any), flushes the standard streams and leaves with main()'s code.
    main() itself, called in-process (tests, notebooks), ends nothing, and leaves the garbage
    collector alone: here each import's objects are frozen out of it (bench.gc_freeze).
    """
    code: list[int] = []
    atexit.register(_leave_now, code)
    with imports_frozen():
        code.append(main())
    # _leave_now ends the process inside the interpreter's finalization, before CPython's
    # own exit could turn a KeyboardInterrupt once caught in a string exec into SIGINT:
    # `bench run` interrupted exits 130, as it says.
    raise SystemExit(code[0])


def _leave_now(code: list[int]) -> None:
    if not code:  # main() raised: a traceback, the normal way out
        return
    if "logging" in sys.modules:  # its handler registered after this one would run first,
        sys.modules["logging"].shutdown()  # but one registered earlier would not: flush here
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (`bench ... | head`): nothing to flush to
            pass
    os._exit(code[0])


def main(argv: list[str] | None = None) -> int:
    # First: a SIGTERM at any point below exits 130, cleanly; an interrupt during an import
    # comes once the import is done (bench.interrupts.imports_held_back says why).
    with sigterm_interrupts(), imports_held_back():
        try:
            return _dispatch(argv)
        except KeyboardInterrupt:
            print("bench: interrupted", file=sys.stderr)
            return 130


def _dispatch(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    try:
        with interrupts_unwrapped():  # an interrupt a library wrapped is not an error
            return COMMANDS[args.command](args)
    except UserError as exc:
        print(f"bench: error: {one_line(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except Exception as exc:
        if args.command not in VERDICT_COMMANDS:
            raise
        print(f"bench: internal error in {args.command} (not a verdict): "
              f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return INTERNAL_ERROR


def cmd_run(args) -> int:
    from bench.runner import run_suite

    options = {"address": args.ray_address} if args.ray_address else {}
    if args.workers is not None:
        options["workers"] = args.workers
    outcome = run_suite(args.suite, results_dir=args.results_dir, run_id=args.run_id,
                        resume=args.resume, executor=args.executor, executor_options=options,
                        device=args.device, cache_dir=args.cache_dir,
                        progress=args.progress and sys.stderr.isatty(),
                        report=args.report, reuse_other_code=args.reuse_other_code)
    print(f"{outcome.status}: {outcome.ok} cells ok, {outcome.failed} failed -> {outcome.run_dir}")
    if outcome.failed:
        print(f"see {outcome.run_dir / 'tables' / 'cells.csv'} for the reasons", file=sys.stderr)
    return outcome.exit_code


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return int(text)


def cmd_validate(args) -> int:
    from bench.suite.load import load_suite
    from bench.suite.plan import plan
    from bench.suite.preflight import preflight

    for path in args.suite:
        loaded = load_suite(path)
        cells = plan(loaded)
        preflight(loaded, cells)
        kinds = {}
        for c in cells:
            kinds[c.kind] = kinds.get(c.kind, 0) + 1
        summary = ", ".join(f"{n} {k}" for k, n in kinds.items())
        print(f"{path}: ok ({len(cells)} cells: {summary})")
    return 0


def cmd_report(args) -> int:
    from bench.report import write_report

    for path in write_report(args.run_dir, baseline=args.baseline):
        print(path)
    return 0


def cmd_compare(args) -> int:
    from bench.compare import run_compare

    return run_compare(args.baseline, args.candidate, rules=args.rules, fmt=args.format,
                       allow_cross_device=args.allow_cross_device,
                       allow_missing=args.allow_missing)


def cmd_history(args) -> int:
    from bench.history import run_history

    return run_history(args.suite_dir, fmt=args.format, output=args.output,
                       fail_on_step=args.fail_on_step, metrics=args.metric, since=args.since,
                       last=args.last, rules=args.rules, repo=args.repo, use_index=args.index)


def cmd_export(args) -> int:
    from bench.export import run_export

    for path in run_export(args.format, args.run_dir, args.output):
        print(path)
    return 0


COMMANDS = {"export": cmd_export, "run": cmd_run, "validate": cmd_validate, "report": cmd_report, "compare": cmd_compare,
            "history": cmd_history}

if __name__ == "__main__":
    sys.exit(main())
