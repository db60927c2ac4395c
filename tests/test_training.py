"""Adversarial-training perturbations, the training loop and the train cell's weights cache."""

import copy
import math
import os

import pytest
import torch

from bench.cells import RunEnv
from bench.cells import train as train_cell
from bench.data import ImageData, load_dataset
from bench.errors import CellFailed
from bench.models.build import build_classifier
from bench.suite.cell_configs import TrainCellConfig
from bench.suite.schema import TrainConfig
from bench.training import overfit, perturb
from bench.training.loop import train_classifier
from bench.training.overfit import catastrophic_overfit
from tests.helpers.configs import digits_config

DIGITS = digits_config(limit_train=400)



def small_cnn(seed=0):
    torch.manual_seed(seed)
    return build_classifier("small-cnn", None, (1, 8, 8), 10)


def train_cfg(**overrides) -> TrainConfig:
    return TrainConfig(**({"epochs": 3, "lr": 2e-3, "batch_size": 64} | overrides))


@pytest.mark.parametrize("make", [
    lambda m, x, y, g: perturb.fgsm_rs(m, x, y, 0.1, generator=g),
    lambda m, x, y, g: perturb.fgsm_rs(m, x, y, 0.1, alpha=0.5, generator=g),  # projected back
    lambda m, x, y, g: perturb.pgd(m, x, y, 0.1, steps=5, alpha=0.05, generator=g),
    lambda m, x, y, g: perturb.pgd(m, x, y, 0.1, steps=5, alpha=0.05, random_start=False),
], ids=["fgsm-rs", "fgsm-rs-big-step", "pgd", "pgd-no-start"])
def test_training_perturbations_stay_in_the_ball_and_in_pixel_range(make):
    model = small_cnn().train()
    x = torch.rand(32, 1, 8, 8)
    x[:, :, :2] = 0.0  # pixels at the edges of [0, 1], where the clamp matters
    x[:, :, -2:] = 1.0
    y = torch.randint(0, 10, (32,))
    x_adv = make(model, x, y, torch.Generator().manual_seed(0))
    assert x_adv.shape == x.shape and not x_adv.requires_grad
    assert (x_adv - x).abs().max().item() <= 0.1 + 1e-6
    assert x_adv.min().item() >= 0.0 and x_adv.max().item() <= 1.0
    assert (x_adv != x).any()
    assert all(p.grad is None for p in model.parameters())  # the optimiser's grads stay clean


def test_random_starts_come_from_the_generator():
    model, x, y = small_cnn(), torch.rand(8, 1, 8, 8), torch.randint(0, 10, (8,))
    a = perturb.fgsm_rs(model, x, y, 0.1, generator=torch.Generator().manual_seed(3))
    b = perturb.fgsm_rs(model, x, y, 0.1, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


def test_catastrophic_overfitting_rule():
    assert not catastrophic_overfit(train_acc=0.9, pgd_acc=0.45, best_pgd_before=0.5)
    assert catastrophic_overfit(train_acc=0.9, pgd_acc=0.1, best_pgd_before=0.5)  # < 30% of best
    assert catastrophic_overfit(train_acc=0.9, pgd_acc=0.0, best_pgd_before=-math.inf)  # near zero
    assert not catastrophic_overfit(train_acc=0.3, pgd_acc=0.0, best_pgd_before=0.5)  # not fitting


def digits_split():
    data = load_dataset(DIGITS, "train")
    return train_cell.split_heldout(data, seed=0)


def test_short_standard_training_learns_and_reports_every_epoch():
    train, heldout = digits_split()
    model = small_cnn()
    before = _accuracy(model, heldout)
    cfg = train_cfg(batch_size=16, lr=3e-3)
    history = train_classifier(model, train, heldout, cfg, seed=0, device="cpu")
    assert [h["epoch"] for h in history] == [1, 2, 3]
    assert set(history[0]) == {"epoch", "train_loss", "train_acc", "heldout_clean_acc",
                               "heldout_pgd_acc", "catastrophic_overfit", "kept", "seconds"}
    assert history[-1]["heldout_clean_acc"] > max(0.8, before + 0.3)
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert all(math.isnan(h["heldout_pgd_acc"]) for h in history)  # standard: no PGD watch
    assert not model.training


def test_fgsm_rs_training_measures_heldout_pgd_and_is_reproducible():
    train, heldout = digits_split()
    cfg = train_cfg(recipe="fgsm-rs", epsilon=0.2, epochs=2)
    runs = []
    for _ in range(2):
        model = small_cnn()
        history = train_classifier(model, train, heldout, cfg, seed=1, device="cpu")
        runs.append(([{k: v for k, v in h.items() if k != "seconds"} for h in history],
                     model.state_dict()))
    (h1, s1), (h2, s2) = runs
    assert h1 == h2 and all(torch.equal(s1[k], s2[k]) for k in s1)
    assert all(0.0 <= h["heldout_pgd_acc"] <= 1.0 for h in h1)
    assert all(isinstance(h["catastrophic_overfit"], bool) for h in h1)


def test_pgd_recipe_trains():
    train, heldout = digits_split()
    history = train_classifier(small_cnn(), train, heldout,
                               train_cfg(recipe="pgd", epsilon=0.1, steps=2, epochs=1),
                               seed=0, device="cpu")
    assert len(history) == 1 and 0.0 <= history[0]["heldout_pgd_acc"] <= 1.0


def test_stop_on_overfit_stops_at_the_flagged_epoch(monkeypatch):
    flags = iter([False, True, False, False])
    monkeypatch.setattr(overfit, "catastrophic_overfit", lambda *args: next(flags))
    train, heldout = digits_split()
    cfg = train_cfg(recipe="fgsm-rs", epsilon=0.2, epochs=4, stop_on_overfit=True)
    history = train_classifier(small_cnn(), train, heldout, cfg, seed=0, device="cpu")
    assert [h["catastrophic_overfit"] for h in history] == [False, True]


def test_heldout_slice_is_disjoint_seeded_and_small():
    data = load_dataset(DIGITS, "train")
    train, heldout = train_cell.split_heldout(data, seed=0)
    assert len(train) + len(heldout) == len(data) and len(heldout) == 40
    again = train_cell.split_heldout(data, seed=0)[1]
    assert torch.equal(heldout.x, again.x)


def test_train_cell_caches_weights_and_history(tmp_path, monkeypatch):
    config = TrainCellConfig(model="cnn", arch="small-cnn", dataset=DIGITS, normalize=None,
                             train=train_cfg(epochs=1), seed=0)
    env = RunEnv(device="cpu", cache_dir=tmp_path / "cache", artifacts_dir=tmp_path, progress=False)
    rng = torch.get_rng_state()
    first = train_cell.run_train_cell(config, {}, env)
    assert torch.equal(torch.get_rng_state(), rng)  # seeded in a fork: no global RNG leaks
    weights = first.artifacts["weights"]
    assert weights.startswith(str(tmp_path / "cache" / "models"))
    folder = tmp_path / "cache" / "models"
    mtimes = (folder.stat().st_mtime_ns, os.stat(weights).st_mtime_ns)
    row = first.records["training"][0]
    assert row["model"] == "cnn" and row["recipe"] == "standard" and math.isnan(row["epsilon"])

    def no_training(*args, **kwargs):
        raise AssertionError("the second run retrained")

    monkeypatch.setattr(train_cell, "train_classifier", no_training)
    second = train_cell.run_train_cell(config, {}, env)
    assert second.artifacts == first.artifacts
    assert (folder.stat().st_mtime_ns, os.stat(weights).st_mtime_ns) == mtimes
    assert _same_rows(second.records["training"], first.records["training"])
    state = torch.load(weights, weights_only=True)
    model = build_classifier(config.arch, config.normalize, (1, 8, 8), 10)
    model.load_state_dict(state, strict=True)
    # A different config is a different cache entry.
    with pytest.raises(AssertionError, match="retrained"):
        train_cell.run_train_cell(config.model_copy(update={"seed": 1}), {}, env)


def _same_rows(a, b):
    def norm(rows):
        return [{k: ("nan" if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()}
                for r in rows]

    return norm(a) == norm(b)


def _accuracy(model, data: ImageData) -> float:
    model.eval()
    with torch.no_grad():
        return (model(data.x).argmax(1) == data.y).float().mean().item()


# -- which weights training keeps ---------------------------------------------------------------


def scripted(monkeypatch, pgd_accs, flags=None):
    """Make the held-out evaluation report `pgd_accs` (and the rule `flags`); returns the
    model's weights as they were at each evaluation."""
    from bench.training import loop

    accs, states = iter(pgd_accs), []

    def evaluate(model, heldout, epsilon, seed, device):
        states.append(copy.deepcopy(model.state_dict()))
        return 0.9, next(accs)

    monkeypatch.setattr(loop, "evaluate", evaluate)
    if flags is not None:
        flag_iter = iter(flags)
        monkeypatch.setattr(overfit, "catastrophic_overfit", lambda *args: next(flag_iter))
    return states


def same_weights(model, state):
    return all(torch.equal(v, state[k]) for k, v in model.state_dict().items())


def test_fgsm_rs_keeps_the_best_pgd_epoch_and_records_it(monkeypatch):
    states = scripted(monkeypatch, [0.30, 0.50, 0.20, 0.40])
    train, heldout = digits_split()
    model = small_cnn()
    history = train_classifier(model, train, heldout, train_cfg(recipe="fgsm-rs", epsilon=0.2,
                                                                epochs=4), seed=0, device="cpu")
    assert [h["kept"] for h in history] == [False, True, False, False]
    assert same_weights(model, states[1]) and not same_weights(model, states[3])


def test_best_pgd_never_keeps_a_flagged_epoch(monkeypatch):
    states = scripted(monkeypatch, [0.30, 0.20, 0.90, 0.25], flags=[False, False, True, False])
    train, heldout = digits_split()
    model = small_cnn()
    history = train_classifier(model, train, heldout, train_cfg(recipe="fgsm-rs", epsilon=0.2,
                                                                epochs=4), seed=0, device="cpu")
    assert [h["kept"] for h in history] == [True, False, False, False]
    assert same_weights(model, states[0])


def test_pgd_recipe_and_keep_last_keep_the_last_epoch(monkeypatch):
    scripted(monkeypatch, [0.5, 0.1, 0.2] * 2)
    train, heldout = digits_split()
    for cfg in (train_cfg(recipe="pgd", epsilon=0.1, steps=1, epochs=3),
                train_cfg(recipe="fgsm-rs", epsilon=0.2, epochs=3, keep="last")):
        history = train_classifier(small_cnn(), train, heldout, cfg, seed=0, device="cpu")
        assert [h["kept"] for h in history] == [False, False, True]


def test_stop_on_overfit_keeps_the_epoch_before_the_flag(monkeypatch):
    states = scripted(monkeypatch, [0.3, 0.4, 0.01], flags=[False, False, True])
    train, heldout = digits_split()
    model = small_cnn()
    cfg = train_cfg(recipe="pgd", epsilon=0.1, steps=1, epochs=5, stop_on_overfit=True)
    history = train_classifier(model, train, heldout, cfg, seed=0, device="cpu")
    assert [h["kept"] for h in history] == [False, True, False]
    assert same_weights(model, states[1])


@pytest.mark.parametrize("overrides, reason", [
    ({"stop_on_overfit": True}, "in epoch 1 .*stop_on_overfit"),
    ({"stop_on_overfit": True, "keep": "last"}, "in epoch 1 .*stop_on_overfit"),
    ({}, "in epoch 1 .*every epoch was flagged"),  # best-pgd with nothing unflagged
])
def test_collapse_with_nothing_to_keep_fails_the_cell_with_the_reason(monkeypatch, tmp_path,
                                                                      overrides, reason):
    scripted(monkeypatch, [0.0] * 3, flags=[True] * 3)
    config = TrainCellConfig(model="cnn", arch="small-cnn", dataset=DIGITS, normalize=None, seed=0,
                             train=train_cfg(recipe="fgsm-rs", epsilon=0.2, epochs=3, **overrides))
    env = RunEnv(device="cpu", cache_dir=tmp_path / "cache", artifacts_dir=tmp_path, progress=False)
    with pytest.raises(CellFailed, match=f"catastrophic overfitting {reason}"):
        train_cell.run_train_cell(config, {}, env)
    assert not any((tmp_path / "cache").rglob("*.pt"))  # collapsed weights are not cached


def test_a_flagged_run_with_keep_last_is_kept_and_shows_its_flags(monkeypatch):
    scripted(monkeypatch, [0.0] * 3, flags=[True] * 3)
    train, heldout = digits_split()
    history = train_classifier(small_cnn(), train, heldout,
                               train_cfg(recipe="fgsm-rs", epsilon=0.2, epochs=3, keep="last"),
                               seed=0, device="cpu")
    assert [(h["catastrophic_overfit"], h["kept"]) for h in history] == [
        (True, False), (True, False), (True, True)]


# -- step sizes, optimiser, augmentation ---------------------------------------------------------


def test_pgd_training_defaults_to_madry_et_al_steps():
    from bench import defaults
    from bench.training.loop import perturb_batch

    assert TrainConfig(recipe="pgd", epsilon=8 / 255).steps == 7
    assert defaults.pgd_train_alpha(8 / 255) == pytest.approx(2 / 255)  # their CIFAR-10 setting
    model, y = small_cnn().train(), torch.randint(0, 10, (16,))
    x = torch.full((16, 1, 8, 8), 0.5)  # far from the [0, 1] clamp
    cfg = TrainConfig(recipe="pgd", epsilon=0.2, steps=1, random_start=False)
    delta = (perturb_batch(model, x, y, cfg, torch.Generator()) - x).abs()
    assert delta.max().item() == pytest.approx(0.05)  # one step of ε/4, not 2.5·ε/steps
    assert defaults.pgd_eval_alpha(0.2, 10) == pytest.approx(0.05)  # evaluation keeps 2.5·ε/steps


def test_sgd_settings_reach_the_optimizer():
    from bench.training.optim import make_optimizer

    params = list(small_cnn().parameters())
    opt = make_optimizer(params, TrainConfig(optimizer="sgd", lr=0.1, momentum=0.8,
                                              nesterov=False, weight_decay=5e-4))
    group = opt.param_groups[0]
    assert isinstance(opt, torch.optim.SGD)
    assert (group["lr"], group["momentum"], group["nesterov"], group["weight_decay"]) == (
        0.1, 0.8, False, 5e-4)
    plain = make_optimizer(params, TrainConfig(optimizer="sgd", momentum=0.0)).param_groups[0]
    assert (plain["momentum"], plain["nesterov"]) == (0.0, False)  # torch refuses nesterov at 0
    assert isinstance(make_optimizer(params, TrainConfig()), torch.optim.Adam)


def test_training_uses_momentum_and_weight_decay():
    train, heldout = digits_split()

    def weights(**overrides):
        model = small_cnn()
        train_classifier(model, train, heldout, train_cfg(optimizer="sgd", lr=0.05, epochs=2,
                                                          **overrides), seed=0, device="cpu")
        return torch.cat([p.detach().flatten() for p in model.parameters()])

    plain = weights(momentum=0.0)
    assert not torch.equal(weights(momentum=0.9), plain)
    assert weights(momentum=0.0, weight_decay=1.0).norm() < 0.95 * plain.norm()



def test_new_train_keys_at_their_default_leave_cell_ids_alone():
    old_keys = {"recipe", "epochs", "lr", "batch_size", "optimizer", "weight_decay", "epsilon",
                "alpha", "steps", "random_start", "stop_on_overfit"}
    assert set(TrainConfig().model_dump()) == old_keys
    cfg = TrainConfig(optimizer="sgd", nesterov=False, flip=True)
    assert set(cfg.model_dump()) == old_keys | {"nesterov", "flip"}
