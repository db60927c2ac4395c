"""The per-example worst case over attacks: the number a RobustBench user reads.

An example is robust at ε only if it is right clean and right under every attack run on the
same model, data and seed at that ε, or at any smaller ε of the same norm (an adversarial
example inside a smaller ball lies inside every larger one). Rows of different models,
checkpoints, data subsets, seeds or norms never combine.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

from bench.metrics.robustness import (
    SETTING_KEYS,
    accuracy_columns,
    format_setting,
    is_unset,
)
from bench.store.correctness import unpack_bits

# What must agree for two rows' examples to be the same examples under the same model.
GROUP_KEYS = ("dataset", "split", "model", "checkpoint_sha256", "data_fingerprint", "seed",
              "norm")
WORST_CASE = "worst_case"  # the `attack` value of a worst-case row


def worst_case(clean_correct: np.ndarray, adv_correct: Mapping[str, np.ndarray]) -> dict:
    """Accuracy columns (bench.metrics.robustness.accuracy_columns) of the per-example worst
    case over the attacks in `adv_correct` (label -> bool per example), with the labels."""
    if not adv_correct:
        raise ValueError("worst case over no attack")
    clean = np.asarray(clean_correct, dtype=bool)
    worst = np.ones_like(clean)
    for label, correct in adv_correct.items():
        correct = np.asarray(correct, dtype=bool)
        if correct.shape != clean.shape:
            raise ValueError(f"{label}: {correct.shape[0]} examples, clean has {clean.shape[0]}")
        worst &= correct
    return {**accuracy_columns(clean, worst), "attacks": "; ".join(sorted(adv_correct)),
            "n_attacks": len(adv_correct)}


def worst_case_table(correctness: pd.DataFrame, *, nested: bool = True) -> pd.DataFrame:
    """One `attack = "worst_case"` row per (GROUP_KEYS present, ε) from a correctness table
    (bench.store.correctness), possibly concatenated from several cells and runs. `nested`:
    successes at a smaller ε of the same group count at larger ones."""
    if correctness.empty:
        return pd.DataFrame()
    keys = [k for k in GROUP_KEYS if k in correctness.columns]
    rows = []
    for group, g in correctness.groupby(keys, sort=True, dropna=False):
        ident = dict(zip(keys, group if isinstance(group, tuple) else (group,)))
        clean, advs = _unpack_group(g, ident)
        for eps in sorted(set(g["epsilon"])):
            chosen = [i for i, e in enumerate(g["epsilon"]) if e == eps or (nested and e < eps)]
            adv = _by_label([advs[i] for i in chosen], [attack_label(g.iloc[i]) for i in chosen])
            rows.append({**ident, "attack": WORST_CASE, "epsilon": float(eps),
                         **worst_case(clean, adv)})
    return pd.DataFrame(rows)


def _unpack_group(g: pd.DataFrame, ident: dict) -> tuple[np.ndarray, list[np.ndarray]]:
    n = set(g["n"])
    if len(n) != 1:
        raise ValueError(f"{ident}: rows over {sorted(n)} examples cannot be combined")
    count = int(n.pop())
    cleans = {text for text in g["clean_correct"]}
    if len(cleans) != 1:
        raise ValueError(f"{ident}: the clean predictions differ between rows (not the same "
                         "model or data), so their examples cannot be combined")
    clean = unpack_bits(cleans.pop(), count)
    return clean, [unpack_bits(text, count) for text in g["adv_correct"]]


def _by_label(advs: list[np.ndarray], labels: list[str]) -> dict[str, np.ndarray]:
    """Merge rows with the same label (the same attack at two ε, or in two runs)."""
    out: dict[str, np.ndarray] = {}
    for label, adv in zip(labels, advs):
        out[label] = out[label] & adv if label in out else adv
    return out


def attack_label(row: pd.Series) -> str:
    """"pgd(steps=10, loss=ce)": the attack and the settings it ran with (norm aside)."""
    settings = [f"{k}={format_setting(row[k])}" for k in SETTING_KEYS
                if k in row.index and k not in ("norm", "batch_size") and not is_unset(row[k])]
    return f"{row['attack']}({', '.join(settings)})" if settings else str(row["attack"])
