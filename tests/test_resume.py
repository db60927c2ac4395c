"""A `bench run` process killed, interrupted, or racing another one on the same run folder.

Each test drives real `python -m bench run` subprocesses (local executor). The kill and
interrupt tests run a suite whose last cell holds until the test releases it
(tests/helpers/held.py): a signal sent once two cells are journaled lands while it runs,
however fast or loaded the machine is. (Signals at every other point of a run, with worker
processes: tests/test_signals.py.)
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.store.run_store import RunStore
from bench.store.schema import CELL_ID
from tests.helpers import held
from tests.helpers.suites import fast_then_slow_suite, write_suite

TOTAL = 4  # train fast, fgsm fast, train slow, fgsm slow
TIMEOUT = 180


def bench_run(suite: Path, results: Path) -> list[str]:
    """The same command every time: a re-run finds the unfinished run and resumes it."""
    return [sys.executable, "-m", "bench", "run", str(suite), "--results-dir", str(results),
            "--no-progress", "--no-report"]


def start(cmd: list[str], log: Path) -> subprocess.Popen:
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    with open(log, "wb") as out:  # a file, not a pipe: nothing blocks while we poll
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env,
                                cwd=log.parent, preexec_fn=held.as_a_foreground_job)


def run_to_end(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd, timeout=TIMEOUT)


def wait_until(condition, proc: subprocess.Popen, log: Path, what: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        if proc.poll() is not None:
            pytest.fail(f"bench run exited ({proc.returncode}) before {what}:\n{log.read_text()}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"timed out waiting for {what}:\n{log.read_text()}")
        time.sleep(0.02)


def run_dirs(results: Path, name: str = "twospeed") -> list[Path]:
    return sorted(p for p in (results / name).glob("*") if p.is_dir())


def journal(results: Path, name: str = "twospeed") -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in results.glob(f"{name}/*/cells/*.json")}


def manifest(run_dir: Path) -> dict:
    return json.loads((run_dir / "manifest.json").read_text())


@pytest.fixture
def suite(tmp_path) -> Path:
    return write_suite(tmp_path, fast_then_slow_suite(slow_epochs=1))  # the lock, not the work


def test_sigkilled_driver_resumes_without_recomputing(tmp_path):
    suite = held.write_held_suite(tmp_path)
    results, log = tmp_path / "results", tmp_path / "first.log"
    cmd = bench_run(suite, results)
    proc = start(cmd, log)
    wait_until(lambda: len(journal(results, "held")) >= 2, proc, log, "two journaled cells")
    proc.kill()  # SIGKILL: no cleanup of any kind
    proc.wait()
    before = journal(results, "held")
    assert len(before) == 2  # the held cell cannot have finished
    (run_dir,) = run_dirs(results, "held")
    assert manifest(run_dir)["status"] == "running"  # the killed driver could not say more

    held.release(tmp_path)
    again = run_to_end(cmd, tmp_path)  # the very same command
    assert again.returncode == 0, again.stdout + again.stderr
    assert run_dirs(results, "held") == [run_dir]  # it resumed the killed run; no new folder
    after = journal(results, "held")
    assert len(after) == held.CELLS
    for name, data in before.items():  # read back, not recomputed: byte for byte
        assert after[name] == data, name

    m = manifest(run_dir)
    assert m["status"] == "complete"
    first, second = m["sessions"]
    assert second["resumed_cells"] == len(before)
    records = RunStore(run_dir).read_cells()
    for name in before:  # and they finished before the second session began
        assert records[name.removesuffix(".json")].finished_utc < second["started_utc"]
    for name in set(after) - set(before):
        assert records[name.removesuffix(".json")].started_utc > second["started_utc"]


def test_second_run_on_same_folder_is_refused_and_first_is_intact(suite, tmp_path):
    results, log = tmp_path / "results", tmp_path / "first.log"
    cmd = bench_run(suite, results) + ["--workers", "1"]  # no worker processes: not the point
    first = start(cmd, log)
    # The manifest is written once the first run holds the lock; freeze it there, so the
    # second run surely meets a live holder (however slowly it imports torch).
    wait_until(lambda: any(results.glob("twospeed/*/manifest.json")), first, log, "the lock")
    os.kill(first.pid, signal.SIGSTOP)
    try:
        (run_dir,) = run_dirs(results)
        second = run_to_end(cmd, tmp_path)
    finally:
        os.kill(first.pid, signal.SIGCONT)
    assert second.returncode == 2
    assert second.stderr.strip() == (
        f"bench: error: {run_dir}: another bench run (pid {first.pid}) is using this run "
        "folder; wait for it to finish or pass --run-id NEW")
    assert second.stdout == ""

    assert first.wait(timeout=TIMEOUT) == 0, log.read_text()
    assert run_dirs(results) == [run_dir]
    m = manifest(run_dir)
    assert m["status"] == "complete" and len(m["sessions"]) == 1
    assert m["counts"] == {"ok": TOTAL, "failed": 0, "total": TOTAL}
    assert len(journal(results)) == TOTAL
    assert len(RunStore(run_dir).read_table("robustness")) == 2 * 2  # models x epsilons


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_interrupt_stops_cleanly_and_keeps_finished_cells(tmp_path, sig):
    """One cell after another in the driver itself (--workers 1)."""
    suite = held.write_held_suite(tmp_path)
    results, log = tmp_path / "results", tmp_path / "run.log"
    proc = start(bench_run(suite, results) + ["--workers", "1"], log)
    wait_until(lambda: len(journal(results, "held")) >= 2, proc, log, "two journaled cells")
    proc.send_signal(sig)
    assert proc.wait(timeout=TIMEOUT) == 130, log.read_text()

    kept = journal(results, "held")
    assert len(kept) == 2  # the held cell cannot have finished
    (run_dir,) = run_dirs(results, "held")
    m = manifest(run_dir)
    assert m["status"] == "interrupted" and m["sessions"][-1]["status"] == "interrupted"
    assert m["counts"] == {"ok": len(kept), "failed": 0, "total": held.CELLS}
    assert sorted(RunStore(run_dir).read_table("cells")[CELL_ID]) == sorted(
        name.removesuffix(".json") for name in kept)
    assert f"interrupted: {len(kept)} cells ok, 0 failed" in log.read_text()
    assert not list(run_dir.rglob("*.tmp"))  # no half-written file left behind
