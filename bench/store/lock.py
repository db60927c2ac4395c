"""One `bench run` per run folder: an exclusive, non-blocking flock on `run.lock`.

flock is released by the kernel when the process dies (even on SIGKILL), so a killed run
never leaves a stale lock behind, and a resumed run can take it at once.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from bench.errors import UserError


class RunLock:
    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / "run.lock"
        self._fh = None

    def acquire(self) -> "RunLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(self.path, "a+")
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "unknown"
            fh.close()
            raise UserError(f"{self.path.parent}: another bench run (pid {holder}) is using this run "
                            "folder; wait for it to finish or pass --run-id NEW") from None
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        self._fh = fh
        return self

    def release(self) -> None:
        if self._fh is not None:
            fcntl.flock(self._fh.fileno(), fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
