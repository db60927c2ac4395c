"""The throughput cell on the CPU: its row, every workload, skipped configurations, the
consistency of its statistics, and `bench run` writing the table, the plot and the report.

tests/conftest.py pins one torch thread, as bench runs CPU cells by default."""

import dataclasses
import json
import math
import textwrap

import numpy as np
import pandas as pd
import pytest
import torch

from bench.cells import throughput as cell
from bench.cli import main
from bench.models.build import build_classifier
from bench.store import schema as S
from bench.suite.cell_configs import GanTarget, ThroughputCellConfig, TrainedTarget
from bench.suite.schema import Normalization, TrainConfig
from bench.throughput import flops, timing, workloads
from tests.helpers.configs import DIGITS

CNN = TrainedTarget(model="cnn", arch="small-cnn",
                    normalize=Normalization(mean=[0.5], std=[0.25]),
                    train=TrainConfig(optimizer="adam", lr=1e-3, weight_decay=0.0))
DCGAN = GanTarget(gan="dcgan", arch="dcgan", z_dim=16)

# The cell's own columns; the run adds ran_alone (and cell_id) to every row.
CELL_COLUMNS = tuple(c for c in S.COLUMNS[S.THROUGHPUT] if c not in S.ADDED_BY_RUN)


def config(workload="inference", target=CNN, batch_size=16, precision="fp32", channels_last=False,
           compile=False, warmup=1, repeats=3, seed=0, pgd_steps=2):
    return ThroughputCellConfig(
        workload=workload, target=target, dataset=DIGITS, batch_size=batch_size,
        precision=precision, channels_last=channels_last, compile=compile, warmup=warmup,
        repeats=repeats, epsilon=8 / 255, pgd_steps=pgd_steps, peak_tflops=None, seed=seed)


def build_model(target: TrainedTarget):
    return build_classifier(target.arch, target.normalize, (1, 8, 8), 10)


def test_cpu_row_has_every_column_and_self_consistent_numbers():
    row = cell.measure(config(repeats=7, batch_size=32), "cpu")
    assert tuple(row) == CELL_COLUMNS
    assert not row["skipped"] and row["skip_reason"] is None
    assert (row["workload"], row["target"], row["arch"]) == ("inference", "cnn", "small-cnn")
    assert row["device"] == "cpu" and row["device_name"]
    assert row["torch_version"] == torch.__version__ and row["threads"] == torch.get_num_threads()
    assert row["timing_method"] == "perf-counter"
    times = row["times_s"]
    assert len(times) == 7 and all(t > 0 for t in times)
    assert row["median_s"] == pytest.approx(np.median(times))
    assert row["q1_s"] <= row["median_s"] <= row["q3_s"]
    assert row["iqr_s"] == pytest.approx(row["q3_s"] - row["q1_s"])
    assert row["images_per_s"] == pytest.approx(32 / row["median_s"])
    # FLOPs: the model's forward on this batch, as the counter sees it.
    model = build_model(CNN)
    assert row["flops_per_step"] == flops.count_flops(lambda: model(torch.rand(32, 1, 8, 8)))
    assert row["achieved_tflops"] == pytest.approx(row["flops_per_step"] / row["median_s"] / 1e12)
    assert row["peak_source"].startswith("measured:cpu-fp32-matmul")
    assert row["mfu"] == pytest.approx(row["achieved_tflops"] / row["peak_tflops"])
    assert row["memory_kind"] in ("peak_rss", "rss") and row["peak_memory_bytes"] > 0
    json.dumps(row)  # storable as is in the journal


@pytest.mark.parametrize("workload, target", [
    ("train-step", CNN), ("fgsm", CNN), ("pgd", CNN), ("gan-step", DCGAN), ("gan-sample", DCGAN)])
def test_every_workload_runs_and_counts_work(workload, target):
    row = cell.measure(config(workload, target, batch_size=8, repeats=2), "cpu")
    assert not row["skipped"], row["skip_reason"]
    assert row["flops_per_step"] > 0 and len(row["times_s"]) == 2
    assert row["target"] == getattr(target, "model", getattr(target, "gan", None))


def test_work_per_step_grows_with_the_workload():
    def step_flops(workload, **kw):
        return cell.measure(config(workload, repeats=1, warmup=0, **kw), "cpu")["flops_per_step"]

    fwd = step_flops("inference")
    # forward + backward: weight gradients everywhere, input gradients except for the first layer
    assert 2 * fwd < step_flops("train-step") <= 3 * fwd
    assert step_flops("fgsm") > 2 * fwd  # forward + input gradient + adversarial forward
    assert step_flops("pgd", pgd_steps=4) > step_flops("pgd", pgd_steps=2)


def test_train_step_updates_the_weights_and_inference_does_not():
    model = build_model(CNN)
    x, y = torch.rand(8, 1, 8, 8), torch.randint(10, (8,))
    before = [p.detach().clone() for p in model.parameters()]
    workloads.classifier_workload("inference", model, x, y, device="cpu").step()
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    workloads.classifier_workload("train-step", model, x, y, device="cpu",
                                  optimizer=cell.make_optimizer(model, CNN.train)).step()
    assert not all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_channels_last_reaches_the_model_and_the_batch():
    model = build_model(CNN)
    (x,) = workloads.to_channels_last(model, torch.rand(4, 3, 8, 8))
    assert x.is_contiguous(memory_format=torch.channels_last)
    conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)


def test_unsupported_precision_is_a_skipped_row_not_a_crash():
    row = cell.measure(config(precision="fp16", repeats=50), "cpu")
    assert row["skipped"] and "fp16" in row["skip_reason"]
    assert row["times_s"] == [] and math.isnan(row["median_s"]) and math.isnan(row["mfu"])
    assert tuple(row) == CELL_COLUMNS


def test_a_failing_torch_compile_is_a_skipped_row(monkeypatch):
    def broken_backend(gm, example_inputs):
        raise RuntimeError("no compiler here")

    monkeypatch.setattr(workloads, "compile_module",
                        lambda m: torch.compile(m, backend=broken_backend))
    row = cell.measure(config(compile=True, repeats=2), "cpu")
    assert row["skipped"]
    assert row["skip_reason"].startswith("torch.compile failed: BackendCompilerFailed")
    assert "no compiler here" in row["skip_reason"]


def test_the_row_describes_the_timed_repeats_and_nothing_else(monkeypatch):
    """The statistic describes the repeats: a clock that advances only inside the workload's
    step (a 5 s "compilation" on its first call, then 1-4 ms) shows that warm-up stays out of
    the timed region, that each repeat times exactly one step, and that the quartiles are those
    of the timed repeats. Deterministic: no wall-clock value is asserted; the run-to-run spread
    on a real machine is measured in benchmarks/throughput_spread.py.
    """
    now, costs = [0.0], []
    real_build, real_time_repeats = cell.build_workload, timing.time_repeats

    def build(config, device):
        workload = real_build(config, device)

        def step():
            workload.step()
            cost = 5.0 if not costs else 0.001 * (1 + len(costs) % 4)
            costs.append(cost)
            now[0] += cost
        fake_steps.append(step)
        return dataclasses.replace(workload, step=step)

    def fake_time_repeats(fn, device, **kw):
        if fn in fake_steps:  # the workload's step; the CPU peak's matmul keeps its real clock
            kw["clock"] = lambda: now[0]
        return real_time_repeats(fn, device, **kw)

    fake_steps = []
    monkeypatch.setattr(cell, "build_workload", build)
    monkeypatch.setattr(timing, "time_repeats", fake_time_repeats)
    got = cell.measure(config("inference", batch_size=8, warmup=2, repeats=9), "cpu")
    assert len(costs) == 2 + 9
    timed = costs[2:]
    assert got["times_s"] == pytest.approx(timed)
    assert (got["q1_s"], got["median_s"], got["q3_s"]) == pytest.approx(
        tuple(np.percentile(timed, [25, 50, 75])))
    assert got["images_per_s"] == pytest.approx(8 / np.median(timed))


SUITE = """
[suite]
name = "tp"
device = "cpu"

[datasets.digits]
kind = "digits"
limit_train = 200  # the model is only timed: a short training does

[models.cnn]
arch = "small-cnn"
dataset = "digits"
train = { epochs = 1 }

[[throughput]]
models = ["cnn"]
workloads = ["inference", "train-step"]
batch_sizes = [16]
precision = ["fp32", "fp16"]
warmup = 1
repeats = 3
"""


def test_bench_run_writes_the_throughput_table_plot_and_report(tmp_path):
    suite = tmp_path / "tp.toml"
    suite.write_text(textwrap.dedent(SUITE))
    results = tmp_path / "results"
    assert main(["run", str(suite), "--results-dir", str(results), "--no-progress"]) == 0
    (run,) = [p for p in (results / "tp").iterdir() if p.is_dir()]
    table = pd.read_parquet(run / "tables" / "throughput.parquet")
    assert len(table) == 4
    assert set(S.COLUMNS[S.THROUGHPUT]) <= set(table.columns)
    ran = table[~table["skipped"]]
    assert set(ran["precision"]) == {"fp32"}
    assert set(table[table["skipped"]]["precision"]) == {"fp16"}
    assert all(len(t) == 3 for t in ran["times_s"])  # a list column, every repeat kept
    agg = pd.read_parquet(run / "tables" / "throughput_agg.parquet")
    assert {"images_per_s_mean", "mfu_mean", "median_s_mean"} <= set(agg.columns)
    report = (run / "report.md").read_text()
    assert "## Throughput" in report and "plots/throughput_images_per_s.png" in report
    assert "Skipped configurations" in report
    assert (run / "plots" / "throughput_images_per_s.png").read_bytes()[:4] == b"\x89PNG"
