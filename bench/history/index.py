"""An index of what history has read, so that a run is read once, not on every call.

`RESULTS_DIR/.cache/history/<suite>.parquet` holds the points of every complete run read so
far, and in its metadata each run's manifest summary and *signature*: the size and mtime of
its manifest, metric tables and journal folder. A run whose signature changed (resumed,
re-run, edited) is read again; a run gone from the folder drops out. The whole index is
rebuilt when bench's code changes (the points depend on how compare groups them).
Written atomically; where the results folder is read-only, history works without it.
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from bench import defaults
from bench.compare.rules import METRICS
from bench.history.points import POINT_COLUMNS
from bench.history.runs import RunInfo
from bench.identity import code_identity
from bench.store.atomic import atomic_write_bytes

META_KEY = b"bench.history.index"
FORMAT = 1


@dataclass
class Index:
    runs: dict[str, tuple[str, RunInfo]] = field(default_factory=dict)  # id -> (signature, info)
    points: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=POINT_COLUMNS))


def index_path(suite_dir: Path) -> Path:
    return suite_dir.parent / defaults.CACHE_SUBDIR / "history" / f"{suite_dir.name}.parquet"


SIGNED = ["manifest.json", "cells"] + [f"tables/{table}.parquet" for table in METRICS]


def signature(run_dir: Path) -> str:
    """Changes whenever what history reads of the run may have changed."""
    parts = []
    for name in SIGNED:
        try:
            st = os.stat(f"{run_dir}/{name}")
            parts.append(f"{st.st_mtime_ns}:{st.st_size}")
        except FileNotFoundError:
            parts.append("-")
    return ";".join(parts)


def code_version() -> str:
    return f"{FORMAT}:{code_identity()['source_sha256']}"


def load_index(path: Path) -> Index:
    """The index at `path`, or an empty one if it is missing, unreadable or of other code."""
    try:
        table = pq.read_table(path)
        meta = json.loads((table.schema.metadata or {})[META_KEY])
    except (OSError, pa.ArrowException, KeyError, ValueError):
        return Index()
    if meta.get("code") != code_version() or list(table.column_names) != POINT_COLUMNS:
        return Index()
    runs = {run_id: (sig, RunInfo(**info)) for run_id, (sig, info) in meta["runs"].items()}
    return Index(runs, table.to_pandas())


def save_index(path: Path, index: Index) -> str | None:
    """Write the index; None, or why it could not be written (history goes on without it)."""
    meta = {"code": code_version(),
            "runs": {run_id: [sig, asdict(info)] for run_id, (sig, info) in index.runs.items()}}
    table = pa.Table.from_pandas(index.points[POINT_COLUMNS], preserve_index=False)
    table = table.replace_schema_metadata({META_KEY: json.dumps(meta).encode()})
    buf = io.BytesIO()
    pq.write_table(table, buf)
    try:
        atomic_write_bytes(path, buf.getvalue())
    except OSError as exc:
        return f"the history index was not saved ({path}: {exc}); every run is read each time"
    return None
