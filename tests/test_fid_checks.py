"""The FID checks (bench.checks.fid): each fires on input built to trip it and stays silent
on honest input, through bench.api.fid as a user calls it; the GAN cell produces the same
rows in its `checks` records, and the report shows them."""

from __future__ import annotations

import math
import warnings

import pytest
import torch

import bench
from bench.cells import CELL_KINDS, CellResult
from bench.checks.fid_batch import batch_size_outcome, other_batch_size
from bench.checks.fid_count import sample_count_outcome
from bench.checks.memorisation import memorisation, memorisation_outcome
from bench.data import load_dataset
from bench.metrics import feature_extractor as fe
from bench.store import schema as S
from tests.helpers.configs import DIGITS, digits_config
from tests.helpers.fid import TensorSampler
from tests.helpers.gan_cells import env_for, gan_config


@pytest.fixture(scope="module")
def digits():
    return load_dataset(DIGITS, "train").x, load_dataset(DIGITS, "test").x


def run_fid(source, tmp_path, ext, **kw):
    kw = {"num_samples": 200, "metrics": ["fid"]} | kw
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        out = bench.fid(source, "digits", extractor=ext, cache_dir=tmp_path, device="cpu", **kw)
    out["warned"] = [str(w.message) for w in seen if "bench.api.fid: check" in str(w.message)]
    return out


def verdict(out: dict, check: str) -> dict:
    (row,) = [r for r in out["checks"] if r["check"] == check]
    return row


# -- batch-size invariance -------------------------------------------------------------------


def test_other_batch_size_really_differs():
    assert other_batch_size(256, 2000) == 31 and other_batch_size(256, 40) == 4
    assert other_batch_size(1, 100) == 2 and other_batch_size(10, 100) == 1
    assert all(other_batch_size(b, n) != min(b, n) for b in range(1, 300) for n in (2, 50, 999))


def test_batch_size_outcome_tolerance():
    assert batch_size_outcome(20.0, 20.0 + 0.019, 256, 31, 1000, False).passed  # < 0.1%
    failed = batch_size_outcome(20.0, 20.03, 256, 31, 1000, False)
    assert not failed.passed and failed.value == pytest.approx(0.03)
    assert "float64=True" in failed.detail
    assert batch_size_outcome(0.0004, 0.0012, 256, 31, 1000, True).passed  # atol near 0


def test_batch_size_check_silent_on_an_honest_extractor(digits, digits_extractor, tmp_path):
    _, test = digits
    out = run_fid(TensorSampler(test), tmp_path, digits_extractor, batch_size=64)
    row = verdict(out, "fid_batch_size_invariance")
    assert row["passed"] and row["value"] < 1e-6 and not out["warned"]
    assert "at batch size 64" in row["detail"] and "at 7 " in row["detail"]


def test_batch_size_check_fires_when_features_depend_on_the_batch(digits, digits_extractor,
                                                                  tmp_path, monkeypatch):
    """An extractor normalising with its batch's statistics, as a BatchNorm left in training
    mode does: the same images get other features in a batch of 7 than in one of 64."""
    forward = fe.DomainFeatureExtractor.forward

    def batch_statistics(self, x):
        return tuple(f - 0.5 * f.mean(dim=0, keepdim=True) for f in forward(self, x))

    monkeypatch.setattr(fe.DomainFeatureExtractor, "forward", batch_statistics)
    _, test = digits
    out = run_fid(TensorSampler(test), tmp_path, digits_extractor, batch_size=64)
    row = verdict(out, "fid_batch_size_invariance")
    assert not row["passed"] and row["value"] > 1e-3
    assert "depend on the batch" in row["detail"] and row["model"] == "sampler"
    assert any("fid_batch_size_invariance failed" in w for w in out["warned"])


# -- sample count ----------------------------------------------------------------------------


def test_sample_count_silent_when_fid_and_floor_share_the_count(digits, digits_extractor,
                                                                 tmp_path):
    _, test = digits
    out = run_fid(TensorSampler(test), tmp_path, digits_extractor, num_samples=300)
    row = verdict(out, "fid_sample_count")
    assert row["passed"] and row["value"] == 300
    assert out["real_floor_num_samples"] == 300 and out["fid_at_floor_count"] == out["fid"]
    assert "the same count" in row["detail"]


def test_sample_count_fires_when_the_floor_has_fewer_images(digits, digits_extractor, tmp_path):
    """The digits test split holds 450 images: at 600 samples the floor is measured on 450;
    the check says so and gives the FID at 450 samples beside it."""
    train, _ = digits
    out = run_fid(TensorSampler(train[-600:]), tmp_path, digits_extractor, num_samples=600)
    row = verdict(out, "fid_sample_count")
    assert not row["passed"] and row["value"] == 600
    assert out["real_floor_num_samples"] == 450 and out["num_real_samples"] == 600
    assert math.isfinite(out["fid_at_floor_count"]) and out["fid_at_floor_count"] != out["fid"]
    assert (f"at 450 samples each: FID {out['fid_at_floor_count']:.4g}, floor "
            f"{out['real_floor_fid']:.4g}") in row["detail"]
    assert any("fid_sample_count failed" in w for w in out["warned"])


def test_sample_count_fires_for_inception_below_its_feature_count():
    warning = "Inception FID on 500 samples (< 2048, its feature dimension): ..."
    out = sample_count_outcome(fid=12.0, n=500, n_real=500, floor=3.0, n_floor=500,
                               fid_at_floor_count=12.0, small_warning=warning)
    assert not out.passed and warning in out.detail
    silent = sample_count_outcome(fid=12.0, n=500, n_real=500, floor=math.nan, n_floor=None,
                                  fid_at_floor_count=math.nan)
    assert silent.passed and "no real-data floor" in silent.detail


# -- memorisation ----------------------------------------------------------------------------


def test_memorisation_silent_for_held_out_real_images(digits, digits_extractor, tmp_path):
    _, test = digits
    out = run_fid(TensorSampler(test), tmp_path, digits_extractor, num_samples=400,
                  num_real_samples=1347)  # search the whole train split
    row = verdict(out, "samples_not_memorised")
    assert row["passed"] and row["value"] < 0.02, row["detail"]
    assert "of 1347 reference images" in row["detail"]
    assert out["nearest_real"]["ratio"].median() > 0.7  # real images sit ~1 spacing apart


def test_memorisation_fires_for_a_generator_that_copies_training_images(digits,
                                                                        digits_extractor,
                                                                        tmp_path):
    """A 'generator' that hands out random training images with a little noise (σ = 1% of
    the range, about 2.5 grey levels): every sample is a near-copy."""
    train, _ = digits
    gen = torch.Generator().manual_seed(0)

    def copier(n):
        picks = train[torch.randint(len(train), (n,), generator=gen)]
        return (picks + 0.01 * torch.randn(picks.shape, generator=gen)).clamp(0, 1)

    out = run_fid(copier, tmp_path, digits_extractor, num_samples=400, num_real_samples=1347)
    row = verdict(out, "samples_not_memorised")
    assert not row["passed"] and row["value"] > 0.9, row["detail"]
    assert "reproduces training images" in row["detail"]
    assert out["nearest_real"]["ratio"].median() < 0.2
    assert any("samples_not_memorised failed" in w for w in out["warned"])


def test_memorisation_allows_for_duplicates_in_the_reference_itself():
    """Near-copies among the reference images raise the share of near-copies allowed: 40% of
    these reference images have a twin, so 40% of samples being copies is what real data
    itself looks like; without the twins the same samples fail."""
    ref = torch.randn(100, 8, generator=torch.Generator().manual_seed(0))
    ref[80:] = ref[:20] + 1e-4  # 40 of the 100 images have a twin
    far = torch.randn(24, 8, generator=torch.Generator().manual_seed(1)) * 3
    samples = torch.cat([ref[20:36] + 1e-4, far])  # 40% copies
    found = memorisation(samples, ref)
    assert found.real_copy_share == pytest.approx(0.4) and found.copy_share() == pytest.approx(0.4)
    assert memorisation_outcome(found).passed
    alone = memorisation(samples, ref[:80])
    assert alone.real_copy_share == 0.0 and alone.copy_share() == pytest.approx(0.4)
    assert not memorisation_outcome(alone).passed


# -- the GAN cell runs them on its final samples ------------------------------------------------


def extractor_input(ext) -> dict:
    row = {"name": ext.name, "hash": ext.hash, "dataset": "digits", "test_accuracy": 0.9}
    return {"extractor": CellResult(records={S.EXTRACTORS: [row]},
                                    artifacts={"weights": ext.weights_path})}


def test_a_gan_cell_reports_the_fid_checks_of_its_final_samples(digits_extractor, tmp_path):
    result = CELL_KINDS.get("gan")(gan_config(metrics=["fid", "kid"]),
                                   extractor_input(digits_extractor), env_for(tmp_path))
    rows = result.records[S.CHECKS]
    assert [r["check"] for r in rows] == ["fid_batch_size_invariance", "fid_sample_count",
                                          "samples_not_memorised"]
    assert all(r["passed"] for r in rows), [r["detail"] for r in rows]  # 4 steps: no copies
    assert {r["model"] for r in rows} == {"my-dcgan"} and rows[0]["setting"].startswith("step=4")
    final = result.records[S.GAN][-1]
    assert final["fid_at_floor_count"] == final["fid"]  # 40 samples, floor on 40 test images
    assert all(list(r) == list(S.COLUMNS[S.CHECKS]) for r in rows)


@pytest.fixture(scope="module")
def copying_gan(digits_extractor, tmp_path_factory):
    """A DCGAN trained on 8 digits only (400 steps, batch 8, no EMA, a large rate): it
    memorises them. Measured (benchmarks/fid_checks_calibration.py gan --train-images 8):
    near-copies 5% of the samples at step 150, 26% at 300, 45% at 600. On 16 digits the same
    takes ~500 steps, on 64 digits thousands (the slow test below)."""
    cfg = gan_config(dataset=digits_config(limit_train=8), steps=400, eval_every=400,
                     batch_size=8, num_samples=200, z_dim=8, lr=2e-3, ema=0.0,
                     metrics=["fid"])
    return CELL_KINDS.get("gan")(cfg, extractor_input(digits_extractor),
                                 env_for(tmp_path_factory.mktemp("copying-gan")))


def test_memorisation_fires_for_a_gan_trained_on_a_few_digits(copying_gan):
    (row,) = [r for r in copying_gan.records[S.CHECKS] if r["check"] == "samples_not_memorised"]
    assert not row["passed"] and row["value"] > 0.1, row["detail"]
    assert "of 8 reference images" in row["detail"]


@pytest.mark.slow  # 8000 generator steps: ~5-7 min on a quiet 2-core machine
@pytest.mark.timeout(1800)
def test_memorisation_fires_for_a_gan_trained_on_64_digits_for_long(digits_extractor, tmp_path):
    """The issue's fixture: a GAN trained on 64 images for long enough. Measured
    (fid_checks_calibration.py gan --train-images 64 --steps 8000): near-copies 1% of the
    samples at 1000 steps, ~4-5% at 2000-4000, ~10% from 6000 on; this very test's cell
    found 10.2% at step 8000 (12 min on a 2-core machine at load 8-10)."""
    cfg = gan_config(dataset=digits_config(limit_train=64), steps=8000, eval_every=8000,
                     batch_size=64, num_samples=400, z_dim=8, lr=2e-3, ema=0.0,
                     metrics=["fid"])
    result = CELL_KINDS.get("gan")(cfg, extractor_input(digits_extractor), env_for(tmp_path))
    (row,) = [r for r in result.records[S.CHECKS] if r["check"] == "samples_not_memorised"]
    assert not row["passed"] and "of 64 reference images" in row["detail"], row["detail"]
