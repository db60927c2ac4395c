"""Mixed precision in GAN training, driven on the CPU (bfloat16 autocast, CPU GradScalers).

The CUDA path is the same code with float16 and torch.amp.GradScaler("cuda"): what is tested
here is the penalty's precision and the loss-scaling logic, which do not depend on the device.
The update-skipping tests run the scalers without autocast (`loss_scaling_only`): bfloat16
convolutions are slow on CPUs without native support, and the skip logic is the same.
"""

from __future__ import annotations

import math

import pytest
import torch

from bench.errors import CellFailed
from bench.gans import GANS
from bench.gans.train import MAX_OVERFLOW_STREAK, train_gan

REAL = torch.rand(32, 1, 8, 8, generator=torch.Generator().manual_seed(0))


def scalers(init_scale: float):
    return (torch.amp.GradScaler("cpu", init_scale=init_scale),
            torch.amp.GradScaler("cpu", init_scale=init_scale))


def loss_scaling_only(gan, init_scale: float):
    """The GAN's GradScaler path without autocast."""
    gan.scaler_g, gan.scaler_d = scalers(init_scale)
    return gan


def penalty(gan) -> torch.Tensor:
    gen = torch.Generator().manual_seed(3)
    real = REAL[:8] * 2 - 1
    fake = torch.rand(8, 1, 8, 8, generator=gen) * 2 - 1
    with gan.autocast():
        return gan.gradient_penalty(real, fake, gen)


@pytest.mark.parametrize("scale", [1.0, 2.0**16, 2.0**120])
def test_wgan_gp_penalty_is_the_float32_penalty_whatever_the_loss_scale(scale):
    plain = GANS.get("wgan-gp")(1, (8, 8), z_dim=8, init_seed=0)
    amp = GANS.get("wgan-gp")(1, (8, 8), z_dim=8, init_seed=0)
    amp.use_amp(*scalers(scale))
    expected, got = penalty(plain), penalty(amp)
    assert got.dtype == torch.float32 and torch.isfinite(got)
    assert got.item() == pytest.approx(expected.item(), rel=1e-6)
    assert expected.item() > 0  # a real penalty, not a trivially equal zero


def test_penalty_inside_autocast_would_differ():
    """The comparison above can fail: bfloat16 gradients give a different penalty."""
    gan = GANS.get("wgan-gp")(1, (8, 8), z_dim=8, init_seed=0)
    gan.use_amp(*scalers(1.0))
    gan.full_precision = lambda: torch.autocast("cpu", dtype=torch.bfloat16)  # stay in bf16
    plain = GANS.get("wgan-gp")(1, (8, 8), z_dim=8, init_seed=0)
    assert penalty(gan).item() != pytest.approx(penalty(plain).item(), rel=1e-6)


def test_an_overflowing_update_is_skipped_not_failed():
    gan = GANS.get("wgan-gp")(1, (8, 8), z_dim=8, init_seed=0)
    gan.use_amp(*scalers(2.0**127))  # the scaled loss overflows float32
    before = {k: v.clone() for k, v in gan.discriminator.state_dict().items()}
    loss = gan.d_step(REAL[:8] * 2 - 1, torch.Generator().manual_seed(0))
    assert math.isfinite(loss)  # the loss itself is fine; its scaled gradients are not
    assert gan.skipped_steps == 1 and gan.last_step_skipped("D")
    after = gan.discriminator.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before), "a skipped update changed D"
    assert gan.scaler_d.get_scale() == 2.0**126  # GradScaler backed off


def test_training_goes_on_after_skipped_updates():
    gan = loss_scaling_only(GANS.get("wgan-gp")(1, (8, 8), z_dim=8, init_seed=0), 2.0**127)
    g_before = {k: v.clone() for k, v in gan.generator.state_dict().items()}
    train_gan(gan, REAL, steps=12, batch_size=8, seed=0, eval_every=12,
              evaluate=lambda *a: None)  # 60 critic updates: the scale halves until it fits
    assert 0 < gan.skipped_steps < 60 and not gan.last_step_skipped("D")
    assert gan.scaler_d.get_scale() < 2.0**127
    g_after = gan.generator.state_dict()
    assert any(not torch.equal(g_before[k], g_after[k]) for k in g_before)


def test_a_loss_that_stays_non_finite_still_fails():
    gan = loss_scaling_only(GANS.get("dcgan")(1, (8, 8), z_dim=8, init_seed=0), 2.0**8)
    gan.d_loss = lambda real, fake, gen: gan.discriminator(real).mean() * math.inf
    with pytest.raises(CellFailed, match=rf"overflowed in {MAX_OVERFLOW_STREAK} updates in a row"):
        train_gan(gan, REAL, steps=MAX_OVERFLOW_STREAK + 5, batch_size=8, seed=0,
                  eval_every=1000, evaluate=lambda *a: None)
    assert gan.skipped_steps == MAX_OVERFLOW_STREAK


def test_without_a_scaler_a_non_finite_loss_fails_at_once():
    gan = GANS.get("dcgan")(1, (8, 8), z_dim=8, init_seed=0)
    gan.d_loss = lambda real, fake, gen: gan.discriminator(real).mean() * math.inf
    with pytest.raises(CellFailed, match=r"diverged: D loss is -?inf at step 1"):
        train_gan(gan, REAL, steps=5, batch_size=8, seed=0, eval_every=5,
                  evaluate=lambda *a: None)
