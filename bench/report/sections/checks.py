"""Evaluation sanity checks: a failed check first in the report, then every check's verdict
per model with what the check means.

`alerts` is ordered before every other section, so a failed check is the first thing a
reader sees; it adds nothing when every check passed. `sections` comes after the robustness
results: one row per (check, model) with how many of its verdicts failed and what the check
catches (bench.checks.verdict.CATCHES, or the row's own `catches` text), then the failed
verdicts in full. Both read only the run's `checks` table.
"""

from __future__ import annotations

import pandas as pd

from bench.checks.verdict import CATCHES
from bench.report.blocks import Section, Table, Text, Warning_
from bench.store import schema as S

ALERT_TITLE = "Failed sanity checks"
TITLE = "Sanity checks"
INTRO = ("Checks that the evaluation can be trusted (Carlini et al. 2019, \"On evaluating "
         "adversarial robustness\"; for GANs, the FID checks on each cell's final samples: "
         "batch-size invariance, sample counts, memorisation). Each can fail, and each was "
         "shown to fail on a model built to trip it. Paired checks compare the same examples "
         "(McNemar's exact test, α = 0.01).")
# Columns of the failed-verdicts table, where the checks table has them.
DETAIL_COLUMNS = ["check", "model", "attack", "setting", "epsilon", "seed", "value", "p_value",
                  "detail"]


def alerts(run, baseline) -> list[Section]:
    del baseline
    failed = _failed(run.table(S.CHECKS))
    if failed.empty:
        return []
    blocks = [Text("Some evaluation sanity checks failed: the accuracies they concern are not "
                   f"to be trusted as they stand. Details in \"{TITLE}\".")]
    for (check, model), g in failed.groupby(["check", "model"], sort=False, dropna=False):
        blocks.append(Warning_(f"{check} failed for {model} ({len(g)}×): "
                               f"{g['detail'].iloc[0]} {_meaning(g.iloc[0])}"))
    return [Section(ALERT_TITLE, blocks)]


def sections(run, baseline) -> list[Section]:
    del baseline
    checks = run.table(S.CHECKS)
    if checks.empty:
        return []
    verdicts = verdict_table(checks)
    n_failed = int((~checks["passed"].astype(bool)).sum())
    blocks = [Text(INTRO),
              Text(f"{len(checks)} verdicts over {verdicts['model'].nunique()} models; "
                   + (f"**{n_failed} failed.**" if n_failed else "all passed.")),
              Table(verdicts, "Verdict per check and model", highlight_column="failed")]
    failed = _failed(checks)
    if not failed.empty:
        blocks.append(Table(failed[[c for c in DETAIL_COLUMNS if c in failed.columns]],
                            "Failed verdicts", digits=4))
    return [Section(TITLE, blocks)]


def verdict_table(checks: pd.DataFrame) -> pd.DataFrame:
    """One row per (check, model): verdict, failed/total count, what the check catches.
    Checks in CATCHES order (unknown ones last), failed (check, model) pairs first within."""
    order = {name: i for i, name in enumerate(CATCHES)}
    rows = []
    for (check, model), g in checks.groupby(["check", "model"], sort=False, dropna=False):
        bad = int((~g["passed"].astype(bool)).sum())
        rows.append({"check": check, "model": model,
                     "verdict": "FAILED" if bad else "passed",
                     "failed": f"{bad} of {len(g)}" if bad else "",
                     "what it catches": _meaning(g.iloc[0]),
                     "_order": (order.get(check, len(order)), bad == 0, str(model))})
    table = pd.DataFrame(rows).sort_values("_order", kind="stable")
    return table.drop(columns="_order").reset_index(drop=True)


def _failed(checks: pd.DataFrame) -> pd.DataFrame:
    if checks.empty:
        return checks
    return checks[~checks["passed"].astype(bool)]


def _meaning(row: pd.Series) -> str:
    """The row's own `catches` text (older tables have none: the current one, if known)."""
    text = row.get("catches")
    return text if isinstance(text, str) and text else CATCHES.get(row["check"], "")
