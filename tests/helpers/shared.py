"""Expensive test inputs (a real run, a trained model) made once per test session, however
many pytest-xdist workers ask for them, and then only read.

The folder is the session's own (under pytest's basetemp), so every `pytest` starts afresh:
nothing made by other code, or another session, is ever reused. Tests that change what they
get copy it first (tests/helpers/runs.py:copy_run).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Callable

from filelock import FileLock


def session_dir(tmp_path_factory) -> Path:
    """A folder every xdist worker of this session shares (the session's basetemp without
    xdist; with it, each worker's basetemp is a folder inside the session's)."""
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    path = shared / "shared"
    path.mkdir(exist_ok=True)
    return path


def made_once(tmp_path_factory, name: str, make: Callable[[Path], None]) -> Path:
    """`make(folder)` once per session, under a lock; the finished folder, for reading."""
    root = session_dir(tmp_path_factory)
    folder = root / name
    with FileLock(str(root / f"{name}.lock")):
        if not (root / f"{name}.done").exists():
            shutil.rmtree(folder, ignore_errors=True)  # a half-made one, from a failed try
            folder.mkdir()
            make(folder)
            (root / f"{name}.done").touch()
    return folder
