"""torch-fidelity wiring: the domain extractor, reference caching, the Inception path, sanity values."""

from __future__ import annotations

import math
import socket
from pathlib import Path

import pytest
import torch

from bench.cells import CELL_KINDS, RunEnv
from bench.cells import extractor as extractor_cell
from bench.data import load_dataset
from bench.metrics import feature_extractor as fe
from bench.metrics import fidelity
from bench.suite.cell_configs import ExtractorCellConfig
from tests.helpers.configs import DIGITS

N = 200  # samples per side: enough for stable FIDs on 64-d features, fast on 2 cores


@pytest.fixture(scope="module")
def data():
    return load_dataset(DIGITS, "train"), load_dataset(DIGITS, "test")


@pytest.fixture(scope="module")
def extractor(digits_extractor):
    """A quickly trained domain extractor (15 epochs), shared by the session (conftest.py)."""
    return digits_extractor


def fid(images, reference, extractor, cache_dir, metrics=("fid",)):
    return fidelity.compute_metrics(images, reference, extractor, list(metrics), "cpu", cache_dir)


def test_real_against_itself_is_zero(data, extractor, tmp_path):
    train, _ = data
    ref = fidelity.real_reference(train.x, DIGITS, "train", N, extractor)
    same = ref.images.float() / 255
    assert abs(fid(same, ref, extractor, tmp_path)["fid"]) < 1e-3


def test_noise_is_far_worse_than_real_and_than_a_trained_gan(data, extractor, tmp_path):
    from bench.gans import GANS
    from bench.gans.train import train_gan

    train, test = data
    ref = fidelity.real_reference(train.x, DIGITS, "train", N, extractor)
    noise = torch.rand(N, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    noise_fid = fid(noise, ref, extractor, tmp_path)["fid"]
    test_fid = fid(test.x[:N], ref, extractor, tmp_path)["fid"]
    gan = GANS.get("dcgan")(1, (8, 8), z_dim=32, lr=4e-4, init_seed=0)
    train_gan(gan, train.x, steps=150, batch_size=64, seed=0, eval_every=150,
              evaluate=lambda *timing: None)
    z = torch.randn(N, 32, generator=torch.Generator().manual_seed(1))
    gan_fid = fid(gan.sample(z), ref, extractor, tmp_path)["fid"]
    # 150 steps and 200 samples leave the GAN far from converged (the suite's GANs reach ~1/40
    # of the noise FID); it must still sit between real data and noise, well clear of noise.
    assert test_fid < gan_fid < noise_fid / 3, (test_fid, gan_fid, noise_fid)
    assert noise_fid > 10 * test_fid


def test_same_generator_twice_gives_the_same_fid(data, extractor, tmp_path):
    from bench.gans import GANS

    train, _ = data
    ref = fidelity.real_reference(train.x, DIGITS, "train", N, extractor)
    gan = GANS.get("sngan")(1, (8, 8), init_seed=3)
    values = []
    for _ in range(2):  # the first call fills the reference cache, the second reads it
        z = torch.randn(N, gan.z_dim, generator=torch.Generator().manual_seed(7))
        values.append(fid(gan.sample(z), ref, extractor, tmp_path, ("fid", "kid"))["fid"])
    assert values[0] == pytest.approx(values[1], rel=1e-6)


def test_reference_side_is_read_from_the_cache(data, extractor, tmp_path):
    train, _ = data
    ref = fidelity.real_reference(train.x, DIGITS, "train", N, extractor)
    fake = torch.rand(N, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    first = fid(fake, ref, extractor, tmp_path, ("fid", "kid", "prc"))
    cached = sorted(p.name for p in (tmp_path / "fidelity").iterdir())
    assert any(name.startswith(ref.cache_name) for name in cached), cached
    assert not any(name.endswith(".tmp") or name.startswith("tmp") for name in cached), cached
    # Same cache name, different images: the result can only match if they are not recomputed.
    poisoned = fidelity.Reference(torch.zeros_like(ref.images), ref.cache_name)
    second = fid(fake, poisoned, extractor, tmp_path, ("fid", "kid", "prc"))
    assert second["fid"] == pytest.approx(first["fid"], rel=1e-9)
    assert second["precision"] == first["precision"] and second["recall"] == first["recall"]


def test_real_floor_is_cached_and_matches_a_direct_computation(data, extractor, tmp_path):
    train, test = data
    ref = fidelity.real_reference(train.x, DIGITS, "train", N, extractor)
    test_ref = fidelity.real_reference(test.x, DIGITS, "test", N, extractor)
    floor = fidelity.real_floor_fid(ref, test_ref, extractor, "cpu", tmp_path)
    direct = fid(test_ref.images.float() / 255, ref, extractor, tmp_path / "other")["fid"]
    assert floor == pytest.approx(direct, rel=1e-6)
    assert 0 < floor < 10
    (floor_file,) = (tmp_path / "fidelity").glob("floor-*.json")
    floor_file.write_text('{"fid": 123.0}')  # a second call must read the file, not recompute
    assert fidelity.real_floor_fid(ref, test_ref, extractor, "cpu", tmp_path) == 123.0


def test_all_metrics_and_nan_for_unrequested(data, extractor, tmp_path):
    train, test = data
    ref = fidelity.real_reference(train.x, DIGITS, "train", N, extractor)
    full = fid(test.x[:N], ref, extractor, tmp_path, ("fid", "kid", "isc", "prc"))
    assert set(full) == set(fidelity.COLUMNS)
    assert all(math.isfinite(v) for v in full.values()), full
    assert full["isc_mean"] > 2  # a 10-class classifier on real digits is confident and diverse
    assert full["precision"] > 0.5 and full["recall"] > 0.5
    only_is = fid(test.x[:N], ref, extractor, tmp_path, ("isc",))
    assert only_is["isc_mean"] == pytest.approx(full["isc_mean"], rel=1e-9)
    assert math.isnan(only_is["fid"]) and math.isnan(only_is["kid_mean"]) and math.isnan(only_is["recall"])


def test_precision_and_recall_are_not_swapped(data, extractor, tmp_path):
    """Precision: the share of fakes that land on the real data; recall: the share of real
    data the fakes cover (Kynkäänniemi et al., 2019). A fake set that drops modes keeps its
    precision and loses recall; one that adds noise outside the data does the reverse.
    (Pre-0.4 torch-fidelity development builds returned the two swapped.)"""
    train, test = data
    ref = fidelity.real_reference(train.x, DIGITS, "train", N, extractor)
    two_digits = test.x[test.y < 2][:N]  # all 10 classes in the reference, 2 in the fakes
    noise = torch.rand(N, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    with_noise = torch.cat([test.x[:N // 2], noise])  # every mode, and 2/3 of it off the data
    dropped = fid(two_digits, ref, extractor, tmp_path, ("prc",))
    noisy = fid(with_noise, ref, extractor, tmp_path, ("prc",))
    assert dropped["precision"] > 0.8 and dropped["recall"] < 0.4, dropped
    assert noisy["recall"] > 0.8 and noisy["precision"] < 0.6, noisy
    assert dropped["recall"] < dropped["precision"] - 0.4
    assert noisy["precision"] < noisy["recall"] - 0.3


def test_torch_fidelity_is_new_enough():
    import torch_fidelity
    from packaging.version import Version

    assert Version(torch_fidelity.__version__) >= Version("0.4.0")  # precision/recall, safe cache


def test_inception_with_few_samples_warns(tmp_path):
    weights = tmp_path / "inception.pth"
    weights.write_bytes(b"not read: only hashed")
    inception = fidelity.inception_extractor(weights)
    message = fidelity.sample_count_warning(inception, 450)
    assert "450 samples" in message and "2048" in message
    assert fidelity.sample_count_warning(inception, 2048) == ""
    domain = fidelity.Extractor("bench-domain-x", "x", "w.pt", {})
    assert fidelity.sample_count_warning(domain, 10) == ""  # 64-d features: 450 is plenty


def test_kid_subset_size_never_exceeds_the_sample_count(data, extractor, tmp_path):
    train, _ = data
    ref = fidelity.real_reference(train.x, DIGITS, "train", 30, extractor)
    out = fid(train.x[:12], ref, extractor, tmp_path, ("kid",))  # torch-fidelity would refuse 1000
    assert math.isfinite(out["kid_mean"])


def test_domain_extractor_refuses_weights_with_another_hash(extractor):
    with pytest.raises(ValueError, match="holds extractor"):
        fe.DomainFeatureExtractor(fe.extractor_name("0000000000000000"), ["penultimate"],
                                  feature_extractor_weights_path=extractor.weights_path)


def test_extractor_cell_trains_once_and_caches(tmp_path, monkeypatch):
    monkeypatch.setitem(extractor_cell.RECIPE, "steps", 30)  # keep it quick; the hash follows
    env = RunEnv(device="cpu", cache_dir=tmp_path / "cache", artifacts_dir=tmp_path / "art",
                 progress=False)
    run = CELL_KINDS.get("extractor")
    first = run(ExtractorCellConfig(dataset=DIGITS), {}, env)
    (row,) = first.records["extractors"]
    assert row["name"] == fe.extractor_name(row["hash"]) and row["dataset"] == "digits"
    assert row["test_accuracy"] > 0.5
    assert Path(first.artifacts["weights"]).is_relative_to(tmp_path / "cache" / "extractors")

    def no_training(*args, **kwargs):
        raise AssertionError("the cached extractor was retrained")

    monkeypatch.setattr(fe, "train_extractor", no_training)
    renamed = DIGITS.model_copy(update={"name": "renamed"})  # the label is not the data
    again = run(ExtractorCellConfig(dataset=renamed), {}, env)
    assert again.records["extractors"][0]["hash"] == row["hash"]
    assert again.records["extractors"][0]["test_accuracy"] == row["test_accuracy"]
    # Another split is other data: a new extractor with other weights, hence another hash.
    monkeypatch.undo()
    monkeypatch.setitem(extractor_cell.RECIPE, "steps", 30)
    other = run(ExtractorCellConfig(dataset=DIGITS.model_copy(update={"test_fraction": 0.3})),
                {}, env)
    assert other.records["extractors"][0]["hash"] != row["hash"]


def test_inception_uses_the_local_weights_file_and_no_network(tmp_path, monkeypatch):
    import torch_fidelity.feature_extractor_inceptionv3 as inc

    # A weights file in the right state_dict layout: build the module without its download.
    monkeypatch.setattr(inc, "load_state_dict_from_url", lambda *a, **k: None)
    monkeypatch.setattr(inc.FeatureExtractorInceptionV3, "load_state_dict", lambda self, sd: None)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        module = inc.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    weights = tmp_path / "inception.pth"
    torch.save(module.state_dict(), weights)
    monkeypatch.undo()

    def no_network(*args, **kwargs):
        raise AssertionError("torch-fidelity tried to use the network")

    monkeypatch.setattr(socket, "socket", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(inc, "load_state_dict_from_url", no_network)
    loaded = []
    real_load = torch.load
    monkeypatch.setattr(torch, "load", lambda f, *a, **k: loaded.append(str(f)) or real_load(f, *a, **k))

    ext = fidelity.inception_extractor(weights)
    assert ext.name == "inception-v3-compat" and ext.rgb and len(ext.hash) == 16
    gen = torch.Generator().manual_seed(0)
    real = torch.rand(12, 1, 8, 8, generator=gen)  # gray: repeated to RGB for Inception
    ref = fidelity.real_reference(real, DIGITS, "train", 12, ext)
    assert ref.images.shape == (12, 3, 8, 8) and ext.hash in ref.cache_name
    out = fidelity.compute_metrics(torch.rand(12, 1, 8, 8, generator=gen), ref, ext, ["fid", "isc"],
                                   "cpu", tmp_path / "cache")
    assert str(weights) in loaded
    assert math.isfinite(out["fid"]) and math.isfinite(out["isc_mean"])
