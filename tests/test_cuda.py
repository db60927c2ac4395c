"""What must hold on CUDA (issue 25). Each test runs when a CUDA device is present and is
skipped, saying so, otherwise; benchmarks/gpu_pass.py runs this file as its last part.

- The FGSM sweep gives the same accuracies on the CPU and on CUDA, within 1 example per 1,000
  (kernels round differently; a wrong device path would be far off).
- A suite with `[suite] deterministic = true` gives identical results in two CUDA runs:
  training (ResNet-18's and the small CNN's convolution backward passes, where CUDA is
  non-deterministic by default), FGSM and PGD sweeps, and a DCGAN with its FID.
- No host-device sync inside the timed region of any throughput cell of
  suites/throughput.toml, under torch's own detector (`torch.cuda.set_sync_debug_mode`).

The CPU halves of the last two are tests/test_deterministic.py and tests/test_host_sync.py.
"""

from __future__ import annotations

import copy

import pytest
import torch

from bench.attacks.fgsm import fgsm_sweep
from bench.cells import extractor as extractor_cell
from bench.cells.throughput import measure
from bench.cli import main
from bench.executors.deterministic import deterministic_mode
from benchmarks._shapes import build_shape
from tests.helpers.diff_runs import diff_tables
from tests.helpers.host_sync import cuda_sync_errors, guard_timed_repeats, throughput_suite_configs
from tests.helpers.suites import write_suite

pytestmark = pytest.mark.skipif(
    not torch.cuda.is_available(),
    reason="needs a CUDA device (torch.cuda.is_available() is False); the CPU halves are "
           "tests/test_deterministic.py and tests/test_host_sync.py")

EPSILONS = [0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3]
IMAGES = 2000


@pytest.mark.parametrize("arch", ["lenet", "small-cnn"])
def test_fgsm_sweep_accuracies_agree_on_cpu_and_cuda(arch):
    """The FGSM tutorial's LeNet (28×28) and bench's small CNN (8×8, BatchNorm), trained on
    the CPU; the same weights swept on both devices at the suite default batch."""
    shape = build_shape(arch, IMAGES, "cpu", train_images=4000)
    gpu_model = copy.deepcopy(shape.model)
    cpu = fgsm_sweep(shape.model, shape.x, shape.y, EPSILONS, 512, "cpu")
    gpu = fgsm_sweep(gpu_model, shape.x, shape.y, EPSILONS, 512, "cuda")
    allowed = IMAGES // 1000
    for c, g in zip(cpu, gpu):
        n_cpu, n_gpu = int(c.adv_correct.sum()), int(g.adv_correct.sum())
        assert abs(n_cpu - n_gpu) <= allowed, (c.epsilon, n_cpu, n_gpu)
    assert int(cpu[0].adv_correct.sum()) > IMAGES // 2  # trained: the agreement means something


DETERMINISTIC_SUITE = """
[suite]
name = "det"
seeds = [0]
device = "cuda"
workers = 1
deterministic = true

[datasets.digits]
kind = "digits"

[datasets.digits32]
kind = "digits"
image_size = [32, 32]
channels = 3

[models.cnn]
arch = "small-cnn"
dataset = "digits"
train = { epochs = 2 }

[models.resnet]
arch = "resnet18"
dataset = "digits32"
train = { epochs = 1 }

[[robustness]]
models = ["cnn", "resnet"]
attack = "fgsm"
epsilons = [0, 0.05, 0.1]

[[robustness]]
models = ["cnn"]
attack = "pgd"
steps = 5
epsilons = [0.1]

[gans.dcgan]
arch = "dcgan"
dataset = "digits"
steps = 150
eval_every = 150
num_samples = 200
metrics = ["fid"]
"""


def test_a_deterministic_suite_gives_identical_results_in_two_cuda_runs(tmp_path, monkeypatch):
    monkeypatch.setitem(extractor_cell.RECIPE, "steps", 200)  # in-process: workers = 1
    path = write_suite(tmp_path, DETERMINISTIC_SUITE)
    runs = []
    for name in ("a", "b"):  # separate results folders: separate caches, so both train
        results = tmp_path / name
        assert main(["run", str(path), "--results-dir", str(results), "--no-progress",
                     "--no-report", "--run-id", name]) == 0
        runs.append(results / "det" / name)
    assert diff_tables(*runs) == []
    for table in ("training", "robustness", "gan"):
        assert (runs[0] / "tables" / f"{table}.parquet").exists()


@pytest.mark.parametrize("config", throughput_suite_configs(("fp32", "bf16"), batch_size=64),
                         ids=lambda c: f"{c.workload}-{c.target.model_dump().get('arch')}-{c.precision}")
def test_no_host_device_sync_inside_the_timed_region(config, monkeypatch):
    """fp16 steps are left out: torch's GradScaler reads its inf check on the host once per
    optimiser step (bench.throughput.workloads says so)."""
    guard_timed_repeats(monkeypatch, cuda_sync_errors)
    row = measure(config, "cuda")  # a sync in a timed step raises RuntimeError here
    assert not row["skipped"], row["skip_reason"]
    assert row["timing_method"] == "cuda-event" and len(row["times_s"]) == config.repeats


def test_the_sync_detector_catches_a_step_that_syncs(monkeypatch):
    from bench.cells.throughput import time_workload
    from bench.throughput.workloads import Workload

    x = torch.randn(64, 64, device="cuda")
    guard_timed_repeats(monkeypatch, cuda_sync_errors)
    with pytest.raises(RuntimeError, match="synchroniz"):
        time_workload(Workload(lambda: (x @ x).sum().item(), lambda: x @ x, 64), "cuda", 0, 2)


def test_deterministic_mode_sets_cudnn_and_cublas_on_cuda():
    x = torch.randn(8, 3, 16, 16, device="cuda", requires_grad=True)
    conv = torch.nn.Conv2d(3, 8, 3).cuda()
    with deterministic_mode(True):
        grads = [torch.autograd.grad(conv(x).square().sum(), conv.weight)[0] for _ in range(3)]
        assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
    assert all(torch.equal(grads[0], g) for g in grads[1:])
