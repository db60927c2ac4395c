"""Run cells as Ray tasks: in parallel, on one machine or a cluster, with retries.

Each cell is one `@ray.remote` task. A cell that needs another cell's result (an evaluation
needs its trained model) gets that task's ObjectRef as an argument, so Ray starts it as soon
as the dependency finishes: each model is trained once and evaluated by many tasks, and
nothing waits that need not. Records come back to the driver, which alone writes the run
folder (through `on_done`) as each task finishes.

Never hangs: a per-cell request that no node can hold is refused before anything runs
(bench.executors.ray_cluster), and a task that stays unscheduled for `schedule_timeout`
seconds while the cluster should have room for it fails its cell with that reason. Tasks
tell a small actor when they start and end (Ray does not tell the driver), which also
makes the progress display's running count exact.

Timing cells (throughput) run alone: they are held back until no other task of the run is
pending, then submitted one at a time.

Faults: a task whose worker process dies is retried by Ray (`max_retries`); a cell that
still fails is recorded as failed with its reason, and its dependants as dependency
failures; the rest of the suite goes on. Ctrl-C (or SIGTERM) cancels the tasks in flight
(a task that does not stop within CANCEL_GRACE_SECONDS has its worker killed) and, if this
executor started Ray, shuts it down.

Ray is an optional extra, imported only when this executor is used.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Callable

from bench import defaults
from bench.cells import RunEnv
from bench.errors import UserError
from bench.executors.execute import (
    EXCLUSIVE_KINDS,
    as_result,
    dependency_failure,
    execute_cell,
    failed_record,
    stamp_alone,
)
from bench.executors.progress import CellProgress
from bench.executors.ray_cluster import capacity, check_feasible, connect, describe, import_ray
from bench.store import schema as S
from bench.store.run_store import CellRecord
from bench.suite.plan import Cell

WAIT_SECONDS = 1.0  # how often the driver wakes up to notice Ctrl-C / SIGTERM / stuck tasks
CANCEL_GRACE_SECONDS = 10.0  # how long Ctrl-C waits for cancelled tasks to stop


class RayExecutor:
    """Options: `address` comes from `--ray-address` or the suite's `ray_address`; all of
    them can be passed as `run_suite(..., executor_options={...})`.

    address           None starts a local Ray instance for this run (shut down afterwards);
                      "auto" or "HOST:PORT" joins a running cluster. If Ray is already
                      initialised in this process, that session is used as it is.
    num_cpus          CPUs requested per cell; default: the suite's `threads`, the torch thread
                      count every CPU cell runs with (execute_cell sets it, as in a local run).
    num_gpus          GPUs requested per cell when the run's device is CUDA (CPU cells ask none).
    max_retries       retries of a task whose worker died (crash, OOM kill, lost node).
    schedule_timeout  seconds a task may stay unscheduled while the cluster should have room.
    runtime_env       a Ray runtime_env dict for every task (env_vars, working_dir, pip...).
    """

    def __init__(self, address: str | None = None, num_cpus: float | None = None,
                 num_gpus: float = defaults.RAY_NUM_GPUS,
                 max_retries: int = defaults.RAY_MAX_RETRIES,
                 schedule_timeout: float = defaults.RAY_SCHEDULE_TIMEOUT,
                 runtime_env: dict | None = None, workers: int | str | None = None):
        if workers is not None:
            raise UserError("--workers is for the local executor; the ray executor runs as many "
                            "cells at once as the cluster holds (threads CPUs each)")
        self.ray = import_ray()
        if num_cpus is not None and not num_cpus > 0:
            raise UserError(f"ray executor: num_cpus must be > 0, got {num_cpus}")
        if not num_gpus > 0:
            raise UserError(f"ray executor: num_gpus must be > 0, got {num_gpus}")
        if int(max_retries) != max_retries or max_retries < 0:
            raise UserError(f"ray executor: max_retries must be an integer >= 0, got {max_retries}")
        if not schedule_timeout > 0:
            raise UserError(f"ray executor: schedule_timeout must be > 0, got {schedule_timeout}")
        self.address = address
        self.num_cpus, self.num_gpus, self.max_retries = num_cpus, num_gpus, int(max_retries)
        self.schedule_timeout = float(schedule_timeout)
        self.runtime_env = runtime_env
        self.connected, self.started_ray = False, False

    def prepare(self, cells: list[Cell], device: str, threads: int) -> None:
        """Join or start Ray, and refuse a per-cell request that no node can hold."""
        del cells
        if self.connected:
            return
        self.started_ray, self.connected = connect(self.ray, self.address), True
        request = self.request(device, threads)
        why = (f"num_cpus = {self.num_cpus:g}" if self.num_cpus is not None
               else f"[suite] threads = {threads}")
        if "GPU" in request:
            why += f", ray_num_gpus = {self.num_gpus:g} on {device}"
        try:
            check_feasible(self.ray, request, why)
        except UserError:
            self.disconnect()
            raise

    def describe(self) -> dict:
        return {"ray_address": self.address}

    # -- the driver loop -----------------------------------------------------------------
    def run(self, cells: list[Cell], done: dict[str, CellRecord], env: RunEnv,
            on_done: Callable[[CellRecord], None], progress: CellProgress) -> None:
        if all(cell.id in done for cell in cells):
            self.disconnect()
            return  # a resumed run with nothing left to do
        self.prepare(cells, env.device, env.threads)  # if the runner has not
        try:
            _Run(self, cells, done, self._task_env(env), on_done, progress).loop()
        finally:
            self.disconnect()

    def disconnect(self) -> None:
        if self.started_ray:
            self.ray.shutdown()
        self.connected, self.started_ray = False, False

    def request(self, device: str, threads: int) -> dict[str, float]:
        """The resources each cell asks for."""
        request = {"CPU": self.num_cpus if self.num_cpus is not None else float(threads)}
        if device.startswith("cuda"):
            request["GPU"] = self.num_gpus
        return request

    def _task_env(self, env: RunEnv) -> RunEnv:
        # Workers may run in another folder: hand them absolute paths. A task with a GPU
        # sees only its assigned device (CUDA_VISIBLE_DEVICES), as cuda:0. Progress bars
        # stay in the driver: one bar over cells, not one per worker.
        device = "cuda:0" if env.device.startswith("cuda") else env.device
        return dataclasses.replace(env, device=device, progress=False,
                                   cache_dir=env.cache_dir.resolve(),
                                   artifacts_dir=env.artifacts_dir.resolve())

    def task_options(self, cell: Cell, env: RunEnv) -> dict:
        request = self.request(env.device, env.threads)
        options = {"num_cpus": request["CPU"], "num_gpus": request.get("GPU", 0),
                   "max_retries": self.max_retries, "retry_exceptions": False,
                   "name": f"bench {cell.label}"}
        if self.runtime_env is not None:
            options["runtime_env"] = self.runtime_env
        return options


class CellEvents:
    """A Ray actor (no CPU) that each task tells when it starts and ends: Ray tells the driver
    neither, and the driver needs both for the schedule timeout and the running count."""

    def __init__(self):
        self.events: list[tuple[str, str]] = []

    def started(self, cell_id: str) -> None:
        self.events.append(("started", cell_id))

    def ended(self, cell_id: str) -> None:
        self.events.append(("ended", cell_id))

    def drain(self) -> list[tuple[str, str]]:
        events, self.events = self.events, []
        return events


class _Run:
    """One `RayExecutor.run`: submit everything, then journal tasks as they finish."""

    def __init__(self, executor: RayExecutor, cells: list[Cell], done: dict[str, CellRecord],
                 env: RunEnv, on_done: Callable[[CellRecord], None], progress: CellProgress):
        self.ex, self.ray, self.env = executor, executor.ray, env
        self.cells, self.done = cells, dict(done)
        self.on_done, self.progress = on_done, progress
        self.refs: dict[str, object] = {}  # cell id -> ObjectRef of its task
        self.pending: dict[object, Cell] = {}  # ObjectRef -> cell, for tasks not yet journaled
        self.held: list[Cell] = []  # timing cells (and their dependants): one at a time, alone
        self.shared: set[str] = set()  # cells submitted while another task was pending
        self.started: set[str] = set()  # cells whose task has started (told by CellEvents)
        self.running: set[str] = set()  # ... and not ended yet
        self.waiting: dict[str, float] = {}  # cell id -> since when it should have started
        self.request = executor.request(env.device, env.threads)
        self.slots = capacity(self.ray, self.request)
        self.task = self.ray.remote(run_cell_task)
        self.log = self.ray.remote(num_cpus=0)(CellEvents).remote()

    def loop(self) -> None:
        order = {c.id: i for i, c in enumerate(self.cells)}
        try:
            self.submit_all()
            while self.pending or self.held:
                if not self.pending:
                    self.submit_held()
                    continue
                ready, rest = self.ray.wait(list(self.pending), num_returns=1, timeout=WAIT_SECONDS)
                if not ready:  # quiet for a while: the cluster may have grown or shrunk
                    self.slots = capacity(self.ray, self.request)
                elif rest:  # collect everything else that is ready too, in one go
                    ready += self.ray.wait(rest, num_returns=len(rest), timeout=0)[0]
                self.poll_starts()
                for ref in sorted(ready, key=lambda r: order[self.pending[r].id]):
                    if ref in self.pending:  # not already settled as another's dependency
                        self.settle(ref)
                self.fail_unscheduled()
        finally:
            # Still pending only if interrupted (Ctrl-C, SIGTERM, an error in on_done):
            # stop that work. Finished cells are already journaled.
            self.cancel_pending()
            self.ray.kill(self.log)

    def submit_all(self) -> None:
        held_ids: set[str] = set()
        for cell in self.cells:
            if cell.id in self.done:
                continue
            failed = dependency_failure(cell, self.done)
            if failed is not None:  # a resumed run whose dependency failed before
                self.record(failed, ran=False)
            elif cell.kind in EXCLUSIVE_KINDS or held_ids & set(cell.deps.values()):
                self.held.append(cell)
                held_ids.add(cell.id)
            else:
                self.submit(cell)

    def submit_held(self) -> None:
        """Nothing else is pending: the next held cell runs alone."""
        cell = self.held.pop(0)
        failed = dependency_failure(cell, self.done)
        if failed is not None:
            self.record(failed, ran=False)
        else:
            self.submit(cell)

    def submit(self, cell: Cell) -> None:
        args = [self.refs[d] if d in self.refs else self.done[d] for d in cell.deps.values()]
        ref = self.task.options(**self.ex.task_options(cell, self.env)).remote(
            cell, self.env, self.log, *args)
        if self.pending:
            self.shared.add(cell.id)
            self.shared.update(c.id for c in self.pending.values())
        self.refs[cell.id], self.pending[ref] = ref, cell

    def poll_starts(self) -> None:
        """Count cells as running from their task's start to its end, as the tasks tell."""
        for event, cell_id in self.ray.get(self.log.drain.remote()):
            if self.refs.get(cell_id) not in self.pending:
                continue  # settled already (or never ours)
            if event == "started" and cell_id not in self.started:
                self.started.add(cell_id)
                self.running.add(cell_id)
                self.waiting.pop(cell_id, None)
                self.progress.started(self.pending[self.refs[cell_id]].label)
            elif event == "ended" and cell_id in self.running:
                self.running.discard(cell_id)
                self.progress.stopped()

    def fail_unscheduled(self) -> None:
        """Fail the cells that should have started `schedule_timeout` ago and have not.

        A cell "should have started" when its dependencies are done and fewer of this run's
        tasks run than the cluster has room for (plan order decides which cells fill that
        room): so waiting behind this run's own tasks never counts, and a task waiting for
        resources held elsewhere (another job, a lost node) counts from the moment it could
        have run.
        """
        running = len(self.running)
        runnable = [cell for cell in self.pending.values() if cell.id not in self.started
                    and all(d in self.done and self.done[d].ok for d in cell.deps.values())]
        # No room at all (every node that could hold a cell is gone): all of them wait.
        room = self.slots - running if self.slots > 0 else len(runnable)
        expected = {cell.id: cell for cell in runnable[:max(0, room)]}
        now = time.monotonic()
        self.waiting = {i: self.waiting.get(i, now) for i in expected}
        for cell_id, since in list(self.waiting.items()):
            if now - since > self.ex.schedule_timeout:
                self.unscheduled(expected[cell_id])

    def unscheduled(self, cell: Cell) -> None:
        ref = self.refs[cell.id]
        self.ray.cancel(ref, force=False)
        del self.pending[ref], self.waiting[cell.id]
        free, total = self.ray.available_resources(), self.ray.cluster_resources()
        reason = (f"not scheduled within {self.ex.schedule_timeout:g} s (ray_schedule_timeout): "
                  f"it asks for {describe(self.request, self.request)}; the cluster has "
                  f"{describe(free, self.request)} free of {describe(total, self.request)}")
        self.record(failed_record(cell, reason, attempts=0), ran=False)

    def settle(self, ref) -> None:
        cell = self.pending.pop(ref)
        # A finished task's dependencies have finished too: journal them first, so a
        # dependant's failure can name its failed dependency.
        for dep in cell.deps.values():
            if self.refs.get(dep) in self.pending:
                self.settle(self.refs[dep])
        self.waiting.pop(cell.id, None)
        record = stamp_alone(self.fetch(ref, cell), cell.id not in self.shared)
        self.record(record, ran=cell.id in self.running)
        self.running.discard(cell.id)

    def fetch(self, ref, cell: Cell) -> CellRecord:
        ray = self.ray
        try:
            return ray.get(ref)
        except ray.exceptions.RayError as exc:
            # The task itself never raises for a failing cell (execute_cell records that);
            # this is Ray reporting a worker that died on every attempt, a lost node, a
            # cancelled task, or a dependency that failed that way.
            failed = dependency_failure(cell, self.done)
            if failed is not None:
                return failed
            crashed = isinstance(exc, (ray.exceptions.WorkerCrashedError,
                                       ray.exceptions.NodeDiedError))
            attempts = self.ex.max_retries + 1 if crashed else 1
            first_line = (str(exc).strip().splitlines() or [""])[0]
            reason = f"{type(exc).__name__}: {first_line}"
            if crashed:
                reason = f"worker died on each of {attempts} attempt(s): {reason}"
            return failed_record(cell, reason, attempts=attempts,
                                 records={S.ERRORS: [S.row(S.ERRORS, traceback=str(exc))]})

    def record(self, record: CellRecord, ran: bool) -> None:
        self.done[record.id] = record
        self.on_done(record)
        self.progress.finished(record.ok, ran=ran)
        if not record.ok:
            self.fail_dependants(record.id)

    def fail_dependants(self, cell_id: str) -> None:
        """Settle at once the tasks that wait for a failed cell: Ray does not resolve a task
        whose argument belongs to a cancelled task that never ran, and nothing may hang."""
        for ref, cell in list(self.pending.items()):
            if cell_id in cell.deps.values() and ref in self.pending:
                self.ray.cancel(ref, force=False)
                del self.pending[ref]
                self.waiting.pop(cell.id, None)
                self.record(dependency_failure(cell, self.done), ran=False)

    def cancel_pending(self) -> None:
        refs = list(self.pending)
        for ref in refs:
            self.ray.cancel(ref, force=False)
        if refs:  # let cancelled cells unwind (atomic writes clean up their temp files)
            _, stuck = self.ray.wait(refs, num_returns=len(refs), timeout=CANCEL_GRACE_SECONDS)
            # A task still running after the grace period did not take its KeyboardInterrupt
            # (code that swallows one: a module initialiser, say): its worker process is
            # killed, as the local executor's SIGKILL after its grace period.
            for ref in stuck:
                self.ray.cancel(ref, force=True)
        self.pending.clear()


def run_cell_task(cell: Cell, env: RunEnv, log, *dep_records: CellRecord) -> CellRecord:
    """The body of every Ray task; `dep_records` are the results of `cell.deps`, in order.

    It tells the run's CellEvents when it starts and ends. execute_cell sets torch's thread
    count to `env.threads`, exactly as in a local run.
    """
    log.started.remote(cell.id)
    try:
        deps = dict(zip(cell.deps.values(), dep_records))
        failed = dependency_failure(cell, deps)
        if failed is not None:
            return failed
        inputs = {role: as_result(deps[dep]) for role, dep in cell.deps.items()}
        record = execute_cell(cell, inputs, env, attempts=_attempt_number() + 1)
        return dataclasses.replace(record, host=f"{record.host} node {_node_id()[:12]}")
    except KeyboardInterrupt:
        # Cancelled. The interrupt may have landed anywhere, even inside an import, and left
        # a module half-initialised in this process: SystemExit makes Ray retire the worker
        # instead of handing it the next cell (the task stays cancelled, not retried).
        raise SystemExit(130) from None
    finally:
        log.ended.remote(cell.id)


def _node_id() -> str:
    """The Ray node this task runs on (several nodes may share one machine)."""
    import ray

    return str(ray.get_runtime_context().get_node_id())


def _attempt_number() -> int:
    """0 on a task's first try, n on its n-th retry, as Ray counts them.

    Ray has no public API for this inside a task; if its internal one moves, every record
    says 1 attempt rather than failing the cell.
    """
    import ray

    core_worker = getattr(ray._private.worker.global_worker, "core_worker", None)
    get = getattr(core_worker, "get_current_task_attempt_number", None)
    return int(get()) if callable(get) else 0
