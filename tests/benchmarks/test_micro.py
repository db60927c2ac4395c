"""pytest-benchmark micro-benchmarks of bench's hot paths (not part of the default test run).

    pytest tests/benchmarks --benchmark-only -p no:cacheprovider

See README.md here for saving a baseline and failing on a regression.
"""

import pytest
import torch

from bench.data import load_dataset
from bench.seeding import seeded
from bench.suite.cell_configs import ThroughputCellConfig, TrainedTarget
from bench.suite.schema import TrainConfig
from tests.helpers.configs import DIGITS

EPSILONS = [0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3]
CNN = TrainedTarget(model="cnn", arch="small-cnn", normalize=None,
                    train=TrainConfig(recipe="standard", optimizer="adam", lr=1e-3))


@pytest.fixture(scope="module")
def digits_test():
    return load_dataset(DIGITS, "test")  # 450 real 8×8 digits


@pytest.fixture(scope="module")
def small_cnn():
    from bench.models.build import build_classifier

    with seeded(0):
        return build_classifier(CNN.arch, CNN.normalize, (1, 8, 8), 10).eval()


def test_fgsm_sweep(benchmark, small_cnn, digits_test):
    """The shared-gradient FGSM sweep: 7 ε over the 450 test digits, batch 512."""
    from bench.attacks.fgsm import fgsm_sweep

    results = benchmark(fgsm_sweep, small_cnn, digits_test.x, digits_test.y, EPSILONS, 512, "cpu")
    assert [r.epsilon for r in results] == EPSILONS


def test_train_step(benchmark):
    """One train step exactly as the throughput train-step workload runs it (batch 64, fp32)."""
    from bench.cells.throughput import build_workload

    config = ThroughputCellConfig(
        workload="train-step", target=CNN, dataset=DIGITS, batch_size=64, precision="fp32",
        channels_last=False, compile=False, warmup=0, repeats=1, epsilon=8 / 255, pgd_steps=10,
        peak_tflops=None, seed=0)
    with seeded(0):
        workload = build_workload(config, "cpu")
    for _ in range(3):  # warm-up outside the measurement (allocator, oneDNN primitives)
        workload.step()
    loss = benchmark(workload.step)
    assert torch.isfinite(loss)


@pytest.fixture(scope="module")
def fid_setup(tmp_path_factory, digits_test):
    """A domain extractor, a real reference whose statistics are already cached, and 1000
    generated images: what every evaluation after the first one costs."""
    from bench.gans import GANS
    from bench.metrics import feature_extractor as fe
    from bench.metrics.fidelity import compute_metrics, domain_extractor, real_reference

    folder = tmp_path_factory.mktemp("fid")
    train = load_dataset(DIGITS, "train")
    net = fe.train_extractor(train.x, train.y, 10, epochs=1, lr=1e-3, batch_size=64, seed=0)
    path = folder / "benchmicro.pt"
    payload = fe.weights_payload(net, 1, 10, 0.0)
    torch.save(payload, path)
    extractor = domain_extractor(fe.extractor_name(payload["hash"]), payload["hash"], str(path))
    reference = real_reference(train.x, DIGITS, "train", 1000, extractor)
    gan = GANS.get("dcgan")(1, (8, 8), z_dim=64, init_seed=0)
    fake = gan.sample(torch.randn(1000, 64, generator=torch.Generator().manual_seed(1)))
    cache = folder / "cache"
    compute_metrics(fake, reference, extractor, ["fid"], "cpu", cache)  # fills the real-side cache
    return fake, reference, extractor, cache


def test_fid_generated_side(benchmark, fid_setup):
    """FID of 1000 generated 8×8 images against cached real statistics: the generated side only."""
    from bench.metrics.fidelity import compute_metrics

    fake, reference, extractor, cache = fid_setup
    out = benchmark(compute_metrics, fake, reference, extractor, ["fid"], "cpu", cache)
    assert out["fid"] > 0
