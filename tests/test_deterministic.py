"""`[suite] deterministic = true` on the CPU: it validates, reaches every cell (in-process and
in worker processes), puts torch's settings back after each cell, fails a cell whose op has
no deterministic implementation, changes no CPU result and no cell id, and is recorded in the
manifest and noted by `bench compare`. Its CUDA promise (two runs, identical results) is
tests/test_cuda.py's."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from bench.cells import CellResult, RunEnv
from bench.cli import main
from bench.compare.machine import machine_diff
from bench.executors import execute
from bench.executors.deterministic import CUBLAS_WORKSPACE_ENV, deterministic_mode
from bench.registry import Registry
from bench.suite.cell_configs import ExtractorCellConfig
from bench.suite.plan import Cell
from tests.helpers.configs import DIGITS
from tests.helpers.diff_runs import diff_journal, diff_tables
from tests.helpers.suites import tiny_digits_suite, write_suite


def settings() -> tuple[bool, bool, bool]:
    cudnn = torch.backends.cudnn
    return torch.are_deterministic_algorithms_enabled(), cudnn.deterministic, cudnn.benchmark


def probe_registry(seen: list) -> Registry:
    """A cell kind that records the settings it runs under, and one whose op has no
    deterministic implementation on the CPU (Tensor.put_ without accumulation)."""
    kinds = Registry("cell kind")

    def probe(config, inputs, env):
        seen.append(settings() + (os.environ.get(CUBLAS_WORKSPACE_ENV),))
        return CellResult()

    def scatter(config, inputs, env):
        torch.zeros(4).put_(torch.tensor([0, 0]), torch.tensor([1.0, 2.0]))
        return CellResult()

    kinds.register("probe", probe)
    kinds.register("scatter", scatter)
    return kinds


def env(tmp_path: Path, deterministic: bool) -> RunEnv:
    return RunEnv(device="cpu", cache_dir=tmp_path, artifacts_dir=tmp_path, progress=False,
                  deterministic=deterministic)


def cell(kind: str) -> Cell:
    return Cell(kind, ExtractorCellConfig(dataset=DIGITS), {}, kind)


def test_cells_run_on_deterministic_kernels_and_the_settings_come_back(tmp_path, monkeypatch):
    seen: list = []
    monkeypatch.setattr(execute, "CELL_KINDS", probe_registry(seen))
    monkeypatch.delenv(CUBLAS_WORKSPACE_ENV, raising=False)
    before = settings()
    assert before[0] is False  # the test process runs without it
    record = execute.execute_cell(cell("probe"), {}, env(tmp_path, True))
    assert record.ok
    assert seen[-1] == (True, True, False, ":4096:8")
    assert settings() == before  # put back after the cell
    execute.execute_cell(cell("probe"), {}, env(tmp_path, False))
    assert seen[-1][:3] == before  # off: nothing touched


def test_an_op_without_a_deterministic_implementation_fails_its_cell(tmp_path, monkeypatch):
    monkeypatch.setattr(execute, "CELL_KINDS", probe_registry([]))
    assert execute.execute_cell(cell("scatter"), {}, env(tmp_path, False)).ok
    record = execute.execute_cell(cell("scatter"), {}, env(tmp_path, True))
    assert not record.ok
    assert "deterministic" in record.reason and "put_" in record.reason
    assert not torch.are_deterministic_algorithms_enabled()


def test_the_mode_is_restored_when_the_block_raises():
    before = settings()
    with pytest.raises(ZeroDivisionError):
        with deterministic_mode(True):
            assert settings()[0]
            raise ZeroDivisionError
    assert settings() == before


@pytest.mark.parametrize("workers", [1, pytest.param(2, marks=pytest.mark.slow)])
def test_a_deterministic_suite_runs_with_the_same_cpu_results_and_cell_ids(tmp_path, capsys,
                                                                          workers):
    """workers = 2 (slow: worker processes take ~30 s to start on a loaded 2-core machine):
    the cells run in worker processes, which get the switch through RunEnv."""
    runs = {}
    for name, extra in (("plain", ""), ("det", "deterministic = true")):
        text = tiny_digits_suite(name="tiny", seeds=(0,), pgd=False, limit_train=200, limit=100,
                                 extra_suite_keys=f"workers = {workers}\n{extra}")
        path = write_suite(tmp_path / name, text)
        assert main(["validate", str(path)]) == 0
        results = tmp_path / name / "results"
        assert main(["run", str(path), "--results-dir", str(results), "--no-progress",
                     "--run-id", "r", "--no-report"]) == 0
        runs[name] = results / "tiny" / "r"
    manifests = {k: json.loads((r / "manifest.json").read_text()) for k, r in runs.items()}
    assert manifests["det"]["deterministic"] is True
    assert manifests["plain"]["deterministic"] is False
    assert manifests["det"]["cells"].keys() == manifests["plain"]["cells"].keys()  # same ids
    assert diff_tables(runs["plain"], runs["det"]) == []
    assert diff_journal(runs["plain"], runs["det"]) == []


def test_a_wrong_value_is_one_line_naming_the_key(tmp_path, capsys):
    text = tiny_digits_suite(seeds=(0,), pgd=False, extra_suite_keys='deterministic = "yes"')
    assert main(["validate", str(write_suite(tmp_path, text))]) == 2
    err = capsys.readouterr().err.strip()
    assert "suite.deterministic" in err and len(err.splitlines()) == 1


def test_compare_notes_runs_that_differ_in_deterministic_kernels():
    base = {"provenance": {}, "deterministic": False}
    assert machine_diff(base, {"provenance": {}, "deterministic": True}).notes() == [
        "deterministic kernels differs: baseline False, candidate True"]
    assert machine_diff({"provenance": {}}, base).notes() == []  # runs from before the key
