"""Adversarial-training perturbations, the training loop and the train cell's weights cache."""

import math
import os

import pytest
import torch

from bench.cells import RunEnv
from bench.cells import train as train_cell
from bench.data import ImageData, load_dataset
from bench.models.build import build_classifier
from bench.suite.cell_configs import TrainCellConfig
from bench.suite.schema import TrainConfig
from bench.training import perturb
from bench.training.loop import catastrophic_overfit, train_classifier
from tests.helpers.configs import digits_config

DIGITS = digits_config(limit_train=400)



def small_cnn(seed=0):
    torch.manual_seed(seed)
    return build_classifier("small-cnn", None, (1, 8, 8), 10)


def train_cfg(**overrides):
    cfg = {"recipe": "standard", "epochs": 3, "lr": 2e-3, "batch_size": 64, "optimizer": "adam"}
    return TrainConfig(**cfg | overrides)


@pytest.mark.parametrize("make", [
    lambda m, x, y, g: perturb.fgsm_rs(m, x, y, 0.1, generator=g),
    lambda m, x, y, g: perturb.fgsm_rs(m, x, y, 0.1, alpha=0.5, generator=g),  # projected back
    lambda m, x, y, g: perturb.pgd(m, x, y, 0.1, steps=5, generator=g),
    lambda m, x, y, g: perturb.pgd(m, x, y, 0.1, steps=5, random_start=False),
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
                               "heldout_pgd_acc", "catastrophic_overfit", "seconds"}
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
    from bench.training import loop

    flags = iter([False, True, False, False])
    monkeypatch.setattr(loop, "catastrophic_overfit", lambda *args: next(flags))
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
