"""Run cells on this machine: side by side in worker processes, or one by one in-process.

With `workers` > 1 (the default on a CPU with more cores than `threads`), independent cells
run in that many worker processes (bench.executors.parallel). With 1 worker they run in this
process, in plan order: the straightforward path, and what every parallel run must equal.
Needs nothing but bench.
"""

from __future__ import annotations

import os
from typing import Callable

from bench import defaults
from bench.cells import RunEnv
from bench.errors import UserError
from bench.executors.execute import as_result, dependency_failure, execute_cell, stamp_alone
from bench.executors.progress import CellProgress
from bench.store.run_store import CellRecord
from bench.suite.plan import Cell


class LocalExecutor:
    """Options: `workers` ("auto" or a count) from `--workers` or the suite's `workers`."""

    def __init__(self, workers: int | str = defaults.WORKERS):
        if workers != "auto" and (isinstance(workers, bool) or not isinstance(workers, int)
                                  or workers < 1):
            raise UserError(f"local executor: workers must be \"auto\" or an integer >= 1, "
                            f"got {workers!r}")
        self.requested = workers
        self.workers: int | None = None  # settled by prepare()

    def prepare(self, cells: list[Cell], device: str, threads: int) -> None:
        """Settle the worker count for this device and thread count."""
        del cells
        self.workers = (default_workers(device, threads) if self.requested == "auto"
                        else self.requested)

    def describe(self) -> dict:
        return {"workers": self.workers}

    def run(self, cells: list[Cell], done: dict[str, CellRecord], env: RunEnv,
            on_done: Callable[[CellRecord], None], progress: CellProgress) -> None:
        if self.workers is None:  # called without the runner
            self.prepare(cells, env.device, env.threads)
        todo = [c for c in cells if c.id not in done]
        if self.workers > 1 and len(todo) > 1:
            from bench.executors.parallel import ParallelRun

            ParallelRun(cells, done, env, on_done, progress, self.workers).loop()
        else:
            run_in_process(cells, done, env, on_done, progress)


def default_workers(device: str, threads: int) -> int:
    """cores // threads on the CPU, at least 1; 1 on a GPU, which the cells would share."""
    if not device.startswith("cpu"):
        return 1
    return max(1, usable_cores() // threads)


def usable_cores() -> int:
    """The cores this process may run on (a cgroup/taskset limit included where visible)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def run_in_process(cells: list[Cell], done: dict[str, CellRecord], env: RunEnv,
                   on_done: Callable[[CellRecord], None], progress: CellProgress) -> None:
    """One cell after another in this process, in plan order (dependencies first)."""
    done = dict(done)
    for cell in cells:
        if cell.id in done:
            continue
        record = dependency_failure(cell, done)
        if record is None:
            progress.started(cell.label)
            inputs = {role: as_result(done[dep]) for role, dep in cell.deps.items()}
            record = stamp_alone(execute_cell(cell, inputs, env), alone=True)
        done[cell.id] = record
        on_done(record)
        progress.finished(record.ok, ran=record.attempts > 0)
