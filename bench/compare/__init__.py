"""`bench compare BASELINE CANDIDATE`: did anything regress, beyond tolerance and noise?

    compare_runs(baseline, candidate, ...) -> Comparison     reads, matches, judges (no output)
    run_compare(baseline, candidate, ...)  -> exit code      prints the rendered comparison

Exit codes: 0 nothing regressed; 1 something regressed, a cell that was ok in the baseline
failed in the candidate, a run is incomplete or the candidate lacks baseline cells or metrics
(unless --allow-missing), or nothing could be compared at all; 2 bad input
(bench.errors.UserError); 3 an internal error (never mistaken for a verdict).

- match.py: cells by stable id, samples across seeds (bench.identity);
- rules.py: directions and tolerances (defaults, suite [compare], --rules);
- stats.py: deterministic / run-to-run / t-test / worst-seed, the verdict;
- machine.py: device / version / code differences; throughput is gated on one device only;
- render.py: text, markdown, json.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO

import numpy as np

from bench.compare.examples import example_changes
from bench.compare.machine import machine_diff
from bench.compare.match import Samples, collect_samples, match_cells
from bench.compare.result import Comparison, FailedCell, MetricRow
from bench.compare.rules import RuleSet, resolve_rules
from bench.compare.stats import DETERMINISTIC, UNGATED, judge
from bench.store.migrate import RunView, open_run


def run_compare(baseline: str | Path, candidate: str | Path, *, rules: str | Path | None = None,
                fmt: str = "text", allow_cross_device: bool = False, allow_missing: bool = False,
                out: TextIO | None = None) -> int:
    from bench.compare.render import render

    comparison = compare_runs(baseline, candidate, rules=rules,
                              allow_cross_device=allow_cross_device, allow_missing=allow_missing)
    (out or sys.stdout).write(render(comparison, fmt))
    return comparison.exit_code


def compare_runs(baseline: str | Path, candidate: str | Path, *, rules: str | Path | None = None,
                 allow_cross_device: bool = False, allow_missing: bool = False) -> Comparison:
    base, cand = open_run(baseline), open_run(candidate)
    ruleset = resolve_rules(_suite_text(cand), Path(rules) if rules else None,
                            suite_label=f"{cand.dir}/manifest.json suite [compare]")
    machine = machine_diff(base.manifest, cand.manifest)
    cells = match_cells(base, cand)
    notes = _notes(base, cand)
    samples, missing = collect_samples(base, cand, cells.common)
    rows = [_judge(s, ruleset, cells.labels, machine.cross_device, allow_cross_device)
            for s in samples]
    gated = not machine.cross_device or allow_cross_device
    if machine.cross_device and not allow_cross_device:
        notes.append("throughput, timing and memory are not gated: the runs used different "
                     "devices (pass --allow-cross-device to gate them anyway); accuracy, "
                     "robustness and FID metrics are compared")
    if not rows:
        notes.append("nothing to compare: no metric is in both runs")
    return Comparison(
        baseline=str(base.dir), candidate=str(cand.dir),
        schema_versions=(base.recorded_version, cand.recorded_version),
        machine_notes=machine.notes(), cross_device=machine.cross_device, throughput_gated=gated,
        matched=len(cells.common),
        only_baseline=[(i, cells.labels.get(i, "")) for i in cells.only_baseline],
        only_candidate=[(i, cells.labels.get(i, "")) for i in cells.only_candidate],
        failed=[FailedCell(i, cells.labels.get(i, ""), cells.reasons.get(i))
                for i in cells.failed_in_candidate],
        rows=rows, rule_sources=list(ruleset.sources), notes=notes,
        incomplete=[_incomplete(side, run) for side, run in (("baseline", base),
                                                             ("candidate", cand))
                    if run.manifest.get("status") != "complete"],
        missing_groups=missing, allow_missing=allow_missing,
        example_changes=example_changes(base, cand))


def _judge(s: Samples, ruleset: RuleSet, labels: dict[str, str], cross_device: bool,
           allow_cross_device: bool) -> MetricRow:
    rule = ruleset.rule_for(s.spec.table, s.spec.name)
    run_level = s.spec.device_bound
    center = np.median if run_level else np.mean
    b_val, c_val = float(center(s.baseline)), float(center(s.candidate))
    tolerance = rule.tolerance(b_val)
    row = dict(table=s.spec.table, metric=s.spec.name, key=s.key, cells=s.cells,
               labels=[labels.get(i, "") for i in s.cells], n_baseline=len(s.baseline),
               n_candidate=len(s.candidate), baseline=b_val, candidate=c_val,
               direction=rule.direction, tolerance=tolerance)
    row_devices_differ = all(s.device_names) and s.device_names[0] != s.device_names[1]
    if s.spec.device_bound and (cross_device or row_devices_differ) and not allow_cross_device:
        return MetricRow(**row, verdict=UNGATED, test="none", delta=c_val - b_val,
                         note="different devices")
    j = judge(s.baseline, s.candidate, higher_is_better=rule.direction == "higher",
              tolerance=tolerance, alpha=rule.alpha, paired=s.paired,
              worst_seed=s.spec.worst_seed, run_level=run_level)
    return MetricRow(**row, verdict=j.verdict, test=j.test, delta=j.delta, p_value=j.p_value,
                     mde=j.mde, note=_note(j.test, len(s.baseline), len(s.candidate)))


def _note(test: str, n_b: int, n_c: int) -> str:
    if test == DETERMINISTIC and min(n_b, n_c) < 2:
        return "one sample a side: the tolerance decides (add seeds to measure noise)"
    if test == DETERMINISTIC:
        return "no spread across seeds: the tolerance decides"
    return ""


def _incomplete(side: str, run: RunView) -> str:
    counts = run.manifest.get("counts") or {}
    status = run.manifest.get("status", "unknown")
    return (f"the {side} run is {status}, not complete ({counts.get('ok', '?')} of "
            f"{counts.get('total', '?')} cells ok): {run.dir}")


def _suite_text(run: RunView) -> str | None:
    suite = run.manifest.get("suite")
    return suite.get("text") if isinstance(suite, dict) else None


def _notes(base: RunView, cand: RunView) -> list[str]:
    notes = []
    for run in (base, cand):
        if run.migrated:
            notes.append(f"{run.dir}: schema v{run.recorded_version}, migrated in memory to the "
                         f"current schema for this comparison")
    if _suite_text(base) != _suite_text(cand):
        notes.append("the runs were made from different suite texts; rules come from the "
                     "candidate's [compare] table")
    return notes
