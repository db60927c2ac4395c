"""Checks over the robustness rows, one verdict per model, attack setting, seed and evaluated
data, over every ε:

- `linf_within_epsilon`: every adversarial example stays inside its ε-ball in the threat
  model's norm (`within_epsilon`, bench.metrics.robustness). An attack that oversteps its
  budget reports accuracies for a larger threat model than the one named.
- `logit_outputs`: the attacks' losses take the model's outputs for logits. A model ending in
  softmax hands them probabilities: the losses are flattened and vanish where the softmax
  saturates, so attacks can look weaker than they are. The robustness cell records the
  warning it raised on a first batch (`output_warning`, bench.models.outputs).
"""

from __future__ import annotations

from typing import Callable, Iterator

import pandas as pd

from bench.checks.verdict import Outcome, check_row
from bench.metrics.robustness import CONTEXT_KEYS, SETTING_KEYS
from bench.metrics.worst_case import setting_text


def size_checks(robustness: pd.DataFrame) -> list[dict]:
    """`checks` rows of the size check (older tables without `within_epsilon` use `linf_ok`,
    the L∞ size)."""
    size = next((c for c in ("within_epsilon", "linf_ok") if c in robustness.columns), None)
    if size is None:
        return []
    return _verdicts(robustness, lambda g: size_outcome(
        sorted(float(e) for e in g.loc[~g[size].astype(bool), "epsilon"]), len(g)))


def size_outcome(over: list[float], n_epsilons: int) -> Outcome:
    """`over`: the ε whose perturbations left their ball."""
    if not over:
        return Outcome("linf_within_epsilon", True, 0,
                       f"every perturbation of {n_epsilons} ε stays in its ball")
    return Outcome("linf_within_epsilon", False, len(over), (
        f"perturbations larger than ε at ε = {', '.join(f'{e:g}' for e in over)}: the "
        "accuracies are for a larger threat model than the one named"))


def logit_output_checks(robustness: pd.DataFrame) -> list[dict]:
    """`checks` rows from the rows' `output_warning` (none without the column)."""
    if "output_warning" not in robustness.columns:
        return []
    return _verdicts(robustness, lambda g: logit_outcome(
        sorted({w for w in g["output_warning"].fillna("").astype(str) if w})))


def logit_outcome(warnings: list[str]) -> Outcome:
    if not warnings:
        return Outcome("logit_outputs", True, 0, "the model's outputs are not probabilities "
                       "(attacks take them for logits)")
    return Outcome("logit_outputs", False, len(warnings), warnings[0])


def _verdicts(robustness: pd.DataFrame, outcome: Callable[[pd.DataFrame], Outcome]) -> list[dict]:
    return [check_row(outcome(g), model=first["model"], seed=first["seed"],
                      attack=first["attack"], setting=setting_text(first),
                      dataset=first.get("dataset"), split=first.get("split"))
            for first, g in _groups(robustness)]


def _groups(robustness: pd.DataFrame) -> Iterator[tuple[pd.Series, pd.DataFrame]]:
    """(first row, rows) per model, attack, seed, evaluated data and attack setting."""
    if robustness.empty:
        return
    keys = ["model", "attack", "seed", *(c for c in (*CONTEXT_KEYS, *SETTING_KEYS)
                                         if c in robustness.columns)]
    for _, g in robustness.groupby(keys, sort=True, dropna=False):
        yield g.iloc[0], g
