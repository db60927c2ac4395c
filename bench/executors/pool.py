"""Worker processes of the parallel local executor, as seen from the driver.

Each `WorkerProcess` is a `concurrent.futures.ProcessPoolExecutor` with one process. One
pool of N processes would do the scheduling for us, but when one of its processes dies it
marks every cell in flight as broken, and cannot say which cell killed it. With one pool per
worker, a death breaks exactly one future: that cell fails with the reason, a fresh process
takes the worker's place, and the other cells run on.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager

from bench.executors import worker
from bench.interrupts import held_back

STOP_GRACE_SECONDS = 10.0  # how long a stopped worker may take to unwind its cell


class WorkerProcess:
    """One worker process, started on first use and again after it dies."""

    def __init__(self, index: int):
        self.index = index
        self.pool: ProcessPoolExecutor | None = None
        self.processes: list = []  # multiprocessing.Process objects this worker has had

    def submit(self, fn, *args) -> Future:
        if self.pool is not None and getattr(self.pool, "_broken", False):
            self.replace()  # it died between tasks (after its warm-up, say): start afresh
        if self.pool is None:
            self.pool = ProcessPoolExecutor(
                max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                initializer=worker.init_worker, initargs=(os.getpid(),))
        # A Ctrl-C or SIGTERM during the start takes effect once the process is recorded
        # (stop() needs it), and the process starts with SIGINT blocked.
        with held_back(), _children_start_with_sigint_blocked():
            try:
                return self.pool.submit(fn, *args)  # starts the process if there is none yet
            finally:
                self._remember_processes()

    def warm_up(self) -> None:
        """Start the process now, so that its start-up overlaps other work."""
        self.submit(worker.warm_up)

    def _remember_processes(self) -> None:
        # Private, but the only place the Process objects live; we need them for the exit
        # code of a dead worker and to stop a live one (Python 3.14 adds terminate_workers).
        for proc in (getattr(self.pool, "_processes", None) or {}).values():
            if proc not in self.processes:
                self.processes.append(proc)

    def death(self) -> str:
        """Why this worker's process ended, for the failed cell's reason."""
        proc = self.processes[-1] if self.processes else None
        if proc is None:
            return "its exit code is unknown"
        code = _exit_code(proc, STOP_GRACE_SECONDS)
        if code is None:
            return "its exit code is unknown"
        if code < 0:
            name = signal.Signals(-code).name if -code in signal.valid_signals() else str(-code)
            hint = " (the kernel's OOM killer sends SIGKILL)" if name == "SIGKILL" else ""
            return f"killed by {name}{hint}"
        return f"exit code {code}"

    def replace(self) -> None:
        """Drop a broken pool: the next submit starts a fresh process."""
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
        self.pool = None

    def shutdown(self) -> None:
        """At the end of a run: the idle process exits."""
        if self.pool is not None:
            self.pool.shutdown(wait=True)
        self.pool = None

    def stop(self) -> None:
        """On Ctrl-C or SIGTERM: SIGTERM (the cell unwinds), then SIGKILL after a grace period."""
        live = [p for p in self.processes if p.is_alive()]
        for proc in live:
            proc.terminate()
        for proc in live:  # the exit code, not is_alive(): see _exit_code
            if _exit_code(proc, STOP_GRACE_SECONDS) is None:
                proc.kill()
                _exit_code(proc, STOP_GRACE_SECONDS)
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)
        self.pool = None


def _exit_code(proc, timeout: float) -> int | None:
    """The dead process's exit code, waiting up to `timeout` seconds for it.

    The pool's own manager thread reaps the same process (it joins its workers once broken).
    When it wins the race, our `join` sees ECHILD and returns before the code is stored, so
    one join is not enough: poll until the reaping thread has stored it.
    """
    deadline = time.monotonic() + timeout
    while True:
        proc.join(timeout=0.05)
        code = proc.exitcode
        if code is not None or time.monotonic() >= deadline:
            return code


@contextmanager
def _children_start_with_sigint_blocked():
    """Processes started in this block start with SIGINT blocked, from their first instruction.

    A Ctrl-C in a terminal reaches the whole process group. A worker still importing (before
    its initializer could ignore SIGINT) would die of it with a traceback; with SIGINT blocked
    (the signal mask is inherited across fork and exec) the signal waits, pending, until
    `worker.init_worker` ignores SIGINT and unblocks it, which discards it: stopping is the
    driver's decision. The driver only blocks SIGINT here, and never sets it to SIG_IGN: POSIX
    discards a pending signal whose action becomes SIG_IGN, so a Ctrl-C that landed in such a
    window would be lost. A blocked one is delivered to the driver's handler when unblocked.
    """
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
