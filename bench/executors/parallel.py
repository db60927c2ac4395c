"""Run independent cells side by side in worker processes (the local executor, workers > 1).

The driver keeps the plan: a cell is handed to an idle worker once every cell it depends on
has finished (a train cell before its evaluations). Which ready cell goes first is
bench.executors.balance's choice: cells that others wait for, then an even split of the
estimated work, so the long chains start early and the workers finish together. Every worker
process starts with the run, so their start-up overlaps the first cell. A record comes back
through the worker's future, and the driver journals it at once (`on_done`): only the driver
writes the run folder. A cell whose dependency failed fails too, without running.

Timing cells (throughput, see EXCLUSIVE_KINDS) run alone: one starts only when no other cell
is in flight, nothing else starts beside it, and they all run on the first worker, so the
CPU peak behind their MFU is measured once. Their rows say so (`ran_alone`).

Faults: a worker that dies (segfault, OOM kill, os._exit) fails the cell it was running, with
the reason; a fresh process takes its place and the run goes on. Ctrl-C or SIGTERM in the
driver (KeyboardInterrupt) stops every worker, and re-raises: finished cells are journaled,
the cells in flight are not, so a resumed run redoes exactly those.
"""

from __future__ import annotations

import dataclasses
import time
from concurrent.futures import FIRST_COMPLETED, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Callable

from bench.cells import RunEnv
from bench.executors import balance, worker
from bench.executors.estimates import Estimates, History
from bench.executors.execute import (
    EXCLUSIVE_KINDS,
    as_result,
    dependency_failure,
    failed_record,
    stamp_alone,
)
from bench.executors.pool import WorkerProcess
from bench.executors.progress import CellProgress
from bench.store.run_store import CellRecord
from bench.suite.plan import Cell

TICK_SECONDS = 0.5  # how often the driver refreshes the progress display while it waits


class ParallelRun:
    """One run of the parallel local executor over `cells` (plan order)."""

    def __init__(self, cells: list[Cell], done: dict[str, CellRecord], env: RunEnv,
                 on_done: Callable[[CellRecord], None], progress: CellProgress, workers: int):
        self.below = dependants(cells)  # cell id -> every cell that needs it
        self.waited_for = {cell_id: len(ids) for cell_id, ids in self.below.items()}
        self.by_id = {c.id: c for c in cells}
        self.todo = [c for c in cells if c.id not in done]  # plan order
        self.done = dict(done)
        # Bars stay in the driver: one line per worker, not one bar per worker writing at once.
        self.env = dataclasses.replace(env, progress=False)
        self.on_done, self.progress = on_done, progress
        self.workers = [WorkerProcess(i) for i in range(workers)]
        self.busy: dict[int, tuple[Cell, object]] = {}  # worker index -> (cell, future)
        self.started: dict[int, float] = {}  # worker index -> when its cell started
        self.shared: set[str] = set()  # cells that had another cell in flight beside them
        # Seconds each cell will take (earlier runs in the results folder, else a FLOP
        # model), and how fast the estimated work goes in this run.
        self.estimates = Estimates(cells, History.read(env.results_dir))
        self.pace = balance.Pace(self.estimates)

    def loop(self) -> None:
        self.progress.show_workers(len(self.workers))
        stopped = False
        try:
            for w in self.workers[:len(self.todo)]:
                w.warm_up()
            while self.todo or self.busy:
                self.fail_blocked()
                self.fill()
                futures = [future for _, future in self.busy.values()]
                finished, _ = wait(futures, timeout=TICK_SECONDS, return_when=FIRST_COMPLETED)
                for index in sorted(i for i, (_, f) in self.busy.items() if f in finished):
                    self.collect(index)
                self.progress.refresh()
        except BaseException:
            stopped = True  # Ctrl-C, SIGTERM, or an error while journaling: stop all work
            raise
        finally:
            for w in self.workers:
                if stopped:
                    w.stop()
                else:
                    w.shutdown()

    def fail_blocked(self) -> None:
        """Cells whose dependency failed are recorded as failed, without running."""
        for cell in list(self.todo):
            record = dependency_failure(cell, self.done)
            if record is not None:
                self.todo.remove(cell)
                self.record(record, ran=False)

    def fill(self) -> None:
        for w in self.workers:
            if w.index in self.busy:
                continue
            cell = self.next_cell(w.index)
            if cell is None:
                return
            # Timing cells always go to the first worker (idle: nothing else runs).
            self.start(self.workers[0] if cell.kind in EXCLUSIVE_KINDS else w, cell)

    def next_cell(self, idle: int) -> Cell | None:
        """The ready cell worker `idle` starts now; timing cells only when nothing runs."""
        if any(cell.kind in EXCLUSIVE_KINDS for cell, _ in self.busy.values()):
            return None
        ready = [c for c in self.todo if all(d in self.done for d in c.deps.values())]
        shared = [c for c in ready if c.kind not in EXCLUSIVE_KINDS]
        if shared:
            return balance.pick(shared, self.waited_for, idle, len(self.workers), self.left(),
                                self.pace.predicted, self.unlocked)
        if ready and not self.busy:
            return ready[0]  # only timing cells are ready and nothing runs: one, alone
        return None

    def unlocked(self, cell: Cell) -> float | None:
        """The seconds `cell` and every cell that needs it are predicted to take."""
        costs = [self.pace.predicted(self.by_id[i]) for i in {cell.id} | self.below[cell.id]]
        return None if None in costs else sum(costs)

    def left(self) -> dict[int, float | None]:
        """Busy worker -> the estimated cost its cell has left (None: no estimate)."""
        now = time.monotonic()
        return {index: self.pace.left(cell, now - self.started[index])
                for index, (cell, _) in self.busy.items()}

    def start(self, w: WorkerProcess, cell: Cell) -> None:
        self.todo.remove(cell)
        inputs = {role: as_result(self.done[dep]) for role, dep in cell.deps.items()}
        future = w.submit(worker.run_cell, cell, inputs, self.env)
        if self.busy:
            self.shared.add(cell.id)
            self.shared.update(c.id for c, _ in self.busy.values())
        self.busy[w.index] = (cell, future)
        self.started[w.index] = time.monotonic()
        self.progress.started(cell.label, worker=w.index)

    def collect(self, index: int) -> None:
        cell, future = self.busy.pop(index)
        seconds = time.monotonic() - self.started.pop(index)
        error = future.exception()
        if error is None:
            record = future.result()
        elif isinstance(error, BrokenProcessPool):
            w = self.workers[index]
            record = failed_record(cell, f"the worker process running this cell died "
                                         f"({w.death()}); the run went on without it")
            w.replace()
        else:  # raised outside the cell itself, e.g. a result that cannot be pickled
            record = failed_record(cell, f"{type(error).__name__} in the worker: {error}")
        if record.ok:  # a cell that failed early says nothing about the pace of the work
            self.pace.finished(cell, seconds)
        self.record(stamp_alone(record, cell.id not in self.shared), ran=True, worker=index)

    def record(self, record: CellRecord, ran: bool, worker: int | None = None) -> None:
        self.done[record.id] = record
        self.on_done(record)
        self.progress.finished(record.ok, ran=ran, worker=worker)


def dependants(cells: list[Cell]) -> dict[str, set[str]]:
    """For each cell, every cell that needs it, directly or through others."""
    direct: dict[str, set[str]] = {c.id: set() for c in cells}
    for cell in cells:
        for dep in cell.deps.values():
            direct.setdefault(dep, set()).add(cell.id)
    result: dict[str, set[str]] = {}
    for cell in reversed(cells):  # plan order puts dependencies first: dependants are done
        result[cell.id] = set(direct[cell.id])
        for child in direct[cell.id]:
            result[cell.id] |= result.get(child, set())
    return result
