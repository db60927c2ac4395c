"""RobustBench zoo models from a local folder (bench.models.robustbench_zoo): robustbench builds
the architecture, the weights come from MODEL_DIR/DATASET/THREAT_MODEL/NAME.pt in RobustBench's
checkpoint format (tests write random-initialised ones: its weights never come here), with
weights_only=True, and nothing is downloaded unless the suite says so."""

from __future__ import annotations

import hashlib
import importlib.util

import pytest
import torch

from bench.cli import main
from bench.errors import UserError
from bench.models.zoo_index import zoo_index
from bench.reference_extra import import_robustbench, missing_reference_packages
from bench.store import schema as S
from bench.store.run_store import RunStore
from bench.suite.cell_configs import RobustBenchSource
from tests.helpers.formats import write_cifar10
from tests.helpers.suites import write_suite

needs_extra = pytest.mark.skipif(
    bool(missing_reference_packages()),
    reason="the reference extra is not installed (pip install -e \".[reference]\"): "
           f"missing {', '.join(missing_reference_packages())}")

R18 = "Sehwag2021Proxy_R18"  # a CIFAR-10 L∞ zoo model that is a plain ResNet-18: small
SUITE = """
[suite]
name = "zoo"
seeds = [0]
device = "cpu"
[datasets.cifar]
kind = "cifar10"
root = "data"
[models.zoo]
dataset = "cifar"
robustbench = {{ name = "{name}", dataset = "cifar10", threat_model = "Linf" }}
{extra}
[[robustness]]
models = ["zoo"]
attack = "fgsm"
epsilons = [0, "8/255"]
"""


def zoo_architecture(name: str, seed: int = 0) -> torch.nn.Module:
    import_robustbench()
    from robustbench.model_zoo import model_dicts
    from robustbench.model_zoo.enums import BenchmarkDataset, ThreatModel

    torch.manual_seed(seed)
    entry = model_dicts[BenchmarkDataset.cifar_10][ThreatModel.Linf][name]
    return entry["model"]().eval()


def save_in_robustbench_format(model: torch.nn.Module, path) -> None:
    """As RobustBench's checkpoints come (e.g. Carmon2019Unlabeled): the state_dict under
    "state_dict", DataParallel's "module." on every key."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": {f"module.{k}": v for k, v in model.state_dict().items()}}, path)


def suite_at(tmp_path, name=R18, extra="", text=SUITE):
    write_cifar10(tmp_path / "data", n_per_batch=12)
    return write_suite(tmp_path, text.format(name=name, extra=extra))


@pytest.fixture
def no_extra(monkeypatch):
    import bench.reference_extra as extra

    real = extra.installed_version
    monkeypatch.setattr(extra, "installed_version",
                        lambda dist: None if dist in extra.PINNED else real(dist))


# -- validate: torch-free, exit 2, one line ----------------------------------------------------

@needs_extra
def test_the_zoo_read_from_robustbench_source_is_robustbench_model_dicts():
    import_robustbench()
    from robustbench.model_zoo import model_dicts

    index = zoo_index()
    assert index is not None
    for dataset, threats in model_dicts.items():
        for threat, models in threats.items():
            entries = index[(dataset.value, threat.value)]
            assert list(entries) == list(models)
            for name, spec in models.items():
                gdrive = spec["gdrive_id"]
                kind = "ensemble" if isinstance(gdrive, list) else "file" if gdrive else "hosted"
                assert (entries[name].kind, entries[name].gdrive_id) == (
                    kind, gdrive if kind == "file" else None), name


@needs_extra
def test_an_unknown_zoo_name_says_did_you_mean(tmp_path, capsys):
    assert main(["validate", str(suite_at(tmp_path, name="Standrd"))]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "models.zoo.robustbench (line 11)" in err
    assert "has no cifar10 Linf model 'Standrd' (did you mean 'Standard'?)" in err


@needs_extra
def test_a_missing_checkpoint_names_the_file_where_robustbench_publishes_it_and_where_to_put_it(
        tmp_path, capsys):
    assert main(["validate", str(suite_at(tmp_path, name="Standard"))]) == 2
    err = capsys.readouterr().err.strip()
    expected = tmp_path / "models" / "cifar10" / "Linf" / "Standard.pt"
    assert len(err.splitlines()) == 1
    assert f"no checkpoint {str(expected)!r}" in err
    assert "https://drive.google.com/uc?id=1t98aEuzeTL8P7Kpd5DIrCoCL21BNZUhC" in err
    assert "save it as that file, or set download = true" in err
    # model_dir is relative to the suite file
    other = suite_at(tmp_path / "b", name="Standard", extra='model_dir = "zoo/weights"')
    assert main(["validate", str(other)]) == 2
    assert str(tmp_path / "b" / "zoo" / "weights" / "cifar10" / "Linf" / "Standard.pt") in \
        capsys.readouterr().err
    # with download = true the file may be missing: the cell fetches it
    fetch = suite_at(tmp_path / "c", name="Standard", extra="download = true")
    assert main(["validate", str(fetch)]) == 0


@needs_extra
def test_zoo_models_that_are_not_one_local_file_are_refused(tmp_path, capsys):
    from bench.models.zoo_index import zoo_index

    ensemble = next(e.name for e in zoo_index()[("cifar10", "Linf")].values()
                    if e.kind == "ensemble")
    assert main(["validate", str(suite_at(tmp_path, name=ensemble))]) == 2
    assert "is an ensemble of several RobustBench checkpoints" in capsys.readouterr().err


def test_a_zoo_model_on_data_of_another_kind_or_timed_is_refused(tmp_path, capsys):
    text = SUITE.replace('kind = "cifar10"\nroot = "data"', 'kind = "digits"')
    path = write_suite(tmp_path, text.format(name=R18, extra=""))
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    if missing_reference_packages():
        assert "needs bench's reference extra" in err
        return
    assert "models.zoo.dataset" in err and "expected a dataset of kind 'cifar10' or" in err
    timed = SUITE + '[[throughput]]\nmodels = ["zoo"]\nworkloads = ["inference"]\n'
    model = tmp_path / "t" / "models" / "cifar10" / "Linf" / f"{R18}.pt"
    model.parent.mkdir(parents=True)
    model.write_bytes(b"")  # validate reads no weights
    write_cifar10(tmp_path / "t" / "data", n_per_batch=4)
    assert main(["validate", str(write_suite(tmp_path / "t", timed.format(name=R18,
                                                                         extra="")))]) == 2
    assert "'zoo' is a robustbench model; [[throughput]] times" in capsys.readouterr().err


def test_without_the_extra_a_zoo_model_says_which_extra_to_install(tmp_path, no_extra, capsys):
    assert main(["validate", str(suite_at(tmp_path))]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "models.zoo.robustbench" in err
    assert "reference extra (not installed: pyautoattack, robustbench)" in err
    assert 'pip install -e ".[reference]"' in err


def test_only_torchattacks_vendored_copy_is_not_taken_for_robustbench(no_extra):
    with pytest.raises(UserError, match="reference extra") as err:
        import_robustbench("models.zoo.robustbench")
    if importlib.util.find_spec("robustbench") is not None:  # the vendored or the real files
        assert "torchattacks ships is an old vendored copy" in str(err.value)


def test_a_zoo_model_needs_no_train_and_no_checkpoint_key(tmp_path, capsys):
    for extra, message in (("checkpoint = \"x.pt\"", "remove checkpoint"),
                           ("train = { epochs = 1 }", "remove train"),
                           ("arch = \"small-cnn\"", "set exactly one of arch")):
        path = suite_at(tmp_path / extra[:4], extra=extra)
        assert main(["validate", str(path)]) == 2
        assert message in capsys.readouterr().err


def test_model_dir_and_download_belong_to_zoo_models_only(tmp_path, capsys):
    text = SUITE.replace('robustbench = {{ name = "{name}", dataset = "cifar10", '
                         'threat_model = "Linf" }}', 'arch = "small-cnn"')
    path = write_suite(tmp_path, text.format(name="", extra="download = true"))
    write_cifar10(tmp_path / "data", n_per_batch=4)
    assert main(["validate", str(path)]) == 2
    assert "download: used only with robustbench" in capsys.readouterr().err


# -- the cell: robustbench's architecture, RobustBench's checkpoint format ------------------------

def run_suite_at(path, tmp_path) -> RunStore:
    main(["run", str(path), "--results-dir", str(tmp_path / "results"), "--no-progress",
          "--workers", "1", "--no-report"])
    (run,) = (tmp_path / "results" / "zoo").iterdir()
    return RunStore(run)


@needs_extra
def test_a_zoo_model_is_evaluated_from_its_robustbench_checkpoint(tmp_path):
    model = zoo_architecture(R18, seed=1)
    checkpoint = tmp_path / "models" / "cifar10" / "Linf" / f"{R18}.pt"
    save_in_robustbench_format(model, checkpoint)
    path = suite_at(tmp_path)
    assert main(["validate", str(path)]) == 0
    store = run_suite_at(path, tmp_path)
    rob = store.read_table(S.ROBUSTNESS)
    assert list(rob["epsilon"]) == [0.0, pytest.approx(8 / 255)]
    assert set(rob["checkpoint_sha256"]) == {hashlib.sha256(checkpoint.read_bytes()).hexdigest()}
    assert set(rob["checkpoint_notes"]) == {f"robustbench 1.1.1 cifar10/Linf/{R18}"}
    # the clean predictions are those of the weights saved, loaded by robustbench
    from bench.data import load_dataset
    from bench.suite.cell_configs import DatasetSpec

    data = load_dataset(DatasetSpec(name="cifar", kind="cifar10", root=str(tmp_path / "data")),
                        "test")
    with torch.no_grad():
        expected = (model(data.x).argmax(1) == data.y).float().mean().item()
    assert rob["clean_acc"].iloc[0] == pytest.approx(expected)


@needs_extra
def test_a_checkpoint_of_another_architecture_fails_the_cell_with_one_line(tmp_path):
    checkpoint = tmp_path / "models" / "cifar10" / "Linf" / "Standard.pt"
    save_in_robustbench_format(zoo_architecture(R18), checkpoint)  # a ResNet-18, not WRN-28-10
    path = suite_at(tmp_path, name="Standard")
    assert main(["validate", str(path)]) == 0  # validate reads no weights
    cells = run_suite_at(path, tmp_path).read_table(S.CELLS)
    (reason,) = cells.loc[cells["status"] != "ok", "reason"]
    assert "\n" not in reason
    assert "models.zoo.robustbench" in reason
    assert "does not fit robustbench's architecture for 'Standard'" in reason
    assert "missing key(s): " in reason and "unexpected key(s): " in reason


def source(tmp_path, name=R18, download=False) -> RobustBenchSource:
    path = tmp_path / "models" / "cifar10" / "Linf" / f"{name}.pt"
    return RobustBenchSource(name=name, dataset="cifar10", threat_model="Linf",
                             checkpoint=str(path), checkpoint_sha256=None, download=download,
                             normalize=None)


@needs_extra
def test_nothing_is_downloaded_unless_download_is_true(tmp_path, monkeypatch):
    from robustbench import utils

    from bench.models.robustbench_zoo import load_zoo_model

    fetched = []

    def fake_download(gdrive_id, path):  # what RobustBench's would leave: its checkpoint file
        fetched.append((gdrive_id, str(path)))
        save_in_robustbench_format(zoo_architecture(R18), path)

    monkeypatch.setattr(utils, "download_gdrive_new", fake_download)
    with pytest.raises(UserError, match="no checkpoint .*set download = true"):
        load_zoo_model(source(tmp_path), "zoo")
    assert fetched == []
    model, _ = load_zoo_model(source(tmp_path, download=True), "zoo")
    assert fetched == [("1-ZgoSlD_AMhtXdnUElilxVXnzK2DcHuu", source(tmp_path).checkpoint)]
    assert not model.training


@needs_extra
def test_the_checkpoint_is_loaded_with_weights_only(tmp_path):
    from pathlib import Path

    from bench.models.robustbench_zoo import load_zoo_model

    src = source(tmp_path)
    Path(src.checkpoint).parent.mkdir(parents=True)
    torch.save({"state_dict": zoo_architecture(R18).state_dict(), "args": Path("x")},
               src.checkpoint)  # a pickled object: only a full unpickle would load it
    with pytest.raises(UserError, match="cannot load .* with weights_only=True"):
        load_zoo_model(src, "zoo")
    import robustbench.utils

    assert robustbench.utils.torch is torch  # the weights-only view is gone after loading


def test_zoo_rows_keep_torchattacks_rows_apart_in_the_aggregate():
    """Not zoo-specific: the implementation is a key of the aggregate, as of compare."""
    from bench.analysis.tables import ROBUSTNESS_KEYS
    from bench.compare.match import KEY_COLUMNS

    assert "implementation" in ROBUSTNESS_KEYS and "implementation" in KEY_COLUMNS[S.ROBUSTNESS]


def test_robustbench_files_overwritten_by_torchattacks_copy_are_named(tmp_path, monkeypatch):
    """torchattacks' wheel writes an old robustbench/__init__.py and utils.py; installed after
    robustbench, it replaces robustbench's own. Their RECORD hashes then no longer match."""
    import base64
    import hashlib
    from importlib import metadata

    import bench.reference_extra as extra

    real = (tmp_path / "robustbench")
    real.mkdir()
    (real / "__init__.py").write_text("from .eval import benchmark\n")
    (real / "utils.py").write_text("def load_model(): ...\n")

    def record_of(text: str) -> str:
        return base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(
            b"=").decode()

    dist_info = tmp_path / "robustbench-1.1.1.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: robustbench\nVersion: 1.1.1\n")
    (dist_info / "RECORD").write_text(
        f"robustbench/__init__.py,sha256={record_of('from .eval import benchmark' + chr(10))},29\n"
        f"robustbench/utils.py,sha256={record_of('def load_model(): ...' + chr(10))},22\n")
    dist = metadata.PathDistribution(dist_info)
    assert extra.overwritten_files(dist) == []
    (real / "__init__.py").write_text("from .data import load_cifar10\n")  # the vendored one
    assert extra.overwritten_files(dist) == ["robustbench/__init__.py"]
    monkeypatch.setattr(extra.metadata, "distribution", lambda name: dist)
    monkeypatch.setattr(extra, "installed_version", lambda name: "1.1.1")
    with pytest.raises(UserError, match=r"robustbench's robustbench/__init__.py differ .* "
                                        r"pip install --force-reinstall --no-deps "
                                        r"robustbench==1.1.1"):
        import_robustbench("models.zoo.robustbench")
