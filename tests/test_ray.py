"""The Ray executor on a real local Ray instance: same tables as the local executor, worker
deaths retried, a cell that keeps dying recorded as failed, Ctrl-C cancels in-flight tasks.

One Ray session (2 CPUs) serves the whole module: starting Ray is the slow part.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from bench.cells import RunEnv
from bench.cli import main
from bench.executors.execute import TEST_KILL_ONCE_ENV
from bench.executors.progress import CellProgress
from bench.runner import run_suite
from bench.store.run_store import RunStore
from bench.suite.load import load_suite
from bench.suite.plan import plan
from tests.helpers.suites import (
    cells_per_tiny_suite,
    fast_then_slow_suite,
    tiny_digits_suite,
    write_suite,
)
from tests.helpers.tables import assert_same_tables, comparable_tables

ray = pytest.importorskip("ray")

THREADS = 1  # torch threads of the local reference run = num_cpus of each Ray task
TOTAL = cells_per_tiny_suite()


@pytest.fixture(scope="module")
def suite_path(tmp_path_factory) -> Path:
    return write_suite(tmp_path_factory.mktemp("suite"), tiny_digits_suite())


@pytest.fixture(scope="module")
def local_run(suite_path, tmp_path_factory) -> Path:
    """The reference: the local executor, in-process, with the Ray tasks' thread count."""
    out = tmp_path_factory.mktemp("local")
    threads = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    try:
        outcome = run_suite(suite_path, results_dir=out / "results", cache_dir=out / "cache",
                            run_id="local", executor="local", executor_options={"workers": 1},
                            progress=False, report=False)
    finally:
        torch.set_num_threads(threads)
    assert outcome.status == "complete" and outcome.ok == TOTAL
    return outcome.run_dir


@pytest.fixture(scope="module")
def marker_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("kill-markers")


@pytest.fixture(scope="module")
def ray_session(marker_dir):
    # The test-only kill hook is armed in every worker of this session (a job-level env, so
    # all tests share one warm worker pool); each test decides which cells it spares.
    ray.init(num_cpus=2, include_dashboard=False,
             runtime_env={"env_vars": {TEST_KILL_ONCE_ENV: str(marker_dir)}})
    yield
    ray.shutdown()


@pytest.fixture
def kill_first_attempt(ray_session, marker_dir):
    """`kill_first_attempt(cells, labels)`: workers SIGKILL themselves on the first attempt
    of the cells with these labels; every other cell is spared."""
    def arm(cells, labels: set[str] = frozenset()) -> None:
        for old in marker_dir.glob("*.killed"):
            old.unlink()
        for cell in cells:
            if cell.label not in labels:
                (marker_dir / f"{cell.id}.killed").touch()
    return arm


def test_ray_tables_equal_local_tables(kill_first_attempt, local_run, suite_path, tmp_path):
    kill_first_attempt(plan(load_suite(suite_path)))  # kill nothing
    code = main(["run", str(suite_path), "--executor", "ray", "--results-dir",
                 str(tmp_path / "results"), "--cache-dir", str(tmp_path / "cache"),
                 "--run-id", "ray", "--no-progress", "--no-report"])
    assert code == 0
    run_dir = tmp_path / "results" / "tiny" / "ray"
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["executor"] == "ray"
    # Each model was trained once, in this run's own cache, then evaluated twice.
    assert len(list((tmp_path / "cache" / "models").rglob("*.pt"))) == 2
    assert_same_tables(comparable_tables(run_dir), comparable_tables(local_run))


def test_ray_resumes_from_journal_without_retraining(kill_first_attempt, local_run, suite_path,
                                                    tmp_path):
    """Finished cells are read back: evaluations get the journaled train records (and the
    weights they name) instead of a task's ObjectRef, and nothing is trained again."""
    cells = plan(load_suite(suite_path))
    kill_first_attempt(cells)  # kill nothing
    run_dir = tmp_path / "results" / "tiny" / "resumed"
    (run_dir / "cells").mkdir(parents=True)
    trained = {c.id for c in cells if c.kind == "train"}
    for cell_id in trained:
        shutil.copy(local_run / "cells" / f"{cell_id}.json", run_dir / "cells")
    before = {p.name: p.read_bytes() for p in (run_dir / "cells").iterdir()}

    outcome = run_suite(suite_path, results_dir=tmp_path / "results", cache_dir=tmp_path / "cache",
                        run_id="resumed", executor="ray", progress=False, report=False)
    assert outcome.status == "complete" and outcome.ok == TOTAL
    assert json.loads((run_dir / "manifest.json").read_text())["sessions"][0]["resumed_cells"] == 2
    assert not (tmp_path / "cache" / "models").exists()  # not retrained
    assert {n: (run_dir / "cells" / n).read_bytes() for n in before} == before
    assert_same_tables(comparable_tables(run_dir), comparable_tables(local_run))


def test_killed_worker_is_retried_and_tables_complete(kill_first_attempt, marker_dir, local_run,
                                                      suite_path, tmp_path):
    cells = plan(load_suite(suite_path))
    killed = {"train cnn seed=0"}  # both its evaluations must wait for the retry
    kill_first_attempt(cells, killed)
    outcome = run_suite(suite_path, results_dir=tmp_path / "results", cache_dir=tmp_path / "cache",
                        run_id="faults", executor="ray", progress=False, report=False,
                        executor_options={"max_retries": 2})
    assert outcome.status == "complete" and outcome.ok == TOTAL
    # The hook really fired: the killed cell's first attempt left its marker.
    assert len(list(marker_dir.glob("*.killed"))) == TOTAL

    records = RunStore(outcome.run_dir).read_cells()
    attempts = {r.label: r.attempts for r in records.values()}
    assert attempts == {c.label: 2 if c.label in killed else 1 for c in cells}
    assert_same_tables(comparable_tables(outcome.run_dir, drop=("attempts",)),
                       comparable_tables(local_run, drop=("attempts",)))


def test_cell_that_keeps_dying_fails_with_reason_and_suite_goes_on(kill_first_attempt, local_run,
                                                                    suite_path, tmp_path):
    cells = plan(load_suite(suite_path))
    kill_first_attempt(cells, {"train cnn seed=1"})  # with no retry, one death is final
    outcome = run_suite(suite_path, results_dir=tmp_path / "results", cache_dir=tmp_path / "cache",
                        run_id="dies", executor="ray", progress=False, report=False,
                        executor_options={"max_retries": 0})
    assert outcome.status == "failed" and outcome.exit_code == 1
    assert (outcome.ok, outcome.failed) == (TOTAL // 2, TOTAL // 2)

    by_label = {r.label: r for r in RunStore(outcome.run_dir).read_cells().values()}
    train = by_label["train cnn seed=1"]
    assert not train.ok and train.reason.startswith("worker died on each of 1 attempt(s)")
    assert "WorkerCrashedError" in train.reason
    for label in ("fgsm cnn seed=1", "pgd cnn seed=1"):
        assert by_label[label].reason.startswith("dependency model (train cnn seed=1) failed: "
                                                 "worker died")
    manifest = json.loads((outcome.run_dir / "manifest.json").read_text())
    assert manifest["cells"][train.id]["status"] == "failed"
    assert manifest["cells"][train.id]["reason"] == train.reason

    # The seed that did not fail is complete and identical to the local run.
    ours = comparable_tables(outcome.run_dir)["robustness"]
    ref = comparable_tables(local_run)["robustness"]
    pd.testing.assert_frame_equal(ours.reset_index(drop=True),
                                  ref[ref.seed == 0].reset_index(drop=True), check_exact=True)


def test_interrupt_cancels_in_flight_tasks(kill_first_attempt, tmp_path):
    """Ctrl-C while the driver journals a cell: the executor cancels the tasks in flight (a
    training that would run for minutes), re-raises, and the CPUs come free at once."""
    from bench.executors.ray import RayExecutor

    cells = plan(load_suite(write_suite(tmp_path, fast_then_slow_suite(slow_epochs=2000))))
    kill_first_attempt(cells)  # kill nothing
    env = RunEnv(device="cpu", cache_dir=tmp_path / "cache", artifacts_dir=tmp_path / "artifacts",
                 progress=False)
    journaled = []

    def on_done(record):
        journaled.append(record.label)
        raise KeyboardInterrupt  # as if Ctrl-C arrived while the driver journals a cell

    with pytest.raises(KeyboardInterrupt):
        RayExecutor().run(cells, {}, env, on_done, CellProgress(len(cells), enabled=False))
    assert journaled == ["train fast seed=0"]
    # Ray gives the CPUs back once nothing of ours runs. Polled until then (the deadline only
    # guards a hang): had the slow training not been cancelled, it would have saved its weights.
    deadline = time.monotonic() + 120
    while ray.available_resources().get("CPU", 0) < 2:
        assert time.monotonic() < deadline, ray.available_resources()
        time.sleep(0.1)
    assert len(list((tmp_path / "cache" / "models").rglob("*.pt"))) == 1  # slow never finished
    assert ray.is_initialized()  # a session the executor did not start is left running


class CancelRecorder:
    """Stands in for `ray` in _Run.cancel_pending: tasks in `unwinds` stop at the graceful
    cancel (KeyboardInterrupt), the others swallow it and run on."""

    def __init__(self, unwinds: set[str]):
        self.unwinds, self.calls = unwinds, []

    def cancel(self, ref, force=False):
        self.calls.append((ref, force))

    def wait(self, refs, num_returns, timeout):
        return [r for r in refs if r in self.unwinds], [r for r in refs if r not in self.unwinds]


def test_a_cancelled_task_that_swallows_the_interrupt_has_its_worker_killed():
    """Found in a CI-like run: a cancelled training went on (its KeyboardInterrupt swallowed),
    held a CPU, and the next test waited for it until pytest's timeout. After the grace period
    the task is cancelled with force (its worker killed); one that stopped is left alone.
    (With real Ray: a task looping on `except BaseException: pass` is gone 0.06 s after.)"""
    from bench.executors.ray import _Run

    run = object.__new__(_Run)  # only what cancel_pending uses
    run.ray, run.pending = CancelRecorder(unwinds={"stops"}), {"stops": None, "swallows": None}
    run.cancel_pending()
    assert run.ray.calls == [("stops", False), ("swallows", False), ("swallows", True)]
    assert run.pending == {}


class RecordingProgress(CellProgress):
    def __init__(self, total):
        self.seen_running = []
        super().__init__(total, enabled=False)

    def _refresh(self, label=""):
        self.seen_running.append(self.running)


def test_progress_counts_running_within_cluster_capacity(kill_first_attempt, tmp_path):
    from bench.executors.ray import RayExecutor

    cells = plan(load_suite(write_suite(tmp_path, fast_then_slow_suite(slow_epochs=2))))
    kill_first_attempt(cells)  # kill nothing
    env = RunEnv(device="cpu", cache_dir=tmp_path / "cache", artifacts_dir=tmp_path / "artifacts",
                 progress=False)
    progress, journaled = RecordingProgress(len(cells)), []
    RayExecutor().run(cells, {}, env, journaled.append, progress)
    assert sorted(r.label for r in journaled) == sorted(c.label for c in cells)
    assert all(r.ok for r in journaled), [(r.label, r.reason, r.records) for r in journaled if not r.ok]
    assert (progress.ok, progress.failed, progress.running) == (len(cells), 0, 0)
    # Counted from the tasks' own start and end: never more than the 2 CPUs hold. (Both
    # trainings may or may not overlap, depending on how fast Ray starts its workers.)
    assert 1 <= max(progress.seen_running) <= 2
    assert min(progress.seen_running) == 0


def test_missing_ray_is_a_one_line_user_error(suite_path, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` sees without the extra
    code = main(["run", str(suite_path), "--executor", "ray",
                 "--results-dir", str(tmp_path / "results")])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err == 'bench: error: the ray executor needs Ray: pip install "bench[ray]"'
    assert not (tmp_path / "results").exists()


@pytest.mark.slow  # starts (and stops) a Ray instance of its own: ~20-40 s more
def test_cli_ray_run_starts_own_ray_and_sigterm_stops_it_cleanly(tmp_path, request):
    """`bench run --executor ray` with no address starts a private Ray; SIGTERM mid-run
    cancels the tasks, marks the run interrupted (exit 130) and leaves no Ray process."""
    import subprocess
    import tempfile

    import psutil

    suite = write_suite(tmp_path, fast_then_slow_suite(slow_epochs=2000))
    results, log = tmp_path / "results", tmp_path / "run.log"
    ray_tmp = tempfile.mkdtemp(prefix="rt")  # short: Ray's socket paths must stay < 108 chars
    request.addfinalizer(lambda: shutil.rmtree(ray_tmp, ignore_errors=True))
    env = os.environ | {"RAY_TMPDIR": ray_tmp}
    env.pop("RAY_ADDRESS", None)
    cmd = [sys.executable, "-m", "bench", "run", str(suite), "--executor", "ray",
           "--results-dir", str(results), "--no-progress", "--no-report"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=tmp_path)

    def ray_processes():
        found = []
        for p in psutil.process_iter(["cmdline"]):
            if any(ray_tmp in arg for arg in p.info["cmdline"] or []):
                found.append(p)
        return found

    deadline = time.monotonic() + 240
    while len(list(results.glob("twospeed/*/cells/*.json"))) < 2:
        assert proc.poll() is None, log.read_text()
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.05)
    assert ray_processes()  # its own Ray instance, under RAY_TMPDIR
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=120) == 130, log.read_text()

    (run_dir,) = [p for p in (results / "twospeed").iterdir() if p.is_dir()]
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "interrupted" and manifest["executor"] == "ray"
    assert manifest["counts"]["ok"] == 2
    gone, alive = psutil.wait_procs(ray_processes(), timeout=30)
    assert not alive, [p.info["cmdline"] for p in alive]


def test_task_unscheduled_beyond_the_timeout_fails_its_cell(kill_first_attempt, suite_path,
                                                            tmp_path):
    """Another job holds every CPU of the cluster: each training waits, fails after the
    timeout with the reason, and its evaluations fail as its dependants. Nothing hangs."""
    cells = plan(load_suite(suite_path))
    kill_first_attempt(cells)  # kill nothing

    @ray.remote(num_cpus=2)
    class Hog:
        def ready(self):
            return True

    hog = Hog.remote()
    ray.get(hog.ready.remote())
    try:  # returning at all is the point: pytest-timeout fails a hang
        outcome = run_suite(suite_path, results_dir=tmp_path / "results",
                            cache_dir=tmp_path / "cache", run_id="stuck", executor="ray",
                            progress=False, report=False,
                            executor_options={"schedule_timeout": 2})
    finally:
        ray.kill(hog)
    assert outcome.status == "failed" and (outcome.ok, outcome.failed) == (0, TOTAL)
    by_label = {r.label: r for r in RunStore(outcome.run_dir).read_cells().values()}
    for seed in (0, 1):
        train = by_label[f"train cnn seed={seed}"]
        assert train.reason == ("not scheduled within 2 s (ray_schedule_timeout): it asks for "
                                "CPU=1; the cluster has CPU=0 free of CPU=2")
        assert train.attempts == 0
        assert by_label[f"fgsm cnn seed={seed}"].reason.startswith(
            f"dependency model (train cnn seed={seed}) failed: not scheduled within 2 s")
    # Once the CPUs are free again, the same run resumes and completes.
    again = run_suite(suite_path, results_dir=tmp_path / "results", cache_dir=tmp_path / "cache",
                      run_id="stuck", executor="ray", progress=False, report=False)
    assert again.status == "complete" and again.ok == TOTAL


def test_workers_option_is_refused_by_the_ray_executor(suite_path, tmp_path, capsys):
    code = main(["run", str(suite_path), "--executor", "ray", "--workers", "2",
                 "--results-dir", str(tmp_path / "results")])
    assert code == 2
    assert capsys.readouterr().err.strip() == (
        "bench: error: --workers is for the local executor; the ray executor runs as many "
        "cells at once as the cluster holds (threads CPUs each)")
