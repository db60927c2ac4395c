"""Which ready cell an idle worker of the parallel local executor starts next.

Cells that others wait for go first (the feature extractor every GAN needs, the trainings),
the most waited-for first, then plan order: they unlock work. Among cells that nothing waits
for, when every ready and running cell has a cost estimate (bench.executors.estimates: every
kind has one, from earlier runs or a FLOP model), the work is split between the workers so
that their estimated finish times are as even as possible, and the idle worker starts the
largest cell of its share. The split is made again at every start, from what the
busy workers have left, so an estimate that was off is corrected as the run goes. Without
estimates: plan order.

Why not longest-first alone (LPT): with a few cells of similar cost it ends with one worker
computing a whole cell alone. gan-digits' nine GAN cells on two workers (DCGAN ~145 s,
SNGAN ~151 s, WGAN-GP ~193 s each, side by side): LPT finishes after 785 s, the even split
({3 WGAN-GP, 1 SNGAN} and {2 SNGAN, 3 DCGAN}) after 737 s.

The order changes no number: cells are pure functions of their configs.
"""

from __future__ import annotations

from typing import Callable, Sequence

from bench.executors.estimates import model_seconds
from bench.suite.plan import Cell

# The parts of a sharded cell that cannot be split (its model checks: at most CHECK_SAMPLE
# examples, a fixed number of passes) start before the shards, whatever the estimates say.
# The attack's cost is the uncertain one (AutoAttack is priced as if every example reached
# Square; on an undefended model most fall at the first steps, ~1,000x cheaper), so an
# estimate can rank the checks last, and an indivisible part started last is the run's tail
# while shards fill in around one started first (shard_wall at 1,024 images: checks last,
# 0.755x of the unsharded wall).
INDIVISIBLE_FIRST = frozenset({"robustness-checks"})

# Exchanges cost O(cells^2) each: beyond this many ready cells, longest-first alone (its
# leftover imbalance is at most one cell, small against so much work).
MAX_EXCHANGE_CELLS = 64

Cost = Callable[[Cell], "float | None"]  # a cell's estimated seconds (None: no estimate)


class Pace:
    """How long cells really take against their estimates, by cell kind (an estimate that is
    off is off for a kind: a FLOP model that suits trainings more than attacks, a loaded
    machine), from the cells finished so far; a kind with none finished yet goes by all."""

    def __init__(self, cost: Cost = model_seconds) -> None:
        self.cost_of = cost
        self.seconds: dict[str, float] = {}  # kind -> seconds its finished cells took
        self.estimated: dict[str, float] = {}  # kind -> what they were estimated to take

    def finished(self, cell: Cell, seconds: float) -> None:
        estimate = self.cost_of(cell)
        if estimate is not None:
            self.seconds[cell.kind] = self.seconds.get(cell.kind, 0.0) + seconds
            self.estimated[cell.kind] = self.estimated.get(cell.kind, 0.0) + estimate

    def ratio(self, kind: str) -> float:
        """Seconds per estimated second for `kind` (1 before anything finished)."""
        seconds, estimated = self.seconds.get(kind, 0.0), self.estimated.get(kind, 0.0)
        if seconds <= 0 or estimated <= 0:
            seconds, estimated = sum(self.seconds.values()), sum(self.estimated.values())
        return seconds / estimated if seconds > 0 and estimated > 0 else 1.0

    def predicted(self, cell: Cell) -> float | None:
        """The seconds `cell` will take, its estimate corrected by the run so far."""
        estimate = self.cost_of(cell)
        return None if estimate is None else estimate * self.ratio(cell.kind)

    def left(self, cell: Cell, elapsed: float) -> float | None:
        """The seconds a cell running for `elapsed` seconds has left (None: unknown)."""
        predicted = self.predicted(cell)
        if predicted is None or not self.seconds:  # before any cell finished: it just started
            return predicted
        return max(0.0, predicted - elapsed)


def pick(ready: Sequence[Cell], waited_for: dict[str, int], idle: int, workers: int,
         running: dict[int, float | None], cost: Cost = model_seconds,
         unlocked: Cost | None = None) -> Cell:
    """The cell worker `idle` starts now, out of `ready` (non-empty, in plan order).

    `waited_for`: how many cells need each cell. `running`: busy worker -> the estimated
    cost its cell has left (None: unknown). Other idle workers count as free. `cost`: the
    estimates (bench.executors.estimates.Estimates: earlier runs, else a FLOP model).
    `unlocked`: the estimated work a cell and every cell that needs it add up to; among the
    cells others wait for, the one that unlocks the most goes first (the longest chain).
    """
    first = waited_first(ready, waited_for, unlocked)
    if waited_for.get(first[0].id, 0) or None in running.values():
        return first[0]
    costs = [cost(c) for c in first]
    if None in costs:
        return first[0]
    loads = [running.get(w) or 0.0 for w in range(workers)]
    owner = split(costs, loads)
    mine = [j for j in range(len(first)) if owner[j] == idle]
    if not mine:  # never idle while cells are ready: take the smallest, disturb the rest least
        return first[min(range(len(first)), key=lambda j: costs[j])]
    return first[max(mine, key=lambda j: costs[j])]  # max keeps the first of equals


def waited_first(ready: Sequence[Cell], waited_for: dict[str, int],
                 unlocked: Cost | None) -> list[Cell]:
    """`ready` with the cells others wait for first: the indivisible parts of sharded cells,
    then the most unlocked work first when known for every one of them, else the most
    waited-for; then plan order (the sorts are stable)."""
    waited = [c for c in ready if waited_for.get(c.id, 0)]
    work = {c.id: unlocked(c) for c in waited} if unlocked is not None else {}
    if waited and None not in work.values() and work:
        ordered = sorted(ready, key=lambda c: -work[c.id] if c.id in work else 0.0)
    else:
        ordered = sorted(ready, key=lambda c: -waited_for.get(c.id, 0))
    return sorted(ordered, key=lambda c: not (c.kind in INDIVISIBLE_FIRST
                                              and waited_for.get(c.id, 0)))


def split(costs: Sequence[float], loads: Sequence[float]) -> list[int]:
    """A worker for each job: longest first to the least loaded worker, then exchanges.

    An exchange moves one job, or swaps two, between the most loaded worker and another
    when that lowers the larger of their two loads. It stops when no exchange helps (no
    exchanges beyond MAX_EXCHANGE_CELLS jobs).
    """
    loads = list(loads)
    owner = [0] * len(costs)
    for j in sorted(range(len(costs)), key=lambda j: -costs[j]):
        owner[j] = min(range(len(loads)), key=lambda w: loads[w])
        loads[owner[j]] += costs[j]
    rounds = 4 * len(costs) + 4 if len(costs) <= MAX_EXCHANGE_CELLS else 0
    for _ in range(rounds):  # each exchange lowers the sorted loads; a bound anyway
        exchange = _best_exchange(costs, loads, owner)
        if exchange is None:
            break
        a, b, x, y = exchange
        delta = costs[x] - (costs[y] if y is not None else 0.0)
        owner[x] = b
        if y is not None:
            owner[y] = a
        loads[a] -= delta
        loads[b] += delta
    return owner


def _best_exchange(costs, loads, owner):
    """(from, to, job moved, job moved back or None) that most lowers the pair's max load."""
    a = max(range(len(loads)), key=lambda w: loads[w])
    best, best_peak = None, loads[a]
    for b in range(len(loads)):
        gap = loads[a] - loads[b]
        if b == a or gap <= 0:
            continue
        theirs = [None] + [j for j in range(len(costs)) if owner[j] == b]
        for x in (j for j in range(len(costs)) if owner[j] == a):
            for y in theirs:
                delta = costs[x] - (costs[y] if y is not None else 0.0)
                peak = max(loads[a] - delta, loads[b] + delta)
                if 0 < delta < gap and peak < best_peak - 1e-9:
                    best, best_peak = (a, b, x, y), peak
    return best
