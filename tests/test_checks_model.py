"""The model-level sanity checks (bench.checks): each fires on a model built to trip it and
stays silent on sound models (a digits MLP, and a small CNN whose BatchNorm keeps running
statistics)."""

import math

import numpy as np
import pytest
import torch

from bench.attacks import input_gradient, predict
from bench.attacks.pgd import pgd_sweep
from bench.checks.convergence import (
    convergence_outcome,
    convergence_subset,
    stronger_pgd,
)
from bench.checks.determinism import determinism_check, prediction_changes
from bench.checks.saturation import gradient_saturation_check, zero_gradient_mask
from bench.checks.unbounded import unbounded_epsilon, unbounded_epsilon_check
from bench.checks.verdict import allowed_flips, check_row
from bench.data import ImageData, load_dataset
from bench.models.build import build_classifier
from bench.store import schema as S
from bench.suite.schema import TrainConfig
from bench.training.loop import train_classifier
from tests.helpers import broken_models as B
from tests.helpers.configs import DIGITS

N = 256  # bench.defaults.CHECK_SAMPLE


@pytest.fixture(scope="module")
def mlp(digits_mlp):
    model, x, y = digits_mlp
    return model, x[:N], y[:N]


@pytest.fixture(scope="module")
def cnn():
    """small-cnn (BatchNorm with running statistics) trained briefly on the digits."""
    train, test = load_dataset(DIGITS, "train"), load_dataset(DIGITS, "test")
    torch.manual_seed(0)
    model = build_classifier("small-cnn", None, (1, 8, 8), 10)
    cfg = TrainConfig(recipe="standard", epochs=2, lr=2e-3, batch_size=128, optimizer="adam")
    train_classifier(model, train, ImageData(test.x[:50], test.y[:50], 10, "digits"), cfg,
                     seed=0, device="cpu")
    return model.eval(), test.x[:N], test.y[:N]


# -- determinism and batch independence -------------------------------------------------------

@pytest.mark.parametrize("which", ["mlp", "cnn"])
def test_determinism_is_silent_on_sound_models(which, request):
    model, x, _ = request.getfixturevalue(which)
    out = determinism_check(model, x, "cpu", batch_size=512, seed=0)
    assert out.passed and out.value == 0, out.detail
    for way in ("repeated", "alone", "shuffled (batch 86)", "stacked with 256 noise images"):
        assert f"{way} 0 of 256 changed" in out.detail


def test_determinism_fires_on_dropout_left_on(mlp):
    model, x, _ = mlp
    changes = prediction_changes(B.DropoutAlwaysOn(model), x, "cpu", batch_size=512)
    assert [c.arrangement for c in changes][:2] == ["repeated", "alone"]
    assert all(c.changed > 20 for c in changes)  # every arrangement sees it, a repeat too
    out = determinism_check(B.DropoutAlwaysOn(model), x, "cpu", batch_size=512)
    assert not out.passed and out.value > 20 and "not a fixed function" in out.detail


def test_determinism_fires_on_a_randomized_defense(mlp):
    model, x, _ = mlp
    out = determinism_check(B.NoisyInput(model), x, "cpu", batch_size=512)
    assert not out.passed and "repeated" in out.detail
    assert prediction_changes(B.NoisyInput(model), x, "cpu", batch_size=512)[0].changed > 20


def test_determinism_fires_on_batchnorm_without_running_stats(mlp):
    """BatchNorm1d refuses a lone input (recorded, not raised); a batch stacked with other
    inputs, as the FGSM sweep stacks every ε, changes the predictions."""
    _, x, _ = mlp
    model = B.train_digits_bn_mlp()
    changes = {c.arrangement.split(" ")[0]: c
               for c in prediction_changes(model, x, "cpu", batch_size=512)}
    assert changes["repeated"].changed == 0  # not random: only the batch matters
    assert "Expected more than 1 value per channel" in changes["alone"].error
    assert changes["stacked"].changed > 10
    out = determinism_check(model, x, "cpu", batch_size=512)
    assert not out.passed and "alone: fails" in out.detail
    # BatchNorm2d normalises a lone input over its pixels: it runs, and changes predictions.
    cnn_changes = prediction_changes(B.untrained_cnn_without_running_stats(), x, "cpu",
                                     batch_size=512)
    assert not any(c.error for c in cnn_changes)
    assert cnn_changes[1].changed > 10 and cnn_changes[3].changed > 10


def test_determinism_leaves_the_rng_and_the_mode_as_they_were(mlp):
    model, x, _ = mlp
    noisy = B.NoisyInput(model).train()
    state = torch.get_rng_state()
    first = prediction_changes(noisy, x, "cpu", batch_size=64, seed=3)
    assert torch.equal(torch.get_rng_state(), state) and noisy.training
    assert prediction_changes(noisy, x, "cpu", batch_size=64, seed=3) == first  # seeded


def test_kernel_flips_are_excused_up_to_the_allowance():
    assert allowed_flips(256) == 1 and allowed_flips(10_000) == 10 and allowed_flips(0) == 1


# -- per-sample gradient saturation -----------------------------------------------------------

def scaled_to_saturate(model, x, share: float = 0.3):
    """Logits scaled so that about `share` of the examples have an exactly-zero gradient:
    the margin quantile at 1 - share lands near where float32's exp underflows."""
    with torch.no_grad():
        top2 = model(x).topk(2, 1).values
    margin = top2[:, 0] - top2[:, 1]
    return B.ScaledLogits(model, 100.0 / float(margin.quantile(1 - share)))


def test_saturation_fires_on_30_percent_zero_gradients_that_the_old_flag_passes(mlp):
    model, x, y = mlp
    masked = scaled_to_saturate(model, x)
    mask = zero_gradient_mask(masked, x, y, "cpu", batch_size=512)
    assert 0.25 <= mask.float().mean() <= 0.35
    # The old whole-tensor count of zero entries, against its threshold of 0.5, passed it.
    grad = input_gradient(masked, x, y)
    assert (grad == 0).sum().item() / grad.numel() <= 0.5
    out = gradient_saturation_check(masked, x, y, "cpu", batch_size=512)
    assert not out.passed and out.value == pytest.approx(float(mask.float().mean()))
    assert "square" in out.detail and "autoattack" in out.detail
    # Only correctly classified examples can saturate: the true class's gradient is p - 1.
    assert (predict(masked, x, 512, "cpu")[mask] == y[mask]).all()


@pytest.mark.parametrize("which", ["mlp", "cnn"])
def test_saturation_is_silent_on_sound_models(which, request):
    model, x, y = request.getfixturevalue(which)
    out = gradient_saturation_check(model, x, y, "cpu", batch_size=100)
    assert out.passed and out.value == 0.0, out.detail


def test_saturation_mask_does_not_depend_on_the_batch_size(mlp):
    model, x, y = mlp
    masked = scaled_to_saturate(model, x)
    big = zero_gradient_mask(masked, x, y, "cpu", batch_size=512)
    # The mean loss divides by the batch size, so underflow can shift at the edge; the
    # share may only move by the few examples right at it.
    small = zero_gradient_mask(masked, x, y, "cpu", batch_size=32)
    assert abs(int(big.sum()) - int(small.sum())) <= 0.1 * int(big.sum())


# -- unbounded ε ------------------------------------------------------------------------------

@pytest.mark.parametrize("broken", ["ignores its input", "quantises its input",
                                    "saturates its logits"])
def test_unbounded_epsilon_fires_when_the_attack_cannot_reach_the_model(mlp, broken):
    model, x, y = mlp
    wrapped = {"ignores its input": B.IgnoresInput(),
               "quantises its input": B.QuantisedInput(model),
               "saturates its logits": B.ScaledLogits(model, 1000.0)}[broken]
    out = unbounded_epsilon_check(wrapped, x, y, "cpu", batch_size=512)
    assert not out.passed and out.value > 0.05, out.detail
    assert "not reaching the model" in out.detail


@pytest.mark.parametrize("which", ["mlp", "cnn"])
def test_unbounded_epsilon_is_silent_on_sound_models(which, request):
    model, x, y = request.getfixturevalue(which)
    out = unbounded_epsilon_check(model, x, y, "cpu", batch_size=512)
    assert out.passed and out.value == 0.0, out.detail


def test_unbounded_epsilon_in_l2_is_the_cube_diagonal(mlp):
    model, x, y = mlp
    assert unbounded_epsilon("l2", x) == pytest.approx(8.0)  # sqrt(64 pixels)
    assert unbounded_epsilon_check(model, x, y, "cpu", batch_size=512, norm="l2").passed
    assert not unbounded_epsilon_check(B.IgnoresInput(), x, y, "cpu", batch_size=512,
                                       norm="l2").passed


# -- PGD convergence --------------------------------------------------------------------------

def test_convergence_fires_on_a_pgd_that_cannot_reach_the_ball_edge(mlp):
    """2 steps of ε/8 cover a quarter of ε; 10 steps × 5 restarts of ε/8 cover all of it."""
    model, x, y = mlp
    clean = predict(model, x, 512, "cpu") == y
    (weak,) = pgd_sweep(model, x, y, [0.1], 512, "cpu", steps=2, alpha=0.1 / 8, seed=0)
    (strong,) = stronger_pgd(model, x, y, [0.1], 512, "cpu", steps=2, alpha=0.1 / 8,
                             restarts=1, loss="ce", norm="linf", seed=0)
    assert strong.params["steps"] == 10 and strong.params["restarts"] == 5
    assert strong.params["random_start"] is True
    out = convergence_outcome(clean, weak.adv_correct, strong.adv_correct, epsilon=0.1)
    assert not out.passed and out.p_value < 1e-6 and out.value > 0.3
    assert "had not converged" in out.detail


def test_convergence_is_silent_on_a_converged_pgd(mlp):
    model, x, y = mlp
    idx = convergence_subset(len(y), 128, seed=0)
    x, y = x[idx], y[idx]
    clean = predict(model, x, 512, "cpu") == y
    (base,) = pgd_sweep(model, x, y, [0.05], 512, "cpu", steps=40, seed=0)
    (strong,) = stronger_pgd(model, x, y, [0.05], 512, "cpu", steps=40, alpha=None,
                             restarts=1, loss="ce", norm="linf", seed=0)
    out = convergence_outcome(clean, base.adv_correct, strong.adv_correct, epsilon=0.05)
    assert out.passed and out.p_value > 0.05, out.detail


def test_convergence_subset_is_seeded_and_sorted():
    a, b = convergence_subset(1000, 100, seed=1), convergence_subset(1000, 100, seed=1)
    assert torch.equal(a, b) and torch.equal(a, a.sort().values) and len(set(a.tolist())) == 100
    assert not torch.equal(a, convergence_subset(1000, 100, seed=2))
    assert len(convergence_subset(50, 100)) == 50


# -- the verdict row --------------------------------------------------------------------------

def test_check_row_carries_identity_outcome_and_meaning(mlp):
    model, x, y = mlp
    row = check_row(gradient_saturation_check(model, x, y, "cpu", batch_size=512),
                    model="mlp", seed=0, attack="pgd", setting="steps=10")
    assert row["check"] == "gradient_saturation" and row["passed"] is True
    assert row["epsilon"] is None and row["seed"] == 0 and math.isnan(row["p_value"])
    assert "exactly zero" in row["catches"] and row["detail"].endswith(".")
    assert list(row) == list(S.COLUMNS[S.CHECKS])  # declared in the schema, in its order
    assert np.isfinite(row["value"])


def test_model_checks_refuse_an_empty_sample(mlp):
    model, x, y = mlp
    with pytest.raises(ValueError, match="at least one input"):
        determinism_check(model, x[:0], "cpu", batch_size=512)
    with pytest.raises(ValueError, match="at least one example"):
        unbounded_epsilon_check(model, x[:0], y[:0], "cpu", batch_size=512)
