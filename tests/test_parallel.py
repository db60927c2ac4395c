"""The parallel local executor: cells side by side in worker processes, with the same tables
as the in-process run; dead workers and resume; timing cells alone; the display. (Ctrl-C and
SIGTERM at every point of a parallel run: tests/test_signals.py.)

Runs go through the real worker processes (spawn), on tiny suites of real cells.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from bench.executors.execute import TEST_KILL_ONCE_ENV
from bench.executors.local import LocalExecutor, default_workers
from bench.executors.parallel import dependants
from bench.executors.pool import WorkerProcess
from bench.executors.progress import CellProgress
from bench.runner import run_suite
from bench.store.run_store import RunStore
from bench.suite.load import load_suite
from bench.suite.plan import plan
from tests.helpers.barrier import write_barrier_suite
from tests.helpers.suites import cells_per_tiny_suite, tiny_digits_suite, write_suite
from tests.helpers.tables import assert_same_tables, comparable_tables

TOTAL = cells_per_tiny_suite()
TIMEOUT = 240



def run(suite: Path, out: Path, run_id: str, workers: int, **kw):
    return run_suite(suite, results_dir=out / "results", cache_dir=out / "cache", run_id=run_id,
                     executor="local", executor_options={"workers": workers}, progress=False,
                     report=False, **kw)


def overlaps(a, b) -> bool:
    """Whether two journaled cells ran at the same time. Only ever asserted false: a cell that
    starts after another has finished (the driver waited for it) has later timestamps."""
    return a.started_utc < b.finished_utc and b.started_utc < a.finished_utc


@pytest.fixture(scope="module")
def suite_path(tmp_path_factory) -> Path:
    return write_suite(tmp_path_factory.mktemp("suite"), tiny_digits_suite())


@pytest.fixture(scope="module")
def sequential_run(suite_path, tmp_path_factory) -> Path:
    """The reference: one cell after another, in this process."""
    outcome = run(suite_path, tmp_path_factory.mktemp("seq"), "seq", workers=1)
    assert outcome.status == "complete" and outcome.ok == TOTAL
    return outcome.run_dir


def test_parallel_tables_equal_sequential_tables(sequential_run, suite_path, tmp_path):
    outcome = run(suite_path, tmp_path, "par", workers=2)
    assert outcome.status == "complete" and outcome.ok == TOTAL
    manifest = json.loads((outcome.run_dir / "manifest.json").read_text())
    assert manifest["sessions"][-1]["workers"] == 2
    records = list(RunStore(outcome.run_dir).read_cells().values())
    # Never an evaluation before its own model was trained (that cells do run side by side is
    # test_independent_cells_run_side_by_side).
    by_id = {r.id: r for r in records}
    for r in records:
        for dep in r.deps.values():
            assert by_id[dep].finished_utc <= r.started_utc
    assert_same_tables(comparable_tables(outcome.run_dir), comparable_tables(sequential_run))


def test_independent_cells_run_side_by_side(tmp_path, monkeypatch):
    """Two cells that can only finish together (tests/helpers/barrier.py): both ok."""
    monkeypatch.syspath_prepend(str(tmp_path))  # spawned workers get the driver's sys.path
    outcome = run(write_barrier_suite(tmp_path), tmp_path, "par", workers=2)
    records = RunStore(outcome.run_dir).read_cells().values()
    assert outcome.status == "complete", [r.reason for r in records]
    assert outcome.ok == 2


TINY_GANS = """
[suite]
name = "tinygan"
seeds = [0, 1]
device = "cpu"

[datasets.digits]
kind = "digits"

[gans.dcgan]
arch = "dcgan"
dataset = "digits"
steps = 3
eval_every = 3
num_samples = 40
metrics = ["fid"]

[gans.wgan-gp]
arch = "wgan-gp"
dataset = "digits"
steps = 3
eval_every = 3
num_samples = 40
metrics = ["fid"]
n_critic = 1
"""


def test_gan_cells_split_by_their_estimates_give_the_sequential_tables(tmp_path):
    """The GAN cells go through bench.executors.balance (cost estimates, the pace of the run)."""
    suite = write_suite(tmp_path, TINY_GANS)
    sequential = run(suite, tmp_path, "seq", workers=1)  # one cache: the extractor trains once
    parallel = run(suite, tmp_path, "par", workers=2)
    assert sequential.status == parallel.status == "complete" and parallel.ok == 5
    records = list(RunStore(parallel.run_dir).read_cells().values())
    assert len([r for r in records if r.kind == "gan"]) == 4
    assert_same_tables(comparable_tables(parallel.run_dir), comparable_tables(sequential.run_dir))


def test_dead_worker_fails_its_cell_the_rest_completes_and_resume_redoes_it(
        sequential_run, suite_path, tmp_path, monkeypatch):
    """SIGKILL (what the OOM killer sends) in the worker running `train cnn seed=1`."""
    markers = tmp_path / "markers"
    markers.mkdir()
    cells = plan(load_suite(suite_path))
    for cell in cells:  # spare every cell but one
        if cell.label != "train cnn seed=1":
            (markers / f"{cell.id}.killed").touch()
    monkeypatch.setenv(TEST_KILL_ONCE_ENV, str(markers))  # spawned workers inherit it

    outcome = run(suite_path, tmp_path, "dies", workers=2)
    assert outcome.status == "failed" and outcome.exit_code == 1
    assert (outcome.ok, outcome.failed) == (TOTAL // 2, TOTAL // 2)
    assert len(list(markers.glob("*.killed"))) == TOTAL  # the hook really fired
    by_label = {r.label: r for r in RunStore(outcome.run_dir).read_cells().values()}
    assert by_label["train cnn seed=1"].reason == (
        "the worker process running this cell died (killed by SIGKILL (the kernel's OOM "
        "killer sends SIGKILL)); the run went on without it")
    for label in ("fgsm cnn seed=1", "pgd cnn seed=1"):
        assert by_label[label].reason.startswith(
            "dependency model (train cnn seed=1) failed: the worker process running this cell died")
    before = {p.name: p.read_bytes() for p in (outcome.run_dir / "cells").iterdir()
              if by_label_ok(p)}

    # The same run again: only the three failed cells run (the hook now spares them too).
    again = run(suite_path, tmp_path, "dies", workers=1)  # in this process: cheaper, same tables
    assert again.status == "complete" and again.ok == TOTAL
    after = {p.name: p.read_bytes() for p in (again.run_dir / "cells").iterdir()}
    assert {n: after[n] for n in before} == before  # finished cells read back, not redone
    assert_same_tables(comparable_tables(again.run_dir), comparable_tables(sequential_run))


def by_label_ok(path: Path) -> bool:
    return json.loads(path.read_text())["status"] == "ok"


SEGFAULT_MODULE = '''
import ctypes
import torch


class Segfaults(torch.nn.Module):
    """A model whose forward pass crashes the process, as a broken C extension would."""

    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(64, 10)

    def forward(self, x):
        ctypes.string_at(0)  # reads address 0: SIGSEGV
        return self.fc(x.flatten(1))
'''


def test_segfault_mid_cell_fails_that_cell_only(tmp_path, monkeypatch):
    import torch

    (tmp_path / "segv_models.py").write_text(SEGFAULT_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))  # spawned workers get the driver's sys.path
    torch.save({"fc.weight": torch.zeros(10, 64), "fc.bias": torch.zeros(10)}, tmp_path / "segv.pt")
    text = tiny_digits_suite(seeds=(0,), pgd=False) + """
[models.segv]
factory = "segv_models:Segfaults"
checkpoint = "segv.pt"
dataset = "digits"

[[robustness]]
models = ["segv"]
attack = "fgsm"
epsilons = [0.1]
limit = 50
"""
    outcome = run(write_suite(tmp_path, text), tmp_path, "segv", workers=2)
    by_label = {r.label: r for r in RunStore(outcome.run_dir).read_cells().values()}
    assert outcome.status == "failed" and (outcome.ok, outcome.failed) == (2, 1)
    assert by_label["fgsm segv seed=0"].reason == (
        "the worker process running this cell died (killed by SIGSEGV); the run went on without it")
    assert by_label["fgsm cnn seed=0"].ok and by_label["train cnn seed=0"].ok


def test_timing_cells_run_alone_and_say_so(tmp_path):
    text = tiny_digits_suite(seeds=(0, 1), pgd=False) + """
[[throughput]]
models = ["cnn"]
workloads = ["inference", "train-step"]
batch_sizes = [32]
warmup = 1
repeats = 3
"""
    outcome = run(write_suite(tmp_path, text), tmp_path, "alone", workers=2)
    assert outcome.status == "complete"
    records = list(RunStore(outcome.run_dir).read_cells().values())
    timed = [r for r in records if r.kind == "throughput"]
    assert len(timed) == 2 * 2  # workloads x seeds
    for t in timed:
        assert [row["ran_alone"] for row in t.records["throughput"]] == [True]
        assert not any(overlaps(t, r) for r in records if r.id != t.id)
    assert RunStore(outcome.run_dir).read_table("throughput")["ran_alone"].all()


def test_cells_that_others_wait_for_start_first(tmp_path):
    cells = plan(load_suite(write_suite(tmp_path, tiny_digits_suite())))
    waiting = dependants(cells)
    for cell in cells:
        expected = {c.id for c in cells if cell.id in c.deps.values()}
        assert waiting[cell.id] == expected
    assert sorted(len(waiting[c.id]) for c in cells) == [0, 0, 0, 0, 2, 2]


@pytest.mark.all_cores
def test_default_workers_is_cores_over_threads(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)))
    assert default_workers("cpu", 1) == 8
    assert default_workers("cpu", 3) == 2
    assert default_workers("cpu", 16) == 1
    assert default_workers("cuda:0", 1) == 1
    ex = LocalExecutor()
    ex.prepare([], "cpu", 2)
    assert ex.workers == 4
    ex = LocalExecutor(workers=3)
    ex.prepare([], "cpu", 2)
    assert ex.workers == 3


def test_display_shows_each_worker_and_the_bar(capsys):
    progress = CellProgress(3, enabled=True)
    progress.show_workers(2)
    progress.started("train cnn seed=0", worker=0)
    progress.started("fgsm cnn seed=1", worker=1)
    err = capsys.readouterr().err
    assert "worker 1: train cnn seed=0 (00:00)" in err
    assert "worker 2: fgsm cnn seed=1 (00:00)" in err
    assert "running=2 ok=0 failed=0" in err
    progress.finished(True, worker=0)
    err = capsys.readouterr().err
    assert "worker 1: idle" in err and "1/3" in err and "running=1 ok=1 failed=0" in err
    progress.close()


def test_a_worker_that_dies_between_cells_is_replaced_at_the_next_start():
    """Workers start with the run (warm-up); one may die before its first cell arrives."""
    w = WorkerProcess(0)
    try:
        w.warm_up()
        first = w.processes[-1]
        first.join(timeout=0.01)
        os.kill(first.pid, signal.SIGKILL)
        deadline = time.monotonic() + TIMEOUT
        while not getattr(w.pool, "_broken", False) and time.monotonic() < deadline:
            time.sleep(0.05)  # the pool's manager thread notices the death
        assert w.pool._broken
        assert w.submit(os.getpid).result(timeout=TIMEOUT) != first.pid
    finally:
        w.shutdown()
