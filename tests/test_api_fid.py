"""bench.api.fid as a user calls it: from a sampler, a Dataset or a tensor, against a bench
dataset, real images or saved statistics; equal to torch-fidelity's own calculate_metrics and
to a GAN cell of `bench run` on the same samples; and one clear error for bad input."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap
import warnings

import pandas as pd
import pytest
import torch
from torch.utils.data import Dataset, TensorDataset

import bench
from bench.data import load_dataset
from bench.metrics import fidelity
from bench.metrics.samples import SampleError
from tests.helpers.configs import DIGITS
from tests.helpers.fid import TensorSampler

N = 120  # samples a side: FIDs on 64-d features are stable, and the calls stay fast


@pytest.fixture(scope="module")
def digits():
    return load_dataset(DIGITS, "train").x, load_dataset(DIGITS, "test").x


def score(source, tmp_path, ext, reference=DIGITS, **kw):
    kw = {"num_samples": N, "metrics": ["fid", "kid", "prc", "isc"]} | kw
    return bench.fid(source, reference, extractor=ext, cache_dir=tmp_path, device="cpu", **kw)


def test_import_bench_imports_no_torch_until_the_api_is_used():
    code = ("import sys, bench\nprint('torch' in sys.modules)\n"
            "bench.fid\nprint('torch' in sys.modules, bench.fid is bench.api.fid)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["False", "True", "True"]


def test_in_memory_fid_equals_torch_fidelity_calculate_metrics(digits, digits_extractor,
                                                                tmp_path):
    """The Scorer runs torch-fidelity's steps one by one; the result must be the one its
    calculate_metrics gives for the same uint8 images, reference and seed, every metric."""
    import torch_fidelity

    train, test = digits
    got = score(TensorSampler(test), tmp_path, digits_extractor, batch_size=50, seed=3)
    ref = fidelity.real_reference(train, DIGITS, "train", N, digits_extractor)
    kwargs = fidelity.fidelity_kwargs(digits_extractor, ["fid", "kid", "prc", "isc"], "cpu",
                                      tmp_path / "direct", 3)
    raw = torch_fidelity.calculate_metrics(
        **kwargs | {"batch_size": 50, "kid_subset_size": N // 2, "isc_splits": 10},
        input1=fidelity.UInt8Images(fidelity.images_to_uint8(test[:N])),
        input2=fidelity.UInt8Images(ref.images))
    want = fidelity.metrics_to_columns(raw)
    assert {k: got[k] for k in want} == want  # exactly: the same functions on the same features
    assert got["num_samples"] == N and got["num_real_samples"] == N
    assert got["extractor"] == digits_extractor.name and not got["float64"]


def test_sampler_dataset_and_tensor_give_the_same_fid(digits, digits_extractor, tmp_path):
    _, test = digits
    sampler = TensorSampler(test)
    from_sampler = score(sampler, tmp_path, digits_extractor, batch_size=50)
    assert sampler.calls == [50, 50, 20]  # batch_size at a time, then the rest
    labelled = TensorDataset(test[:N], torch.zeros(N))  # items (image, label), as torchvision's
    from_dataset = score(labelled, tmp_path, digits_extractor, batch_size=50)
    as_uint8 = fidelity.images_to_uint8(test[:N + 30])  # more than asked: the first N count
    from_tensor = score(as_uint8, tmp_path, digits_extractor, batch_size=50)
    for key in ("fid", "kid_mean", "precision", "recall", "isc_mean"):
        assert from_sampler[key] == from_dataset[key] == from_tensor[key], key


def test_a_gan_run_by_bench_run_and_its_samples_through_the_api_score_the_same(
        tmp_path, monkeypatch):
    """One implementation: `bench run` trains a GAN and scores its final samples; the same
    samples (its checkpoint, its evaluation noise) through bench.fid, with the extractor the
    run trained (found in the run's cache), give the same FID, KID, floor and checks."""
    from bench.cells import extractor as extractor_cell
    from bench.cells.gan import EVAL_SEED_OFFSET
    from bench.cli import main
    from bench.gans import GANS

    monkeypatch.setitem(extractor_cell.RECIPE, "steps", 40)  # quick; part of the cache key
    suite = tmp_path / "gan.toml"
    suite.write_text(textwrap.dedent("""
        [suite]
        name = "tiny-gan"
        seeds = [1]
        device = "cpu"
        [datasets.digits]
        kind = "digits"
        [gans.g]
        arch = "dcgan"
        dataset = "digits"
        steps = 3
        eval_every = 3
        batch_size = 16
        num_samples = 60
        z_dim = 16
        metrics = ["fid", "kid"]
        """))
    results = tmp_path / "results"
    assert main(["run", str(suite), "--results-dir", str(results), "--no-progress",
                 "--workers", "1"]) == 0
    (run,) = [p for p in (results / "tiny-gan").iterdir() if p.is_dir()]
    final = pd.read_parquet(run / "tables" / "gan.parquet").sort_values("step").iloc[-1]
    run_checks = pd.read_parquet(run / "tables" / "checks.parquet")

    gan = GANS.get("dcgan")(1, (8, 8), z_dim=16)
    gan.load_state_dict(torch.load(run / "artifacts" / "gans" / "g-seed1" / "checkpoint.pt",
                                   weights_only=True))
    z = torch.randn(60, 16, generator=torch.Generator().manual_seed(1 + EVAL_SEED_OFFSET))
    got = bench.fid(gan.sample(z), "digits", num_samples=60, extractor="domain",
                    metrics=["fid", "kid"], seed=1, device="cpu", cache_dir=results / ".cache")
    assert got["extractor"] == final["extractor"]  # the run's extractor, from its cache
    for key in ("fid", "kid_mean", "kid_std", "real_floor_fid", "fid_at_floor_count"):
        assert got[key] == final[key], key
    assert got["real_floor_num_samples"] == final["real_floor_num_samples"]
    api_checks = {r["check"]: (r["passed"], r["value"]) for r in got["checks"]}
    assert api_checks == {r.check: (r.passed, r.value) for r in run_checks.itertuples()}
    report = (run / "report.md").read_text()  # the run's checks reach its report
    assert all(name in report for name in api_checks) and "Sanity checks" in report


def test_reference_statistics_file_gives_the_dataset_fid(digits, digits_extractor, tmp_path):
    train, test = digits
    path = tmp_path / "digits-stats.pt"
    saved = bench.save_reference(DIGITS, path, extractor=digits_extractor, num_samples=N,
                                 device="cpu", cache_dir=tmp_path)
    assert saved.real.n == N and saved.real.features is None
    from_file = score(TensorSampler(test), tmp_path, "auto", reference=str(path),
                      metrics=None)  # "auto": the extractor the statistics name
    from_data = score(TensorSampler(test), tmp_path, digits_extractor, metrics=["fid", "isc"])
    assert from_file["fid"] == from_data["fid"] and from_file["isc_mean"] == from_data["isc_mean"]
    assert math.isnan(from_file["kid_mean"]) and math.isnan(from_file["real_floor_fid"])
    checks = {r["check"] for r in from_file["checks"]}
    assert checks == {"fid_batch_size_invariance", "fid_sample_count"}  # no images to search
    with pytest.raises(FileNotFoundError, match="reference statistics file not found"):
        score(TensorSampler(test), tmp_path, "auto", reference=str(tmp_path / "nope.pt"))
    with pytest.raises(ValueError, match="not a bench reference-statistics file"):
        score(TensorSampler(test), tmp_path, "auto", reference=digits_extractor.weights_path)
    with pytest.raises(ValueError, match="kid and prc need the reference's images"):
        score(TensorSampler(test), tmp_path, "auto", reference=path, metrics=["fid", "kid"])
    with pytest.raises(ValueError, match="float64=False"):
        score(TensorSampler(test), tmp_path, "auto", reference=path, metrics=None, float64=True)
    other = fidelity.Extractor("bench-domain-0000000000000000", "0000000000000000", "w.pt",
                               digits_extractor.layers)
    with pytest.raises(ValueError, match="computed with extractor"):
        score(TensorSampler(test), tmp_path, other, reference=path, metrics=None)


def test_real_images_as_the_reference(digits, digits_extractor, tmp_path):
    train, test = digits
    as_dataset = TensorDataset(train[:N])
    got = score(TensorSampler(test), tmp_path, digits_extractor, reference=as_dataset)
    same = score(TensorSampler(test), tmp_path, digits_extractor, reference=train[:N] * 1.0)
    assert got["fid"] == same["fid"] and got["num_real_samples"] == N
    assert math.isnan(got["real_floor_fid"])  # no held-out images given: no floor
    with pytest.raises(ValueError, match="extractor \"domain\" trains on a bench dataset"):
        score(TensorSampler(test), tmp_path, "domain", reference=as_dataset)


def test_float64_features_score_nearly_the_same(digits, digits_extractor, tmp_path):
    _, test = digits
    f32 = score(TensorSampler(test), tmp_path, digits_extractor, metrics=["fid"])
    f64 = score(TensorSampler(test), tmp_path, digits_extractor, metrics=["fid"], float64=True)
    assert f64["float64"] and f64["fid"] != f32["fid"]
    assert f64["fid"] == pytest.approx(f32["fid"], rel=1e-4)
    (batch,) = [r for r in f64["checks"] if r["check"] == "fid_batch_size_invariance"]
    assert batch["passed"] and batch["value"] < 1e-9 and "float64 features" in batch["detail"]
    cached = sorted(p.name for p in (tmp_path / "fidelity").iterdir())
    assert any("-f64-" in name for name in cached)  # float64 reference statistics kept apart


def test_a_dataset_table_as_the_reference_and_its_errors(digits_extractor, tmp_path):
    test = load_dataset(DIGITS, "test").x
    got = score(TensorSampler(test), tmp_path, digits_extractor,
                reference={"kind": "digits", "name": "my-digits"}, metrics=["fid"])
    assert got["checks"][0]["dataset"] == "my-digits"
    with pytest.raises(ValueError, match=r"reference \{'kind': 'mnist'\}: .*root"):
        score(TensorSampler(test), tmp_path, digits_extractor, reference={"kind": "mnist"})
    with pytest.raises(ValueError, match="reference .*: colour"):
        score(TensorSampler(test), tmp_path, digits_extractor, reference={"kind": "digits",
                                                                          "colour": True})
    with pytest.raises(TypeError, match="reference: cannot use a list"):
        score(TensorSampler(test), tmp_path, digits_extractor, reference=[1, 2])
    with pytest.raises(ValueError, match="extractor: 'vgg'"):
        score(TensorSampler(test), tmp_path, "vgg")
    with pytest.raises(ValueError, match="needs inception_weights"):
        score(TensorSampler(test), tmp_path, "inception")


# -- bad samples: one line, what came and what is expected --------------------------------


class Short(Dataset):
    def __len__(self):
        return 10

    def __getitem__(self, i):
        return torch.rand(1, 8, 8)


@pytest.mark.parametrize("sampler, message", [
    (lambda n: torch.rand(n, 8, 8), r"sampler\(\d+\): shape \(\d+, 8, 8\); expected N×C×H×W"),
    (lambda n: torch.rand(n, 8, 8, 1), r"shape \(\d+, 8, 8, 1\).*channels last\? use "
                                       r"x.permute\(0, 3, 1, 2\)"),
    (lambda n: torch.rand(n, 1, 8, 8) * 2 - 1, r"torch.float32 values in \[-[\d.]+, [\d.]+\]; "
                                                r"expected uint8 in \[0, 255\] or float in "
                                                r"\[0, 1\].*\(x \+ 1\) / 2"),
    (lambda n: torch.rand(n, 1, 8, 8) * 255, r"values in \[[\d.e-]+, 25\d.*divide by 255"),
    (lambda n: torch.randint(0, 255, (n, 1, 8, 8)), r"dtype torch.int64; expected uint8 in "
                                                    r"\[0, 255\] or float in \[0, 1\]"),
    (lambda n: torch.full((n, 1, 8, 8), math.nan), r"values are NaN or infinite"),
    (lambda n: torch.rand(n - 1, 1, 8, 8), r"sampler\(\d+\) returned \d+ images; a sampler must "
                                           r"return exactly the n images asked for"),
    (lambda n: [torch.rand(1, 8, 8)] * n, r"sampler\(\d+\) returned a list; expected a "
                                          r"torch.Tensor"),
    (lambda n: torch.rand(n, 1, 28, 28), r"the samples are 1×28×28 images, the reference's "
                                         r"1×8×8"),
    (lambda n: torch.rand(n, 3, 8, 8), r"the samples are 3×8×8 images, the reference's 1×8×8"),
    (Short(), r"the Dataset holds 10 images, fewer than num_samples = 40"),
    (torch.rand(39, 1, 8, 8), r"the tensor holds 39 images, fewer than num_samples = 40"),
])
def test_bad_samples_stop_with_one_clear_line(sampler, message, digits_extractor, tmp_path):
    with pytest.raises(SampleError, match=message) as info:
        score(sampler, tmp_path, digits_extractor, num_samples=40, metrics=["fid"])
    assert "\n" not in str(info.value)


def test_batches_that_change_size_and_bad_arguments(digits_extractor, tmp_path):
    sizes = iter([8, 8, 16])
    with pytest.raises(SampleError, match=r"images 20-29 are 1×16×16, the earlier ones 1×8×8"):
        score(lambda n: torch.rand(n, 1, (s := next(sizes)), s), tmp_path, digits_extractor,
              num_samples=30, batch_size=10, metrics=["fid"])
    with pytest.raises(ValueError, match=r"num_samples: 1; expected an integer >= 2"):
        score(lambda n: torch.rand(n, 1, 8, 8), tmp_path, digits_extractor, num_samples=1)
    with pytest.raises(ValueError, match=r"metrics: \['fid', 'ppl'\]"):
        score(lambda n: torch.rand(n, 1, 8, 8), tmp_path, digits_extractor, metrics=["fid", "ppl"])


def test_results_are_plain_values_a_notebook_can_show(digits, digits_extractor, tmp_path):
    _, test = digits
    got = score(TensorSampler(test), tmp_path, digits_extractor, metrics=["fid"])
    plain = {k: v for k, v in got.items() if k not in ("nearest_real",)}
    json.dumps(plain)  # floats, ints, strings, lists of check rows
    assert pd.DataFrame(got["checks"]).shape[0] == 3
    nearest = got["nearest_real"]
    assert nearest["index"].shape == nearest["ratio"].shape == (N,)


def test_the_examples_in_docs_api_md_run(tmp_path, monkeypatch, capsys):
    """docs/api.md's code blocks, run as they are (from an empty working directory, with a
    quicker extractor recipe: the recipe is part of the extractor's cache key)."""
    from pathlib import Path

    from bench.cells import extractor as extractor_cell

    monkeypatch.setitem(extractor_cell.RECIPE, "steps", 30)
    monkeypatch.chdir(tmp_path)
    text = (Path(__file__).resolve().parents[1] / "docs" / "api.md").read_text()
    fid_part = text[text.index("## FID from a sampler"):]
    blocks = [b.split("```")[0] for b in fid_part.split("```python\n")[1:]]
    assert len(blocks) == 2
    namespace: dict = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # an untrained DCGAN: checks may well fail
        for block in blocks:
            exec(compile(block, "docs/api.md", "exec"), namespace)
    out = capsys.readouterr().out
    assert "FID " in out and "on 450 samples; real data scores" in out
    assert "fid_batch_size_invariance passed" in out
    assert (tmp_path / "results" / ".cache" / "extractors").is_dir()
    assert namespace["result"]["num_real_samples"] == 1347  # every train image: the file
    assert (tmp_path / "digits-fid-stats.pt").is_file()


class Counting(Dataset):
    """A Dataset of `images` that counts the items read."""

    def __init__(self, images):
        self.images, self.read = images, 0

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        self.read += 1
        return self.images[i], 0


def test_a_large_reference_dataset_is_read_only_for_its_subset(digits, digits_extractor,
                                                                tmp_path):
    train, test = digits
    big = Counting(train)  # 1347 images; num_real_samples defaults to num_samples = N
    got = score(TensorSampler(test), tmp_path, digits_extractor, reference=big, metrics=["fid"])
    assert big.read == N and got["num_real_samples"] == N
    same = score(TensorSampler(test), tmp_path, digits_extractor, reference=train,
                 metrics=["fid"])
    assert got["fid"] == same["fid"]  # the same seeded subset, wherever it comes from
    bad = train.clone()
    bad[5] = 2.0
    with pytest.raises(SampleError, match=r"^reference: the images tensor: .*values in"):
        score(TensorSampler(test), tmp_path, digits_extractor, reference=bad,
              num_real_samples=len(bad))
