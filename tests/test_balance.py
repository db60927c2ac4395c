"""The parallel executor's choice of the next cell: what others wait for first, then an even
split of the estimated work. Checked on the real plan of suites/gan-digits.toml with a
simulated clock (the cell times of a measured parallel run), so nothing here is timed."""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest

from bench.executors import balance, estimates
from bench.executors.parallel import dependants
from bench.store.run_store import CellRecord, RunStore
from bench.suite.load import load_suite
from bench.suite.plan import plan
from tests.helpers.suites import tiny_digits_suite, write_suite

GAN_DIGITS = Path(__file__).resolve().parents[1] / "suites" / "gan-digits.toml"
# Seconds per cell, side by side on 2 workers (one measured parallel run of gan-digits).
MEASURED = {"extractor": 22.5, "dcgan": 145.0, "wgan-gp": 193.0, "sngan": 151.0}


def seconds(cell) -> float:
    return MEASURED["extractor"] if cell.kind == "extractor" else MEASURED[cell.config.arch]


def simulate(cells, workers: int, choose, seconds=seconds,
             cost=estimates.model_seconds) -> tuple[float, list[tuple[int, str]]]:
    """Run `cells` on a simulated clock where each takes `seconds(cell)`; `choose(ready, idle,
    running)` picks each start; `cost`: the estimates the run's pace follows."""
    clock, todo, done, busy, starts = 0.0, list(cells), set(), {}, []
    pace = balance.Pace(cost)
    while todo or busy:
        for w in range(workers):
            ready = [c for c in todo if all(d in done for d in c.deps.values())]
            if w in busy or not ready:
                continue
            running = {i: pace.left(c, clock - start) for i, (c, start) in busy.items()}
            cell = choose(ready, w, running, pace)
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
    plan_order, _ = simulate(gan_cells, 2, lambda ready, w, running, pace: sorted(
        ready, key=lambda c: -waited[c.id])[0])
    balanced, starts = simulate(gan_cells, 2, lambda ready, w, running, pace: balance.pick(
        ready, waited, w, 2, running, pace.predicted))
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
    trains = [c for c in cells if c.kind == "train"]
    assert balance.pick(cells, waited, 0, 2, {}, cost=lambda c: None) is trains[0]
    evals = [c for c in cells if c.kind == "robustness"]
    assert balance.pick(evals[::-1], waited, 1, 2, {}, cost=lambda c: None) is evals[-1]
    assert balance.pick(evals[::-1], waited, 1, 2, {0: None}) is evals[-1]  # one unknown


def test_a_gan_cells_estimate_follows_its_steps_arch_critic_updates_and_batch(gan_cells):
    by_arch = {c.config.arch: c for c in gan_cells if c.kind == "gan" and c.config.seed == 0}
    dcgan, wgan = by_arch["dcgan"], by_arch["wgan-gp"]
    step = estimates.GAN_STEP_SECONDS
    assert estimates.model_seconds(dcgan) == pytest.approx(2500.0 * step)  # n_critic 1, batch 64
    assert estimates.model_seconds(wgan) == pytest.approx(2500.0 * 1.4 * step)
    paper = wgan.config.model_copy(update={"n_critic": None, "batch_size": 128, "steps": 100})
    cell = type(wgan)(kind="gan", config=paper, deps=wgan.deps, label=wgan.label)
    # The paper's 5 critic updates (~3.5x a step with one) and twice the batch.
    assert estimates.model_seconds(cell) == pytest.approx(100 * 1.4 * 3.5 * 2 * step)


# -- every cell kind has an estimate ------------------------------------------------------------

QUICKSTART = Path(__file__).resolve().parents[1] / "suites" / "quickstart.toml"
THROUGHPUT = Path(__file__).resolve().parents[1] / "suites" / "throughput.toml"


@pytest.fixture(scope="module")
def mixed_cells():
    """quickstart: trainings (standard and FGSM-RS), FGSM, PGD-10, AutoAttack, a DCGAN."""
    return plan(load_suite(QUICKSTART))


def replaced(cell, **changes):
    return type(cell)(kind=cell.kind, config=cell.config.model_copy(update=changes),
                      deps=cell.deps, label=cell.label)


def test_every_kind_of_the_shipped_suites_has_a_model_estimate(mixed_cells):
    cells = mixed_cells + plan(load_suite(THROUGHPUT))
    assert {c.kind for c in cells} == {"train", "robustness", "extractor", "gan", "throughput"}
    for cell in cells:
        assert estimates.model_seconds(cell) > 0, cell.label


def test_the_flop_model_grows_with_the_work(mixed_cells):
    est = estimates.model_seconds
    by_label = {c.label: c for c in mixed_cells}
    train, fgsm = by_label["train cnn seed=0"], by_label["fgsm cnn seed=0"]
    pgd, aa = by_label["pgd cnn seed=0"], by_label["autoattack cnn-fgsm seed=0"]
    assert est(replaced(train, train=train.config.train.model_copy(update={"epochs": 20}))) \
        == pytest.approx(2 * est(train))
    fgsm_rs = by_label["train cnn-fgsm seed=0"]  # two passes of forward and backward per step
    assert est(fgsm_rs) / fgsm_rs.config.train.epochs == pytest.approx(
        2 * est(train) / train.config.train.epochs)
    assert est(fgsm) < est(pgd)  # one gradient for every ε, against 10 per ε
    # Per example: AutoAttack (100 examples) is far dearer than PGD-10 (every test image).
    assert est(aa) / 100 > 20 * est(pgd) / estimates.split_size(pgd.config.dataset, "test")
    # A robustness cell's estimate scales with the examples it evaluates: a cell over a slice
    # (a shard) costs its share.
    assert est(replaced(pgd, limit=45)) == pytest.approx(est(pgd) * 45 / 450)
    assert est(replaced(aa, limit=50)) == pytest.approx(est(aa) / 2)


def journal_run(results, suite: str, run: str, timed: list) -> None:
    """An earlier run's journal: each (cell, seconds) of `timed` finished ok in that time."""
    store = RunStore(results / suite / run)
    for cell, seconds in timed:
        store.write_cell(CellRecord(id=cell.id, kind=cell.kind, label=cell.label,
                                    config=cell.config.as_dict(), deps=cell.deps, status="ok",
                                    seconds=seconds))


def test_earlier_runs_in_the_results_folder_are_used_when_present(mixed_cells, tmp_path):
    by_label = {c.label: c for c in mixed_cells}
    pgd0, pgd1, pgd2 = (by_label[f"pgd cnn seed={s}"] for s in range(3))
    train0, gan0 = by_label["train cnn seed=0"], by_label["gan dcgan seed=0"]
    results = tmp_path / "results"
    journal_run(results, "quickstart", "20250101-000000", [(pgd0, 40.0), (train0, 7.0)])
    journal_run(results, "other", "20250102-000000", [(pgd0, 44.0)])  # the same cell elsewhere
    est = estimates.Estimates(mixed_cells, estimates.History.read(results))
    assert est(pgd0) == pytest.approx(42.0)  # the same cell: its median
    assert est(pgd1) == pytest.approx(42.0)  # another seed: the same work
    # On a slice of a fifth of the examples (a shard): a fifth of the time.
    assert est(replaced(pgd2, limit=90)) == pytest.approx(42.0 / 5)
    assert est(by_label["train cnn seed=2"]) == pytest.approx(7.0)
    assert est(gan0) == pytest.approx(estimates.model_seconds(gan0))  # not in any journal
    assert estimates.Estimates(mixed_cells, estimates.History()).measured(pgd1) is None


def lpt(ready, waited, cost):
    """Longest-first (LPT), after what others wait for: the baseline the split must beat."""
    return sorted(ready, key=lambda c: (-waited[c.id], -(cost(c) or 0.0)))[0]


@pytest.mark.parametrize("off", [
    {}, {"train": 2.0, "robustness": 0.5}, {"gan": 2.5, "extractor": 0.3},
    {"robustness": 3.0, "train": 0.7, "gan": 0.8},
], ids=["exact", "trainings-slow", "gans-slow", "attacks-slow"])
def test_a_mixed_suite_is_split_no_worse_than_longest_first(mixed_cells, off):
    """quickstart on 2 and 3 workers, on a simulated clock where each kind really takes
    `off[kind]` times its estimate (the FLOP model is off, by kind): the even split, corrected
    by the run's pace, finishes no later than longest-first with the same estimates."""
    below = dependants(mixed_cells)
    waited = {k: len(v) for k, v in below.items()}
    by_id = {c.id: c for c in mixed_cells}
    cost = estimates.Estimates(mixed_cells)

    def true_seconds(cell):
        return cost(cell) * off.get(cell.kind, 1.0)

    for workers in (2, 3):
        def even_split(ready, w, running, pace, workers=workers):
            def unlocked(cell):
                return sum(pace.predicted(by_id[i]) for i in {cell.id} | below[cell.id])

            return balance.pick(ready, waited, w, workers, running, pace.predicted, unlocked)

        even, _ = simulate(mixed_cells, workers, even_split, true_seconds, cost)
        longest, _ = simulate(mixed_cells, workers,
                              lambda ready, w, running, pace: lpt(ready, waited, pace.predicted),
                              true_seconds, cost)
        assert even <= longest + 1e-6, (workers, even, longest)


@pytest.mark.parametrize("arch, shape", [("small-cnn", (1, 8, 8)), ("small-cnn", (3, 32, 32)),
                                         ("lenet", (1, 28, 28)), ("resnet18", (3, 32, 32))])
def test_the_estimates_flop_count_equals_torchs_flop_counter(arch, shape):
    """The estimates count FLOPs with forward hooks (milliseconds), not FlopCounterMode (a
    second of set-up in the driver): the same count, two per multiply-add."""
    import torch

    from bench.models import MODELS
    from bench.throughput.flops import count_flops

    model = MODELS.get(arch)(shape[0], estimates.NUM_CLASSES, shape[1:]).eval()
    x = torch.zeros(1, *shape)
    with torch.no_grad():
        assert estimates.arch_flops(arch, shape) == count_flops(lambda: model(x))


def sharded_cells(tmp_path, shards: str):
    text = tiny_digits_suite(seeds=(0,), pgd=False, limit=400).replace(
        "limit = 400", f"limit = 400\nbatch_size = 50\n{shards}")
    return plan(load_suite(write_suite(tmp_path, text)))


def test_sample_shards_are_priced_by_their_examples_and_from_whole_cells(tmp_path):
    """A shard does a whole cell's work on its slice: the FLOP model and earlier unsharded runs
    price it by its examples; the cell that merges the shards costs only the merge."""
    unsharded = {c.kind: c for c in sharded_cells(tmp_path / "a", "")}
    train, whole = unsharded["train"], unsharded["robustness"]
    cells = sharded_cells(tmp_path / "b", "shard_size = 100")
    shards = [c for c in cells if c.kind == "robustness-shard"]
    merge = next(c for c in cells if c.kind == "robustness")
    assert merge.id == whole.id and len(shards) == 4
    attack = estimates.model_seconds(replaced(whole, model_checks=False))
    for shard in shards:
        assert estimates.model_seconds(shard) == pytest.approx(attack / 4)
    assert estimates.model_seconds(merge) == estimates.MERGE_SECONDS
    (checks,) = [c for c in cells if c.kind == "robustness-checks"]  # beside the shards
    assert estimates.model_seconds(checks) + attack == pytest.approx(
        estimates.model_seconds(whole))  # the unsharded cell runs its checks itself
    results = tmp_path / "results"
    journal_run(results, "tiny", "20250101-000000", [(train, 5.0), (whole, 80.0)])  # unsharded
    est = estimates.Estimates(cells, estimates.History.read(results))
    assert [est(s) for s in shards] == pytest.approx([20.0] * 4)
    assert est(merge) == estimates.MERGE_SECONDS  # not the whole cell's 80 s
    # ...and a sharded run's shards price a later unsharded cell, its merge time ignored.
    journal_run(results, "tiny", "20250102-000000",
                [(train, 5.0)] + [(s, 21.0) for s in shards] + [(merge, 0.5)])
    est = estimates.Estimates([train, whole], estimates.History.read(results))
    # The same cell id: the unsharded run's 80 s alone, never the merge's 0.5 s.
    assert est(whole) == pytest.approx(80.0)
    # The same work per example (a subset): the whole cell and the four shards, per example.
    subset = replaced(whole, limit=200)
    est = estimates.Estimates([train, subset], estimates.History.read(results))
    per_example = statistics.median([80.0 / 400] + [21.0 / 100] * 4)
    assert est(subset) == pytest.approx(per_example * 200)


@pytest.mark.parametrize("rule", [True, False], ids=["checks-first", "by-estimate"])
def test_a_sharded_cells_model_checks_start_before_its_shards_whatever_the_estimates(
        tmp_path, monkeypatch, rule):
    """shard_wall's case: AutoAttack on an undefended model is priced ~1,000x too high (every
    example to Square) and the model checks of a user checkpoint ~50x too low (two FLOPs per
    parameter), so by the estimates the checks go last and the run ends with shards + checks.
    They start first instead: the run ends with the longer of the two."""
    if not rule:
        monkeypatch.setattr(balance, "INDIVISIBLE_FIRST", frozenset())
    cells = sharded_cells(tmp_path, "shard_size = 200")
    kinds = [c.kind for c in cells]
    assert kinds.count("robustness-shard") == 2 and kinds.count("robustness-checks") == 1
    assert kinds.index("robustness-checks") < kinds.index("robustness-shard")  # plan order too
    below = dependants(cells)
    waited = {k: len(v) for k, v in below.items()}
    by_id = {c.id: c for c in cells}
    estimated = {"train": 5.0, "robustness-shard": 6000.0, "robustness-checks": 4.0,
                 "robustness": estimates.MERGE_SECONDS}
    true = {"train": 5.0, "robustness-shard": 30.0, "robustness-checks": 70.0, "robustness": 1.0}

    def choose(ready, w, running, pace):
        def unlocked(cell):
            return sum(pace.predicted(by_id[i]) for i in {cell.id} | below[cell.id])

        return balance.pick(ready, waited, w, 2, running, pace.predicted, unlocked)

    finish, starts = simulate(cells, 2, choose, lambda c: true[c.kind],
                              lambda c: estimated[c.kind])
    labels = [label for _, label in starts]
    if rule:
        assert labels[1].endswith("model checks")  # right after the training, beside a shard
        assert finish == pytest.approx(5.0 + 70.0 + 1.0)
    else:  # what the estimates alone do: the checks after both shards
        assert labels[-2].endswith("model checks")
        assert finish == pytest.approx(5.0 + 30.0 + 70.0 + 1.0)
