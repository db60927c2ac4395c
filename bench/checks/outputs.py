"""Logit outputs: the attacks' losses take the model's outputs for logits.

A model that ends in softmax hands the attacks' losses probabilities: the losses are
flattened and vanish where the softmax saturates, so attacks can look weaker than they are
(bench.models.outputs.probability_output_warning says what is known). The robustness cell records the warning it raised on
a first batch (`output_warning`, bench.models.outputs); this turns it into a verdict per
model, attack setting, seed and evaluated data.
"""

from __future__ import annotations

import pandas as pd

from bench.checks.verdict import Outcome, check_row
from bench.metrics.robustness import CONTEXT_KEYS, SETTING_KEYS
from bench.metrics.worst_case import setting_text

CHECK = "logit_outputs"


def logit_output_checks(robustness: pd.DataFrame) -> list[dict]:
    """`checks` rows from the robustness rows' `output_warning` (none without the column)."""
    if robustness.empty or "output_warning" not in robustness.columns:
        return []
    keys = ["model", "attack", "seed", *(c for c in (*CONTEXT_KEYS, *SETTING_KEYS)
                                         if c in robustness.columns)]
    rows = []
    for _, g in robustness.groupby(keys, sort=True, dropna=False):
        first = g.iloc[0]
        warned = sorted({w for w in g["output_warning"].fillna("").astype(str) if w})
        rows.append(check_row(logit_outcome(warned), model=first["model"], seed=first["seed"],
                              attack=first["attack"], setting=setting_text(first),
                              dataset=first.get("dataset"), split=first.get("split")))
    return rows


def logit_outcome(warnings: list[str]) -> Outcome:
    if not warnings:
        return Outcome(CHECK, True, 0, "the model's outputs are not probabilities (attacks "
                       "take them for logits)")
    return Outcome(CHECK, False, len(warnings), warnings[0])
