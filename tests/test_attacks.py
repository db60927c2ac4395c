"""The attack adapters: the shared-gradient FGSM sweep equals torchattacks.FGSM per ε, exactly:
its predictions, its per-sample L∞ and L2 sizes and its clean predictions, on every architecture."""


import numpy as np
import pytest
import torch
import torchattacks

import bench.attacks.fgsm as fgsm_module
import bench.cells.robustness as robustness_cell
from bench import defaults
from bench.attacks import ATTACKS, input_gradient, l2_per_sample, linf_per_sample, predict
from bench.attacks.fgsm import fgsm_sweep, forward_chunk, largest_activation_bytes
from bench.attacks.pgd import pgd_attack, pgd_sweep
from bench.cells import CellResult, RunEnv
from bench.cells.robustness import run_robustness_cell
from bench.data import ImageData, load_dataset, subset_indices
from bench.executors.execute import torch_threads
from bench.models.build import build_classifier
from bench.store.correctness import unpack_bits
from bench.suite.cell_configs import FgsmParams, PgdParams, RobustnessCellConfig, TrainedSource
from bench.suite.schema import Normalization, TrainConfig
from bench.training.loop import train_classifier
from benchmarks._common import train_briefly, upsampled_digits
from benchmarks._models import TutorialLeNet
from tests.helpers.configs import DIGITS

EPSILONS = [0.0, 0.01, 8 / 255, 0.05, 0.1, 0.2, 0.3]


@pytest.fixture(scope="module")
def trained():
    """A small CNN (with BatchNorm, so eval mode matters) trained briefly on the digits."""
    train, test = load_dataset(DIGITS, "train"), load_dataset(DIGITS, "test")
    torch.manual_seed(0)
    model = build_classifier("small-cnn", Normalization(mean=[0.3], std=[0.4]), (1, 8, 8), 10)
    cfg = TrainConfig(recipe="standard", epochs=2, lr=2e-3, batch_size=128, optimizer="adam")
    heldout = ImageData(test.x[:50], test.y[:50], 10, "digits")
    train_classifier(model, train, heldout, cfg, seed=0, device="cpu")
    return model.eval(), test.x[:300], test.y[:300]


def reference_fgsm_predictions(model, x, y, eps, batch_size):
    """What a user gets calling torchattacks.FGSM once per ε over the same batches."""
    preds = []
    for start in range(0, len(y), batch_size):
        xb, yb = x[start:start + batch_size], y[start:start + batch_size]
        adv = torchattacks.FGSM(model, eps=eps)(xb, yb)
        with torch.no_grad():
            preds.append(model(adv).argmax(1))
    return torch.cat(preds)


@pytest.mark.parametrize("batch_size", [64, 300])
def test_fgsm_sweep_equals_torchattacks_fgsm_per_epsilon(trained, batch_size):
    model, x, y = trained
    results = fgsm_sweep(model, x, y, EPSILONS, batch_size, "cpu")
    assert [r.epsilon for r in results] == EPSILONS
    for eps, res in zip(EPSILONS, results):
        expected = reference_fgsm_predictions(model, x, y, eps, batch_size)
        assert torch.equal(res.adv_pred, expected), f"ε={eps}"
        assert res.attack_repr == repr(torchattacks.FGSM(model, eps=eps))
    # Not a vacuous comparison: the model is trained and the attack really flips predictions.
    accs = [(r.adv_pred == y).float().mean().item() for r in results]
    assert accs[0] > 0.8 and accs[-1] < accs[0] - 0.3


def test_fgsm_sweep_equals_torchattacks_with_zero_between_other_epsilons(trained):
    """ε = 0 reused from the clean forward while the other ε of a small batch share forwards:
    the ε copies forwarded together are then not neighbours in the sweep's order."""
    model, x, y = trained
    eps = [0.1, 0.0, 0.2, 0.05]
    assert forward_chunk(model, x[:1], "cpu") >= 3 * 64  # 3 ε copies of a batch per forward
    for res in fgsm_sweep(model, x, y, eps, 64, "cpu"):
        assert torch.equal(res.adv_pred, reference_fgsm_predictions(model, x, y, res.epsilon, 64))


@pytest.mark.parametrize("forward_bytes, cpu_max", [(1, 256), (2**40, 4096)])
def test_fgsm_sweep_equals_torchattacks_at_the_smallest_and_largest_forwards(
        trained, forward_bytes, cpu_max, monkeypatch):
    """Forwards of MIN_FORWARD images (pieces of each batch) and of 4096 (all ε copies of a
    batch at once) give the same predictions as torchattacks' one forward per batch."""
    model, x, y = trained
    monkeypatch.setattr(fgsm_module, "FORWARD_BYTES", forward_bytes)
    monkeypatch.setattr(fgsm_module, "CPU_MAX_FORWARD", cpu_max)
    chunk = forward_chunk(model, x[:1], "cpu")
    assert chunk == (fgsm_module.MIN_FORWARD if forward_bytes == 1 else 4096)
    for res in fgsm_sweep(model, x, y, EPSILONS, 100, "cpu"):
        assert torch.equal(res.adv_pred, reference_fgsm_predictions(model, x, y, res.epsilon, 100))


@pytest.fixture(scope="module")
def tutorial_lenet():
    """The PyTorch FGSM tutorial's LeNet (log_softmax, dropout), trained briefly on 28×28 digits."""
    x_train, y_train = upsampled_digits(1000, split="train", seed=1)
    x, y = upsampled_digits(600, split="test", seed=2)
    torch.manual_seed(0)
    model = train_briefly(TutorialLeNet(), x_train, y_train, epochs=3, batch_size=32, lr=5e-3)
    return model, x, y


def test_fgsm_sweep_equals_torchattacks_on_the_tutorial_lenet_at_the_suite_default(tutorial_lenet):
    """The suite's default batch (600 images: one batch of 512 cut into pieces of the default
    forward, then one of 88 whose ε copies share forwards) and the model's dropout in training
    mode, as the tutorial leaves it: the sweep must put it in eval mode, like torchattacks."""
    model, x, y = tutorial_lenet
    batch = defaults.EVAL_BATCH_SIZE
    chunk = forward_chunk(model, x[:1], "cpu")
    assert 88 < chunk < batch < len(y)  # both ways of cutting forwards are exercised
    model.train()
    try:
        results = fgsm_sweep(model, x, y, EPSILONS, batch, "cpu")
        assert model.training
        model.eval()
        for res in results:
            expected = reference_fgsm_predictions(model, x, y, res.epsilon, batch)
            assert torch.equal(res.adv_pred, expected), f"ε={res.epsilon}"
    finally:
        model.eval()
    accs = [(r.adv_pred == y).float().mean().item() for r in results]
    assert accs[0] > 0.6 and accs[-1] < accs[0] - 0.3  # trained, and really attacked


def test_fgsm_sweep_equals_torchattacks_on_a_cifar_resnet18():
    """bench's ResNet-18 (BatchNorm, residual adds) on 32×32×3 images: forwards of 32 images
    (its largest activation is 64×32×32 floats), so a batch of 34 is cut into 17 + 17."""
    torch.manual_seed(0)
    model = build_classifier("resnet18", None, (3, 32, 32), 10).eval()
    gen = torch.Generator().manual_seed(0)
    x, y = torch.rand(34, 3, 32, 32, generator=gen), torch.randint(0, 10, (34,), generator=gen)
    assert largest_activation_bytes(model, x[:1]) == 64 * 32 * 32 * 4
    assert forward_chunk(model, x[:1], "cpu") == 32
    for res in fgsm_sweep(model, x, y, [0.0, 8 / 255], 34, "cpu"):
        assert torch.equal(res.adv_pred, reference_fgsm_predictions(model, x, y, res.epsilon, 34))


def test_epsilon_zero_reuses_the_clean_forward_only_when_fgsm_leaves_the_input_alone(trained):
    """At ε=0 the clamp changes inputs outside [0, 1]: then the predictions must be those of
    the clamped images (an adversarial forward), not those of the gradient's forward."""
    model, x, y = trained
    x = x[:100] * 3  # many pixels above 1 (torchattacks itself refuses such inputs)
    (res,) = fgsm_sweep(model, x, y[:100], [0.0], 100, "cpu")
    with torch.no_grad():
        clamped, raw = model(x.clamp(0, 1)).argmax(1), model(x).argmax(1)
    assert not torch.equal(clamped, raw)  # the case is one where reuse would be wrong
    assert torch.equal(res.adv_pred, clamped)
    assert res.linf.max().item() > 0


def test_forward_chunk_follows_the_largest_activation_and_leaves_no_hooks():
    def net(channels):
        return torch.nn.Sequential(torch.nn.Conv2d(1, channels, 1), torch.nn.ReLU(),
                                   torch.nn.Flatten(), torch.nn.Linear(channels * 784, 10))

    example = torch.zeros(1, 1, 28, 28)
    assert largest_activation_bytes(net(27), example) == 27 * 784 * 4
    assert forward_chunk(net(27), example, "cpu") == 8 * 2**20 // (27 * 784 * 4) == 99
    assert forward_chunk(net(2), example, "cpu") == fgsm_module.CPU_MAX_FORWARD  # small: capped
    assert forward_chunk(net(512), example, "cpu") == fgsm_module.MIN_FORWARD  # huge: floor
    assert forward_chunk(net(2), example, "cuda") == fgsm_module.MAX_FORWARD  # a GPU: largest
    model = net(27)
    forward_chunk(model, example, "cpu")
    assert all(not m._forward_hooks for m in model.modules())


def test_fgsm_sweep_attacks_in_eval_mode_and_restores_train_mode(trained):
    model, x, y = trained
    model.train()
    try:
        (res,) = fgsm_sweep(model, x, y, [0.1], 128, "cpu")
        assert model.training  # restored
        model.eval()
        assert torch.equal(res.adv_pred, reference_fgsm_predictions(model, x, y, 0.1, 128))
    finally:
        model.eval()


def test_perturbations_stay_in_the_epsilon_ball(trained):
    model, x, y = trained
    for res in fgsm_sweep(model, x, y, EPSILONS, 128, "cpu"):
        assert res.linf.max().item() <= res.epsilon + 1e-6
    for res in pgd_sweep(model, x, y, [0.0, 0.1], 128, "cpu", steps=3):
        assert res.linf.max().item() <= res.epsilon + 1e-6


def test_pgd_is_at_least_as_strong_as_fgsm(trained):
    model, x, y = trained
    eps = [0.1, 0.2]
    fgsm = fgsm_sweep(model, x, y, eps, 300, "cpu")
    pgd = pgd_sweep(model, x, y, eps, 300, "cpu", steps=10)
    for f, p in zip(fgsm, pgd):
        n = len(y)
        assert (p.adv_pred == y).sum().item() <= (f.adv_pred == y).sum().item() + 0.02 * n
        assert "PGD(" in p.attack_repr and "steps=10" in p.attack_repr


def test_seeded_pgd_is_reproducible_and_leaves_the_global_rng_alone(trained):
    model, x, y = trained
    x, y = x[:100], y[:100]
    state = torch.get_rng_state()
    a = pgd_sweep(model, x, y, [0.1, 0.2], 50, "cpu", steps=3, seed=5)
    b = pgd_sweep(model, x, y, [0.2], 50, "cpu", steps=3, seed=5)  # other ε do not matter
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(a[1].adv_pred, b[0].adv_pred)
    assert torch.equal(a[1].linf, b[0].linf)
    one = pgd_attack(model, x, y, 0.2, steps=3, seed=1)
    assert torch.equal(one, pgd_attack(model, x, y, 0.2, steps=3, seed=1))
    assert not torch.equal(one, pgd_attack(model, x, y, 0.2, steps=3, seed=2))


def test_attack_registry_lists_the_sweeps():
    assert {"fgsm", "pgd", "autoattack"} <= set(ATTACKS.names())
    assert ATTACKS.get("fgsm") is fgsm_sweep and ATTACKS.get("pgd") is pgd_sweep


def test_robustness_cell_rows(trained, tmp_path):
    model, _, _ = trained
    weights = tmp_path / "w.pt"
    torch.save(model.state_dict(), weights)
    config = RobustnessCellConfig(
        model="cnn", source=TrainedSource(arch="small-cnn",
                                          normalize=Normalization(mean=[0.3], std=[0.4])),
        dataset=DIGITS, split="test", attack="fgsm", attack_params=FgsmParams(norm="linf"),
        epsilons=[0.0, 0.1], batch_size=128, limit=200, seed=0)
    env = RunEnv(device="cpu", cache_dir=tmp_path, artifacts_dir=tmp_path, progress=False)
    rows = run_robustness_cell(config, {"model": CellResult(artifacts={"weights": str(weights)})},
                               env).records["robustness"]
    assert [r["epsilon"] for r in rows] == [0.0, 0.1]
    assert all(r["n"] == 200 and r["linf_ok"] for r in rows)
    assert rows[0]["robust_acc"] == rows[0]["clean_acc"] > 0.8
    assert rows[1]["robust_acc"] < rows[0]["robust_acc"]
    assert rows[1]["acc_drop"] == rows[1]["clean_acc"] - rows[1]["robust_acc"]
    assert rows[0]["images_per_s"] > 0


# -- what else the sweep reports: the perturbation sizes and the clean predictions -------------

def direct_fgsm(model, x, y, eps, batch_size):
    """torchattacks.FGSM batch by batch, and the sizes measured on its output: (predictions,
    L∞, L2)."""
    preds, linf, l2 = [], [], []
    for xb, yb in zip(x.split(batch_size), y.split(batch_size)):
        adv = torchattacks.FGSM(model, eps=eps)(xb, yb)
        with torch.no_grad():
            preds.append(model(adv).argmax(1))
        linf.append(linf_per_sample(adv, xb))
        l2.append(l2_per_sample(adv, xb))
    return torch.cat(preds), torch.cat(linf), torch.cat(l2)


def clamp_bites(model, x, y, eps, batch_size):
    """Whether x + ε·sign(∇ₓ loss) leaves [0, 1] anywhere: whether FGSM's clamp changes a pixel."""
    model.eval()
    return any(bool(((xb + eps * input_gradient(model, xb, yb).sign()) - 0.5).abs().gt(0.5).any())
               for xb, yb in zip(x.split(batch_size), y.split(batch_size)))


@pytest.fixture(scope="module")
def resnet18_images():
    """12 images: at the batch size of 10 below, a whole batch and a short one."""
    torch.manual_seed(0)
    model = build_classifier("resnet18", None, (3, 32, 32), 10).eval()
    gen = torch.Generator().manual_seed(0)
    return model, torch.rand(12, 3, 32, 32, generator=gen), torch.randint(0, 10, (12,), generator=gen)


@pytest.fixture(params=["small-cnn", "tutorial-lenet", "resnet18"])
def architecture(request):
    """(model, x, y, batch size) for each architecture the sweep is proven equal on."""
    if request.param == "small-cnn":
        model, x, y = request.getfixturevalue("trained")
        return model, x, y, 128
    if request.param == "tutorial-lenet":
        model, x, y = request.getfixturevalue("tutorial_lenet")
        return model, x[:300], y[:300], 128
    return (*request.getfixturevalue("resnet18_images"), 10)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("clamp", ["bites", "never"])
def test_fgsm_sweep_norms_equal_those_measured_on_torchattacks_images(architecture, clamp,
                                                                       threads):
    """L∞ and L2 per sample, bit for bit, on the images as they come (digits: pixels at 0 and
    1, where the clamp cuts the step short) and squeezed into [0.35, 0.65] (no ε ≤ 0.3 step
    leaves [0, 1]: there L∞ is ε up to the rounding of x + ε, so sizes derived from ε would
    equal the measured ones only within that rounding)."""
    model, x, y, batch = architecture
    if clamp == "never":
        x = 0.35 + 0.3 * x
    eps = [0.0, 8 / 255, 0.3]
    assert clamp_bites(model, x, y, eps[-1], batch) == (clamp == "bites")  # the case it claims
    with torch_threads(threads):
        results = fgsm_sweep(model, x, y, eps, batch, "cpu")
        for e, res in zip(eps, results):
            pred, linf, l2 = direct_fgsm(model, x, y, e, batch)
            assert torch.equal(res.adv_pred, pred), f"ε={e}"
            assert torch.equal(res.linf, linf) and torch.equal(res.l2, l2), f"ε={e}"
            if clamp == "never":
                assert (res.linf - e).abs().max().item() <= 2**-23
    assert results[-1].linf.min().item() > 0  # the sizes are not trivially zero


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("batch_size", [7, 100, 512])
def test_fgsm_clean_predictions_are_those_of_predict(architecture, batch_size, threads):
    """`clean_pred`, taken from the gradient pass, equals a `predict` pass at the same batch
    size, on every architecture; the model may come in train mode (the LeNet's dropout)."""
    model, x, y, _ = architecture
    with torch_threads(threads):
        model.train()
        try:
            results = fgsm_sweep(model, x, y, [0.0, 0.1], batch_size, "cpu")
            expected = predict(model, x, batch_size, "cpu")
        finally:
            model.eval()
    assert all(res.clean_pred is results[0].clean_pred for res in results)
    assert results[0].clean_pred.dtype == torch.long and results[0].clean_pred.device.type == "cpu"
    assert torch.equal(results[0].clean_pred, expected)
    assert torch.equal(results[0].adv_pred, expected)  # ε = 0: the same forward


def test_fgsm_sweep_equals_torchattacks_on_the_tutorial_lenet_on_two_threads(tutorial_lenet):
    """On 2 threads the forwards hold twice as many images (a whole batch of 512 here)."""
    model, x, y = tutorial_lenet
    with torch_threads(2):
        assert forward_chunk(model, x[:1], "cpu") == 2 * forward_chunk(model, x[:1], "cpu", 1)
        for res in fgsm_sweep(model, x, y, EPSILONS, defaults.EVAL_BATCH_SIZE, "cpu"):
            expected = reference_fgsm_predictions(model, x, y, res.epsilon,
                                                  defaults.EVAL_BATCH_SIZE)
            assert torch.equal(res.adv_pred, expected), f"ε={res.epsilon}"


def test_forward_chunk_scales_with_the_threads():
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 27, 1), torch.nn.Flatten(),
                              torch.nn.Linear(27 * 784, 10))
    example = torch.zeros(1, 1, 28, 28)
    assert forward_chunk(net, example, "cpu", threads=1) == 99
    assert forward_chunk(net, example, "cpu", threads=4) == 4 * 99
    assert forward_chunk(net, example, "cuda", threads=4) == fgsm_module.MAX_FORWARD


def _cell(trained, tmp_path, attack_params, attack="fgsm"):
    model, _, _ = trained
    weights = tmp_path / "w.pt"
    torch.save(model.state_dict(), weights)
    config = RobustnessCellConfig(
        model="cnn", source=TrainedSource(arch="small-cnn",
                                          normalize=Normalization(mean=[0.3], std=[0.4])),
        dataset=DIGITS, split="test", attack=attack, attack_params=attack_params,
        epsilons=[0.0, 0.1], batch_size=128, limit=200, seed=0)
    env = RunEnv(device="cpu", cache_dir=tmp_path, artifacts_dir=tmp_path, progress=False)
    inputs = {"model": CellResult(artifacts={"weights": str(weights)})}
    return run_robustness_cell(config, inputs, env).records


def test_the_fgsm_cell_takes_its_clean_predictions_from_the_sweep(trained, tmp_path,
                                                                   monkeypatch):
    """No clean pass of its own for FGSM (its sweep gives them); one for an attack that does not
    (PGD). Either way the clean columns are those of `predict`."""
    calls = []

    def counting_predict(*args, **kwargs):
        calls.append(args)
        return predict(*args, **kwargs)

    monkeypatch.setattr(robustness_cell, "predict", counting_predict)
    fgsm = _cell(trained, tmp_path, FgsmParams(norm="linf"))
    assert calls == []
    pgd = _cell(trained, tmp_path, PgdParams(norm="linf", steps=1, alpha=None, random_start=False,
                                             restarts=1, loss="ce"), attack="pgd")
    assert len(calls) == 1
    model, x = calls[0][0], calls[0][1]
    split = load_dataset(DIGITS, "test")
    y = split.y[subset_indices(len(split), 200, DIGITS.seed)]
    clean_ok = predict(model, x, 128, "cpu") == y
    for records in (fgsm, pgd):
        assert [r["n_clean_correct"] for r in records["robustness"]] == [int(clean_ok.sum())] * 2
        for row in records["correctness"]:
            assert np.array_equal(unpack_bits(row["clean_correct"], 200), clean_ok.numpy())
