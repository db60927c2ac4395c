"""CI (.ci/run) fails when it cannot install Chromium, rather than letting the browser tests
skip: run with a PATH that has no browser, and an apt-get that fails or none at all."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

CI = Path(__file__).resolve().parents[1] / ".ci" / "run"


def run_ci(path: Path) -> subprocess.CompletedProcess:
    # Only `dirname` beside the stubs: no chromium, no python3 (had the script gone on to the
    # test command, it would fail there with another message and exit code).
    (path / "dirname").symlink_to(shutil.which("dirname"))
    return subprocess.run([shutil.which("bash"), str(CI)], env={"PATH": str(path)},
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("apt_get, message", [
    ("#!/bin/sh\nexit 100\n", "ci: could not install chromium"),
    ("#!/bin/sh\nexit 0\n", "ci: chromium installed but not found on PATH"),
    (None, "ci: no chromium, and no apt-get to install it"),
])
def test_ci_fails_when_it_cannot_install_chromium(tmp_path, apt_get, message):
    if apt_get is not None:
        (tmp_path / "apt-get").write_text(apt_get)
        (tmp_path / "apt-get").chmod(0o755)
    done = run_ci(tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert message in done.stderr


def test_ci_tells_the_tests_that_a_missing_browser_is_an_error():
    text = CI.read_text()
    export = text.index("export BENCH_REQUIRE_CHROMIUM=1")
    assert export < text.index(".venv/bin/python -m pytest")
