"""The progress display: one bar over cells, and one line per worker with its current cell.

    cells:  41%|████▏     | 9/22 [00:31<00:40, running=2 ok=9 failed=0]
      worker 1: train cnn-fgsm seed=2 (12s)
      worker 2: fgsm cnn seed=1 (3s)

The worker lines exist only when cells run side by side (`show_workers`); the bar's postfix
counts running, finished and failed cells under every executor.
"""

from __future__ import annotations

import sys
import time

from tqdm.auto import tqdm


class CellProgress:
    def __init__(self, total: int, already_ok: int = 0, already_failed: int = 0, enabled: bool = True):
        self.running, self.ok, self.failed = 0, already_ok, already_failed
        self.enabled = enabled
        self.bar = tqdm(total=total, initial=already_ok + already_failed, desc="cells", unit="cell",
                        disable=not enabled, file=sys.stderr, dynamic_ncols=True)
        self.lines: list[tqdm] = []
        self.current: dict[int, tuple[str, float]] = {}  # worker -> (cell label, start time)
        self._refresh()

    def show_workers(self, n: int) -> None:
        """One status line per worker under the bar (cleared when the display closes)."""
        self.lines = [tqdm(total=0, position=i + 1, bar_format="{desc}", leave=False,
                           disable=not self.enabled, file=sys.stderr, dynamic_ncols=True)
                      for i in range(n)]
        self.refresh()

    def started(self, label: str = "", n: int = 1, worker: int | None = None) -> None:
        self.running += n
        if worker is not None:
            self.current[worker] = (label, time.monotonic())
            label = ""  # shown on the worker's line instead
        self._refresh(label)
        self.refresh()

    def stopped(self) -> None:
        """A running cell has ended; `finished(ok, ran=False)` journals it later."""
        self.running -= 1
        self._refresh()

    def finished(self, ok: bool, ran: bool = True, worker: int | None = None) -> None:
        self.running -= 1 if ran else 0
        self.ok += ok
        self.failed += not ok
        self.current.pop(worker, None)
        self.bar.update(1)
        self._refresh()
        self.refresh()

    def refresh(self) -> None:
        """Redraw the worker lines (their elapsed times move on while cells run)."""
        if self.lines:
            self.bar.refresh()  # the bar's own clock too
        now = time.monotonic()
        for i, line in enumerate(self.lines):
            if i in self.current:
                label, since = self.current[i]
                text = f"{label} ({tqdm.format_interval(now - since)})"
            else:
                text = "idle"
            line.set_description_str(f"  worker {i + 1}: {text}", refresh=True)

    def _refresh(self, label: str = "") -> None:
        post = f"running={self.running} ok={self.ok} failed={self.failed}"
        self.bar.set_postfix_str(f"{post} {label}".strip(), refresh=True)

    def close(self) -> None:
        for line in self.lines:
            line.close()
        self.bar.close()
