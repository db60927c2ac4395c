"""Which examples changed between two runs: robust in the baseline and not in the candidate.

Read from both runs' per-example records (the `examples` table): for every evaluation in
both runs (the same model, data, attack and settings, seed and ε; the per-example worst case
too) the examples the candidate lost and those it gained. Not a verdict: the gate judges the
accuracies with their noise (bench.compare.stats); this says which examples moved, so a
regression can be looked at example by example.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from bench.store import schema as S
from bench.store.migrate import RunView
from bench.suite.attack_options import SETTING_KEYS

KEY = ["model", "dataset", "split", "attack", *SETTING_KEYS, "limit", "batch_size", "seed",
       "data_fingerprint", "epsilon"]
MAX_EXAMPLES = 20  # example indices kept per evaluation and direction


@dataclass
class ExampleChange:
    key: dict  # the evaluation: model, attack, settings, seed, ε...
    n: int  # examples in both runs
    lost: int  # robust in the baseline, not in the candidate
    gained: int
    lost_examples: list[int]  # the first MAX_EXAMPLES of each, by example index
    gained_examples: list[int]


def example_changes(base: RunView, cand: RunView) -> list[ExampleChange]:
    b, c = base.table(S.EXAMPLES), cand.table(S.EXAMPLES)
    if b.empty or c.empty:
        return []
    keys = [k for k in KEY if k in b.columns and k in c.columns]
    both = b[keys + ["example", "robust"]].merge(
        c[keys + ["example", "robust"]], on=keys + ["example"], suffixes=("_b", "_c"))
    out = []
    for key, g in both.groupby(keys, dropna=False, sort=True):
        lost = g[g["robust_b"].astype(bool) & ~g["robust_c"].astype(bool)]["example"]
        gained = g[~g["robust_b"].astype(bool) & g["robust_c"].astype(bool)]["example"]
        ident = {k: v for k, v in zip(keys, key) if not _unset(v)}
        out.append(ExampleChange(ident, len(g), len(lost), len(gained),
                                 sorted(int(e) for e in lost)[:MAX_EXAMPLES],
                                 sorted(int(e) for e in gained)[:MAX_EXAMPLES]))
    return out


def _unset(value) -> bool:
    return value is None or (isinstance(value, float) and value != value) or value is pd.NA
