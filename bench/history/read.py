"""Points of many runs at once: only the needed columns of each table, grouped stacked.

Per run it reads the journal (for group ids) and, of each metric table, the cell id, seed,
skip flag, step, key columns and metric columns that are there; then each table is grouped
once over all runs, with compare's labels (bench.compare.match.group_labels). A key column a
run's table lacks is left out of that run's identities, as `run_points` does one run at a time.
Runs of an older schema are read whole through the migrating reader (`run_points`).
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from bench.compare.match import KEY_COLUMNS, group_labels, journal_groups, judged_rows, key_columns
from bench.compare.rules import METRICS, MetricSpec
from bench.errors import UserError
from bench.history.points import POINT_COLUMNS, group_meta, run_points
from bench.history.runs import RunInfo
from bench.store import schema as S
from bench.store.migrate import open_run, schema_version
from bench.store.run_store import CellRecord

RUN = "_run"  # the run's position in the list read (an int: fast to group and index by)
NEEDED = {table: [S.CELL_ID, "seed", "skipped", "step", *KEY_COLUMNS[table],
                  *(s.name for s in specs)] for table, specs in METRICS.items()}
THREADS = 4  # Parquet decoding releases the GIL: reading runs side by side overlaps the I/O


def read_points(runs: list[tuple[Path, RunInfo]], load: Callable | None = None) -> pd.DataFrame:
    """The points of the given (complete) runs. `load(run_dir, known_groups)` returns the run's
    {cell id: group id} and its metric tables as Arrow tables (default: `load_needed`)."""
    load = load or load_needed
    old = [(d, i) for d, i in runs if _version(d, i) != S.SCHEMA_VERSION]
    runs = [(d, i) for d, i in runs if _version(d, i) == S.SCHEMA_VERSION]
    out = [run_points(open_run(d), i) for d, i in old]
    known: dict[str, str] = {}
    loaded = [load(runs[0][0], known)] if runs else []  # the first run fills `known`
    known.update(loaded[0][0] if loaded else {})
    with ThreadPoolExecutor(THREADS) as pool:
        loaded += list(pool.map(lambda run: load(run[0], known), runs[1:]))
    for table in METRICS:
        pieces = [_tagged(tables[table], k, groups) for k, (groups, tables) in enumerate(loaded)
                  if table in tables]
        if pieces:
            stacked = pa.concat_tables(pieces, promote_options="permissive").to_pandas()
            columns = [set(t[table].column_names) if table in t else set() for _, t in loaded]
            present = {c: np.array([c in cols for cols in columns]) for c in NEEDED[table]}
            out.append(table_points(table, stacked, present, [i for _, i in runs]))
    out = [p for p in out if not p.empty]
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame(columns=POINT_COLUMNS)


def _tagged(piece: pa.Table, k: int, groups: dict[str, str]) -> pa.Table:
    """The run's rows with its position and each row's group id (from its own journal)."""
    cells = piece.column(S.CELL_ID).to_pylist()
    piece = piece.append_column(RUN, pa.array([k] * len(piece), pa.int32()))
    return piece.append_column("_group", pa.array([groups.get(c, "") for c in cells], pa.string()))


def _version(run_dir: Path, info: RunInfo) -> int:
    return schema_version({"schema_version": info.schema_version}, run_dir)


def load_needed(run_dir: Path, known: dict[str, str]) -> tuple[dict[str, str], dict[str, pa.Table]]:
    """The run's group ids and the needed columns of its metric tables. A cell id fixes its
    group id (both hash the same config and dependencies), so journal entries of cells seen in
    another run are not read again."""
    tables = {}
    on_disk = set(os.listdir(run_dir / "tables")) if (run_dir / "tables").is_dir() else set()
    for table in METRICS:
        if f"{table}.parquet" in on_disk:
            piece = read_columns(run_dir / "tables" / f"{table}.parquet", NEEDED[table])
            if S.CELL_ID in piece.column_names:
                tables[table] = piece
    return journal_group_ids(run_dir, known), tables


def journal_group_ids(run_dir: Path, known: dict[str, str]) -> dict[str, str]:
    """cell id -> group id of every journaled cell of the run, reading only unknown cells."""
    cells_dir = run_dir / "cells"
    ids = sorted(p[:-5] for p in os.listdir(cells_dir) if p.endswith(".json")) \
        if cells_dir.is_dir() else []
    if all(i in known for i in ids):
        return {i: known[i] for i in ids}
    return journal_groups(read_journal(run_dir))


def read_journal(run_dir: Path) -> dict[str, CellRecord]:
    out = {}
    for path in sorted((run_dir / "cells").glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            out[data["id"]] = CellRecord(**data)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as exc:
            raise UserError(f"{path}: not a readable journal entry ({exc})") from None
    return out


def read_columns(path: Path, wanted: list[str]) -> pa.Table:
    try:
        pf = pq.ParquetFile(path)
        names = set(pf.schema_arrow.names)
        return pf.read(columns=[c for c in dict.fromkeys(wanted) if c in names])
    except (OSError, pa.ArrowException) as exc:
        raise UserError(f"{path}: not a readable Parquet table ({exc})") from None


def table_points(table: str, df: pd.DataFrame, present: dict[str, np.ndarray],
                 runs: list[RunInfo]) -> pd.DataFrame:
    df = judged_rows(df, table, within=(RUN, S.CELL_ID))
    out = [spec_points(df, spec, present, runs) for spec in METRICS[table]
           if spec.name in df.columns]
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame(columns=POINT_COLUMNS)


def spec_points(df: pd.DataFrame, spec: MetricSpec, present: dict[str, np.ndarray],
                runs: list[RunInfo]) -> pd.DataFrame:
    """`present[k][i]`: whether run i's table has key column k (else k is not in its keys)."""
    keys = key_columns(spec, df.columns)
    if spec.per_cell:
        df = df.drop_duplicates([RUN, S.CELL_ID])
    df = df[df[spec.name].notna()]
    if df.empty:
        return pd.DataFrame(columns=POINT_COLUMNS)
    labels = group_labels(df, keys)
    run = df[RUN].to_numpy()
    ident = labels["_group"].to_numpy(dtype=object) + "|"  # as points.identity, vectorized
    for k in keys:
        part = k + "=" + labels[k].to_numpy(dtype=object) + ";"
        ident = ident + (part if present[k].all() else np.where(present[k][run], part, ""))
    df = df.assign(_identity=ident, _value=df[spec.name].astype(float))
    stats = df.groupby(["_identity", RUN], sort=False)["_value"].agg(
        ["median", "min", "max", "count"]).reset_index()
    first = df.drop_duplicates("_identity")
    meta = {i: group_meta(row, [k for k in keys if present[k][row[RUN]]])
            for i, (_, row) in zip(first["_identity"], first.iterrows())}
    at, ids = stats[RUN].to_numpy(), stats["_identity"].to_numpy(dtype=object)
    return pd.DataFrame({
        "run": _objects([r.run_id for r in runs], at), "table": _objects([spec.table], 0 * at),
        "metric": _objects([spec.name], 0 * at), "identity": pd.Series(ids, dtype=object),
        "key": pd.Series([meta[i][0] for i in ids], dtype=object),
        "data": pd.Series([meta[i][1] for i in ids], dtype=object),
        "device": _objects([r.device for r in runs], at),
        "device_name": _objects([r.device_name for r in runs], at),
        "median": stats["median"], "lo": stats["min"], "hi": stats["max"],
        "n": stats["count"].astype(int)}, columns=POINT_COLUMNS)


def _objects(values: list[str], codes: np.ndarray) -> pd.Series:
    """values[codes] as plain Python strings (no per-element conversion to Arrow strings)."""
    return pd.Series(np.array(values, dtype=object)[codes], dtype=object)
