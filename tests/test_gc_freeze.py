"""bench.gc_freeze: what an import builds leaves the cyclic GC's collections, its fresh
garbage does not, and only `bench` as a program freezes anything."""

from __future__ import annotations

import gc
import importlib
import os
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest

from bench.gc_freeze import imports_frozen
from bench.interrupts import imports_held_back
from tests.helpers.suites import tiny_digits_suite, write_suite

ROOT = Path(__file__).resolve().parents[1]

# A module that keeps a structure for good and leaves a cycle of garbage behind.
MODULE = """
import weakref

class Node:
    pass

KEPT = [Node() for _ in range(100)]
_a, _b = Node(), Node()
_a.other, _b.other = _b, _a
GARBAGE = weakref.ref(_a)
del _a, _b
{extra}
"""


@pytest.fixture
def modules(tmp_path, monkeypatch):
    """Writes fresh modules (new names: never in sys.modules) and unfreezes after the test."""
    monkeypatch.syspath_prepend(str(tmp_path))
    gc.collect()
    enabled = gc.isenabled()
    gc.disable()  # no automatic collection: only the ones under test run
    before = gc.get_freeze_count()

    def write(extra: str = "") -> str:
        name = f"gcmod_{uuid.uuid4().hex}"
        (tmp_path / f"{name}.py").write_text(MODULE.format(extra=extra))
        importlib.invalidate_caches()
        return name

    yield write
    gc.unfreeze()
    if enabled:
        gc.enable()
    assert before == 0  # nothing else in this process froze anything


def tracked(obj) -> bool:
    """Whether a collection would walk `obj` (frozen objects are in no generation)."""
    return any(o is obj for o in gc.get_objects())


def test_an_import_freezes_what_it_keeps_and_frees_its_fresh_garbage(modules):
    name = modules()
    with imports_frozen():
        module = importlib.import_module(name)
    assert gc.get_freeze_count() > 100
    assert not tracked(module.KEPT) and not tracked(module.KEPT[0])
    assert module.GARBAGE() is None  # collected, not frozen for good


def test_without_the_block_nothing_is_frozen_and_the_garbage_waits(modules):
    """The other side of the test above: with automatic collection off, the garbage stays
    until a collection, and nothing leaves the GC."""
    module = importlib.import_module(modules())
    assert gc.get_freeze_count() == 0 and tracked(module.KEPT)
    assert module.GARBAGE() is not None
    gc.collect()
    assert module.GARBAGE() is None


def test_nested_imports_freeze_once_at_the_outermost(modules, monkeypatch):
    inner = modules()
    outer = modules(f"import {inner}")
    freezes = []
    monkeypatch.setattr(gc, "freeze", lambda: freezes.append(sorted(sys.modules)))
    with imports_frozen():
        importlib.import_module(outer)
        import json  # noqa: F401  (loaded already: importlib's hook is not reached)
    assert len(freezes) == 1 and inner in freezes[0] and outer in freezes[0]


def test_a_failed_import_still_freezes_and_the_next_one_too(modules, monkeypatch):
    freezes = []
    monkeypatch.setattr(gc, "freeze", lambda: freezes.append(1))
    broken = modules("raise ValueError('broken module')")
    with imports_frozen():
        with pytest.raises(ValueError):
            importlib.import_module(broken)
        importlib.import_module(modules())
    assert len(freezes) == 2


def test_imports_in_other_threads_freeze_nothing(modules, monkeypatch):
    freezes = []
    monkeypatch.setattr(gc, "freeze", lambda: freezes.append(1))
    name = modules()
    with imports_frozen():
        thread = threading.Thread(target=importlib.import_module, args=(name,))
        thread.start()
        thread.join()
    assert name in sys.modules and freezes == []


def test_the_hook_comes_off_after_the_block(modules):
    real = importlib._bootstrap._find_and_load
    with imports_frozen():
        assert importlib._bootstrap._find_and_load is not real
    assert importlib._bootstrap._find_and_load is real
    importlib.import_module(modules())
    assert gc.get_freeze_count() == 0


def test_inside_imports_held_back_as_in_command_both_hooks_act_and_come_off(modules):
    real = importlib._bootstrap._find_and_load
    with imports_frozen(), imports_held_back():
        module = importlib.import_module(modules())
    assert not tracked(module.KEPT) and module.GARBAGE() is None
    assert importlib._bootstrap._find_and_load is real


PROGRAM = """
import gc, sys
from bench import cli
real_main = cli.main
def main():
    code = real_main(sys.argv[2:])
    print("frozen", gc.get_freeze_count())
    return code
if sys.argv[1] == "command":
    cli.main = main
    cli.command()
else:
    raise SystemExit(main())
"""


@pytest.mark.parametrize("entry", ["command", "main"])
def test_only_bench_as_a_program_freezes(tmp_path, entry):
    suite = write_suite(tmp_path, tiny_digits_suite())
    out = subprocess.run([sys.executable, "-c", PROGRAM, entry, "validate", str(suite)],
                         capture_output=True, text=True, timeout=120, cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr
    frozen = int(out.stdout.split("frozen ")[1])
    if entry == "command":  # validate's imports (pydantic, the suite schema...) left the GC
        assert frozen > 10_000
    else:  # main() called in-process, as a notebook or a test does
        assert frozen == 0
