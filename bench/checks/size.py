"""Perturbation size: every adversarial example stays inside its ε-ball in the threat
model's norm (`within_epsilon` of each robustness row, bench.metrics.robustness).

An attack that oversteps its budget reports accuracies for a larger threat model than the
one named. One verdict per model, attack setting, seed and evaluated data, over every ε.
"""

from __future__ import annotations

import pandas as pd

from bench.checks.verdict import Outcome, check_row
from bench.metrics.robustness import CONTEXT_KEYS, SETTING_KEYS
from bench.metrics.worst_case import setting_text

CHECK = "linf_within_epsilon"


def size_checks(robustness: pd.DataFrame) -> list[dict]:
    """`checks` rows of the size check over a robustness table (older tables without
    `within_epsilon` use `linf_ok`, the L∞ size)."""
    size = next((c for c in ("within_epsilon", "linf_ok") if c in robustness.columns), None)
    if robustness.empty or size is None:
        return []
    keys = ["model", "attack", "seed", *(c for c in (*CONTEXT_KEYS, *SETTING_KEYS)
                                         if c in robustness.columns)]
    rows = []
    for _, g in robustness.groupby(keys, sort=True, dropna=False):
        first = g.iloc[0]
        over = sorted(float(e) for e in g.loc[~g[size].astype(bool), "epsilon"])
        rows.append(check_row(size_outcome(over, len(g)), model=first["model"],
                              seed=first["seed"], attack=first["attack"],
                              setting=setting_text(first), dataset=first.get("dataset"),
                              split=first.get("split")))
    return rows


def size_outcome(over: list[float], n_epsilons: int) -> Outcome:
    """`over`: the ε whose perturbations left their ball."""
    if not over:
        return Outcome(CHECK, True, 0, f"every perturbation of {n_epsilons} ε stays in its ball")
    return Outcome(CHECK, False, len(over), (
        f"perturbations larger than ε at ε = {', '.join(f'{e:g}' for e in over)}: the "
        "accuracies are for a larger threat model than the one named"))
