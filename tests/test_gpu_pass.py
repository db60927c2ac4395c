"""benchmarks/gpu_pass.py on the CPU at tiny sizes (`--device cpu --tiny`): the code paths the
GPU pass runs, so that it cannot rot before a GPU is at hand. One JSON and one Markdown hold
every part; the contenders agree; a small budget stops cleanly with what finished written."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import torch

from bench.cells import extractor as extractor_cell
from benchmarks import gpu_pass
from benchmarks._budget import Budget, OutOfBudget, RoundGuard
from benchmarks._gpu_parts import PARTS, TINY, Pass, junit_cases

EVERY_PART = ["peaks", "throughput", "fgsm", "pgd", "autoattack", "gan"]


def outputs(folder: Path) -> tuple[dict, str]:
    (json_path,) = folder.glob("*.json")
    (md_path,) = folder.glob("*.md")
    assert md_path.stem == json_path.stem
    return json.loads(json_path.read_text()), md_path.read_text()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The whole pass, tiny, once for the module (the domain extractor trained 30 steps)."""
    out = tmp_path_factory.mktemp("gpu-pass")
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(extractor_cell.RECIPE, "steps", 30)
        code = gpu_pass.main(["--device", "cpu", "--tiny", "--out", str(out)])
    result, md = outputs(out)
    return code, result, md


def test_one_json_and_one_markdown_hold_every_part(tiny):
    code, result, md = tiny
    assert code == 0
    assert result["schema"] == gpu_pass.SCHEMA
    assert result["status"] == "complete"
    assert list(result["parts"]) == EVERY_PART  # cuda-tests run on CUDA only by default
    assert all(s["status"] == "ok" for s in result["parts"].values()), {
        k: s.get("reason") for k, s in result["parts"].items()}
    for title in ("Matmul peaks", "Throughput", "FGSM", "PGD", "AutoAttack", "DCGAN"):
        assert f"## {title}" in md
    prov = result["provenance"]
    assert prov["versions"]["torch"] == torch.__version__
    assert prov["device"]["device"] == "cpu" and prov["device"]["device_name"]
    assert "commit" in prov["git"] and "cuda_version" in prov["device"]


def test_the_peaks_are_measured_and_mfu_is_against_them(tiny):
    _, result, _ = tiny
    peaks = {r["precision"]: r for r in result["parts"]["peaks"]["rows"]}
    assert set(peaks) == {"fp32", "tf32", "bf16", "fp16"}
    assert all(r["tflops"] > 0 and r["source"].startswith("measured:cpu") for r in peaks.values())
    timed = [r for r in result["parts"]["throughput"]["rows"] if not r["skipped"]]
    for r in timed:
        assert r["peak_source"] == peaks[r["precision"]]["source"]
        assert r["mfu"] == pytest.approx(r["achieved_tflops"] / peaks[r["precision"]]["tflops"])


def test_throughput_covers_the_suite_and_resnet18_through_the_cell(tiny):
    _, result, md = tiny
    rows = result["parts"]["throughput"]["rows"]
    suite = {(r["workload"], r["precision"]) for r in rows if r["group"] == "suites/throughput.toml"}
    assert suite == {(w, p) for w in ("inference", "train-step", "fgsm", "pgd", "gan-step",
                                      "gan-sample") for p in ("fp32", "bf16")}
    resnet = [r for r in rows if r["group"] == "resnet18"]
    assert {(r["workload"], r["precision"]) for r in resnet} == {
        (w, p) for w in ("inference", "train-step") for p in ("fp32", "bf16", "fp16")}
    fp16 = [r for r in resnet if r["precision"] == "fp16"]
    assert all(r["skipped"] and "CPU" in r["skip_reason"] for r in fp16)  # recorded, not timed
    for r in rows:
        if not r["skipped"]:
            assert len(r["times_s"]) == TINY.suite_repeats and r["timing_method"] == "perf-counter"
            assert r["images_per_s_q1"] <= r["images_per_s"] <= r["images_per_s_q3"]
            assert r["peak_memory_bytes"] > 0
    assert "| resnet18 | train-step | resnet18 | 2 | bf16 | True |" in md


@pytest.mark.parametrize("part", ["fgsm", "pgd"])
def test_bench_the_plain_loop_and_naive_torchattacks_agree_per_example(tiny, part):
    _, result, md = tiny
    shapes = result["parts"][part]["shapes"]
    assert [e["shape"] for e in shapes] == ["lenet", "resnet18"]
    for e in shapes:
        assert set(e["contenders"]) == {"naive", "plain", "bench"}
        assert all(len(c["times_s"]) == e["rounds"] == TINY.rounds for c in e["contenders"].values())
        assert e["correct"]["bench"] == e["correct"]["plain"] == e["correct"]["naive"]
        assert len(e["correct"]["naive"]) == len(e["epsilons"]) == (7 if part == "fgsm" else 2)
        assert all(c["identical"] and c["agree"] for c in e["vs_naive"].values())
        assert e["contenders"]["bench"]["speedup_vs_naive"]["median_ratio"] > 0
    assert result["parts"][part]["agree"] is True
    assert "identical per example" in md


def test_autoattack_bench_and_torchattacks_predict_the_same(tiny):
    _, result, _ = tiny
    (row,) = result["parts"]["autoattack"]["rows"]
    assert row["identical"] is True and row["version"] == "standard"
    assert row["robust_acc"]["bench"] == row["robust_acc"]["torchattacks"] <= row["clean_acc"]
    assert set(row["contenders"]) == {"bench", "torchattacks"}


def test_the_dcgan_trains_with_and_without_amp_and_ends_with_a_fid(tiny):
    _, result, _ = tiny
    rows = result["parts"]["gan"]["rows"]
    assert [r["amp_asked"] for r in rows] == [False, True]
    for r in rows:
        assert r["status"] == "ok" and r["step"] == r["steps"] == TINY.gan_steps
        assert r["fid"] > 0 and r["real_floor_fid"] > 0 and r["extractor"].startswith("bench-domain-")
    assert rows[1]["amp"] is False and "CUDA only" in rows[1]["note"]  # said, not hidden


class Ticks:
    """A clock that moves `step` seconds at every read: the budget logic, deterministically."""

    def __init__(self, step: float):
        self.t, self.step = 0.0, step

    def __call__(self) -> float:
        self.t += self.step
        return self.t


def test_a_small_budget_stops_cleanly_with_what_finished_written(tmp_path, capsys):
    code = gpu_pass.main(["--device", "cpu", "--tiny", "--budget-s", "100", "--out",
                          str(tmp_path), "--parts", "throughput,fgsm,gan"], clock=Ticks(5.0))
    assert code == 0
    result, md = outputs(tmp_path)
    assert result["status"] == "incomplete"
    assert list(result["parts"]) == ["peaks", "throughput", "fgsm", "gan"]
    assert result["parts"]["peaks"]["status"] == "ok"
    tp = result["parts"]["throughput"]
    assert tp["status"] == "partial" and 0 < len(tp["rows"])
    assert "not started, the budget would not hold it" in tp["skipped"][0]
    for part in ("fgsm", "gan"):
        assert result["parts"][part]["status"] == "skipped"
        assert result["parts"][part]["reason"].startswith("budget:")
    assert "status: **skipped** (" not in md and "status: **skipped**; budget:" in md
    assert str(tmp_path) in capsys.readouterr().out  # says where it wrote


def test_a_part_cut_by_the_hard_stop_keeps_what_it_finished(tmp_path, monkeypatch):
    def cut(p, section):
        section["rows"] = [{"finished": 1}]
        raise OutOfBudget("the budget of 1 s ran out")

    monkeypatch.setitem(PARTS, "fgsm", cut)
    result = {"parts": {}}
    gpu_pass.run_part("fgsm", Pass("cpu", TINY, Budget(100), tmp_path), result)
    section = result["parts"]["fgsm"]
    assert section["status"] == "interrupted" and section["rows"] == [{"finished": 1}]
    assert "what finished is kept" in section["reason"]


def test_a_failing_part_is_recorded_and_fails_the_pass(tmp_path, monkeypatch):
    monkeypatch.setitem(PARTS, "fgsm", lambda p, section: 1 / 0)
    result = {"parts": {}}
    gpu_pass.run_part("fgsm", Pass("cpu", TINY, Budget(100), tmp_path), result)
    assert result["parts"]["fgsm"]["status"] == "failed"
    assert "ZeroDivisionError" in result["parts"]["fgsm"]["traceback"]
    assert gpu_pass.verdict(result) == "failed"


def test_the_hard_stop_interrupts_work_that_overruns():
    budget = Budget(0.3)
    with pytest.raises(OutOfBudget):
        with budget.hard_stop():
            time.sleep(30)  # never finishes: the alarm cuts it


def test_the_round_guard_stops_before_a_round_that_would_not_fit():
    now = [0.0]
    budget = Budget(100, clock=lambda: now[0])
    guard = RoundGuard(budget, first_s=50)
    now[0] = 10.0
    assert guard() is False  # 90 s left, the first round estimated at 50
    now[0] = 50.0
    assert guard() is False  # that round took 40 s: 50 estimated (1.25×), 50 left
    now[0] = 51.0
    assert guard() is True and guard.stopped  # the longest round still says 50; 49 left


def test_without_cuda_the_gpu_command_says_how_to_run_the_cpu_check(capsys, tmp_path):
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here: the pass would run")
    assert gpu_pass.main(["--out", str(tmp_path)]) == 2
    assert "--device cpu --tiny" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_cuda_test_outcomes_are_read_from_junit(tmp_path):
    path = tmp_path / "junit.xml"
    path.write_text(
        '<testsuites><testsuite><testcase classname="tests.test_cuda" name="test_a"/>'
        '<testcase classname="tests.test_cuda" name="test_b"><skipped message="needs CUDA"/>'
        '</testcase><testcase classname="tests.test_cuda" name="test_c"><failure message="'
        'assert 1 == 2">trace</failure></testcase></testsuite></testsuites>')
    assert junit_cases(path) == [
        {"name": "test_a", "outcome": "passed", "message": ""},
        {"name": "test_b", "outcome": "skipped", "message": "needs CUDA"},
        {"name": "test_c", "outcome": "failed", "message": "assert 1 == 2"}]
