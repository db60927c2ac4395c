"""Reference GANs: shapes per resolution, frozen D during G steps, seeding, the gan cell end to end."""

from __future__ import annotations

import math
import warnings
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from bench.cells import CELL_KINDS
from bench.cells import gan as gan_cell
from bench.errors import CellFailed
from bench.gans import GANS
from bench.gans.train import train_gan
from tests.helpers.gan_cells import env_for, gan_config, quick_extractor_result

ARCHS = ["dcgan", "wgan-gp", "sngan"]


def test_registry_lists_the_three_reference_gans():
    assert set(ARCHS) <= set(GANS.names())


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("channels,size", [(1, (8, 8)), (1, (28, 28)), (3, (32, 32))])
def test_shapes_follow_the_dataset(arch, channels, size):
    gan = GANS.get(arch)(channels, size, z_dim=16)
    z = torch.randn(4, 16)
    with torch.no_grad():
        fake = gan.generator(z)
        logits = gan.discriminator(fake)
    assert fake.shape == (4, channels, *size)
    assert fake.abs().max() <= 1  # tanh range
    assert logits.shape == (4, 1)
    images = gan.sample(z)
    assert images.min() >= 0 and images.max() <= 1


def test_discriminator_normalisation_per_paper():
    def kinds(arch):
        d = GANS.get(arch)(1, (8, 8)).discriminator
        return d, {type(m) for m in d.modules()}

    d, types = kinds("dcgan")
    assert nn.BatchNorm2d in types
    d, types = kinds("wgan-gp")
    assert not any(issubclass(t, nn.modules.batchnorm._BatchNorm) for t in types)
    d, types = kinds("sngan")
    assert not any(issubclass(t, nn.modules.batchnorm._BatchNorm) for t in types)
    weighted = [m for m in d.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert weighted and all(nn.utils.parametrize.is_parametrized(m, "weight") for m in weighted)


@pytest.mark.parametrize("arch,lr,betas,n_critic", [("dcgan", 2e-4, (0.5, 0.999), 1),
                                                    ("sngan", 2e-4, (0.0, 0.9), 5),
                                                    ("wgan-gp", 1e-4, (0.0, 0.9), 5)])
def test_unset_keys_mean_the_papers_recipe(arch, lr, betas, n_critic):
    gan = GANS.get(arch)(1, (8, 8))
    for opt in (gan.opt_g, gan.opt_d):
        assert opt.param_groups[0]["lr"] == lr and opt.param_groups[0]["betas"] == betas
    assert gan.n_critic == n_critic and gan.ema is None


def test_the_suite_overrides_each_setting():
    gan = GANS.get("sngan")(1, (8, 8), lr=1e-3)  # lr alone: both nets
    assert gan.opt_g.param_groups[0]["lr"] == gan.opt_d.param_groups[0]["lr"] == 1e-3
    gan = GANS.get("sngan")(1, (8, 8), lr=1e-4, lr_d=4e-4, betas=(0.5, 0.99), n_critic=2, ema=0.9)
    assert gan.opt_g.param_groups[0]["lr"] == 1e-4 and gan.opt_d.param_groups[0]["lr"] == 4e-4
    assert gan.opt_d.param_groups[0]["betas"] == (0.5, 0.99) and gan.n_critic == 2
    assert gan.ema.decay == 0.9
    state = gan.state_dict()
    assert state["meta"]["recipe"] == {"lr_g": 1e-4, "lr_d": 4e-4, "betas": (0.5, 0.99),
                                       "n_critic": 2, "ema": 0.9}
    fresh = GANS.get("sngan")(1, (8, 8), ema=0.9)
    fresh.load_state_dict(state)  # the EMA generator round-trips with the rest
    assert all(torch.equal(a, b) for a, b in zip(fresh.ema.model.state_dict().values(),
                                                 gan.ema.model.state_dict().values()))


def test_ema_warms_up_then_holds_its_decay():
    from bench.gans.ema import GeneratorEMA

    ema = GeneratorEMA(nn.Linear(2, 2), 0.995)
    decays = []
    for _ in range(2000):
        ema.updates += 1
        decays.append(ema.current_decay())
    assert decays[0] == pytest.approx(2 / 11) and decays[-1] == 0.995
    assert all(a <= b for a, b in zip(decays, decays[1:]))


@pytest.mark.parametrize("arch", ARCHS)
def test_generator_step_leaves_the_discriminator_alone(arch):
    gan = GANS.get(arch)(1, (8, 8), z_dim=16, init_seed=0)
    gen = torch.Generator().manual_seed(0)
    real = torch.rand(16, 1, 8, 8) * 2 - 1
    gan.d_step(real, gen)  # Adam state exists, as mid-training
    d_before = {k: v.clone() for k, v in gan.discriminator.named_parameters()}
    g_before = {k: v.clone() for k, v in gan.generator.named_parameters()}
    seen = []
    hook = gan.discriminator.register_forward_pre_hook(
        lambda m, inp: seen.append([p.requires_grad for p in m.parameters()]))
    gan.g_step(16, gen)
    hook.remove()
    assert seen and not any(any(flags) for flags in seen), "D was not frozen during the G step"
    for k, v in gan.discriminator.named_parameters():
        assert torch.equal(v, d_before[k]), k
        assert v.grad is None or not v.grad.any(), k
        assert v.requires_grad  # unfrozen again for the next D step
    assert any(not torch.equal(v, g_before[k]) for k, v in gan.generator.named_parameters())


def test_discriminator_step_leaves_the_generator_alone():
    gan = GANS.get("dcgan")(1, (8, 8), z_dim=16, init_seed=0)
    before = {k: v.clone() for k, v in gan.generator.named_parameters()}
    gan.d_step(torch.rand(16, 1, 8, 8) * 2 - 1, torch.Generator().manual_seed(0))
    for k, v in gan.generator.named_parameters():
        assert torch.equal(v, before[k]) and v.grad is None, k


def _train(arch, seed, steps=3):
    gan = GANS.get(arch)(1, (8, 8), z_dim=16, init_seed=seed)
    calls = []
    data = torch.rand(50, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    train_gan(gan, data, steps=steps, batch_size=8, seed=seed, eval_every=2,
              evaluate=lambda step, *timing: calls.append(step))
    return gan, calls


def test_training_is_seeded():
    a, calls = _train("wgan-gp", seed=1)
    b, _ = _train("wgan-gp", seed=1)
    c, _ = _train("wgan-gp", seed=2)
    assert calls == [0, 2, 3]  # step 0, every eval_every steps, and the last step
    sa, sb, sc = (g.generator.state_dict() for g in (a, b, c))
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert any(not torch.equal(sa[k], sc[k]) for k in sa)


def test_global_rng_is_untouched():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    _train("sngan", seed=5, steps=1)
    assert torch.equal(torch.rand(3), expected)


def test_nan_loss_fails_with_the_step():
    gan = GANS.get("dcgan")(1, (8, 8), z_dim=16)
    gan.d_loss = lambda real, fake, gen: gan.discriminator(real).mean() * math.nan
    with pytest.raises(CellFailed, match=r"diverged: D loss is nan at step 1"):
        train_gan(gan, torch.rand(20, 1, 8, 8), steps=5, batch_size=4, seed=0, eval_every=5,
                  evaluate=lambda *timing: None)


def test_collapse_detection():
    same = torch.full((50, 1, 8, 8), 0.3)
    gan_cell.check_collapse(same, step=0)  # untrained generators are allowed to be flat
    with pytest.raises(CellFailed, match="collapsed: 1 distinct samples out of 50"):
        gan_cell.check_collapse(same, step=10)
    few = torch.rand(3, 1, 8, 8).repeat(20, 1, 1, 1)  # 3 modes, far apart
    with pytest.raises(CellFailed, match="collapsed: 3 distinct"):
        gan_cell.check_collapse(few, step=10)
    gan_cell.check_collapse(torch.rand(50, 1, 8, 8), step=10)
    with pytest.raises(CellFailed, match="non-finite"):
        gan_cell.check_finite_samples(torch.full((4, 1, 8, 8), math.nan), step=0)


# -- the cell ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def extractor_result(tmp_path_factory):
    return quick_extractor_result(tmp_path_factory.mktemp("ext"))


def test_gan_cell_rows_and_artefacts(tmp_path, extractor_result):
    run = CELL_KINDS.get("gan")
    result = run(gan_config(amp=True), {"extractor": extractor_result}, env_for(tmp_path))
    rows = result.records["gan"]
    assert [r["step"] for r in rows] == [0, 2, 4]
    expected = {"gan", "arch", "dataset", "seed", "step", "fid", "kid_mean", "kid_std", "isc_mean",
                "isc_std", "precision", "recall", "num_samples", "extractor", "extractor_hash",
                "real_floor_fid", "train_images_per_s", "seconds"}
    assert expected <= set(rows[0])
    first, last = rows[0], rows[-1]
    assert first["gan"] == "my-dcgan" and first["arch"] == "dcgan" and first["dataset"] == "digits"
    h = extractor_result.records["extractors"][0]["hash"]
    assert first["extractor"] == f"bench-domain-{h}"
    assert first["extractor_hash"] == h and first["num_samples"] == 40
    assert all(math.isfinite(r[k]) for r in rows for k in ("fid", "kid_mean", "isc_mean", "recall"))
    assert len({r["real_floor_fid"] for r in rows}) == 1 and 0 < first["real_floor_fid"] < first["fid"]
    assert math.isnan(first["train_images_per_s"]) and first["seconds"] == 0
    assert last["train_images_per_s"] > 0 and last["seconds"] > rows[1]["seconds"] > 0
    assert first["amp"] is False and "CUDA only" in first["note"]  # AMP asked for on the CPU

    out = tmp_path / "art" / "gans" / "my-dcgan-seed0"
    assert result.artifacts["samples"] == str(out / "samples-step000004.png")
    assert (out / "samples-step000004.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert result.artifacts["samples_step0"] == str(out / "samples-step000000.png")
    assert result.artifacts["real_samples"] == str(out / "real.png") and (out / "real.png").exists()
    assert all(r["failure"] == "" and r["amp_skipped_steps"] == 0 for r in rows)
    state = torch.load(result.artifacts["checkpoint"], weights_only=True)
    gan = GANS.get("dcgan")(1, (8, 8), z_dim=16)
    gan.load_state_dict(state)  # the checkpoint round-trips into a fresh GAN
    assert state["meta"]["arch"] == "dcgan"


def test_unrequested_metrics_are_nan(tmp_path, extractor_result):
    rows = CELL_KINDS.get("gan")(gan_config(steps=1, eval_every=1, metrics=["fid"]),
                                 {"extractor": extractor_result}, env_for(tmp_path)).records["gan"]
    assert all(math.isfinite(r["fid"]) for r in rows)
    assert all(math.isnan(r[k]) for r in rows for k in ("kid_mean", "kid_std", "isc_mean", "precision"))


def test_huge_learning_rate_fails_the_cell_with_a_reason(tmp_path, extractor_result):
    cfg = gan_config(lr=10.0, steps=20, eval_every=10, num_samples=60, metrics=["fid"])
    with pytest.raises(CellFailed, match=r"^(collapsed|diverged): .* at step (10|20)"):
        CELL_KINDS.get("gan")(cfg, {"extractor": extractor_result}, env_for(tmp_path))


def test_missing_inception_weights_is_a_clear_failure(tmp_path):
    cfg = gan_config(feature_extractor="inception", inception_weights=str(tmp_path / "nope.pth"))
    with pytest.raises(CellFailed, match="Inception weights not found"):
        CELL_KINDS.get("gan")(cfg, {}, env_for(tmp_path))


def test_inception_with_fewer_samples_than_features_warns_and_says_so_in_the_rows(tmp_path):
    """The cell asks fidelity.sample_count_warning with the N both sides really have."""
    from bench.metrics import fidelity

    weights = tmp_path / "inception.pth"
    weights.write_bytes(b"only hashed")
    inception = fidelity.inception_extractor(weights)
    gan = GANS.get("dcgan")(1, (8, 8), z_dim=16)

    def real(n_train: int) -> SimpleNamespace:
        side = SimpleNamespace(images=torch.zeros(n_train, 1, 8, 8, dtype=torch.uint8))
        return SimpleNamespace(reference=side, test=side, floor=1.0)

    # 4000 generated samples, but digits' train split holds only 1347: FID sees 1347 a side.
    with pytest.warns(UserWarning, match=r"Inception FID on 1347 samples \(< 2048"):
        row = gan_cell.base_row(gan_config(num_samples=4000), gan, real(1347), inception)
    assert "Inception FID on 1347 samples" in row["note"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        enough = gan_cell.base_row(gan_config(num_samples=4000), gan, real(4000), inception)
        domain = fidelity.Extractor("bench-domain-x", "x", "w.pt", {})
        few = gan_cell.base_row(gan_config(num_samples=40), gan, real(40), domain)
    assert enough["note"] == "" and few["note"] == ""
