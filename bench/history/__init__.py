"""`bench history RESULTS_DIR/<suite>`: when did a metric move, and at which run and commit?

    build_history(suite_dir, ...) -> History     reads, groups, finds steps (no output)
    run_history(suite_dir, ...)   -> exit code   prints or writes the rendered history

It uses compare's identity, rules and statistics: points are compare's sample groups
(bench.compare.match), one per run; a step is judged with compare's tolerance and tests
(bench.compare.stats), runs taking the place of seeds.

- runs.py: the complete runs, ordered by commit (or time), the --since / --last window;
- points.py, read.py: one point (median, min, max, n over seeds) per run and group;
- index.py: the points of runs already read, so each run is read once;
- series.py: points -> series per metric, group and device;
- steps.py: the penalised piecewise-constant fit, outliers, steps, the pending latest run;
- render.py (text, markdown, json), page.py + chart.py (the HTML page).

Exit codes: 0, or 1 with --fail-on-step when the most recent run starts a regression step;
2 bad input; 3 an internal error (never mistaken for a verdict).
"""

from __future__ import annotations

import difflib
import sys
from pathlib import Path

import pandas as pd

from bench.compare.rules import resolve_rules
from bench.errors import UserError
from bench.history.index import Index, index_path, load_index, save_index, signature
from bench.history.read import read_points
from bench.history.result import History
from bench.history.runs import (
    COMPLETE,
    RunInfo,
    order_runs,
    read_manifest,
    run_dirs,
    run_info,
    window,
)
from bench.history.series import build_series
from bench.store.atomic import atomic_write_text
from bench.suite.rules import KNOWN_NAMES


def run_history(suite_dir: str | Path, *, fmt: str = "text", output: str | Path | None = None,
                fail_on_step: bool = False, **options) -> int:
    from bench.history.page import render_page
    from bench.history.render import render

    history = build_history(suite_dir, **options)
    history.fail_on_step = fail_on_step
    text = render_page(history) if fmt == "html" else render(history, fmt)
    if output is None:
        sys.stdout.write(text)
    else:
        atomic_write_text(output, text)
        print(f"{output}", file=sys.stderr)
    return history.exit_code


def build_history(suite_dir: str | Path, *, metrics: list[str] | None = None,
                  since: str | None = None, last: int | None = None,
                  rules: str | Path | None = None, repo: str | Path | None = Path("."),
                  use_index: bool = True) -> History:
    suite_dir = Path(suite_dir)
    check_metrics(metrics)
    infos, points, notes = load_runs(suite_dir, use_index)
    complete = [i for i in infos.values() if i.status == COMPLETE]
    skipped = [f"{i.run_id} ({i.status})" for i in infos.values() if i.status != COMPLETE]
    if not complete:
        raise UserError(f"{suite_dir}: no complete run to read ({len(skipped)} not complete)")
    ordering = order_runs(complete, Path(repo) if repo is not None else None)
    runs = window(ordering.runs, since, last)
    if not runs:
        raise UserError(f"{suite_dir}: no complete run in the window (--since {since}, "
                        f"--last {last})")
    suite_text = (read_manifest(suite_dir / runs[-1].run_id).get("suite") or {}).get("text")
    label = f"{suite_dir / runs[-1].run_id}/manifest.json suite [compare]"
    ruleset = resolve_rules(suite_text, Path(rules) if rules else None, suite_label=label)
    series = build_series(points, runs, ruleset, set(metrics) if metrics else None)
    notes += device_notes(runs)
    if metrics and not series:
        notes.append(f"no series of {', '.join(metrics)} in these runs")
    return History(str(suite_dir), runs, ordering.note, series, skipped, notes,
                   list(ruleset.sources))


def load_runs(suite_dir: Path, use_index: bool) -> tuple[dict[str, RunInfo], pd.DataFrame,
                                                         list[str]]:
    """Every run's manifest summary and the points of the complete ones, through the index."""
    path = index_path(suite_dir)
    old = load_index(path) if use_index else Index()
    new = Index()
    to_read = []
    for run_dir in run_dirs(suite_dir):
        sig = signature(run_dir)
        known = old.runs.get(run_dir.name)
        if known is not None and known[0] == sig:
            new.runs[run_dir.name] = known
            continue
        info = run_info(read_manifest(run_dir), run_dir.name)
        new.runs[run_dir.name] = (sig, info)
        if info.status == COMPLETE:
            to_read.append((run_dir, info))
    kept = old.points[old.points["run"].isin(set(new.runs) - {d.name for d, _ in to_read})]
    frames = [p for p in (kept, read_points(to_read)) if not p.empty]
    new.points = pd.concat(frames, ignore_index=True) if frames else kept
    notes = []
    if use_index and (to_read or len(new.runs) != len(old.runs)):
        problem = save_index(path, new)
        notes += [problem] if problem else []
    return {run_id: info for run_id, (_, info) in new.runs.items()}, new.points, notes


def check_metrics(metrics: list[str] | None) -> None:
    for m in metrics or []:
        if m not in KNOWN_NAMES:
            hint = difflib.get_close_matches(m, KNOWN_NAMES, n=1)
            did_you_mean = f"; did you mean {hint[0]!r}?" if hint else ""
            raise UserError(f"--metric: unknown metric {m!r}{did_you_mean} "
                            f"(known: {', '.join(KNOWN_NAMES)})")


def device_notes(runs: list[RunInfo]) -> list[str]:
    devices: dict[tuple[str, str], int] = {}
    for r in runs:
        devices[(r.device, r.device_name)] = devices.get((r.device, r.device_name), 0) + 1
    if len(devices) < 2:
        return []
    parts = ", ".join(f"{d} ({name}): {n} runs" for (d, name), n in devices.items())
    return [f"the runs used {len(devices)} devices, never mixed in one series: {parts}"]
