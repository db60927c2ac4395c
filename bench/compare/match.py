"""Match two runs: cells by stable id, then metric samples grouped across seeds.

Cells are matched by their id (a hash of the resolved config, without run-specific parts).
Only cells present in both runs are compared. To test across seeds, rows are grouped by
their cell's config minus "seed" (from the journal) plus the row's key columns minus seed,
so each group holds one sample per seed on each side (GAN rows: the final step only).
Throughput samples are the per-repeat `times_s` converted to images/s.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bench.compare.rules import METRICS, MetricSpec
from bench.store import schema as S
from bench.store.migrate import RunView

# Columns that name a configuration within a table (besides the cell's config).
KEY_COLUMNS = {
    S.ROBUSTNESS: ["model", "dataset", "split", "attack", "epsilon"],
    S.GAN: ["gan", "arch", "dataset", "extractor", "num_samples", "step"],
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


def collect_samples(base: RunView, cand: RunView, common: list[str]) -> list[Samples]:
    out = []
    use_journal = bool(base.journal) and bool(cand.journal)  # else group by row keys alone
    for table, specs in METRICS.items():
        b_rows = _rows(base, table, common, use_journal)
        c_rows = _rows(cand, table, common, use_journal)
        if b_rows.empty or c_rows.empty:
            continue
        for spec in specs:
            if spec.name in b_rows.columns and spec.name in c_rows.columns:
                out.extend(_metric_samples(spec, b_rows, c_rows))
    return out


def _rows(run: RunView, table: str, common: list[str], use_journal: bool) -> pd.DataFrame:
    df = run.table(table)
    if df.empty or S.CELL_ID not in df.columns:
        return pd.DataFrame()
    df = df[df[S.CELL_ID].isin(common)].copy()
    if "skipped" in df.columns:
        df = df[~df["skipped"].fillna(False).astype(bool)]
    if table == S.GAN and "step" in df.columns:  # judge the final model, not the way there
        df = df[df["step"] == df.groupby(S.CELL_ID)["step"].transform("max")]
    configs = {i: _config_group(r.kind, r.config) for i, r in run.journal.items()} if use_journal else {}
    df["_group"] = [configs.get(i, "") for i in df[S.CELL_ID]]
    return df


def _config_group(kind: str, config: dict) -> str:
    """The cell's config without its seed: cells that differ only in the seed share it."""
    payload = json.dumps({"kind": kind, "config": {k: v for k, v in config.items() if k != "seed"}},
                         sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _metric_samples(spec: MetricSpec, b_rows: pd.DataFrame, c_rows: pd.DataFrame) -> list[Samples]:
    keys = [k for k in KEY_COLUMNS[spec.table] if k in b_rows.columns and k in c_rows.columns]
    if spec.per_cell:
        keys = [k for k in keys if k not in ROW_COLUMNS[spec.table]]
    b_groups, c_groups = _groups(b_rows, keys, spec), _groups(c_rows, keys, spec)
    out = []
    for gkey in sorted(b_groups.keys() & c_groups.keys()):
        b, c = b_groups[gkey], c_groups[gkey]
        b_vals, b_seeds = _values(b, spec)
        c_vals, c_seeds = _values(c, spec)
        if not len(b_vals) or not len(c_vals):
            continue
        paired = b_seeds is not None and b_seeds == c_seeds
        first = c.iloc[0]
        key = {k: _plain(first[k]) for k in keys}
        devices = tuple(set(g["device_name"].dropna().astype(str)) if "device_name" in g else set()
                        for g in (b, c))
        out.append(Samples(spec, key, b_vals, c_vals, paired,
                           sorted(c[S.CELL_ID].unique().tolist()), devices))
    return out


def _groups(df: pd.DataFrame, keys: list[str], spec: MetricSpec) -> dict[tuple, pd.DataFrame]:
    if spec.per_cell:
        df = df.drop_duplicates(S.CELL_ID)
    labels = df[["_group"] + keys].map(_label) if keys else df[["_group"]]
    out = {}
    for index, group in df.groupby([labels[c] for c in labels.columns], sort=True):
        out[index if isinstance(index, tuple) else (index,)] = group
    return out


def _values(group: pd.DataFrame, spec: MetricSpec) -> tuple[np.ndarray, list | None]:
    """The samples, and the seed of each when there is exactly one sample per seed."""
    if spec.table == S.THROUGHPUT and spec.name == "images_per_s" and "times_s" in group.columns:
        return _per_repeat_images_per_s(group), None
    group = group[group[spec.name].notna()]
    if "seed" in group.columns and group["seed"].is_unique:
        group = group.sort_values("seed")
        return group[spec.name].astype(float).to_numpy(), group["seed"].tolist()
    return group[spec.name].astype(float).to_numpy(), None


def _per_repeat_images_per_s(group: pd.DataFrame) -> np.ndarray:
    """Each timed repeat as images/s: images per repeat / seconds of that repeat."""
    out = []
    for row in group.to_dict("records"):
        times = np.asarray(row["times_s"] if row["times_s"] is not None else [], float)
        times = times[np.isfinite(times) & (times > 0)]
        ips, median = row.get("images_per_s"), row.get("median_s")
        if ips is not None and median is not None and np.isfinite(ips) and np.isfinite(median):
            images = ips * median
        else:
            images = float(row["batch_size"])
        out.extend(images / times)
    return np.asarray(out, float)


def _label(value) -> str:
    if isinstance(value, (dict, list, np.ndarray)):
        return json.dumps(_plain(value), sort_keys=True, default=str)
    return repr(_plain(value))


def _plain(value):
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if hasattr(value, "item"):
        return value.item()
    return value
