"""What the robustness evaluation cost, and what a full test set would cost on N workers.

Reads the `shards` table: one row per cell that attacked examples (a sample shard, or an
unsharded cell, which is one shard of all its examples), with its attack time and device.
The projection is arithmetic on those measurements, labelled as such: the examples of a
10,000-image test set cut into shards of the size measured here, spread over N workers of
the kind that ran them; start-up and model loading are not in it, and more workers than
shards do not help.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from bench.report.blocks import Section, Table, Text
from bench.store import schema as S
from bench.suite.attack_options import SETTING_KEYS

FULL_TEST_SET = 10_000
WORKERS = (1, 8, 64)
GROUP = ["attack", *SETTING_KEYS, "arch_of", "n_epsilons", "device_name"]


def sections(run, baseline) -> list[Section]:
    shards = run.table(S.SHARDS)
    if shards.empty:
        return []
    table = cost_table(shards)
    intro = (f"Measured per shard (a cell's examples, or a sample shard of them): the clean "
             f"pass and the attack at every ε, in seconds per 1,000 examples (median over "
             f"shards, IQR). **Projection** from those measurements, not a measurement: the "
             f"time to attack a {FULL_TEST_SET:,}-example test set in shards of the measured "
             f"size on N workers like the one that ran them, without start-up and model "
             f"loading. `shard_size` or `shards` in a `[[robustness]]` section cuts a cell "
             f"into shards that run on any worker or Ray node (docs/parallel.md).")
    return [Section("Attack cost and projection", [Text(intro), Table(table, digits=3)])]


def cost_table(shards: pd.DataFrame) -> pd.DataFrame:
    """One row per attack setting, model family and device: cost and projected times."""
    df = shards.assign(arch_of=shards["model"].astype(str).str.split("@").str[0],
                       per_1000=1000 * shards["seconds"] / shards["n"].clip(lower=1))
    keys = [k for k in GROUP if k in df.columns]
    rows = []
    for key, g in df.groupby(keys, dropna=False, sort=True):
        ident = dict(zip(keys, key))
        cost = g["per_1000"].astype(float)
        size = int(np.median(g["n"]))
        row = {"attack": ident["attack"], "setting": setting(ident), "model": ident["arch_of"],
               "ε per shard": ident["n_epsilons"], "device": ident["device_name"],
               "shards": len(g), "examples": int(g["n"].sum()), "shard size": size,
               "s per 1,000 examples": float(cost.median()),
               "IQR": f"[{cost.quantile(0.25):.3g}, {cost.quantile(0.75):.3g}]"}
        for n in WORKERS:
            row[f"projected {FULL_TEST_SET:,} on {n}"] = duration(
                projected_seconds(float(cost.median()), size, n))
        rows.append(row)
    return pd.DataFrame(rows)


def projected_seconds(per_1000: float, shard_size: int, workers: int,
                      total: int = FULL_TEST_SET) -> float:
    """`total` examples in shards of `shard_size`, shared out over `workers`: the busiest
    worker's share of whole shards, at `per_1000` seconds per 1,000 examples."""
    shards = math.ceil(total / max(1, shard_size))
    return math.ceil(shards / workers) * min(shard_size, total) * per_1000 / 1000


def duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "-"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def setting(ident: dict) -> str:
    parts = [f"{k}={ident[k]:g}" if isinstance(ident[k], float) else f"{k}={ident[k]}"
             for k in SETTING_KEYS if k in ident and not _unset(ident[k])]
    return ", ".join(parts)


def _unset(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))
