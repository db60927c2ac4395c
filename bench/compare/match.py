"""Match two runs: cells by stable id, then metric samples grouped across seeds.

Cells are matched by their id (bench.identity.cell_id: the resolved config without
machine-local paths). Only cells present in both runs are compared. To test across seeds,
rows are grouped by their cell's group id (bench.identity.group_id: the same identity with the
seed left out, at every level of dependencies, from the journal) plus the row's key columns
minus seed, so each group holds one sample per seed on each side (GAN rows: the final step only).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bench.compare.rules import METRICS, MetricSpec
from bench.identity import group_id
from bench.store import schema as S
from bench.store.migrate import RunView
from bench.store.run_store import CellRecord
from bench.suite.attack_options import DEFAULT_IMPLEMENTATION, SETTING_KEYS

# Columns that name a configuration within a table (besides the cell's config).
# A different data fingerprint is different data: never pooled, never compared.
# A robustness row is named by its attack's settings too (PGD-10 and PGD-100 never pool).
KEY_COLUMNS = {
    S.ROBUSTNESS: ["model", "dataset", "split", "attack", *SETTING_KEYS, "limit", "batch_size",
                   "epsilon", "data_fingerprint"],
    S.GAN: ["gan", "arch", "dataset", "extractor", "num_samples", "step", "data_fingerprint"],
    S.THROUGHPUT: ["workload", "target", "batch_size", "precision", "channels_last", "compile"],
}
# Key columns that vary between the rows of one cell (dropped for per-cell metrics).
ROW_COLUMNS = {S.ROBUSTNESS: ["epsilon"], S.GAN: ["step"], S.THROUGHPUT: []}


@dataclass(frozen=True)
class CellMatch:
    common: list[str]
    only_baseline: list[str]
    only_candidate: list[str]
    failed_in_candidate: list[str]  # ok in the baseline, failed in the candidate
    labels: dict[str, str]  # id -> human label
    reasons: dict[str, str]  # id -> failure reason (candidate)


@dataclass
class Samples:
    spec: MetricSpec
    key: dict  # readable configuration, e.g. {"model": "cnn", "epsilon": 0.1}
    baseline: np.ndarray
    candidate: np.ndarray
    paired: bool  # baseline[i] and candidate[i] come from the same seed
    cells: list[str]  # candidate cell ids behind these samples
    device_names: tuple[set, set]  # per side, from the rows (throughput)


def match_cells(base: RunView, cand: RunView) -> CellMatch:
    b, c = _cell_status(base), _cell_status(cand)
    labels = {i: v[0] for i, v in (b | c).items()}
    common = sorted(i for i in b.keys() & c.keys() if b[i][1] == "ok" and c[i][1] == "ok")
    failed = sorted(i for i in b.keys() & c.keys() if b[i][1] == "ok" and c[i][1] != "ok")
    return CellMatch(common, sorted(b.keys() - c.keys()), sorted(c.keys() - b.keys()), failed,
                     labels, {i: c[i][2] for i in failed})


def _cell_status(run: RunView) -> dict[str, tuple[str, str, str]]:
    """id -> (label, status, reason), from the cells table, else from the manifest."""
    cells = run.table(S.CELLS)
    if not cells.empty:
        return {r[S.CELL_ID]: (str(r.get("label", "")), str(r.get("status", "")), r.get("reason"))
                for r in cells.to_dict("records")}
    return {i: (c.get("label", ""), c.get("status", ""), c.get("reason"))
            for i, c in run.manifest.get("cells", {}).items()}


@dataclass(frozen=True)
class MissingGroup:
    table: str
    metric: str
    key: dict  # the baseline configuration that has no counterpart in the candidate


def collect_samples(base: RunView, cand: RunView,
                    common: list[str]) -> tuple[list[Samples], list[MissingGroup]]:
    """Samples for every metric group in both runs, and the baseline groups the candidate lacks."""
    out, missing = [], []
    use_journal = bool(base.journal) and bool(cand.journal)  # else group by row keys alone
    for table, specs in METRICS.items():
        b_rows = _rows(base, table, common, use_journal)
        c_rows = _rows(cand, table, common, use_journal)
        if b_rows.empty:
            continue
        for spec in specs:
            if spec.name not in b_rows.columns or not b_rows[spec.name].notna().any():
                continue
            c_metric = c_rows if spec.name in c_rows.columns else c_rows.iloc[0:0]
            samples, lost = _metric_samples(spec, b_rows, c_metric)
            out += samples
            missing += lost
    return out, missing


def _rows(run: RunView, table: str, common: list[str], use_journal: bool) -> pd.DataFrame:
    df = run.table(table)
    if df.empty or S.CELL_ID not in df.columns:
        return pd.DataFrame()
    df = judged_rows(df[df[S.CELL_ID].isin(common)], table)
    groups = journal_groups(run.journal) if use_journal else {}
    df["_group"] = [groups.get(i, "") for i in df[S.CELL_ID]]
    return df


def judged_rows(df: pd.DataFrame, table: str, within: tuple[str, ...] = (S.CELL_ID,)) -> pd.DataFrame:
    """The rows that are judged: skipped rows dropped; GAN rows at the final step of each cell
    (`within`: the columns that name one cell, e.g. plus a run column when runs are stacked)."""
    df = df.copy()
    if "skipped" in df.columns:
        df = df[~df["skipped"].fillna(False).astype(bool)]
    if table == S.GAN and "step" in df.columns:  # judge the final model, not the way there
        df = df[df["step"] == df.groupby(list(within))["step"].transform("max")]
    return df


def journal_groups(journal: dict[str, CellRecord]) -> dict[str, str]:
    """cell id -> group id, for every journaled cell of one run (dependencies resolved
    recursively)."""
    out: dict[str, str] = {}

    def of(cell: str) -> str | None:
        if cell not in out:
            record = journal.get(cell)
            if record is None:
                return None
            deps = {role: of(dep) for role, dep in record.deps.items()}
            out[cell] = group_id(record.kind, record.config, deps)
        return out[cell]

    for cell in journal:
        of(cell)
    return out


def _metric_samples(spec: MetricSpec, b_rows: pd.DataFrame,
                    c_rows: pd.DataFrame) -> tuple[list[Samples], list[MissingGroup]]:
    keys = key_columns(spec, b_rows.columns, *([] if c_rows.empty else [c_rows.columns]))
    b_groups = metric_groups(b_rows, keys, spec)
    c_groups = metric_groups(c_rows, keys, spec) if not c_rows.empty else {}
    out, missing = [], []
    for gkey in sorted(b_groups):
        b = b_groups[gkey]
        b_vals, b_seeds = group_values(b, spec)
        if not len(b_vals):
            continue
        c = c_groups.get(gkey)
        c_vals, c_seeds = group_values(c, spec) if c is not None else (np.zeros(0), None)
        key = readable_key(b.iloc[0], keys)
        if not len(c_vals):
            missing.append(MissingGroup(spec.table, spec.name, key))
            continue
        paired = b_seeds is not None and b_seeds == c_seeds
        devices = tuple(set(g["device_name"].dropna().astype(str)) if "device_name" in g else set()
                        for g in (b, c))
        out.append(Samples(spec, key, b_vals, c_vals, paired,
                           sorted(c[S.CELL_ID].unique().tolist()), devices))
    return out, missing


def key_columns(spec: MetricSpec, *columns) -> list[str]:
    """The key columns that name a sample group of `spec`, among those present in every one of
    `columns` (the column sets of the runs being grouped alike)."""
    keys = [k for k in KEY_COLUMNS[spec.table] if all(k in cols for cols in columns)]
    if spec.per_cell:
        keys = [k for k in keys if k not in ROW_COLUMNS[spec.table]]
    return keys


def metric_groups(df: pd.DataFrame, keys: list[str], spec: MetricSpec) -> dict[tuple, pd.DataFrame]:
    """Rows of one run grouped into samples: by cell group id plus key columns."""
    if spec.per_cell:
        df = df.drop_duplicates(S.CELL_ID)
    labels = group_labels(df, keys)
    out = {}
    for index, group in df.groupby([labels[c].to_numpy() for c in labels.columns], sort=True):
        out[index if isinstance(index, tuple) else (index,)] = group
    return out


def group_labels(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """The grouping labels of ["_group"] + keys, one string per cell (equal values, equal
    labels). Labelled once per distinct value: runs stacked by the hundred stay fast."""
    return pd.DataFrame({c: _column_labels(df[c]) for c in ["_group"] + keys}, index=df.index)


def _column_labels(column: pd.Series) -> np.ndarray:
    each = column.dtype == object and column.isna().any()  # factorize merges None and NaN
    if not each:
        try:
            codes, uniques = pd.factorize(column, use_na_sentinel=False)
        except TypeError:  # unhashable values (dicts, lists)
            each = True
    if each:
        return np.array([_label(v) for v in column], dtype=object)
    return np.array([_label(v) for v in uniques], dtype=object)[codes]


def group_values(group: pd.DataFrame, spec: MetricSpec) -> tuple[np.ndarray, list | None]:
    """The samples, and the seed of each when there is exactly one sample per seed."""
    group = group[group[spec.name].notna()]
    if "seed" in group.columns and group["seed"].is_unique:
        group = group.sort_values("seed")
        return group[spec.name].astype(float).to_numpy(), group["seed"].tolist()
    return group[spec.name].astype(float).to_numpy(), None


def readable_key(row: pd.Series, keys: list[str]) -> dict:
    """The configuration a group stands for, for people (the data fingerprint left out)."""
    key = {k: _scalar(_plain(row[k])) for k in keys if k != "data_fingerprint"}
    # None: settings the attack lacks; the default implementation is left out as the report
    # labels leave it out, so keys read as they did before it was a column.
    return {k: v for k, v in key.items() if v is not None
            and not (k == "implementation" and v == DEFAULT_IMPLEMENTATION)}


def _label(value) -> str:
    if isinstance(value, (dict, list, np.ndarray)):
        return json.dumps(_plain(value), sort_keys=True, default=str)
    return repr(_scalar(_plain(value)))


def _scalar(value):
    """One spelling per value: a setting column holds 10 where every row has the setting and
    10.0 where some rows lack it (NaN, which is None here), so both runs' rows match."""
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if value.is_integer():
            return int(value)
    return value


def _plain(value):
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if hasattr(value, "item"):
        return value.item()
    return value
