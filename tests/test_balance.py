"""The parallel executor's choice of the next cell: what others wait for first, then an even
split of the estimated work. Checked on the real plan of suites/gan-digits.toml with a
simulated clock (the cell times of a measured parallel run), so nothing here is timed."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.executors import balance
from bench.executors.parallel import dependants
from bench.suite.load import load_suite
from bench.suite.plan import plan
from tests.helpers.suites import tiny_digits_suite, write_suite

GAN_DIGITS = Path(__file__).resolve().parents[1] / "suites" / "gan-digits.toml"
# Seconds per cell, side by side on 2 workers (one measured parallel run of gan-digits).
MEASURED = {"extractor": 22.5, "dcgan": 145.0, "wgan-gp": 193.0, "sngan": 151.0}


def seconds(cell) -> float:
    return MEASURED["extractor"] if cell.kind == "extractor" else MEASURED[cell.config.arch]


def simulate(cells, workers: int, choose) -> tuple[float, list[tuple[int, str]]]:
    """Run `cells` on a simulated clock; `choose(ready, idle, running)` picks each start."""
    clock, todo, done, busy, starts = 0.0, list(cells), set(), {}, []
    pace = balance.Pace()
    while todo or busy:
        for w in range(workers):
            ready = [c for c in todo if all(d in done for d in c.deps.values())]
            if w in busy or not ready:
                continue
            running = {i: pace.left(c, clock - start) for i, (c, start) in busy.items()}
            cell = choose(ready, w, running)
            todo.remove(cell)
            busy[w] = (cell, clock)
            starts.append((w, cell.label))
        w = min(busy, key=lambda i: busy[i][1] + seconds(busy[i][0]))
        cell, start = busy.pop(w)
        clock = start + seconds(cell)
        pace.finished(cell, seconds(cell))
        done.add(cell.id)
    return clock, starts


@pytest.fixture(scope="module")
def gan_cells():
    return plan(load_suite(GAN_DIGITS))


def test_the_even_split_finishes_gan_digits_before_waited_for_then_plan_order(gan_cells):
    waited = {k: len(v) for k, v in dependants(gan_cells).items()}
    plan_order, _ = simulate(gan_cells, 2, lambda ready, w, running: sorted(
        ready, key=lambda c: -waited[c.id])[0])
    balanced, starts = simulate(gan_cells, 2, lambda ready, w, running: balance.pick(
        ready, waited, w, 2, running))
    assert starts[0] == (0, "extractor digits")  # what every GAN waits for, first
    assert plan_order == pytest.approx(807.5)  # the last SNGAN alone for its last ~100 s
    # The best possible: the extractor, then 1467 s of GAN cells split 730 / 737.
    assert 22.5 + 737 <= balanced <= 22.5 + 745
    longest_first = sorted(MEASURED[c.config.arch] for c in gan_cells if c.kind == "gan")[::-1]
    loads = [22.5, 22.5]
    for cost in longest_first:  # LPT: each next-longest cell to the worker free first
        loads[loads.index(min(loads))] += cost
    assert max(loads) == pytest.approx(807.5)  # no better than plan order here


def test_split_evens_the_loads_where_longest_first_does_not():
    costs = [193.0] * 3 + [151.0] * 3 + [145.0] * 3
    owner = balance.split(costs, [0.0, 0.0])
    loads = [sum(c for c, o in zip(costs, owner) if o == w) for w in (0, 1)]
    assert sorted(loads) == [730.0, 737.0]
    # What the busy workers have left counts: a worker 700 behind takes little or nothing.
    owner = balance.split([100.0, 100.0, 50.0], [0.0, 700.0])
    assert owner == [0, 0, 0]
    owner = balance.split([5.0, 4.0, 3.0, 3.0, 3.0], [0.0, 0.0, 0.0])
    loads = [sum(c for c, o in zip([5.0, 4.0, 3.0, 3.0, 3.0], owner) if o == w) for w in range(3)]
    assert sorted(loads) == [5.0, 6.0, 7.0]


def test_many_cells_are_split_longest_first_without_exchanges():
    costs = [float(100 + (7 * j) % 50) for j in range(3 * balance.MAX_EXCHANGE_CELLS)]
    owner = balance.split(costs, [0.0, 0.0, 0.0])
    loads = [sum(c for c, o in zip(costs, owner) if o == w) for w in range(3)]
    assert max(loads) - min(loads) <= max(costs)  # what longest-first guarantees


def test_an_idle_worker_never_waits_while_cells_are_ready(gan_cells):
    ready = [c for c in gan_cells if c.kind == "gan"][:2]
    # The other worker is far behind: this worker's share is every ready cell...
    assert balance.pick(ready, {}, 0, 2, {1: 1e9}) is ready[0]
    # ...and when the split gives it nothing (the other worker is overdue, so looks free and
    # comes first among equals), it still starts a cell: the smallest.
    assert balance.pick(ready[:1], {}, 1, 2, {0: 0.0}) is ready[0]


def test_without_estimates_cells_go_in_plan_order_after_what_others_wait_for(tmp_path):
    cells = plan(load_suite(write_suite(tmp_path, tiny_digits_suite())))
    waited = {k: len(v) for k, v in dependants(cells).items()}
    assert all(balance.estimated_cost(c) is None for c in cells)
    trains = [c for c in cells if c.kind == "train"]
    assert balance.pick(cells, waited, 0, 2, {}) is trains[0]
    evals = [c for c in cells if c.kind == "robustness"]
    assert balance.pick(evals[::-1], waited, 1, 2, {0: None}) is evals[-1]


def test_a_gan_cells_estimate_follows_its_steps_arch_critic_updates_and_batch(gan_cells):
    by_arch = {c.config.arch: c for c in gan_cells if c.kind == "gan" and c.config.seed == 0}
    dcgan, wgan = by_arch["dcgan"], by_arch["wgan-gp"]
    assert balance.estimated_cost(dcgan) == pytest.approx(2500.0)  # n_critic 1, batch 64
    assert balance.estimated_cost(wgan) == pytest.approx(2500.0 * 1.4)
    paper = wgan.config.model_copy(update={"n_critic": None, "batch_size": 128, "steps": 100})
    cell = type(wgan)(kind="gan", config=paper, deps=wgan.deps, label=wgan.label)
    # The paper's 5 critic updates (~3.5x a step with one) and twice the batch.
    assert balance.estimated_cost(cell) == pytest.approx(100 * 1.4 * 3.5 * 2)
