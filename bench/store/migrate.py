"""Read a run folder of any supported schema version, upgraded in memory to the current one.

Readers (`bench compare`, the compare report section) go through `open_run`, so they only
ever see the current schema. The run folder itself is never rewritten: an old run stays
exactly as it was recorded.

History of the result schema (bench.store.schema.SCHEMA_VERSION):
  v1  the `cells` table's key column was named `id`.
  v2  it is named `cell_id`, like the key column of every other table.
  v3  the robustness table no longer has `zero_grad_frac` and `eval_mode`: computed, never
      read by a check (the per-example `gradient_saturation` check replaced the first; the
      second read back the eval() that bench.attacks.attack_mode had just set).
  v4  robustness and correctness rows have `implementation`: every earlier row was run by
      torchattacks (the reference implementation did not exist).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pandas as pd

from bench.errors import UserError
from bench.store import schema as S
from bench.store.run_store import CellRecord, RunStore
from bench.suite.attack_options import DEFAULT_IMPLEMENTATION

OLDEST_READABLE = 1


def _v1_to_v2(tables: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    cells = tables.get(S.CELLS)
    if cells is not None and "id" in cells.columns:
        tables = tables | {S.CELLS: cells.rename(columns={"id": S.CELL_ID})}
    return tables


def _v2_to_v3(tables: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    rob = tables.get(S.ROBUSTNESS)
    dropped = [c for c in V2_ONLY_ROBUSTNESS if rob is not None and c in rob.columns]
    return tables | {S.ROBUSTNESS: rob.drop(columns=dropped)} if dropped else tables


V2_ONLY_ROBUSTNESS = ("zero_grad_frac", "eval_mode")


def _v3_to_v4(tables: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    out = dict(tables)
    for name in (S.ROBUSTNESS, S.CORRECTNESS):
        df = tables.get(name)
        if df is not None and "attack" in df.columns and "implementation" not in df.columns:
            out[name] = _insert_after(df, "queries", "implementation", DEFAULT_IMPLEMENTATION)
    return out


def _insert_after(df: pd.DataFrame, before: str, column: str, value) -> pd.DataFrame:
    """`df` with `column` = `value` placed after `before` (last when it is missing), as the
    schema orders its columns."""
    at = df.columns.get_loc(before) + 1 if before in df.columns else len(df.columns)
    df = df.copy()
    df.insert(at, column, value)
    return df

# version N -> function turning the tables of schema N into those of schema N + 1
MIGRATIONS: dict[int, Callable[[dict[str, pd.DataFrame]], dict[str, pd.DataFrame]]] = {
    1: _v1_to_v2,
    2: _v2_to_v3,
    3: _v3_to_v4,
}


@dataclass
class RunView:
    """A run as the current schema describes it, whatever version wrote it."""

    dir: Path
    manifest: dict
    tables: dict[str, pd.DataFrame]
    journal: dict[str, CellRecord] = field(default_factory=dict)
    recorded_version: int = S.SCHEMA_VERSION  # the version on disk, before migration

    def table(self, name: str) -> pd.DataFrame:
        return self.tables.get(name, pd.DataFrame())

    @property
    def migrated(self) -> bool:
        return self.recorded_version != S.SCHEMA_VERSION


def open_run(run_dir: str | Path, tables: dict[str, pd.DataFrame] | None = None) -> RunView:
    """The run in `run_dir`, its tables migrated to the current schema. `tables`: the run's
    tables as just written (the runner's, which reports the run it finished), not read back."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"{run_dir}: no such run folder")
    store = RunStore(run_dir)
    manifest = store.read_manifest()
    version = schema_version(manifest, run_dir)
    if tables is None:
        tables = {name: store.read_table(name) for name in store.table_names()}
        tables = migrate_tables(tables, version)
    elif version != S.SCHEMA_VERSION:
        raise ValueError(f"{run_dir}: tables in memory are the current schema, the run v{version}")
    cells = tables.get(S.CELLS)
    if cells is not None and not cells.empty and S.CELL_ID not in cells.columns:
        raise UserError(f"{run_dir}: incompatible results: the {S.CELLS} table has no "
                        f"{S.CELL_ID!r} column (schema v{version})")
    journal = store.read_cells() if store.cells_dir.is_dir() else {}
    manifest = manifest | {"schema_version": S.SCHEMA_VERSION}
    return RunView(run_dir, manifest, tables, journal, version)


def schema_version(manifest: dict, where: Path) -> int:
    version = manifest.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise UserError(f"{where}: manifest.json has no valid schema_version "
                        f"(got {version!r}); not a run written by bench")
    if version > S.SCHEMA_VERSION:
        raise UserError(f"{where}: results use schema v{version}, newer than this bench reads "
                        f"(v{OLDEST_READABLE}..v{S.SCHEMA_VERSION}); upgrade bench to compare it")
    if version < OLDEST_READABLE:
        raise UserError(f"{where}: results use schema v{version}, older than this bench reads "
                        f"(v{OLDEST_READABLE}..v{S.SCHEMA_VERSION})")
    return version


def migrate_tables(tables: dict[str, pd.DataFrame], version: int) -> dict[str, pd.DataFrame]:
    """Apply the migrations from `version` up to the current schema, in order."""
    for v in range(version, S.SCHEMA_VERSION):
        tables = MIGRATIONS[v](tables)
    return tables
