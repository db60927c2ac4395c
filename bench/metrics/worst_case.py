"""The per-example worst case over attacks: the number a RobustBench user reads.

An example is robust at ε only if it is right clean and right under every attack run on the
same model, data and seed at that ε, or at any smaller ε of the same norm (an adversarial
example inside a smaller ball lies inside every larger one). Rows of different models,
checkpoints, data subsets, seeds or norms never combine, except that a row of a subset's
superset (the whole split against its `limit`ed subset) is first restricted to the subset's
examples (`onto_subsets`): the subset's worst case then covers every attack that evaluated
its examples.
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
from bench.store.correctness import pack_bits, unpack_bits
from bench.suite.attack_options import DEFAULT_IMPLEMENTATION

# What must agree for two rows' examples to be the same examples under the same model.
GROUP_KEYS = ("dataset", "split", "model", "checkpoint_sha256", "data_fingerprint", "seed",
              "norm")
WORST_CASE = "worst_case"  # the `attack` value of a worst-case row
# What must agree for two rows to be evaluations of one split under the same model, whatever
# subset of it each evaluated (`examples` says which).
SPLIT_KEYS = ("dataset", "split", "model", "checkpoint_sha256", "split_fingerprint", "seed",
              "norm")
SUBSET_COLUMNS = ("split_fingerprint", "split_n", "examples")


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
    return pd.DataFrame([{**ident, "attack": WORST_CASE, "epsilon": eps,
                          **worst_case(clean, adv), "clean_disagreements": disagree}
                         for ident, eps, clean, adv, disagree in _groups(correctness, nested)])


def worst_case_examples(correctness: pd.DataFrame, *, nested: bool = True) -> pd.DataFrame:
    """The worst case example by example: one row per (GROUP_KEYS present, ε, position of
    the example in its evaluated subset), with `clean_correct`, `adv_correct` (survived every
    attack) and `robust` (both). Its mean per group and ε is worst_case_table's robust_acc."""
    parts = []
    for ident, eps, clean, adv, _ in _groups(correctness, nested):
        survived = np.logical_and.reduce(list(adv.values()))
        parts.append(pd.DataFrame({**ident, "attack": WORST_CASE, "epsilon": eps,
                                   "position": np.arange(len(clean)), "clean_correct": clean,
                                   "adv_correct": survived, "robust": clean & survived}))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def _groups(correctness: pd.DataFrame, nested: bool):
    """(identity, ε, clean correctness, {attack label: correctness under it}, clean
    disagreements) for every group of rows on the same examples and every ε."""
    if correctness.empty:
        return
    keys = [k for k in GROUP_KEYS if k in correctness.columns]
    for group, g in correctness.groupby(keys, sort=True, dropna=False):
        ident = dict(zip(keys, group if isinstance(group, tuple) else (group,)))
        clean, advs, disagree = _unpack_group(g, ident)
        for eps in sorted(set(g["epsilon"])):
            chosen = [i for i, e in enumerate(g["epsilon"]) if e == eps or (nested and e < eps)]
            adv = _by_label([advs[i] for i in chosen], [attack_label(g.iloc[i]) for i in chosen])
            yield ident, float(eps), clean, adv, disagree


def _unpack_group(g: pd.DataFrame, ident: dict) -> tuple[np.ndarray, list[np.ndarray], int]:
    """(clean, adversarial correctness per row, clean disagreements). The rows' clean passes
    are of one model on the same examples, but in other batches, where kernels may round
    differently and flip an argmax: an example counts as right clean only if every clean
    pass got it right, and the examples the passes disagree on are counted."""
    n = set(g["n"])
    if len(n) != 1:
        raise ValueError(f"{ident}: rows over {sorted(n)} examples cannot be combined")
    count = int(n.pop())
    cleans = [unpack_bits(text, count) for text in set(g["clean_correct"])]
    clean = np.logical_and.reduce(cleans)
    disagree = int((clean != np.logical_or.reduce(cleans)).sum())
    return clean, [unpack_bits(text, count) for text in g["adv_correct"]], disagree


def onto_subsets(correctness: pd.DataFrame) -> pd.DataFrame:
    """The correctness rows, plus each row restricted to every smaller evaluated subset of its
    split (same SPLIT_KEYS) whose examples it holds: a row of the whole split, restricted to a
    `limit`ed subset's examples, then joins that subset's group in `worst_case_table`.
    Tables without the SUBSET_COLUMNS come back unchanged."""
    if correctness.empty or not set(SUBSET_COLUMNS) <= set(correctness.columns):
        return correctness
    keys = [k for k in SPLIT_KEYS if k in correctness.columns]
    extra = []
    for _, g in correctness.groupby(keys, sort=True, dropna=False):
        subsets = g.drop_duplicates("data_fingerprint").set_index("data_fingerprint")
        if len(subsets) < 2:
            continue
        members = {fp: np.flatnonzero(unpack_bits(r["examples"], int(r["split_n"])))
                   for fp, r in subsets.iterrows()}
        for _, r in g.iterrows():
            own = members[r["data_fingerprint"]]
            for fp, target in members.items():
                if len(target) < len(own) and np.isin(target, own).all():
                    extra.append(_restricted(r, np.searchsorted(own, target), subsets.loc[fp],
                                             fp))
    return pd.concat([correctness, pd.DataFrame(extra)], ignore_index=True) if extra \
        else correctness


def _restricted(r: pd.Series, positions: np.ndarray, subset: pd.Series, fp: str) -> dict:
    """Row `r` on the subset's examples (at `positions` of r's own)."""
    n = int(r["n"])
    bits = {c: pack_bits(unpack_bits(r[c], n)[positions]) for c in ("clean_correct", "adv_correct")}
    return {**r.to_dict(), **bits, "data_fingerprint": fp, "n": len(positions),
            "examples": subset["examples"],
            **({"limit": subset["limit"]} if "limit" in subset.index else {})}


def _by_label(advs: list[np.ndarray], labels: list[str]) -> dict[str, np.ndarray]:
    """Merge rows with the same label (the same attack at two ε, or in two runs)."""
    out: dict[str, np.ndarray] = {}
    for label, adv in zip(labels, advs):
        out[label] = out[label] & adv if label in out else adv
    return out


def attack_label(row: pd.Series) -> str:
    """"pgd(steps=10, loss=ce)": the attack and the settings it ran with (norm aside)."""
    settings = setting_text(row)
    return f"{row['attack']}({settings})" if settings else str(row["attack"])


def setting_text(row: pd.Series) -> str:
    """"steps=10, loss=ce": the settings a row's attack ran with (norm and batch size aside;
    the implementation only when it is not the default, torchattacks, so labels of runs
    before it was a setting read the same)."""
    return ", ".join(f"{k}={format_setting(row[k])}" for k in SETTING_KEYS
                     if k in row.index and k not in ("norm", "batch_size") and not is_unset(row[k])
                     and not (k == "implementation" and row[k] == DEFAULT_IMPLEMENTATION))
