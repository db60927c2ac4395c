"""One point per run and sample group: a metric's median, min, max and count over seeds.

Groups are compare's (bench.compare.match): the cell's group id from the journal plus the
table's key columns, for the rows compare judges (GAN rows at the final step, skipped rows
out). A group's *identity* names it across runs; with the run's device it names a series.

`run_points` is the straightforward way, one run at a time through the migrating reader
(`open_run`): old schemas use it, and the fast stacked reader (bench.history.read) is tested
equal to it.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from bench.compare.match import (
    group_values,
    journal_groups,
    judged_rows,
    key_columns,
    metric_groups,
    readable_key,
)
from bench.compare.rules import METRICS, MetricSpec
from bench.history.runs import RunInfo
from bench.store import schema as S
from bench.store.migrate import RunView

POINT_COLUMNS = ["run", "table", "metric", "identity", "key", "data", "device", "device_name",
                 "median", "lo", "hi", "n"]
FINGERPRINT = "data_fingerprint"


def identity(group_label: str, keys: list[str], labels) -> str:
    """The name of a sample group across runs: the group id's label, then key=label pairs."""
    return group_label + "|" + "".join(f"{k}={v};" for k, v in zip(keys, labels))


def group_meta(row: pd.Series, keys: list[str]) -> tuple[str, str]:
    """(readable key as JSON, data fingerprint) of a group, from one of its rows."""
    data = row[FINGERPRINT] if FINGERPRINT in keys else None
    key = json.dumps(readable_key(row, keys), default=str)  # in KEY_COLUMNS order, as compare
    return key, "" if data is None or (isinstance(data, float) and np.isnan(data)) else str(data)


def run_points(run: RunView, info: RunInfo) -> pd.DataFrame:
    """Every point of one run, reading it whole (the reference for the fast reader)."""
    groups = journal_groups(run.journal)
    rows = []
    for table, specs in METRICS.items():
        df = run.table(table)
        if df.empty or S.CELL_ID not in df.columns:
            continue
        df = judged_rows(df, table)
        df["_group"] = [groups.get(i, "") for i in df[S.CELL_ID]]
        for spec in specs:
            if spec.name in df.columns:
                rows += _spec_points(df, spec, info)
    return pd.DataFrame(rows, columns=POINT_COLUMNS)


def _spec_points(df: pd.DataFrame, spec: MetricSpec, info: RunInfo) -> list[dict]:
    keys = key_columns(spec, df.columns)
    out = []
    for gkey, group in metric_groups(df, keys, spec).items():
        values, _ = group_values(group, spec)
        if not len(values):
            continue
        key, data = group_meta(group.iloc[0], keys)
        out.append({"run": info.run_id, "table": spec.table, "metric": spec.name,
                    "identity": identity(gkey[0], keys, gkey[1:]), "key": key, "data": data,
                    "device": info.device, "device_name": info.device_name,
                    "median": float(np.median(values)), "lo": float(np.min(values)),
                    "hi": float(np.max(values)), "n": len(values)})
    return out
