"""Run cells as Ray tasks: in parallel, on one machine or a cluster, with retries.

Each cell is one `@ray.remote` task. A cell that needs another cell's result (an evaluation
needs its trained model) gets that task's ObjectRef as an argument, so Ray starts it as soon
as the dependency finishes: each model is trained once and evaluated by many tasks, and
nothing waits that need not. Records come back to the driver, which alone writes the run
folder (through `on_done`) as each task finishes.

Faults: a task whose worker process dies is retried by Ray (`max_retries`); a cell that
still fails is recorded as failed with its reason, and its dependants as dependency
failures; the rest of the suite goes on. Ctrl-C (or SIGTERM) cancels the tasks in flight
and, if this executor started Ray, shuts it down.

Ray is an optional extra, imported only when this executor is used.
"""

from __future__ import annotations

import dataclasses
import signal
import threading
from typing import Callable

from bench.cells import RunEnv
from bench.errors import UserError
from bench.executors.execute import as_result, dependency_failure, execute_cell
from bench.executors.progress import CellProgress
from bench.provenance import utc_now
from bench.store import schema as S
from bench.store.run_store import CellRecord
from bench.suite.plan import Cell

DEFAULT_NUM_GPUS = 1.0  # per cell on a CUDA device
DEFAULT_MAX_RETRIES = 3  # extra attempts for a task whose worker process died
WAIT_SECONDS = 1.0  # how often the driver wakes up to notice Ctrl-C / SIGTERM
CANCEL_GRACE_SECONDS = 10.0  # how long Ctrl-C waits for cancelled tasks to stop


class RayExecutor:
    """Options: `address` comes from `--ray-address` or the suite's `ray_address`; all of
    them can be passed as `run_suite(..., executor_options={...})`.

    address      None starts a local Ray instance for this run (shut down afterwards);
                 "auto" or "HOST:PORT" joins a running cluster. If Ray is already
                 initialised in this process, that session is used as it is.
    num_cpus     CPUs requested per cell; default: the suite's `threads`, the torch thread
                 count every CPU cell runs with (execute_cell sets it, as in a local run).
    num_gpus     GPUs requested per cell when the run's device is CUDA (CPU cells ask none).
    max_retries  retries of a task whose worker died (crash, OOM kill, lost node).
    runtime_env  a Ray runtime_env dict for every task (env_vars, working_dir, pip...).
    """

    def __init__(self, address: str | None = None, num_cpus: float | None = None,
                 num_gpus: float = DEFAULT_NUM_GPUS, max_retries: int = DEFAULT_MAX_RETRIES,
                 runtime_env: dict | None = None):
        self.ray = import_ray()
        if num_cpus is not None and not num_cpus > 0:
            raise UserError(f"ray executor: num_cpus must be > 0, got {num_cpus}")
        if not num_gpus > 0:
            raise UserError(f"ray executor: num_gpus must be > 0, got {num_gpus}")
        if int(max_retries) != max_retries or max_retries < 0:
            raise UserError(f"ray executor: max_retries must be an integer >= 0, got {max_retries}")
        self.address = address
        self.num_cpus, self.num_gpus, self.max_retries = num_cpus, num_gpus, int(max_retries)
        self.runtime_env = runtime_env

    # -- the driver loop -----------------------------------------------------------------
    def run(self, cells: list[Cell], done: dict[str, CellRecord], env: RunEnv,
            on_done: Callable[[CellRecord], None], progress: CellProgress) -> None:
        if all(cell.id in done for cell in cells):
            return  # a resumed run with nothing left to do need not start Ray
        started_ray = self._connect()
        try:
            _Run(self, cells, done, self._task_env(env), on_done, progress).loop()
        finally:
            if started_ray:
                self.ray.shutdown()

    def _connect(self) -> bool:
        """Join or start Ray; True if this call started it (and so must shut it down)."""
        ray = self.ray
        if ray.is_initialized():
            return False
        main = threading.current_thread() is threading.main_thread()
        previous = signal.getsignal(signal.SIGTERM) if main else None
        try:
            ray.init(address=self.address)
        except ConnectionError as exc:
            raise UserError(f"cannot connect to a Ray cluster at {self.address!r}: {exc} "
                            "(start one with `ray start --head`, or leave out --ray-address "
                            "to start a local instance)") from None
        finally:
            if previous is not None:  # None: not settable from Python (set in C, or not main)
                # ray.init replaces the SIGTERM handler with one that exits at once; the
                # runner's handler turns SIGTERM into a clean interrupt instead.
                signal.signal(signal.SIGTERM, previous)
        return True

    def cpus_per_cell(self, env: RunEnv) -> float:
        return self.num_cpus if self.num_cpus is not None else env.threads

    def _task_env(self, env: RunEnv) -> RunEnv:
        # Workers may run in another folder: hand them absolute paths. A task with a GPU
        # sees only its assigned device (CUDA_VISIBLE_DEVICES), as cuda:0. Progress bars
        # stay in the driver: one bar over cells, not one per worker.
        device = "cuda:0" if env.device.startswith("cuda") else env.device
        return dataclasses.replace(env, device=device, progress=False,
                                   cache_dir=env.cache_dir.resolve(),
                                   artifacts_dir=env.artifacts_dir.resolve())

    def task_options(self, cell: Cell, env: RunEnv) -> dict:
        options = {"num_cpus": self.cpus_per_cell(env), "num_gpus": 0, "max_retries": self.max_retries,
                   "retry_exceptions": False, "name": f"bench {cell.label}"}
        if env.device.startswith("cuda"):
            options["num_gpus"] = self.num_gpus
        if self.runtime_env is not None:
            options["runtime_env"] = self.runtime_env
        return options


class _Run:
    """One `RayExecutor.run`: submit everything, then journal tasks as they finish."""

    def __init__(self, executor: RayExecutor, cells: list[Cell], done: dict[str, CellRecord],
                 env: RunEnv, on_done: Callable[[CellRecord], None], progress: CellProgress):
        self.ex, self.ray, self.env = executor, executor.ray, env
        self.cells, self.done = cells, dict(done)
        self.by_id = {c.id: c for c in cells}
        self.on_done, self.progress = on_done, progress
        self.refs: dict[str, object] = {}  # cell id -> ObjectRef of its task
        self.pending: dict[object, Cell] = {}  # ObjectRef -> cell, for tasks not yet journaled
        # The progress bar: Ray does not tell the driver when a task starts, so a cell counts
        # as running once its inputs are ready (Ray may start it), up to as many cells as
        # the cluster has room for; the others wait in `runnable`, in plan order.
        self.runnable: list[str] = []
        self.running: set[str] = set()
        self.slots = self.capacity()
        self.task = self.ray.remote(run_cell_task)

    def loop(self) -> None:
        order = {c.id: i for i, c in enumerate(self.cells)}
        try:
            self.submit_all()
            while self.pending:
                ready, rest = self.ray.wait(list(self.pending), num_returns=1, timeout=WAIT_SECONDS)
                if not ready:  # quiet for a while: the cluster may have grown or shrunk
                    self.slots = self.capacity()
                    self.fill_running()
                elif rest:  # collect everything else that is ready too, in one go
                    ready += self.ray.wait(rest, num_returns=len(rest), timeout=0)[0]
                for ref in sorted(ready, key=lambda r: order[self.pending[r].id]):
                    if ref in self.pending:  # not already settled as another's dependency
                        self.settle(ref)
        finally:
            # Still pending only if interrupted (Ctrl-C, SIGTERM, an error in on_done):
            # stop that work. Finished cells are already journaled.
            self.cancel_pending()

    def submit_all(self) -> None:
        for cell in self.cells:
            if cell.id in self.done:
                continue
            failed = dependency_failure(cell, self.done)
            if failed is not None:  # a resumed run whose dependency failed before
                self.record(failed, ran=False)
                continue
            args = [self.refs[d] if d in self.refs else self.done[d] for d in cell.deps.values()]
            ref = self.task.options(**self.ex.task_options(cell, self.env)).remote(
                cell, self.env, *args)
            self.refs[cell.id], self.pending[ref] = ref, cell
            self.mark_runnable(cell)
        self.fill_running()

    def capacity(self) -> int:
        """How many cells the cluster can run at once, by the resources each one asks for."""
        total = self.ray.cluster_resources()
        slots = total.get("CPU", 0) / self.ex.cpus_per_cell(self.env)
        if self.env.device.startswith("cuda"):
            slots = min(slots, total.get("GPU", 0) / self.ex.num_gpus)
        return max(1, int(slots))

    def mark_runnable(self, cell: Cell) -> None:
        if all(d in self.done and self.done[d].ok for d in cell.deps.values()):
            self.runnable.append(cell.id)

    def fill_running(self) -> None:
        for cell_id in self.runnable:
            if len(self.running) >= self.slots:
                break
            if cell_id not in self.running:
                self.running.add(cell_id)
                self.progress.started(self.by_id[cell_id].label)

    def settle(self, ref) -> None:
        cell = self.pending.pop(ref)
        # A finished task's dependencies have finished too: journal them first, so a
        # dependant's failure can name its failed dependency.
        for dep in cell.deps.values():
            if self.refs.get(dep) in self.pending:
                self.settle(self.refs[dep])
        if cell.id in self.runnable:
            self.runnable.remove(cell.id)
        ran = cell.id in self.running
        self.running.discard(cell.id)
        self.record(self.fetch(ref, cell), ran=ran)
        for other in self.pending.values():
            if cell.id in other.deps.values():
                self.mark_runnable(other)
        self.fill_running()

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
            now = utc_now()
            return CellRecord(id=cell.id, kind=cell.kind, label=cell.label,
                              config=cell.config.as_dict(), deps=cell.deps, status="failed",
                              reason=reason, started_utc=now, finished_utc=now, seconds=None,
                              attempts=attempts,
                              records={S.ERRORS: [S.row(S.ERRORS, traceback=str(exc))]})

    def record(self, record: CellRecord, ran: bool) -> None:
        self.done[record.id] = record
        self.on_done(record)
        self.progress.finished(record.ok, ran=ran)

    def cancel_pending(self) -> None:
        refs = list(self.pending)
        for ref in refs:
            self.ray.cancel(ref, force=False)
        if refs:  # let cancelled cells unwind (atomic writes clean up their temp files)
            self.ray.wait(refs, num_returns=len(refs), timeout=CANCEL_GRACE_SECONDS)
        self.pending.clear()


def run_cell_task(cell: Cell, env: RunEnv, *dep_records: CellRecord) -> CellRecord:
    """The body of every Ray task; `dep_records` are the results of `cell.deps`, in order.

    execute_cell sets torch's thread count to `env.threads`, exactly as in a local run.
    """
    deps = dict(zip(cell.deps.values(), dep_records))
    failed = dependency_failure(cell, deps)
    if failed is not None:
        return failed
    inputs = {role: as_result(deps[dep]) for role, dep in cell.deps.items()}
    return execute_cell(cell, inputs, env, attempts=_attempt_number() + 1)


def _attempt_number() -> int:
    """0 on a task's first try, n on its n-th retry, as Ray counts them.

    Ray has no public API for this inside a task; if its internal one moves, every record
    says 1 attempt rather than failing the cell.
    """
    import ray

    core_worker = getattr(ray._private.worker.global_worker, "core_worker", None)
    get = getattr(core_worker, "get_current_task_attempt_number", None)
    return int(get()) if callable(get) else 0


def import_ray():
    try:
        import ray
    except ImportError:
        raise UserError("the ray executor needs Ray: pip install \"bench[ray]\"") from None
    return ray
