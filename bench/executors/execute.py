"""Run one cell and turn its outcome into a journal record. Used by every executor."""

from __future__ import annotations

import dataclasses
import os
import signal
import socket
import time
import traceback
from contextlib import contextmanager
from pathlib import Path

from bench.cells import CELL_KINDS, CellResult, RunEnv
from bench.errors import CellFailed, UserError
from bench.executors.deterministic import deterministic_mode
from bench.interrupts import interrupts_unwrapped
from bench.provenance import utc_now
from bench.store import schema as S
from bench.store.run_store import CellRecord
from bench.suite.plan import Cell

# TEST-ONLY fault injection, read here and nowhere else. When this environment variable
# names a folder, the process running a cell SIGKILLs itself the first time it starts that
# cell: it first creates `<folder>/<cell id>.killed`, so the next attempt runs normally.
# Pre-create a cell's marker to spare it. Never set this outside tests.
TEST_KILL_ONCE_ENV = "BENCH_TEST_KILL_ONCE"

# Cells that time themselves. Every executor runs them alone, with no other cell of the run
# beside them, and stamps each of their rows with `ran_alone` (stamp_alone).
EXCLUSIVE_KINDS = frozenset({"throughput"})


def execute_cell(cell: Cell, inputs: dict[str, CellResult], env: RunEnv, attempts: int = 1) -> CellRecord:
    """Never raises for a failure inside the cell: the failure is recorded with its reason.

    `attempts` is the executor's count of tries so far, this one included (Ray retries a
    task whose worker died). KeyboardInterrupt and SystemExit pass through, so Ctrl-C
    still stops the run; so does an exception a library raised from a KeyboardInterrupt, as
    the KeyboardInterrupt (bench.interrupts.interrupts_unwrapped).
    """
    _test_kill_once(cell)
    with interrupts_unwrapped(), torch_threads(env.threads if env.device == "cpu" else None), \
            deterministic_mode(env.deterministic):
        return _execute(cell, inputs, env, attempts)


@contextmanager
def torch_threads(n: int | None):
    """Run with `n` torch threads (None: leave as is), then put the old count back."""
    import torch

    previous = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _execute(cell: Cell, inputs: dict[str, CellResult], env: RunEnv, attempts: int) -> CellRecord:
    started, t0 = utc_now(), time.perf_counter()
    base = dict(id=cell.id, kind=cell.kind, label=cell.label, config=cell.config.as_dict(),
                deps=cell.deps, started_utc=started, attempts=attempts,
                host=socket.gethostname())
    try:
        with interrupts_unwrapped():  # the run is stopping: not this cell's failure
            result = CELL_KINDS.get(cell.kind)(cell.config, inputs, env)
    except (CellFailed, UserError) as exc:
        partial = exc.records if isinstance(exc, CellFailed) else {}  # rows measured before it
        return CellRecord(**base, status="failed", reason=str(exc), records=partial,
                          finished_utc=utc_now(), seconds=time.perf_counter() - t0)
    except Exception as exc:  # noqa: BLE001 - recorded with its traceback, not swallowed
        reason = f"{type(exc).__name__}: {exc}"
        tb = traceback.format_exc(limit=8)
        return CellRecord(**base, status="failed", reason=reason, finished_utc=utc_now(),
                          seconds=time.perf_counter() - t0,
                          records={S.ERRORS: [S.row(S.ERRORS, traceback=tb)]})
    return CellRecord(**base, status="ok", records=result.records, artifacts=result.artifacts,
                      finished_utc=utc_now(), seconds=time.perf_counter() - t0)


def dependency_failure(cell: Cell, done: dict[str, CellRecord]) -> CellRecord | None:
    """A cell whose dependency failed fails too, naming the dependency, without running."""
    for role, dep in cell.deps.items():
        if dep in done and not done[dep].ok:
            return failed_record(cell, f"dependency {role} ({done[dep].label}) failed: "
                                       f"{done[dep].reason}", attempts=0, seconds=0.0)
    return None


def failed_record(cell: Cell, reason: str, attempts: int = 1, seconds: float | None = None,
                  records: dict | None = None) -> CellRecord:
    """A cell that failed outside its own code (a dead worker, a failed dependency...)."""
    now = utc_now()
    return CellRecord(id=cell.id, kind=cell.kind, label=cell.label, config=cell.config.as_dict(),
                      deps=cell.deps, status="failed", reason=reason, started_utc=now,
                      finished_utc=now, seconds=seconds, attempts=attempts, records=records or {})


def stamp_alone(record: CellRecord, alone: bool) -> CellRecord:
    """Say in every row of a timing cell whether another cell ran beside it."""
    if record.kind not in EXCLUSIVE_KINDS:
        return record
    records = {table: [row | {S.RAN_ALONE: alone} for row in rows]
               for table, rows in record.records.items()}
    return dataclasses.replace(record, records=records)


def as_result(record: CellRecord) -> CellResult:
    return CellResult(records=record.records, artifacts=record.artifacts)


def _test_kill_once(cell: Cell) -> None:
    """See TEST_KILL_ONCE_ENV: simulates a worker (or driver) dying in the middle of a cell."""
    folder = os.environ.get(TEST_KILL_ONCE_ENV)
    if not folder:
        return
    try:
        with open(Path(folder) / f"{cell.id}.killed", "x"):
            pass
    except FileExistsError:
        return  # killed once already (or spared): run normally
    os.kill(os.getpid(), signal.SIGKILL)
