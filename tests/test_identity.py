"""One identity (bench.identity): plan ids, compare groups and caches agree; paths are not
identity, content and code are."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
import torch

import bench.runner as runner
from bench import identity
from bench.cells import RunEnv
from bench.cells import train as train_cell
from bench.cli import main
from bench.compare import compare_runs
from bench.fingerprint import data_fingerprint, state_dict_fingerprint
from bench.store.migrate import open_run
from bench.suite.cell_configs import ExtractorCellConfig, TrainCellConfig
from bench.suite.load import load_suite
from bench.suite.plan import plan
from bench.suite.schema import TrainConfig
from tests.helpers.configs import digits_config
from tests.helpers.formats import write_mnist
from tests.helpers.suites import tiny_digits_suite, write_suite

MNIST_SUITE = """
[suite]
name = "portable"
seeds = [0, 1]
device = "cpu"

[datasets.mnist]
kind = "mnist"
root = "data"          # relative to this suite file: a different path in every checkout

[models.cnn]
arch = "small-cnn"
dataset = "mnist"
train = { epochs = 1, batch_size = 16 }

[[robustness]]
models = ["cnn"]
attack = "fgsm"
epsilons = [0, 0.1]
"""


def checkout(folder: Path) -> Path:
    """A suite file with its MNIST data beside it, as in a clone of a user's repository."""
    write_mnist(folder / "data", n_train=48, n_test=24)
    return write_suite(folder, MNIST_SUITE)


def test_paths_are_not_identity_but_content_is():
    a = {"dataset": {"kind": "mnist", "root": "/home/a/data"}, "seed": 0,
         "source": {"checkpoint": "/a/w.pt", "checkpoint_sha256": "abc"}}
    b = {"dataset": {"kind": "mnist", "root": "/ci/data"}, "seed": 0,
         "source": {"checkpoint": "/b/w.pt", "checkpoint_sha256": "abc"}}
    assert identity.cell_id("robustness", a, {}) == identity.cell_id("robustness", b, {})
    c = json.loads(json.dumps(b))
    c["source"]["checkpoint_sha256"] = "def"
    assert identity.cell_id("robustness", a, {}) != identity.cell_id("robustness", c, {})
    # The group leaves the seed out, the id does not.
    b1 = b | {"seed": 1}
    assert identity.cell_id("robustness", b, {}) != identity.cell_id("robustness", b1, {})
    assert identity.group_id("robustness", a) == identity.group_id("robustness", b1)


def test_plan_ids_are_the_same_from_two_folders(tmp_path):
    ids = [sorted(c.id for c in plan(load_suite(checkout(tmp_path / f)))) for f in ("a", "b")]
    assert ids[0] == ids[1]


def test_the_same_suite_run_from_two_folders_compares_every_metric(tmp_path, capsys):
    """Two checkouts (or a laptop and CI): a relative root resolves to different paths."""
    runs = []
    for folder in ("laptop", "ci"):
        results = tmp_path / folder / "results"
        assert main(["run", str(checkout(tmp_path / folder)), "--results-dir", str(results),
                     "--no-progress", "--no-report"]) == 0
        runs.append(next(p for p in (results / "portable").iterdir() if p.is_dir()))
    c = compare_runs(*runs)
    metrics = {(r.table, r.metric) for r in c.rows}
    assert {("robustness", "clean_acc"), ("robustness", "robust_acc"),
            ("robustness", "attack_success_rate")} <= metrics
    assert c.matched == 4 and not c.only_baseline and not c.missing_groups
    assert all(r.verdict == "unchanged" for r in c.rows if r.metric != "seconds"
               and r.metric != "images_per_s")
    assert len([r for r in c.rows if r.metric == "robust_acc"]) == 2  # one per ε, seeds pooled
    assert all(r.n_baseline == r.n_candidate == 2 for r in c.rows if r.metric == "robust_acc")
    # Timings are not what this test is about, and a loaded machine moves them beyond any
    # tolerance: the exit code is asked of the accuracies alone.
    rules = tmp_path / "rules.toml"
    rules.write_text("[seconds]\nrel_tol = 1e6\n\n[images_per_s]\nrel_tol = 1e6\n")
    assert main(["compare", str(runs[0]), str(runs[1]), "--rules", str(rules)]) == 0


def test_data_fingerprint_sees_content_not_location():
    x = torch.rand(10, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    y = torch.arange(10)
    assert data_fingerprint(x, y) == data_fingerprint(x.clone(), y.clone())
    x2 = x.clone()
    x2[3, 0, 4, 4] += 0.5
    assert data_fingerprint(x2, y) != data_fingerprint(x, y)
    assert data_fingerprint(x, y.flip(0)) != data_fingerprint(x, y)
    assert state_dict_fingerprint({"w": x}) != state_dict_fingerprint({"w": x2})


# -- code identity: a changed bench never silently reuses what other code made -----------------

DIGITS = digits_config(limit_train=200)
TRAIN = TrainConfig(recipe="standard", epochs=1, lr=1e-3, batch_size=64)
CODE_A = {"version": "0.1.0", "source_sha256": "a" * 64}
CODE_B = {"version": "0.1.0", "source_sha256": "b" * 64}


def test_code_identity_hashes_the_bench_source():
    code = identity.code_identity()
    assert len(code["source_sha256"]) == 64 and code["version"]


def test_changed_code_retrains_unless_reuse_is_asked_for(tmp_path, monkeypatch):
    config = TrainCellConfig(model="cnn", arch="small-cnn", dataset=DIGITS, normalize=None,
                             train=TRAIN, seed=0)

    def env(code, reuse=False):
        return RunEnv(device="cpu", cache_dir=tmp_path / "cache", artifacts_dir=tmp_path,
                      progress=False, code=code, reuse_other_code=reuse)

    first = train_cell.run_train_cell(config, {}, env(CODE_A))
    assert first.records["training"][0]["weights_code_sha256"] == CODE_A["source_sha256"]
    real_train = train_cell.train_classifier

    def no_training(*args, **kwargs):
        raise AssertionError("retrained")

    monkeypatch.setattr(train_cell, "train_classifier", no_training)
    assert train_cell.run_train_cell(config, {}, env(CODE_A)).artifacts == first.artifacts
    with pytest.raises(AssertionError, match="retrained"):
        train_cell.run_train_cell(config, {}, env(CODE_B))
    reused = train_cell.run_train_cell(config, {}, env(CODE_B, reuse=True))
    assert reused.artifacts == first.artifacts
    assert reused.records["training"][0]["weights_code_sha256"] == CODE_A["source_sha256"]
    monkeypatch.setattr(train_cell, "train_classifier", real_train)
    second = train_cell.run_train_cell(config, {}, env(CODE_B))
    assert second.artifacts != first.artifacts
    assert second.records["training"][0]["weights_code_sha256"] == CODE_B["source_sha256"]


def _interrupted_run(tmp_path, monkeypatch, code) -> tuple[Path, Path, Path]:
    suite = write_suite(tmp_path, tiny_digits_suite(name="codeid", seeds=(0,), pgd=False))
    results = tmp_path / "results"
    monkeypatch.setattr(runner, "code_identity", lambda: code)
    outcome = runner.run_suite(suite, results_dir=results, progress=False, report=False)
    manifest = outcome.run_dir / "manifest.json"
    data = json.loads(manifest.read_text())
    data["status"] = "interrupted"  # as if killed before its end
    manifest.write_text(json.dumps(data))
    return suite, results, outcome.run_dir


def test_changed_code_does_not_resume_an_older_run(tmp_path, monkeypatch):
    suite, results, old_run = _interrupted_run(tmp_path, monkeypatch, CODE_A)
    monkeypatch.setattr(runner, "code_identity", lambda: CODE_B)
    outcome = runner.run_suite(suite, results_dir=results, progress=False, report=False)
    assert outcome.run_dir != old_run and outcome.status == "complete"
    training = open_run(outcome.run_dir).table("training")
    assert set(training["weights_code_sha256"]) == {CODE_B["source_sha256"]}  # retrained
    manifest = json.loads((outcome.run_dir / "manifest.json").read_text())
    assert manifest["code"] == CODE_B and manifest["sessions"][0]["reuse_other_code"] is False


def test_resume_across_code_only_when_asked_and_recorded(tmp_path, monkeypatch):
    suite, results, old_run = _interrupted_run(tmp_path, monkeypatch, CODE_A)
    before = json.loads((old_run / "manifest.json").read_text())
    monkeypatch.setattr(runner, "code_identity", lambda: CODE_B)
    outcome = runner.run_suite(suite, results_dir=results, progress=False, report=False,
                               reuse_other_code=True)
    assert outcome.run_dir == old_run
    after = json.loads((old_run / "manifest.json").read_text())
    assert [s["code"] for s in after["sessions"]] == [CODE_A, CODE_B]
    assert after["sessions"][1]["reuse_other_code"] is True
    # The cells of the first session keep their provenance and say which session made them.
    assert after["provenance"] == before["provenance"] and after["code"] == CODE_A
    assert {c["session"] for c in after["cells"].values()} == {0}


def test_explicit_run_id_of_other_code_is_refused(tmp_path, monkeypatch, capsys):
    suite, results, old_run = _interrupted_run(tmp_path, monkeypatch, CODE_A)
    monkeypatch.setattr(runner, "code_identity", lambda: CODE_B)
    code = main(["run", str(suite), "--results-dir", str(results), "--run-id", old_run.name,
                 "--no-progress", "--no-report"])
    assert code == 2 and "made by other bench code" in capsys.readouterr().err


# -- the domain extractor is its weights ----------------------------------------------------------

def test_extractor_identity_is_the_hash_of_its_weights(tmp_path, monkeypatch):
    from bench.cells import extractor as extractor_cell
    from bench.metrics import feature_extractor as fe

    monkeypatch.setitem(extractor_cell.RECIPE, "steps", 20)
    env = RunEnv(device="cpu", cache_dir=tmp_path / "cache", artifacts_dir=tmp_path,
                 progress=False, code=CODE_A)
    result = extractor_cell.run_extractor_cell(ExtractorCellConfig(dataset=DIGITS), {}, env)
    (row,) = result.records["extractors"]
    payload = fe.load_weights(result.artifacts["weights"])
    assert row["hash"] == payload["hash"] == state_dict_fingerprint(payload["state_dict"])
    # Other weights under the same recipe (here: another seed) are another extractor.
    monkeypatch.setitem(extractor_cell.RECIPE, "seed", 1)
    other = extractor_cell.run_extractor_cell(ExtractorCellConfig(dataset=DIGITS), {}, env)
    assert other.records["extractors"][0]["hash"] != row["hash"]
    # A tampered file is refused by the torch-fidelity adapter.
    payload["state_dict"] = {k: v + 1 if v.is_floating_point() else v
                             for k, v in payload["state_dict"].items()}
    tampered = tmp_path / "tampered.pt"
    torch.save(payload, tampered)
    with pytest.raises(ValueError, match="do not hash"):
        fe.DomainFeatureExtractor(row["name"], ["penultimate"],
                                  feature_extractor_weights_path=str(tampered))
    assert math.isfinite(row["test_accuracy"])
    shutil.rmtree(tmp_path / "cache")
