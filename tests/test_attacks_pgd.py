"""PGD's new settings: the L2 threat model, the DLR and CW losses, restarts; each equal to
the torchattacks objects it stands for, built by hand here."""

import pytest
import torch
import torchattacks

from bench.attacks.fgsm import fgsm_sweep
from bench.attacks.pgd import make_pgd, pgd_sweep
from bench.seeding import block_seed

N, BATCH = 36, 20


def reference(model, x, y, attack, seed):
    """torchattacks on each batch after seeding the global RNG the way bench documents it
    (PGD draws its random start from it): torch.manual_seed(block_seed(seed, the batch's
    first position)) before each batch. Predictions as a user would compute them."""
    preds = []
    for start in range(0, len(y), BATCH):
        torch.manual_seed(block_seed(seed, start))
        adv = attack(x[start:start + BATCH], y[start:start + BATCH])
        with torch.no_grad():
            preds.append(model(adv).argmax(1))
    return torch.cat(preds)


def test_upgd_without_momentum_is_pgd_bit_for_bit(digits_mlp):
    """The premise of PGD with the DLR and CW losses: torchattacks.UPGD with decay 0 steps
    exactly like torchattacks.PGD (same random start, same sign step), here with CE."""
    model, x, y = digits_mlp
    x, y = x[:N], y[:N]
    for eps in (0.05, 0.1):
        kwargs = dict(eps=eps, alpha=eps / 4, steps=10, random_start=True)
        torch.manual_seed(1)
        pgd = torchattacks.PGD(model, **kwargs)(x, y)
        torch.manual_seed(1)
        upgd = torchattacks.UPGD(model, **kwargs, loss="ce", decay=0.0, eot_iter=1)(x, y)
        assert torch.equal(pgd, upgd)


@pytest.mark.parametrize("loss,ta_loss", [("dlr", "dlr"), ("cw", "margin")])
def test_pgd_losses_equal_torchattacks_upgd(digits_mlp, loss, ta_loss):
    model, x, y = digits_mlp
    x, y = x[:N], y[:N]
    (res,) = pgd_sweep(model, x, y, [0.1], BATCH, "cpu", steps=10, loss=loss, seed=4)
    attack = torchattacks.UPGD(model, eps=0.1, alpha=0.025, steps=10, random_start=True,
                               loss=ta_loss, decay=0.0, eot_iter=1)
    assert torch.equal(res.adv_pred, reference(model, x, y, attack, seed=4))
    assert res.params["loss"] == loss and res.params["alpha"] == pytest.approx(0.025)
    assert res.adv_correct.float().mean() < (model(x).argmax(1) == y).float().mean() - 0.2


def test_cw_loss_leaves_broken_samples_finite_and_in_the_ball(digits_mlp):
    """The CW margin is flat (zero gradient) once a sample is misclassified; UPGD divides by
    the mean |gradient| there. The image must stay finite, in the ε-ball, and misclassified."""
    model, x, y = digits_mlp
    wrong = (y + 1) % 10  # every sample misclassified w.r.t. these labels from the start
    adv = make_pgd(model, 0.1, 5, loss="cw", random_start=False)(x[:20], wrong[:20])
    assert torch.isfinite(adv).all()
    assert torch.equal(adv, x[:20])  # zero gradient: PGD does not move either


def test_pgd_l2_equals_torchattacks_pgdl2(digits_mlp):
    model, x, y = digits_mlp
    x, y = x[:N], y[:N]
    results = pgd_sweep(model, x, y, [0.5, 1.5], BATCH, "cpu", steps=10, norm="l2", seed=2)
    for res, eps in zip(results, [0.5, 1.5]):
        attack = torchattacks.PGDL2(model, eps=eps, alpha=2.5 * eps / 10, steps=10,
                                    random_start=True)
        assert torch.equal(res.adv_pred, reference(model, x, y, attack, seed=2))
        assert res.norm == "l2" and res.l2.max() <= eps * (1 + 1e-5)
        assert "PGDL2(" in res.attack_repr
    assert results[1].adv_correct.sum() < results[0].adv_correct.sum()  # ε = 1.5 > 1 is valid L2


def test_restarts_equal_torchattacks_multiattack_and_only_help(digits_mlp):
    model, x, y = digits_mlp
    x, y = x[:N], y[:N]
    (one,) = pgd_sweep(model, x, y, [0.06], BATCH, "cpu", steps=5, seed=9)
    (three,) = pgd_sweep(model, x, y, [0.06], BATCH, "cpu", steps=5, restarts=3, seed=9)
    attack = torchattacks.MultiAttack([torchattacks.PGD(model, eps=0.06, alpha=0.03, steps=5)
                                       for _ in range(3)])
    assert torch.equal(three.adv_pred, reference(model, x, y, attack, seed=9))
    # The first restart is the single run (same seed), and a later one only adds successes.
    assert not (three.adv_correct & ~one.adv_correct).any()
    assert three.adv_correct.sum() < one.adv_correct.sum()
    assert three.params["restarts"] == 3 and "MultiAttack(" in three.attack_repr


def test_pgd_and_fgsm_refuse_settings_torchattacks_lacks(digits_mlp):
    model, x, y = digits_mlp
    with pytest.raises(ValueError, match="PGDL2 has only cross-entropy"):
        pgd_sweep(model, x[:4], y[:4], [0.5], norm="l2", loss="dlr")
    with pytest.raises(ValueError, match="norm 'l2' is not supported"):
        fgsm_sweep(model, x[:4], y[:4], [0.5], norm="l2")
    with pytest.raises(ValueError, match="restarts must be at least 1"):
        pgd_sweep(model, x[:4], y[:4], [0.5], restarts=0)
