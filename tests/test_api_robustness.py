"""bench from Python, as a notebook user would call it: evaluate_robustness on an nn.Module and
tensors gives the rows `bench run` gives for the same model and examples, and run_suite runs a
suite from a file or a dict and hands back its tables."""

from __future__ import annotations

import io
import textwrap

import pandas as pd
import pytest
import torch

from bench import api
from bench.data import load_dataset
from bench.errors import UserError
from bench.runner import run_suite
from bench.store import schema as S
from bench.suite.cell_configs import DatasetSpec
from tests.helpers.suites import write_suite
from tests.helpers.tables import comparable_tables

EPSILONS = [0, 0.1, 0.2]
ATTACKS = ["fgsm", {"attack": "pgd", "steps": 3}, {"attack": "autoattack", "epsilons": [0.2],
                                                   "limit": 16, "batch_size": 8}]
SUITE = """
[suite]
name = "api-twin"
seeds = [0]
device = "cpu"

[datasets.digits]
kind = "digits"

[models.mine]
factory = "api_nets:Net"
checkpoint = "net.pt"
dataset = "digits"

[[robustness]]
models = ["mine"]
attack = "fgsm"
epsilons = [0, 0.1, 0.2]
limit = 120

[[robustness]]
models = ["mine"]
attack = "pgd"
steps = 3
epsilons = [0, 0.1, 0.2]
limit = 120

[[robustness]]
models = ["mine"]
attack = "autoattack"
epsilons = [0.2]
limit = 16
batch_size = 8
"""


@pytest.fixture(scope="module")
def twin(tmp_path_factory, digits_mlp):
    """The tiny digits MLP as a user's factory and checkpoint, run through `bench run`."""
    root = tmp_path_factory.mktemp("api")
    pkg = root / "api_nets"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(textwrap.dedent("""
        from torch import nn

        def Net():
            return nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
        """))
    import sys

    sys.path.insert(0, str(root))
    try:
        from api_nets import Net

        model = Net()
        model.load_state_dict(digits_mlp[0].state_dict())
        torch.save(model.state_dict(), root / "net.pt")
        out = run_suite(write_suite(root, SUITE), results_dir=root / "results", progress=False,
                        report=False, executor="local", executor_options={"workers": 1})
        assert out.status == "complete"
        yield model, out.run_dir
    finally:
        sys.path.remove(str(root))


def digits_test() -> tuple[torch.Tensor, torch.Tensor]:
    test = load_dataset(DatasetSpec(name="digits", kind="digits"), "test")
    return test.x, test.y


def evaluate(model, data, **kw):
    return api.evaluate_robustness(model, data, ATTACKS, EPSILONS, limit=120, model_name="mine",
                                   data_name="digits", **kw)


def same(table: pd.DataFrame) -> pd.DataFrame:
    """A table as a run folder holds it (through Parquet), without what must differ: timing,
    the cells' ids, and what identifies the weights (the checkpoint file's sha256 there, the
    state_dict's fingerprint here)."""
    buf = io.BytesIO()
    table.to_parquet(buf, index=False)
    table = pd.read_parquet(buf)
    drop = [c for c in table.columns if c in (S.CELL_ID, "checkpoint_sha256", "host")
            or c.endswith("seconds") or "per_s" in c]
    return table.drop(columns=drop).reset_index(drop=True)


def test_the_api_gives_the_rows_bench_run_gives(twin):
    model, run_dir = twin
    tables = evaluate(model, digits_test(), tables=True)
    recorded = comparable_tables(run_dir)
    for name in ("robustness", "robustness_agg", "correctness", "examples", "worst_case",
                 "checks"):
        pd.testing.assert_frame_equal(same(tables[name]), same(recorded[name]),
                                      check_exact=True, obj=name)
    rob = tables["robustness"]
    assert set(rob["attack"]) == {"fgsm", "pgd", "autoattack"} and rob["n"].tolist()[:3] == [120] * 3
    assert (rob[rob["epsilon"] > 0]["robust_acc"] < rob[rob["epsilon"] > 0]["clean_acc"]).all()
    assert tables["checks"]["passed"].all()  # the model-level checks ran, on a sound model


@pytest.mark.parametrize("form", ["dataset", "loader", "uint8"])
def test_every_form_of_data_gives_the_same_rows(twin, form):
    model, _ = twin
    x, y = digits_test()
    data = {"dataset": torch.utils.data.TensorDataset(x, y),
            "loader": torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y),
                                                  batch_size=100),
            "uint8": (torch.round(x * 255).to(torch.uint8), y)}[form]
    attacks = ["fgsm"]
    rows = api.evaluate_robustness(model, data, attacks, EPSILONS, limit=120, checks=False)
    if form == "uint8":  # what uint8 pixels mean: k / 255 as floats
        x = torch.round(x * 255) / 255
    plain = api.evaluate_robustness(model, (x, y), attacks, EPSILONS, limit=120, checks=False)
    pd.testing.assert_frame_equal(same(rows), same(plain), check_exact=True)
    assert rows["n"].tolist() == [120] * 3


@pytest.mark.parametrize("attacks, message", [
    (["cw"], "attacks[0].attack: Input should be 'fgsm', 'pgd'"),
    ([{"attack": "pgd", "steps": 0}], "attacks[0].steps: Input should be greater than 0"),
    ([{"attack": "fgsm", "loss": "dlr"}], "attacks[0].loss: Value error, not used with attack = "
                                          "'fgsm'"),
    ([{"attack": "fgsm", "models": ["x"]}], "attacks[0]: 'models' is not an attack setting"),
])
def test_bad_attacks_are_one_clear_line(twin, attacks, message):
    model, _ = twin
    with pytest.raises(ValueError) as err:
        api.evaluate_robustness(model, digits_test(), attacks, [0.1])
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_bad_data_says_what_it_got_and_what_is_expected(twin):
    model, _ = twin
    x, y = digits_test()
    with pytest.raises(ValueError, match=r"pixel values must lie in \[0, 1\].*got \[-2"):
        api.evaluate_robustness(model, ((x - 0.5) * 5, y), ["fgsm"], [0.1])
    with pytest.raises(ValueError, match=r"expected images N×C×H×W .*got \(1797,\) "):
        api.evaluate_robustness(model, (torch.zeros(1797), y), ["fgsm"], [0.1])
    with pytest.raises(ValueError, match="expected \\(x, y\\) tensors, a Dataset or a DataLoader"):
        api.evaluate_robustness(model, 42, ["fgsm"], [0.1])


def test_run_suite_from_a_dict_gives_the_file_runs_tables(twin, tmp_path):
    model, run_dir = twin
    suite_dir = run_dir.parents[2]  # where the suite file and its checkpoint are
    import tomllib

    doc = tomllib.loads(SUITE)
    import sys

    sys.path.insert(0, str(suite_dir))
    try:
        run = api.run_suite(doc, base_dir=suite_dir, results_dir=tmp_path, workers=1,
                            report=False)
    finally:
        sys.path.remove(str(suite_dir))
    assert run.status == "complete" and run.exit_code == 0 and run.failed == 0
    recorded = comparable_tables(run_dir)
    for name in ("robustness", "examples", "checks"):
        pd.testing.assert_frame_equal(same(run.table(name)), same(recorded[name]),
                                      check_exact=True, obj=name)
    assert run.manifest["suite"]["name"] == "api-twin" and "[[robustness]]" in \
        run.manifest["suite"]["text"]
    assert run.table("no-such-table").empty and run.report is None


def test_run_suite_refuses_a_bad_dict_in_one_line(tmp_path):
    doc = {"suite": {"name": "bad"}, "datasets": {"digits": {"kind": "digits"}},
           "models": {"cnn": {"arch": "small-cnn", "dataset": "digits"}},
           "robustness": [{"models": ["cnn"], "epsilons": [0.1], "stesp": 3}]}
    with pytest.raises(UserError) as err:
        api.run_suite(doc, base_dir=tmp_path, results_dir=tmp_path)
    assert "bad.toml: robustness[0].stesp (line" in str(err.value)
    assert "unknown key" in str(err.value) and not (tmp_path / "bad").exists()


def test_the_robustness_examples_in_docs_api_md_run(tmp_path, monkeypatch, capsys):
    """docs/api.md's robustness and run_suite examples, run as they are, from an empty
    working directory."""
    from pathlib import Path

    monkeypatch.chdir(tmp_path)
    text = (Path(__file__).resolve().parents[1] / "docs" / "api.md").read_text()
    part = text[text.index("## Robustness of a model in memory"):text.index("## FID from")]
    blocks = [b.split("```")[0] for b in part.split("```python\n")[1:]]
    assert len(blocks) == 2
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, "docs/api.md", "exec"), namespace)
    rows, run = namespace["rows"], namespace["run"]
    assert len(rows) == 6 and set(rows["attack"]) == {"fgsm", "pgd"}
    attacked = rows[rows["epsilon"] == 0.1]
    assert (attacked["robust_acc"] < attacked["clean_acc"]).all() and (rows["clean_acc"] > 0.8).all()
    assert run.status == "complete" and (tmp_path / "results" / "from-a-notebook").is_dir()
    out = capsys.readouterr().out
    assert "robust_acc" in out and "complete" in out


def test_the_readme_example_runs(tmp_path, monkeypatch, capsys):
    """README.md's Python example, run as it is."""
    from pathlib import Path

    monkeypatch.chdir(tmp_path)
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    (block,) = [b.split("```")[0] for b in text.split("```python\n")[1:]
                if "evaluate_robustness" in b.split("```")[0]]
    namespace: dict = {}
    exec(compile(block, "README.md", "exec"), namespace)
    rows = namespace["rows"]
    assert len(rows) == 4 and rows["n"].tolist() == [1797] * 4
    assert "robust_acc" in capsys.readouterr().out
