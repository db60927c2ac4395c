"""`checkpoint = "weights/*.pt"`: one model per file, named after the file, through the same
attacks; a glob that matches nothing, or two files that would get one name, is bad input."""

from __future__ import annotations

import textwrap

import pytest
import torch

from bench.cli import main
from bench.runner import run_suite
from bench.store import schema as S
from bench.store.run_store import RunStore
from bench.suite.checkpoints import natural_key
from bench.suite.load import load_suite
from bench.suite.plan import plan
from tests.helpers.suites import write_suite

SUITE = """
[suite]
name = "many"
seeds = [0]
device = "cpu"

[datasets.digits]
kind = "digits"

[models.mine]
factory = "glob_nets:Net"
checkpoint = "{checkpoint}"
dataset = "digits"

[[robustness]]
models = ["mine"]
attack = "fgsm"
epsilons = [0, 0.1]
limit = 50
"""


@pytest.fixture
def nets(tmp_path, monkeypatch):
    """A factory package on the path, and checkpoints of three 'epochs' in weights/."""
    pkg = tmp_path / "glob_nets"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(textwrap.dedent("""
        from torch import nn

        def Net():
            return nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
        """))
    monkeypatch.syspath_prepend(str(tmp_path))
    from glob_nets import Net

    weights = tmp_path / "weights"
    weights.mkdir()
    for epoch in (5, 10, 15):
        torch.manual_seed(epoch)
        torch.save(Net().state_dict(), weights / f"epoch_{epoch}.pt")
    return tmp_path


def test_a_glob_is_one_model_per_file_named_after_it(nets):
    suite = write_suite(nets, SUITE.format(checkpoint="weights/epoch_*.pt"))
    cells = plan(load_suite(suite))
    assert [c.config.model for c in cells] == ["mine@epoch_5", "mine@epoch_10", "mine@epoch_15"]
    shas = {c.config.source.checkpoint_sha256 for c in cells}
    assert len(shas) == 3  # each cell names its own file's content
    out = run_suite(suite, results_dir=nets / "results", progress=False, report=False,
                    executor="local", executor_options={"workers": 1})
    assert out.status == "complete"
    rob = RunStore(out.run_dir).read_table(S.ROBUSTNESS)
    assert sorted(set(rob["model"])) == ["mine@epoch_10", "mine@epoch_15", "mine@epoch_5"]
    assert rob.groupby("model")["checkpoint_sha256"].nunique().eq(1).all()
    manifest = RunStore(out.run_dir).read_manifest()
    assert set(manifest["inputs"]) == {f"models.mine@epoch_{e}.checkpoint" for e in (5, 10, 15)}
    # Different weights, different numbers: the files really were loaded one by one.
    assert rob[rob["epsilon"] == 0.1]["robust_acc"].nunique() > 1


def test_the_names_do_not_depend_on_what_else_matches(nets):
    one = plan(load_suite(write_suite(nets, SUITE.format(checkpoint="weights/epoch_1*.pt"))))
    every = plan(load_suite(write_suite(nets, SUITE.format(checkpoint="weights/*.pt"),
                                        "all.toml")))
    assert {c.config.model: c.id for c in one}.items() <= {c.config.model: c.id for c in every}.items()


def test_a_glob_matching_nothing_is_a_one_line_error(nets, capsys):
    suite = write_suite(nets, SUITE.format(checkpoint="weights/*.pth"))
    assert main(["validate", str(suite)]) == 2
    err = capsys.readouterr().err
    line = suite.read_text().splitlines().index('checkpoint = "weights/*.pth"') + 1
    assert err.startswith(f"bench: error: {suite}: models.mine.checkpoint (line {line}): the glob "
                          f"'weights/*.pth' matches no file (looked for '{nets}/weights/*.pth')")
    assert err.count("\n") == 1


def test_two_files_with_one_name_are_a_one_line_error(nets, capsys):
    (nets / "weights" / "old").mkdir()
    torch.save({}, nets / "weights" / "old" / "epoch_5.pt")
    suite = write_suite(nets, SUITE.format(checkpoint="weights/**/epoch_5.pt"))
    assert main(["validate", str(suite)]) == 2
    err = capsys.readouterr().err
    assert "would both be named 'mine@epoch_5'" in err and "narrow the glob" in err
    assert err.count("\n") == 1


def test_checkpoints_sort_naturally():
    names = ["w/epoch_10.pt", "w/epoch_9.pt", "w/epoch_100.pt", "w/epoch_1.pt"]
    assert sorted(names, key=natural_key) == ["w/epoch_1.pt", "w/epoch_9.pt", "w/epoch_10.pt",
                                              "w/epoch_100.pt"]
