"""Points of many runs at once: only the needed columns of each table, grouped stacked.

Per run it reads the journal (for group ids) and, of each metric table, the cell id, seed,
skip flag, step, key columns and metric columns that are there; then each table is grouped
once over all runs, with compare's labels (bench.compare.match.group_labels). A key column a
run's table lacks is left out of that run's identities, as `run_points` does one run at a time.
Runs of an older schema are read whole through the migrating reader (`run_points`).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from bench.compare.match import KEY_COLUMNS, group_labels, journal_groups, judged_rows, key_columns
from bench.compare.rules import METRICS, MetricSpec
from bench.errors import UserError
from bench.history.points import POINT_COLUMNS, group_meta, identity, run_points
from bench.history.runs import RunInfo
from bench.store import schema as S
from bench.store.migrate import open_run, schema_version
from bench.store.run_store import CellRecord

RUN = "_run"
NEEDED = {table: [S.CELL_ID, "seed", "skipped", "step", *KEY_COLUMNS[table],
                  *(s.name for s in specs)] for table, specs in METRICS.items()}


def read_points(runs: list[tuple[Path, RunInfo]]) -> pd.DataFrame:
    """The points of the given (complete) runs."""
    pieces: dict[str, list[pa.Table]] = {table: [] for table in METRICS}
    present: dict[str, dict[str, set[str]]] = {table: {} for table in METRICS}
    groups, devices, out = {}, {}, []
    for run_dir, info in runs:
        if schema_version({"schema_version": info.schema_version}, run_dir) != S.SCHEMA_VERSION:
            out.append(run_points(open_run(run_dir), info))
            continue
        groups[info.run_id] = journal_groups(read_journal(run_dir))
        devices[info.run_id] = (info.device, info.device_name)
        for table in METRICS:
            piece = read_columns(run_dir / "tables" / f"{table}.parquet", NEEDED[table])
            if piece is not None and S.CELL_ID in piece.column_names:
                present[table][info.run_id] = set(piece.column_names)
                pieces[table].append(piece.append_column(RUN, pa.array([info.run_id] * len(piece))))
    for table, tables in pieces.items():
        if tables:
            stacked = pa.concat_tables(tables, promote_options="permissive").to_pandas()
            out.append(table_points(table, stacked, present[table], groups, devices))
    out = [p for p in out if not p.empty]
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame(columns=POINT_COLUMNS)


def read_journal(run_dir: Path) -> dict[str, CellRecord]:
    out = {}
    for path in sorted((run_dir / "cells").glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            out[data["id"]] = CellRecord(**data)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as exc:
            raise UserError(f"{path}: not a readable journal entry ({exc})") from None
    return out


def read_columns(path: Path, wanted: list[str]) -> pa.Table | None:
    if not path.exists():
        return None
    try:
        names = set(pq.read_schema(path).names)
        return pq.read_table(path, columns=[c for c in dict.fromkeys(wanted) if c in names])
    except (OSError, pa.ArrowException) as exc:
        raise UserError(f"{path}: not a readable Parquet table ({exc})") from None


def table_points(table: str, df: pd.DataFrame, present: dict[str, set[str]],
                 groups: dict[str, dict[str, str]], devices: dict[str, tuple[str, str]]
                 ) -> pd.DataFrame:
    df = judged_rows(df, table, within=(RUN, S.CELL_ID))
    df["_group"] = [groups[r].get(c, "") for r, c in zip(df[RUN], df[S.CELL_ID])]
    out = [spec_points(df, spec, present, devices) for spec in METRICS[table]
           if spec.name in df.columns]
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame(columns=POINT_COLUMNS)


def spec_points(df: pd.DataFrame, spec: MetricSpec, present: dict[str, set[str]],
                devices: dict[str, tuple[str, str]]) -> pd.DataFrame:
    keys = key_columns(spec, df.columns)
    if spec.per_cell:
        df = df.drop_duplicates([RUN, S.CELL_ID])
    df = df[df[spec.name].notna()]
    if df.empty:
        return pd.DataFrame(columns=POINT_COLUMNS)
    labels = group_labels(df, keys)
    ident = labels["_group"].to_numpy(dtype=object) + "|"
    for k in keys:
        has = df[RUN].isin([r for r, cols in present.items() if k in cols]).to_numpy()
        ident = ident + np.where(has, k + "=" + labels[k].to_numpy(dtype=object) + ";", "")
    df = df.assign(_identity=ident, _value=df[spec.name].astype(float))
    stats = df.groupby(["_identity", RUN], sort=False)["_value"].agg(
        ["median", "min", "max", "count"]).reset_index()
    meta = {i: group_meta(row, [k for k in keys if k in present[row[RUN]]])
            for i, row in df.drop_duplicates("_identity").set_index("_identity").iterrows()}
    return pd.DataFrame({
        "run": stats[RUN], "table": spec.table, "metric": spec.name,
        "identity": stats["_identity"], "key": [meta[i][0] for i in stats["_identity"]],
        "data": [meta[i][1] for i in stats["_identity"]],
        "device": [devices[r][0] for r in stats[RUN]],
        "device_name": [devices[r][1] for r in stats[RUN]],
        "median": stats["median"], "lo": stats["min"], "hi": stats["max"],
        "n": stats["count"].astype(int)}, columns=POINT_COLUMNS)
