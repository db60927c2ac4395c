"""A run folder: `results/<suite>/<run-id>/`.

    manifest.json        provenance, suite text, cell statuses (rewritten atomically)
    run.lock             held while a `bench run` owns the folder
    cells/<id>.json      one journal entry per finished cell: the durable record
    tables/<t>.parquet   tidy tables rebuilt from the journal (+ .csv beside each)
    artifacts/           sample grids and other per-run files
    report.md / .html    written by `bench report`

The journal is written as each cell finishes, so a crash loses only the cells in flight,
and a resumed run reads finished cells back instead of recomputing them.
"""

from __future__ import annotations

import io
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

from bench.errors import UserError
from bench.store.atomic import atomic_write_bytes, atomic_write_text
from bench.store.schema import PARQUET_ONLY


@dataclass
class CellRecord:
    """What the journal keeps of one finished (or failed) cell."""

    id: str
    kind: str
    label: str
    config: dict
    deps: dict[str, str]
    status: str  # "ok" | "failed"
    reason: str | None = None
    records: dict[str, list[dict]] = field(default_factory=dict)
    artifacts: dict[str, str] = field(default_factory=dict)
    started_utc: str | None = None
    finished_utc: str | None = None
    seconds: float | None = None
    attempts: int = 1
    host: str | None = None  # where it ran: the machine, and the Ray node on a cluster

    @property
    def ok(self) -> bool:
        return self.status == "ok"


class RunStore:
    def __init__(self, run_dir: str | Path):
        self.dir = Path(run_dir)

    # -- paths ---------------------------------------------------------------------------
    @property
    def manifest_path(self) -> Path:
        return self.dir / "manifest.json"

    @property
    def cells_dir(self) -> Path:
        return self.dir / "cells"

    @property
    def tables_dir(self) -> Path:
        return self.dir / "tables"

    @property
    def artifacts_dir(self) -> Path:
        return self.dir / "artifacts"

    # -- journal -------------------------------------------------------------------------
    def write_cell(self, record: CellRecord) -> None:
        text = json.dumps(asdict(record), indent=1, sort_keys=True, default=_json_default)
        atomic_write_text(self.cells_dir / f"{record.id}.json", text)

    def read_cells(self) -> dict[str, CellRecord]:
        out = {}
        for path in sorted(self.cells_dir.glob("*.json")):
            data = json.loads(path.read_text())
            out[data["id"]] = CellRecord(**data)
        return out

    # -- manifest ------------------------------------------------------------------------
    def write_manifest(self, manifest: dict) -> None:
        atomic_write_text(self.manifest_path, json.dumps(manifest, indent=1, sort_keys=True,
                                                          default=_json_default))

    def read_manifest(self) -> dict:
        try:
            return json.loads(self.manifest_path.read_text())
        except FileNotFoundError:
            raise UserError(f"{self.dir}: not a bench run folder (no manifest.json)") from None
        except json.JSONDecodeError as exc:
            raise UserError(f"{self.manifest_path}: not valid JSON ({exc})") from None

    # -- tables --------------------------------------------------------------------------
    def write_tables(self, tables: dict[str, pd.DataFrame]) -> None:
        for name, df in tables.items():
            buf = io.BytesIO()
            df.to_parquet(buf, index=False)
            atomic_write_bytes(self.tables_dir / f"{name}.parquet", buf.getvalue())
            if name not in PARQUET_ONLY:
                atomic_write_text(self.tables_dir / f"{name}.csv", df.to_csv(index=False))

    def read_table(self, name: str) -> pd.DataFrame:
        path = self.tables_dir / f"{name}.parquet"
        if not path.exists():
            return pd.DataFrame()
        return pd.read_parquet(path)

    def table_names(self) -> list[str]:
        return sorted(p.stem for p in self.tables_dir.glob("*.parquet"))


def _json_default(obj):
    # numpy scalars and paths sneak into records; store them as plain JSON values.
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot store {type(obj).__name__} in a result record")
