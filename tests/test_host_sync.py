"""No host-device sync inside the timed region of a throughput cell, on the CPU: every
workload of suites/throughput.toml, timed by the cell's own code, reads no value back to the
host (tests/helpers/host_sync.py says what counts). tests/test_cuda.py runs the same cells
under torch's CUDA sync detector."""

from __future__ import annotations

import pytest
import torch

from bench.cells.throughput import measure, time_workload
from bench.gans.dcgan import DCGAN
from bench.throughput.workloads import Workload
from tests.helpers.host_sync import HostReads, guard_timed_repeats, throughput_suite_configs

CONFIGS = throughput_suite_configs(("fp32", "bf16"), batch_size=16)


def test_the_suite_has_every_workload_in_both_precisions():
    assert {(c.workload, c.precision) for c in CONFIGS} == {
        (w, p) for w in ("inference", "train-step", "fgsm", "pgd", "gan-step", "gan-sample")
        for p in ("fp32", "bf16")}


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: f"{c.workload}-{c.precision}")
def test_no_value_is_read_back_inside_the_timed_region(config, monkeypatch):
    mode = HostReads()
    guard_timed_repeats(monkeypatch, lambda: mode)
    row = measure(config, "cpu")
    assert not row["skipped"], row["skip_reason"]
    assert len(row["times_s"]) == config.repeats  # the guarded steps are the timed ones
    assert mode.reads == []


def test_a_step_that_reads_a_value_back_is_caught(monkeypatch):
    x = torch.randn(8, 4)
    mode = HostReads()
    guard_timed_repeats(monkeypatch, lambda: mode)
    time_workload(Workload(lambda: x.sum().item(), lambda: x.sum(), 8), "cpu", 0, 2)
    assert [op for op, _ in mode.reads] == ["aten._local_scalar_dense.default"] * 2
    assert "test_host_sync.py" in mode.reads[0][1]  # names the line that read it


def test_the_gan_training_api_reads_its_losses_but_its_updates_do_not():
    gan = DCGAN(1, 8, z_dim=8)
    real, gen = torch.rand(4, 1, 8, 8) * 2 - 1, torch.Generator().manual_seed(0)
    with HostReads() as mode:
        gan.d_update(real, gen)
        gan.g_update(4, gen)
    assert mode.reads == []
    with HostReads() as mode:
        assert isinstance(gan.d_step(real, gen), float)
    assert len(mode.reads) == 1
