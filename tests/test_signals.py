"""Ctrl-C, SIGTERM and a SIGKILLed worker at any point of a parallel `bench run`.

Every run goes through `python -m bench run --workers 2` in its own process group (a shell
job), on a suite whose last cell holds until the test releases it (tests/helpers/held.py), so
the run cannot end before the signal lands, however loaded the machine is. The signal is sent
at a point of the run: an event the test waits for (bench's handlers in place, the manifest
written, a worker process started, a cell journaled, the held cell running), then a delay.
Wherever it lands:

- Ctrl-C (SIGINT to the whole group, as a terminal sends it) and SIGTERM (to the driver
  alone) end the run with exit 130, no traceback, no temporary file, the manifest (if one
  was written) saying `interrupted` with the journal's counts; every process of the group is
  gone; and a resume completes the run, reading back the journaled cells byte for byte.
- SIGKILL of a worker: the run still ends by itself (never hangs), every cell is in the
  journal, ok or failed because its worker died (never lost), and a resume completes it.

The default run tries a dozen points. `pytest tests/test_signals.py -m slow` tries 50
delays spread over the start-up and the run for each signal, every event, and a dozen
SIGKILLs. Below them, an exact test of the window where a worker process starts: a signal
raised at each step inside it is delivered, never dropped.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib._bootstrap
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pydantic
import pydantic_core
import pytest

from bench.interrupts import interrupts_unwrapped, wrapped_interrupt
from bench.runner import run_suite
from tests.helpers import held

TIMEOUT = 240  # seconds; only reached if something hangs, so generous on a loaded machine



def bench_run(suite: Path, results: Path) -> list[str]:
    return [sys.executable, "-m", "bench", "run", str(suite), "--results-dir", str(results),
            "--workers", "2", "--no-progress", "--no-report"]


class Run:
    """One `bench run` in its own process group, in `folder` (its cwd)."""

    def __init__(self, folder: Path):
        self.folder, self.results = folder, folder / "results"
        self.suite = held.write_held_suite(folder)
        self.log = folder / "run.log"
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(bench_run(self.suite, self.results), stdout=out,
                                         stderr=subprocess.STDOUT, cwd=folder,
                                         start_new_session=True,
                                         preexec_fn=held.as_a_foreground_job)
        self.seen: dict[int, psutil.Process] = {}  # every process of the group seen so far

    def group(self) -> list[psutil.Process]:
        """The live processes of the run's group (the driver, its workers, their helpers)."""
        out = []
        for p in psutil.process_iter():
            try:
                if os.getpgid(p.pid) == self.proc.pid and p.status() != psutil.STATUS_ZOMBIE:
                    out.append(p)
            except (ProcessLookupError, psutil.NoSuchProcess):
                continue
        self.seen.update((p.pid, p) for p in out)
        return out

    def workers(self) -> list[psutil.Process]:
        found = []
        for p in self.group():
            try:
                cmd = " ".join(p.cmdline())
            except psutil.NoSuchProcess:
                continue
            if "spawn_main" in cmd and "resource_tracker" not in cmd:
                found.append(p)
        return found

    def handlers_installed(self) -> bool:
        """bench catches SIGINT and SIGTERM (SigCgt in /proc): main() is running."""
        try:
            status = Path(f"/proc/{self.proc.pid}/status").read_text()
        except FileNotFoundError:
            return False
        caught = int(next(line for line in status.splitlines()
                          if line.startswith("SigCgt:")).split()[1], 16)
        return all(caught >> (sig - 1) & 1 for sig in (signal.SIGINT, signal.SIGTERM))

    def wait_for(self, anchor: str) -> None:
        """Poll, without a deadline of its own, until the event named `anchor` happened."""
        events = {
            "started": self.handlers_installed,
            "manifest": lambda: any(self.results.glob(f"{held.SUITE}/*/manifest.json")),
            "workers": lambda: bool(self.workers()),
            "journaled": lambda: bool(held.journal(self.results)),
            "holding": lambda: held.holding(self.folder),
        }
        deadline = time.monotonic() + TIMEOUT  # only a hang guard
        while not events[anchor]():
            self.group()  # remember every process as it appears
            assert self.proc.poll() is None, f"exited before {anchor}:\n{self.log.read_text()}"
            assert time.monotonic() < deadline, f"no {anchor} after {TIMEOUT} s"
            time.sleep(0.005)

    def wait_exit(self) -> int:
        try:
            return self.proc.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            pytest.fail(f"bench run hung after the signal:\n{self.log.read_text()}")

    def assert_every_process_gone(self) -> None:
        """Every process seen in the group, by pid, and the group itself are gone."""
        self.group()
        _, alive = psutil.wait_procs(list(self.seen.values()), timeout=TIMEOUT)
        assert not alive, [(p.pid, p.cmdline()) for p in alive]
        deadline = time.monotonic() + TIMEOUT
        while left := self.group():  # also any started after the last look
            assert time.monotonic() < deadline, [(p.pid, p.cmdline()) for p in left]
            time.sleep(0.05)

    def kill_group(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()


@pytest.fixture
def bench_process(tmp_path, monkeypatch):
    """Start runs in tmp_path; whatever happens, no process of theirs outlives the test.
    The held model's module is importable here too, fresh, for the in-process resume."""
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, held.MODULE, raising=False)
    runs = []

    def start() -> Run:
        runs.append(Run(tmp_path))
        return runs[-1]

    yield start
    for run in runs:
        run.kill_group()
    sys.modules.pop(held.MODULE, None)


def resume_in_process(run: Run, kept: dict[str, bytes], run_dirs: list[Path]) -> None:
    """Release the held cell; the same suite and results folder then complete in this
    process (one worker), reading the journaled cells back as they are."""
    held.release(run.folder)
    outcome = run_suite(run.suite, results_dir=run.results, executor="local",
                        executor_options={"workers": 1}, progress=False, report=False)
    assert outcome.status == "complete" and outcome.ok == held.CELLS, outcome
    if run_dirs:  # the interrupted run is the one resumed: no new folder
        assert [outcome.run_dir] == run_dirs
    after = held.journal(run.results)
    assert len(after) == held.CELLS and {n: after[n] for n in kept} == kept


def run_dirs(results: Path) -> list[Path]:
    return sorted(p.parent for p in results.glob(f"{held.SUITE}/*/manifest.json"))


def assert_interrupted_cleanly(run: Run) -> dict[str, bytes]:
    code = run.wait_exit()
    log = run.log.read_text()
    assert code == 130, log
    assert "Traceback" not in log, log
    run.assert_every_process_gone()
    assert not list(run.results.rglob("*.tmp")), log  # no half-written file behind
    kept = held.journal(run.results)
    statuses = held.journal_status(run.results)
    assert all(s == "ok" for s in statuses.values()), statuses  # no cell failed of it
    for run_dir in run_dirs(run.results):
        manifest = json.loads((run_dir / "manifest.json").read_text())
        assert manifest["status"] == "interrupted", manifest["status"]
        assert manifest["counts"]["ok"] == len(kept) and manifest["counts"]["failed"] == 0
        assert all(manifest["cells"][n.removesuffix(".json")]["status"] == "ok" for n in kept)
    if run_dirs(run.results):
        assert f"interrupted: {len(kept)} cells ok, 0 failed" in log, log
    return kept


def interrupt(bench_process, how: str, anchor: str, delay: float) -> None:
    run = bench_process()
    run.wait_for(anchor)
    time.sleep(delay)  # where the signal lands; nothing below depends on it
    run.group()
    if how == "ctrl-c":
        os.killpg(run.proc.pid, signal.SIGINT)  # as a terminal does: the whole group
    else:
        run.proc.send_signal(signal.SIGTERM)  # as `kill PID` does: the driver alone
    kept = assert_interrupted_cleanly(run)
    resume_in_process(run, kept, run_dirs(run.results))


def kill_a_worker(bench_process, anchor: str, delay: float) -> None:
    run = bench_process()
    run.wait_for(anchor)
    time.sleep(delay)
    if anchor == "holding":
        victim = held.holder_pid(run.folder)  # the worker mid-way through the held cell
    else:
        victim = min(p.pid for p in run.workers())
    os.kill(victim, signal.SIGKILL)
    held.release(run.folder)  # the run can end now: it must, by itself
    code = run.wait_exit()
    log = run.log.read_text()
    assert code in (0, 1), log
    assert "Traceback" not in log, log
    run.assert_every_process_gone()
    statuses = held.journal_status(run.results)
    assert len(statuses) == held.CELLS, (statuses, log)  # no cell lost
    for data in held.journal(run.results).values():
        record = json.loads(data)
        assert record["status"] == "ok" or "died" in record["reason"], record["reason"]
    assert (code == 0) == all(s == "ok" for s in statuses.values())
    if code == 1:  # the dead worker's cell failed: a resume redoes it, and only it
        kept = {n: d for n, d in held.journal(run.results).items()
                if json.loads(d)["status"] == "ok"}
        resume_in_process(run, kept, run_dirs(run.results))


# (signal, event, seconds after it): before and during start-up, workers importing, a cell
# journaled, the held cell running.
DEFAULT_INTERRUPTS = [
    ("ctrl-c", "started", 0.0), ("ctrl-c", "started", 0.5), ("ctrl-c", "manifest", 0.0),
    ("ctrl-c", "workers", 0.0), ("ctrl-c", "workers", 0.3), ("ctrl-c", "journaled", 0.0),
    ("ctrl-c", "holding", 0.0),
    ("sigterm", "started", 0.0), ("sigterm", "workers", 0.0), ("sigterm", "holding", 0.0),
]
DEFAULT_KILLS = [("workers", 0.0), ("holding", 0.0)]

EVENTS = ["started", "manifest", "workers", "journaled", "holding"]
# The slow run's delays: 50 fractions, spread evenly from 0 to 1.1 times the time a run of this
# machine takes from bench's handlers being in place to the held cell running (measured once,
# by `span`), so they cover the start-up and the run however fast or loaded the machine is.
FRACTIONS = [round(1.1 * i / 49, 4) for i in range(50)]
SLOW_INTERRUPTS = [(how, "started", f) for how in ("ctrl-c", "sigterm") for f in FRACTIONS] + [
    (how, event, 0.0) for how in ("ctrl-c", "sigterm") for event in EVENTS[1:]]
SLOW_KILLS = [("workers", f) for f in FRACTIONS[::5]] + [(e, 0.0) for e in ("journaled", "holding")]


def _id(point) -> str:
    return "-".join(str(part) for part in point)


@pytest.fixture(scope="module")
def span(tmp_path_factory) -> float:
    """Seconds from bench's handlers being in place to the held cell running, on this machine
    now: what the slow tests' fractions are fractions of."""
    run = Run(tmp_path_factory.mktemp("span"))
    try:
        run.wait_for("started")
        start = time.monotonic()
        run.wait_for("holding")
        seconds = time.monotonic() - start
        held.release(run.folder)
        assert run.wait_exit() == 0, run.log.read_text()
    finally:
        run.kill_group()
    return seconds


@pytest.mark.parametrize("how, anchor, delay", DEFAULT_INTERRUPTS, ids=map(_id, DEFAULT_INTERRUPTS))
def test_interrupt_anywhere_exits_130_leaves_no_process_and_resumes(bench_process, how, anchor,
                                                                     delay):
    interrupt(bench_process, how, anchor, delay)


@pytest.mark.parametrize("anchor, delay", DEFAULT_KILLS, ids=map(_id, DEFAULT_KILLS))
def test_sigkilled_worker_anywhere_never_loses_a_cell_nor_hangs(bench_process, anchor, delay):
    kill_a_worker(bench_process, anchor, delay)


@pytest.mark.slow
@pytest.mark.parametrize("how, anchor, fraction", SLOW_INTERRUPTS, ids=map(_id, SLOW_INTERRUPTS))
def test_interrupt_at_50_delays(bench_process, span, how, anchor, fraction):
    interrupt(bench_process, how, anchor, fraction * span)


@pytest.mark.slow
@pytest.mark.parametrize("anchor, fraction", SLOW_KILLS, ids=map(_id, SLOW_KILLS))
def test_sigkilled_worker_at_many_points(bench_process, span, anchor, fraction):
    kill_a_worker(bench_process, anchor, fraction * span)


# -- the window where a worker process starts, step by step ------------------------------------

class Injector:
    """Stands in for the `signal` module of bench.executors.pool and bench.interrupts: after
    its call number `at` (of the calls that change handlers or the signal mask), and before and
    after the process pool's submit, it sends `signum` to this process."""

    def __init__(self, signum: int, at: int):
        self.signum, self.at, self.calls = signum, at, 0
        for name in dir(signal):
            if not name.startswith("__"):
                setattr(self, name, getattr(signal, name))
        self.signal = self.step(signal.signal)
        self.pthread_sigmask = self.step(signal.pthread_sigmask)

    def step(self, fn=None):
        def call(*args, **kw):
            out = fn(*args, **kw) if fn is not None else None
            self.calls += 1  # first: the handler may raise as soon as the signal is sent
            if self.calls - 1 == self.at:
                os.kill(os.getpid(), self.signum)
            return out
        return call


def started_here() -> set[int]:
    """Pids of this process's children, multiprocessing's resource tracker left out."""
    out = set()
    for p in psutil.Process().children():
        try:
            if not any("resource_tracker" in arg for arg in p.cmdline()):
                out.add(p.pid)
        except psutil.NoSuchProcess:
            continue
    return out


def start_with_a_signal_at(monkeypatch, signum: int, at: int):
    """WorkerProcess.submit with `signum` raised at step `at` of the start: (steps seen,
    interrupted?, the worker, pids of the processes it started)."""
    from concurrent.futures import ProcessPoolExecutor

    from bench import interrupts
    from bench.executors import pool, worker

    injector = Injector(signum, at)
    real_submit = ProcessPoolExecutor.submit

    def submit(self, *args, **kw):
        injector.step()()
        try:
            return real_submit(self, *args, **kw)
        finally:
            injector.step()()

    w = pool.WorkerProcess(0)
    before = started_here()
    with monkeypatch.context() as m:
        m.setattr(pool, "signal", injector)
        m.setattr(interrupts, "signal", injector)
        m.setattr(ProcessPoolExecutor, "submit", submit)
        interrupted = False
        try:
            w.submit(worker.warm_up)
            for _ in range(100):  # bytecodes, in which a delivered signal's handler runs
                pass
        except KeyboardInterrupt:
            interrupted = True
    started = started_here() - before
    return injector.calls, interrupted, w, started


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_signal_at_any_step_of_a_worker_start_is_delivered_and_the_worker_stopped(
        monkeypatch, signum):
    """Every step where the driver changes handlers or its mask, and around the start itself:
    a signal there raises KeyboardInterrupt once the start is over (it is never dropped, as
    SIG_IGN would drop it), the started process is recorded, so stop() ends it, and the
    handlers and the mask are as they were."""
    from bench.interrupts import raise_interrupt, sigterm_interrupts

    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with sigterm_interrupts():  # as in `bench run`: SIGTERM is an interrupt
            steps, interrupted, w, started = start_with_a_signal_at(monkeypatch, signum, at=-1)
            w.stop()
            assert not interrupted and steps >= 4  # no signal: no interrupt
            assert len(started) == 1 and started == {p.pid for p in w.processes}
            for at in range(steps):
                _, interrupted, w, started = start_with_a_signal_at(monkeypatch, signum, at)
                assert interrupted, f"the signal sent after step {at} of {steps} was lost"
                # A process started (it is not when the signal comes before) is recorded...
                assert started <= {p.pid for p in w.processes}, at
                w.stop()  # ...so that stop() ends it
                assert all(p.exitcode is not None for p in w.processes), at
                assert signal.getsignal(signal.SIGTERM) is raise_interrupt
                assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
                assert signal.SIGINT not in signal.pthread_sigmask(signal.SIG_BLOCK, [])
    finally:
        signal.signal(signal.SIGINT, previous_int)


def signal_sets(pid: int) -> tuple[int, int]:
    """(blocked, ignored) signal masks of a process, from /proc."""
    fields = dict(line.split(":\t") for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                  if line.startswith(("SigBlk", "SigIgn")))
    return int(fields["SigBlk"], 16), int(fields["SigIgn"], 16)


def test_ctrl_c_while_a_worker_imports_waits_and_is_dropped_by_it_quietly(capfd):
    """A worker starts with SIGINT blocked: a Ctrl-C during its imports (before its initializer)
    neither kills it nor prints a traceback; the initializer ignores SIGINT, then unblocks it.
    At every moment SIGINT is blocked or ignored in the worker."""
    from bench.executors import pool, worker

    bit = 1 << (signal.SIGINT - 1)
    w = pool.WorkerProcess(0)
    # As in `bench run`: Python's handler, not an ignored SIGINT the worker would inherit.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        future = w.submit(worker.warm_up)
        (proc,) = w.processes
        blocked, ignored = signal_sets(proc.pid)
        assert blocked & bit or ignored & bit
        sent_while_blocked = bool(blocked & bit and not ignored & bit)  # still importing
        if sent_while_blocked:
            os.kill(proc.pid, signal.SIGINT)
        while not future.done():  # never a moment with SIGINT neither blocked nor ignored
            blocked, ignored = signal_sets(proc.pid)
            assert blocked & bit or ignored & bit, (hex(blocked), hex(ignored))
        future.result()  # it warmed up: alive, not killed by the Ctrl-C
        blocked, ignored = signal_sets(proc.pid)
        assert ignored & bit and not blocked & bit
        os.kill(proc.pid, signal.SIGINT)  # ignored now
        assert w.submit(worker.warm_up).result() is None and proc.is_alive()
    finally:
        w.stop()
        signal.signal(signal.SIGINT, previous)
    err = capfd.readouterr().err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    # The worker imports for a good part of a second; our look comes microseconds after it
    # started. (A worker that had finished its imports by then would not test the case.)
    assert sent_while_blocked, "the worker had already run its initializer"


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_signal_during_an_import_comes_once_the_import_is_done(tmp_path, monkeypatch, signum):
    """torch's C++ set-up aborts the process when an interrupt's exception comes through it
    (found by the slow stress test, SIGTERM during `import torch`): bench imports torch and
    the cells' modules with interrupts held back, and raises them right after."""
    from bench.interrupts import import_held_back, sigterm_interrupts

    (tmp_path / "signals_itself.py").write_text(
        "import os, signal\n"
        f"os.kill(os.getpid(), {int(signum)})\n"
        "for _ in range(1000):  # bytecodes, where a handler would run\n"
        "    pass\n"
        "FINISHED = True\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with sigterm_interrupts(), pytest.raises(KeyboardInterrupt):
            import_held_back("signals_itself")
    finally:
        signal.signal(signal.SIGINT, previous)
    assert sys.modules["signals_itself"].FINISHED  # the import ran to its end, then the signal
    sys.modules.pop("signals_itself")


# A module whose initialiser swallows an interrupt, as numpy.random's did in the slow test
# (a Ctrl-C 0.2 s into `bench run`, lost: the run went on to its end).
SWALLOWS = """
import os, signal
try:
    os.kill(os.getpid(), {signum})
    for _ in range(1000):  # bytecodes, where the handler runs and raises
        pass
except BaseException:
    pass
FINISHED = True
"""

IMPORT_WAYS = {  # every way bench or a library imports a module not loaded yet
    "statement": lambda package: __import__(f"{package}.swallows"),  # `import p.swallows`
    "from-import": lambda package: __import__(package, fromlist=["swallows"]),
    "import_module": lambda package: importlib.import_module(f"{package}.swallows"),
}


@pytest.mark.parametrize("held", [True, False], ids=["held", "not-held"])
@pytest.mark.parametrize("way", IMPORT_WAYS)
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_an_interrupt_inside_an_initialiser_that_swallows_it_comes_after_the_import(
        tmp_path, monkeypatch, signum, way, held):
    """Inside imports_held_back (all of `bench`'s main()), the interrupt is raised once the
    import is over, whichever way the module is imported. Without it (not-held) the module's
    initialiser swallows it: the hazard is real, and this test would see a fix undone."""
    from bench.interrupts import imports_held_back, sigterm_interrupts

    package = f"swallows_{signum}_{way.replace('-', '_')}_{held}"
    (tmp_path / package).mkdir()
    (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / package / "swallows.py").write_text(SWALLOWS.format(signum=int(signum)))
    monkeypatch.syspath_prepend(str(tmp_path))
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    real = importlib._bootstrap._find_and_load
    interrupted = False
    try:
        with sigterm_interrupts(), imports_held_back() if held else contextlib.nullcontext():
            try:
                IMPORT_WAYS[way](package)
            except KeyboardInterrupt:
                interrupted = True
    finally:
        signal.signal(signal.SIGINT, previous)
        for name in [m for m in sys.modules if m.startswith(package)]:
            del sys.modules[name]
    assert interrupted == held
    assert importlib._bootstrap._find_and_load is real  # put back after the block
    assert signal.getsignal(signal.SIGINT) is previous


INSISTS = """
import os, signal
os.kill(os.getpid(), {signum})  # held until the import is over...
for _ in range(1000):
    pass
os.kill(os.getpid(), {signum})  # ...unless a second one comes first: it acts here
for _ in range(1000):
    pass
FINISHED = True
"""


@pytest.mark.parametrize("nested", [False, True], ids=["held", "held-inside-held"])
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_second_interrupt_during_a_held_import_acts_at_once(tmp_path, monkeypatch, signum,
                                                              nested):
    """Holding back must not make an import that hangs unstoppable: the second signal
    interrupts the import where it is, also from inside nested holds (bench's registry
    imports a suite's modules with import_held_back, inside main()'s imports_held_back)."""
    from bench.interrupts import import_held_back, imports_held_back, sigterm_interrupts

    name = f"insists_{int(signum)}_{nested}"
    (tmp_path / f"{name}.py").write_text(INSISTS.format(signum=int(signum)))
    monkeypatch.syspath_prepend(str(tmp_path))
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with sigterm_interrupts(), imports_held_back(), pytest.raises(KeyboardInterrupt):
            import_held_back(name) if nested else importlib.import_module(name)
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, previous)
    assert name not in sys.modules  # it stopped inside the import, before FINISHED


def test_a_handler_a_module_installs_while_imported_held_stays(tmp_path, monkeypatch):
    """Holding back swaps the handlers for the import; putting them back must not undo a
    handler the imported module installed for itself."""
    from bench.interrupts import imports_held_back

    (tmp_path / "installs_a_handler.py").write_text(
        "import signal\n"
        "def on_term(signum, frame):\n"
        "    pass\n"
        "signal.signal(signal.SIGTERM, on_term)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    previous = signal.getsignal(signal.SIGTERM)
    try:
        with imports_held_back():
            import installs_a_handler
        assert signal.getsignal(signal.SIGTERM) is installs_a_handler.on_term
    finally:
        signal.signal(signal.SIGTERM, previous)
        sys.modules.pop("installs_a_handler", None)


def test_a_signal_handled_late_while_the_handlers_go_back_still_puts_them_back(monkeypatch):
    """A signal sent while the main thread blocks SIGINT (a worker's start) reaches another
    thread, and its Python handler runs later, when the main thread next checks: here, just
    as held_back puts the old handlers back. The interrupt comes, and the handlers are back.
    (Seen once under load: SIGTERM's handler stayed held_back's after the block.)"""
    from bench import interrupts

    real_getsignal = signal.getsignal
    ran = []

    class LateSignal:
        """The signal module, but its first getsignal runs SIGINT's Python handler first."""

        def __getattr__(self, name):
            return getattr(signal, name)

        def getsignal(self, signum):
            if not ran:
                ran.append(signum)
                real_getsignal(signal.SIGINT)(signal.SIGINT, None)
            return real_getsignal(signum)

    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with interrupts.sigterm_interrupts():
            with pytest.raises(KeyboardInterrupt):
                with interrupts.held_back():
                    monkeypatch.setattr(interrupts, "signal", LateSignal())
            monkeypatch.undo()
            assert ran
            assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
            assert signal.getsignal(signal.SIGTERM) is interrupts.raise_interrupt
    finally:
        monkeypatch.undo()
        signal.signal(signal.SIGINT, previous_int)


def test_bench_main_holds_interrupts_back_during_imports(monkeypatch):
    """The wiring: bench's main() runs its command with imports_held_back on."""
    import bench.cli

    seen = []
    monkeypatch.setattr(bench.cli, "_dispatch",
                        lambda argv: seen.append(importlib._bootstrap._find_and_load) or 0)
    real = importlib._bootstrap._find_and_load
    assert bench.cli.main(["validate", "x.toml"]) == 0
    assert seen and seen[0] is not real and seen[0].__module__ == "bench.interrupts"
    assert importlib._bootstrap._find_and_load is real


# `python -m` this package: bench's __main__, with an interrupt ending a string exec (as one
# landing in code that dataclasses or pydantic exec) before the run starts, and no string exec
# after it that would hide the bug.
INTERRUPTED_IN_EXEC = """
import runpy

import bench.runner


def resolve_device(requested):
    exec("raise KeyboardInterrupt")


bench.runner.provenance.resolve_device = resolve_device
runpy.run_module("bench", run_name="__main__", alter_sys=True)
"""


def test_an_interrupt_that_ended_a_string_exec_still_exits_130(tmp_path):
    """Found by the slow stress test (SIGTERM early in a run: exit -2 after "bench:
    interrupted"): under `python -m`, CPython turned such an interrupt, caught and reported,
    into death by SIGINT at exit."""
    (tmp_path / "bench_interrupted_in_exec").mkdir()
    (tmp_path / "bench_interrupted_in_exec" / "__main__.py").write_text(INTERRUPTED_IN_EXEC)
    suite = held.write_held_suite(tmp_path)
    done = subprocess.run([sys.executable, "-m", "bench_interrupted_in_exec", "run", str(suite)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=TIMEOUT,
                          preexec_fn=held.as_a_foreground_job)
    assert done.returncode == 130, (done.returncode, done.stdout, done.stderr)
    assert done.stderr.strip() == "bench: interrupted"


# -- a worker's cell: a SIGTERM that lands where Python drops exceptions ----------------------

# A module whose import runs a weakref callback, as importlib does when a module's lock is freed
# (`_get_module_lock.<locals>.cb`); a SIGTERM landing in it: Python prints "Exception ignored
# in" and drops what a callback raises.
DROPS_IN_A_CALLBACK = """
import os, signal, weakref


class Thing:
    pass


def callback(ref):
    os.kill(os.getpid(), signal.SIGTERM)  # the driver stopping the worker, now
    for _ in range(1000):  # bytecodes, where the handler runs and raises
        pass


thing = Thing()
ref = weakref.ref(thing, callback)
del thing  # the callback runs here
"""

# A worker process (its initializer, then a cell whose body imports that module), as the
# parallel executor runs one; `bare` runs the body with the worker's handlers but not through
# run_cell.
WORKER_CELL = """
import os, sys
from bench.executors import worker


def body(cell, inputs, env):
    import drops_in_a_callback
    print("the cell went on", flush=True)


worker.init_worker(os.getppid())
if sys.argv[1] == "run_cell":
    worker.execute_cell = body  # what run_cell runs
    worker.run_cell(None, {}, None)
else:
    worker._in_cell = True
    body(None, {}, None)
print("the cell ended", flush=True)
"""


@pytest.mark.parametrize("way", ["run_cell", "bare"])
def test_a_sigterm_landing_in_a_callback_during_a_cells_import_still_stops_the_worker(
        tmp_path, way):
    """Found by the slow stress test (Ctrl-C 0.92 of the way into a run: exit 130, but a worker
    printed "Exception ignored in: <function _get_module_lock.<locals>.cb>" and a traceback,
    its KeyboardInterrupt dropped; it went on with its cell until the driver killed it 10 s
    later). A worker's cell holds SIGTERM back during imports, as the driver does: the cell
    unwinds once the import is over and the worker exits 130, quietly. `bare` shows the hazard
    is real: without that, the interrupt is lost and the cell goes on."""
    (tmp_path / "drops_in_a_callback.py").write_text(DROPS_IN_A_CALLBACK)
    (tmp_path / "worker_cell.py").write_text(WORKER_CELL)
    done = subprocess.run([sys.executable, "worker_cell.py", way], cwd=tmp_path,
                          capture_output=True, text=True, timeout=TIMEOUT)
    if way == "run_cell":
        assert (done.returncode, done.stdout, done.stderr) == (130, "", "")
    else:
        assert done.returncode == 0 and "the cell went on" in done.stdout, done
        assert "Exception ignored in" in done.stderr and "KeyboardInterrupt" in done.stderr


# -- an interrupt that a library turned into an exception of its own ---------------------------

class Serialized(pydantic.BaseModel):
    """A model whose serializer is interrupted, as a Ctrl-C landing in bench's own (those of
    bench.suite.schema and bench.suite.cell_configs) would be."""

    x: int = 0

    @pydantic.model_serializer(mode="wrap")
    def _interrupted(self, handler):
        raise KeyboardInterrupt("as a Ctrl-C landing here")


def test_pydantic_turns_an_interrupt_in_a_serializer_into_its_own_error_and_it_is_found():
    """What the fix stands on: the library's error, raised from the KeyboardInterrupt."""
    with pytest.raises(pydantic_core.PydanticSerializationError) as caught:
        Serialized().model_dump(mode="json")
    assert isinstance(wrapped_interrupt(caught.value), KeyboardInterrupt)
    with pytest.raises(KeyboardInterrupt, match="as a Ctrl-C landing here"):
        with interrupts_unwrapped():
            Serialized().model_dump(mode="json")
    other = ValueError("not an interrupt")
    with pytest.raises(ValueError) as caught:
        with interrupts_unwrapped():
            raise other
    assert caught.value is other and wrapped_interrupt(other) is None


def test_an_interrupt_a_library_wrapped_inside_a_cell_stops_the_run_not_the_cell(tmp_path,
                                                                                  monkeypatch):
    from bench.cells import CellResult, RunEnv
    from bench.executors import execute
    from bench.registry import Registry
    from bench.suite.cell_configs import ExtractorCellConfig
    from bench.suite.plan import Cell
    from tests.helpers.configs import DIGITS

    kinds = Registry("cell kind")
    kinds.register("interrupted", lambda config, inputs, env: Serialized().model_dump())
    kinds.register("broken", lambda config, inputs, env: CellResult(records=1 / 0))
    monkeypatch.setattr(execute, "CELL_KINDS", kinds)
    env = RunEnv(device="cpu", cache_dir=tmp_path, artifacts_dir=tmp_path, progress=False)
    with pytest.raises(KeyboardInterrupt):  # passes through, as a plain Ctrl-C does
        execute.execute_cell(Cell("interrupted", ExtractorCellConfig(dataset=DIGITS)), {}, env)
    record = execute.execute_cell(Cell("broken", ExtractorCellConfig(dataset=DIGITS)), {}, env)
    assert not record.ok and "ZeroDivisionError" in record.reason  # a failure stays a failure


def test_a_ctrl_c_in_a_serializer_after_the_manifest_exits_130_and_resumes(tmp_path, monkeypatch,
                                                                           capsys):
    """Found by the default signal tests (1 run in 20: Ctrl-C just after the manifest): the
    interrupt landed in the train config's serializer while the executor computed the cells'
    ids, and came out as a PydanticSerializationError: a traceback and exit 1."""
    from bench.cli import main
    from bench.store.run_store import RunStore
    from bench.suite.schema import TrainConfig
    from tests.helpers.suites import tiny_digits_suite, write_suite

    armed = [False]

    class InterruptedOnce(frozenset):  # the serializer's lookup, where the Ctrl-C lands
        def __contains__(self, key):
            if armed[0]:
                armed[0] = False
                raise KeyboardInterrupt("as a Ctrl-C landing here")
            return frozenset.__contains__(self, key)

    real_write = RunStore.write_manifest

    def write_manifest(self, manifest):
        real_write(self, manifest)
        armed[0] = manifest["status"] == "running" and not list(self.dir.glob("cells/*.json"))

    keys = InterruptedOnce(TrainConfig.OMIT_IF_DEFAULT)
    monkeypatch.setattr(TrainConfig, "OMIT_IF_DEFAULT", keys)
    monkeypatch.setattr(RunStore, "write_manifest", write_manifest)
    suite = write_suite(tmp_path, tiny_digits_suite(seeds=(0,), pgd=False))
    args = ["run", str(suite), "--results-dir", str(tmp_path / "results"), "--workers", "1",
            "--no-progress", "--no-report"]
    assert main(args) == 130
    out = capsys.readouterr()
    assert "Traceback" not in out.err and "interrupted: 0 cells ok, 0 failed" in out.out
    (manifest_path,) = (tmp_path / "results").glob("*/*/manifest.json")
    assert json.loads(manifest_path.read_text())["status"] == "interrupted"
    assert not list((tmp_path / "results").rglob("*.tmp"))
    monkeypatch.setattr(RunStore, "write_manifest", real_write)  # the resume, not interrupted
    assert main(args) == 0
    resumed = json.loads(manifest_path.read_text())
    assert resumed["status"] == "complete" and resumed["counts"]["ok"] == 2
