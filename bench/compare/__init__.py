"""`bench compare BASELINE CANDIDATE`: did anything regress, beyond tolerance and noise?

    compare_runs(baseline, candidate, ...) -> Comparison     reads, matches, judges (no output)
    run_compare(baseline, candidate, ...)  -> exit code      prints the rendered comparison

Exit codes: 0 nothing regressed, 1 something regressed (or a cell that was ok in the baseline
failed in the candidate), 2 bad input (bench.errors.UserError, turned into exit 2 by the CLI).

- match.py: cells by stable id, samples across seeds / repeats;
- rules.py: directions and tolerances (defaults, suite [compare], --rules);
- stats.py: tolerance, Mann-Whitney U or bootstrap, the verdict;
- machine.py: device / version differences; throughput is gated on one device only;
- render.py: text, markdown, json.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO

import numpy as np

from bench.compare.machine import machine_diff
from bench.compare.match import Samples, collect_samples, match_cells
from bench.compare.result import Comparison, FailedCell, MetricRow
from bench.compare.rules import RuleSet, resolve_rules
from bench.compare.stats import UNGATED, judge
from bench.store.migrate import RunView, open_run


def run_compare(baseline: str | Path, candidate: str | Path, *, rules: str | Path | None = None,
                fmt: str = "text", allow_cross_device: bool = False,
                out: TextIO | None = None) -> int:
    from bench.compare.render import render

    comparison = compare_runs(baseline, candidate, rules=rules,
                              allow_cross_device=allow_cross_device)
    (out or sys.stdout).write(render(comparison, fmt))
    return comparison.exit_code


def compare_runs(baseline: str | Path, candidate: str | Path, *, rules: str | Path | None = None,
                 allow_cross_device: bool = False) -> Comparison:
    base, cand = open_run(baseline), open_run(candidate)
    ruleset = resolve_rules(_suite_text(cand), Path(rules) if rules else None,
                            suite_label=f"{cand.dir}/manifest.json suite [compare]")
    machine = machine_diff(base.manifest, cand.manifest)
    cells = match_cells(base, cand)
    notes = _notes(base, cand)
    rows = [_judge(s, ruleset, cells.labels, machine.cross_device, allow_cross_device)
            for s in collect_samples(base, cand, cells.common)]
    gated = not machine.cross_device or allow_cross_device
    if machine.cross_device and not allow_cross_device:
        notes.append("throughput, timing and memory are not gated: the runs used different "
                     "devices (pass --allow-cross-device to gate them anyway); accuracy, "
                     "robustness and FID metrics are compared")
    if not cells.common:
        notes.append("no cell is in both runs: nothing to compare")
    return Comparison(
        baseline=str(base.dir), candidate=str(cand.dir),
        schema_versions=(base.recorded_version, cand.recorded_version),
        machine_notes=machine.notes(), cross_device=machine.cross_device, throughput_gated=gated,
        matched=len(cells.common),
        only_baseline=[(i, cells.labels.get(i, "")) for i in cells.only_baseline],
        only_candidate=[(i, cells.labels.get(i, "")) for i in cells.only_candidate],
        failed=[FailedCell(i, cells.labels.get(i, ""), cells.reasons.get(i))
                for i in cells.failed_in_candidate],
        rows=rows, rule_sources=list(ruleset.sources), notes=notes)


def _judge(s: Samples, ruleset: RuleSet, labels: dict[str, str], cross_device: bool,
           allow_cross_device: bool) -> MetricRow:
    rule = ruleset.rule_for(s.spec.table, s.spec.name)
    b_med, c_med = float(np.median(s.baseline)), float(np.median(s.candidate))
    tolerance = rule.tolerance(b_med)
    row = dict(table=s.spec.table, metric=s.spec.name, key=s.key, cells=s.cells,
               labels=[labels.get(i, "") for i in s.cells], n_baseline=len(s.baseline),
               n_candidate=len(s.candidate), baseline=b_med, candidate=c_med,
               direction=rule.direction, tolerance=tolerance)
    row_devices_differ = all(s.device_names) and s.device_names[0] != s.device_names[1]
    if s.spec.device_bound and (cross_device or row_devices_differ) and not allow_cross_device:
        return MetricRow(**row, verdict=UNGATED, test="none", note="different devices")
    j = judge(s.baseline, s.candidate, higher_is_better=rule.direction == "higher",
              tolerance=tolerance, alpha=rule.alpha, paired=s.paired)
    note = "fewer than 2 samples a side: add seeds to test significance" if j.test == "none" else ""
    return MetricRow(**row, verdict=j.verdict, test=j.test, p_value=j.p_value, ci_low=j.ci_low,
                     ci_high=j.ci_high, note=note)


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
