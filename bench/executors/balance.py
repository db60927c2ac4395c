"""Which ready cell an idle worker of the parallel local executor starts next.

Cells that others wait for go first (the feature extractor every GAN needs, the trainings),
the most waited-for first, then plan order: they unlock work. Among cells that nothing waits
for, when every ready and running cell has a cost estimate, the work is split between the
workers so that their estimated finish times are as even as possible, and the idle worker
starts the largest cell of its share. The split is made again at every start, from what the
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

from bench.suite.plan import Cell

# A critic update's share of the cost of a generator step with one critic update: five
# critic updates make a step ~3.5x dearer (benchmarks/gan_step_cost.py), 1 + 4x = 3.5.
CRITIC_SHARE = 0.625
BASE_BATCH = 64  # the batch the GANs' step costs were measured at
# Exchanges cost O(cells^2) each: beyond this many ready cells, longest-first alone (its
# leftover imbalance is at most one cell, small against so much work).
MAX_EXCHANGE_CELLS = 64


def _gan_cost(cell: Cell) -> float:
    from bench.gans import GANS  # the architectures' step costs; the driver has torch already

    config = cell.config
    gan = GANS.get(config.arch)
    n_critic = config.n_critic if config.n_critic is not None else gan.paper.n_critic
    per_step = gan.step_cost * ((1 - CRITIC_SHARE) + CRITIC_SHARE * n_critic)
    return config.steps * per_step * config.batch_size / BASE_BATCH


# Cell kind -> its relative cost (in DCGAN generator steps at batch 64). Kinds not listed
# have no estimate, and their cells run in plan order.
ESTIMATES: dict[str, Callable[[Cell], float]] = {"gan": _gan_cost}


def estimated_cost(cell: Cell) -> float | None:
    estimate = ESTIMATES.get(cell.kind)
    return estimate(cell) if estimate is not None else None


class Pace:
    """Seconds per unit of estimated cost, from the cells with estimates finished so far."""

    def __init__(self) -> None:
        self.seconds = self.cost = 0.0

    def finished(self, cell: Cell, seconds: float) -> None:
        estimate = estimated_cost(cell)
        if estimate is not None:
            self.seconds += seconds
            self.cost += estimate

    def left(self, cell: Cell, elapsed: float) -> float | None:
        """The estimated cost a cell running for `elapsed` seconds has left (None: unknown)."""
        estimate = estimated_cost(cell)
        if estimate is None or self.seconds <= 0:  # before any cell finished: it just started
            return estimate
        return max(0.0, estimate - elapsed * self.cost / self.seconds)


def pick(ready: Sequence[Cell], waited_for: dict[str, int], idle: int, workers: int,
         running: dict[int, float | None]) -> Cell:
    """The cell worker `idle` starts now, out of `ready` (non-empty, in plan order).

    `waited_for`: how many cells need each cell. `running`: busy worker -> the estimated
    cost its cell has left (None: unknown). Other idle workers count as free.
    """
    first = sorted(ready, key=lambda c: -waited_for.get(c.id, 0))  # stable: plan order next
    if waited_for.get(first[0].id, 0) or None in running.values():
        return first[0]
    costs = [estimated_cost(c) for c in first]
    if None in costs:
        return first[0]
    loads = [running.get(w) or 0.0 for w in range(workers)]
    owner = split(costs, loads)
    mine = [j for j in range(len(first)) if owner[j] == idle]
    if not mine:  # never idle while cells are ready: take the smallest, disturb the rest least
        return first[min(range(len(first)), key=lambda j: costs[j])]
    return first[max(mine, key=lambda j: costs[j])]  # max keeps the first of equals


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
