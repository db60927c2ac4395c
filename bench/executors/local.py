"""Run cells in this process, in plan order (dependencies first). Needs nothing but bench."""

from __future__ import annotations

from typing import Callable

from bench.cells import RunEnv
from bench.executors.execute import as_result, dependency_failure, execute_cell
from bench.executors.progress import CellProgress
from bench.store.run_store import CellRecord
from bench.suite.plan import Cell


class LocalExecutor:
    def __init__(self, **_options):
        pass

    def run(self, cells: list[Cell], done: dict[str, CellRecord], env: RunEnv,
            on_done: Callable[[CellRecord], None], progress: CellProgress) -> None:
        done = dict(done)
        for cell in cells:
            if cell.id in done:
                continue
            record = dependency_failure(cell, done)
            if record is None:
                progress.started(cell.label)
                inputs = {role: as_result(done[dep]) for role, dep in cell.deps.items()}
                record = execute_cell(cell, inputs, env)
            done[cell.id] = record
            on_done(record)
            progress.finished(record.ok, ran=record.attempts > 0)
