"""The side of the parallel local executor that runs inside a worker process.

A worker is started with `spawn` (a fresh interpreter: no copy of the driver's threads or
locks) and runs one cell at a time for the driver. Signals:

- SIGINT is ignored: Ctrl-C in a terminal reaches the whole process group, and it is the
  driver that decides to stop (it then sends SIGTERM to every worker). The driver starts the
  worker with SIGINT blocked (bench.executors.pool), so a Ctrl-C during the worker's imports
  waits, pending; `init_worker` ignores SIGINT, which discards it, and only then unblocks it.
- SIGTERM before `init_worker` (the driver stopping a worker still importing) kills the
  worker quietly, by the default action.
- SIGTERM inside a cell raises KeyboardInterrupt, so the cell unwinds (atomic writes remove
  their temporary files) before the worker exits with 130; between cells it exits at once.
  One that lands while the cell imports a module waits for the import's end.
- If the driver dies (even by SIGKILL), Linux sends the worker SIGTERM (PR_SET_PDEATHSIG):
  no orphan keeps computing a cell that nobody will journal.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

from bench.cells import CellResult, RunEnv
from bench.executors.execute import execute_cell
from bench.interrupts import imports_held_back
from bench.store.run_store import CellRecord
from bench.suite.plan import Cell

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>

# Per worker process, not shared: whether a SIGTERM must unwind a running cell.
_in_cell = False


def init_worker(driver_pid: int) -> None:
    """ProcessPoolExecutor initializer: runs once in each worker before any cell."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # first: discards a Ctrl-C pending since start
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    signal.signal(signal.SIGTERM, _on_sigterm)
    _die_with_parent(driver_pid)


def warm_up() -> None:
    """The first task of a worker: imports what every cell needs before a cell arrives."""
    import torch  # noqa: F401


def run_cell(cell: Cell, inputs: dict[str, CellResult], env: RunEnv) -> CellRecord:
    """The body of every worker task: one cell, its failures recorded by execute_cell."""
    global _in_cell
    _in_cell = True
    try:
        # A SIGTERM that lands in an import comes once the import is over, as in the driver
        # (bench.interrupts.imports_held_back): importlib runs weakref callbacks, and module
        # initialisers run code, that drop a KeyboardInterrupt (found by the slow signal
        # tests: "Exception ignored in ... _get_module_lock.<locals>.cb", the cell went on).
        with imports_held_back():
            return execute_cell(cell, inputs, env)
    except KeyboardInterrupt:  # the driver is stopping the run: the cell has unwound
        os._exit(130)
    finally:
        _in_cell = False


def _on_sigterm(signum, frame) -> None:
    if _in_cell:
        raise KeyboardInterrupt(f"signal {signum}")
    os._exit(130)


def _die_with_parent(driver_pid: int) -> None:
    if not sys.platform.startswith("linux"):
        return  # elsewhere an orphan finishes its cell, then finds the driver gone and exits
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # no prctl in this libc: as on other systems
        return
    if os.getppid() != driver_pid:  # the driver died before prctl took effect
        os._exit(130)
