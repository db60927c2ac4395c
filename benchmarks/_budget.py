"""A time budget for a benchmark that must end inside its slot (benchmarks/gpu_pass.py).

Two guards:
- before a piece of work, `fits(estimate_s)`: does it fit in what is left? The caller skips
  what does not, and says so;
- around a piece of work, `hard_stop()`: when the budget runs out mid-way (an estimate was
  wrong), `OutOfBudget` is raised inside it (SIGALRM, main thread only), so the caller can
  keep what finished and still write it. `reserve_s` is kept back for that writing.

The clock is a parameter so that tests can run the skipping logic on a clock they control;
the hard stop is real time and is armed only with the real clock.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from typing import Callable, Iterator


class OutOfBudget(Exception):
    """The budget ran out inside a `hard_stop` block."""


class Budget:
    def __init__(self, total_s: float, reserve_s: float = 0.0,
                 clock: Callable[[], float] | None = None):
        self.total_s = float(total_s)
        self.reserve_s = float(reserve_s)
        self.real_clock = clock is None
        self.clock = clock or time.perf_counter
        self.start = self.clock()

    def elapsed(self) -> float:
        return self.clock() - self.start

    def remaining(self) -> float:
        """Seconds left for work (the reserve for writing results kept back)."""
        return self.total_s - self.reserve_s - self.elapsed()

    def fits(self, estimate_s: float) -> bool:
        return estimate_s <= self.remaining()

    @contextlib.contextmanager
    def hard_stop(self) -> Iterator[None]:
        """Raise OutOfBudget inside the block once no budget is left (real clock, main thread,
        a platform with SIGALRM; elsewhere only the `fits` checks guard the budget)."""
        if not (self.real_clock and hasattr(signal, "setitimer")
                and threading.current_thread() is threading.main_thread()):
            yield
            return
        left = self.remaining()
        if left <= 0:
            raise OutOfBudget("no budget left")

        def expire(signum, frame):
            raise OutOfBudget(f"the budget of {self.total_s:g} s ran out")

        previous = signal.signal(signal.SIGALRM, expire)
        signal.setitimer(signal.ITIMER_REAL, left)
        try:
            yield
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)


class RoundGuard:
    """Asked before each item of a loop (a round, a cell, a run), says whether to stop: when
    the longest interval between two calls so far, times `margin`, no longer fits. Before
    anything was measured the estimate is `first_s`. As `stop` for
    benchmarks._common.alternate, call it once before the warm-up: the warm-up then counts as
    the first measured interval."""

    def __init__(self, budget: Budget, first_s: float = 0.0, margin: float = 1.25):
        self.budget, self.first_s, self.margin = budget, float(first_s), margin
        self.intervals: list[float] = []
        self.last: float | None = None
        self.stopped = False

    def restart(self) -> None:
        """Start the current interval now (set-up done since the last call does not count)."""
        self.last = self.budget.clock()

    def estimate(self) -> float:
        return max(self.intervals) * self.margin if self.intervals else self.first_s

    def __call__(self) -> bool:
        now = self.budget.clock()
        if self.last is not None:
            self.intervals.append(now - self.last)
        self.last = now
        self.stopped = not self.budget.fits(self.estimate())
        return self.stopped
