"""`bench` as a program ends at its last exit handler, without tearing the interpreter down
(bench.cli.command): nothing it or a library leaves to the exit may be lost on the way."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.helpers.suites import tiny_digits_suite, write_suite

ROOT = Path(__file__).resolve().parents[1]

# A stand-in for a library that leaves work to the exit: an exit handler registered while
# main() runs, and a non-daemon thread still writing when main() returns.
PROGRAM = """
import atexit, sys, threading, time
from pathlib import Path
from bench import cli

flag = Path(sys.argv[1])
real_main = cli.main

def main():
    code = real_main(sys.argv[2:])
    atexit.register(lambda: flag.with_suffix(".atexit").write_text("ran"))
    def late():
        time.sleep(0.5)
        flag.with_suffix(".thread").write_text("ran")
    threading.Thread(target=late).start()
    print("printed last, still buffered", flush=False)
    return code

cli.main = main
cli.command()
"""


def program(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", PROGRAM, str(tmp_path / "flag"), *args],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)


def test_output_exit_handlers_and_threads_survive_the_short_exit(tmp_path):
    suites = [write_suite(tmp_path / f"s{i}", tiny_digits_suite(name=f"s{i}")) for i in range(150)]
    out = program(tmp_path, "validate", *map(str, suites))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()  # far more than a pipe's buffer: every line arrives
    assert len([line for line in lines if ": ok (" in line]) == 150
    assert lines[-1] == "printed last, still buffered"
    assert (tmp_path / "flag.atexit").read_text() == "ran"
    assert (tmp_path / "flag.thread").read_text() == "ran"


def test_the_exit_code_and_the_error_line_are_mains(tmp_path):
    bad = write_suite(tmp_path, "[suite]\nname = 3\n")
    out = program(tmp_path, "validate", str(bad))
    assert out.returncode == 2
    assert out.stderr.startswith("bench: error: ") and str(bad) in out.stderr
    assert "Traceback" not in out.stderr
    assert (tmp_path / "flag.atexit").read_text() == "ran"


def test_an_error_inside_main_keeps_its_traceback(tmp_path):
    code = ("import sys\nfrom bench import cli\n"
            "def main():\n    raise RuntimeError('boom')\n"
            "cli.main = main\ncli.command()\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=ROOT, timeout=120)
    assert out.returncode == 1
    assert "Traceback" in out.stderr and "RuntimeError: boom" in out.stderr


def test_python_dash_m_bench_and_the_console_script_go_through_command():
    assert (ROOT / "bench" / "__main__.py").read_text().count("command()") == 1
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'bench = "bench.cli:command"' in pyproject
