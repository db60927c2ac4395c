"""Issue 23 end to end: a small adversarially trained model attacked with APGD-CE and
AutoAttack (standard) by torchattacks and by the original AutoAttack code in one `bench run`;
the two implementations' rows stay apart, their robust accuracies agree within the paired
test (`implementation_cross_check`), and `bench export robustbench` writes the model's card.

Kept short: bench's small CNN on the 8×8 digits (trained by the suite, PGD at ε = 0.1),
ε = 0.15 where about 40% of examples survive, steps = 10 on both backends, AutoAttack on
100 examples in one batch (most of its time is Square's 5,000 queries, each a forward of the
examples still standing: fewer examples, less time)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bench.checks.paired import mcnemar_two_sided
from bench.cli import main
from bench.reference_extra import missing_reference_packages
from bench.store import schema as S
from bench.store.correctness import unpack_bits
from bench.store.run_store import RunStore
from bench.suite.load import load_suite
from bench.suite.plan import plan
from tests.helpers.suites import write_suite

pytestmark = pytest.mark.skipif(
    bool(missing_reference_packages()),
    reason="the reference extra is not installed (pip install -e \".[reference]\"): "
           f"missing {', '.join(missing_reference_packages())}")

EPS = 0.15
AA_EXAMPLES = 100
SUITE = f"""
[suite]
name = "xcheck"
seeds = [0]
device = "cpu"

[datasets.digits]
kind = "digits"

[models.adv]
arch = "small-cnn"
dataset = "digits"
train = {{ recipe = "pgd", epsilon = 0.1, epochs = 6, steps = 3 }}

[[robustness]]
models = ["adv"]
attack = "apgd-ce"
epsilons = [{EPS}]

[[robustness]]
models = ["adv"]
attack = "apgd-ce"
implementation = "reference"
epsilons = [{EPS}]

[[robustness]]
models = ["adv"]
attack = "autoattack"
epsilons = [{EPS}]
limit = {AA_EXAMPLES}
batch_size = {AA_EXAMPLES}

[[robustness]]
models = ["adv"]
attack = "autoattack"
implementation = "reference"
epsilons = [{EPS}]
limit = {AA_EXAMPLES}
batch_size = {AA_EXAMPLES}
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> RunStore:
    root = tmp_path_factory.mktemp("xcheck")
    path = write_suite(root, SUITE)
    assert main(["run", str(path), "--results-dir", str(root / "results"), "--no-progress",
                 "--no-report"]) == 0
    (folder,) = (root / "results" / "xcheck").iterdir()
    return RunStore(folder)


def robust(row) -> np.ndarray:
    n = int(row["n"])
    return unpack_bits(row["clean_correct"], n) & unpack_bits(row["adv_correct"], n)


def test_each_implementation_has_its_own_rows_and_cell(run):
    rob = run.read_table(S.ROBUSTNESS)
    assert sorted(zip(rob["attack"], rob["implementation"])) == [
        ("apgd-ce", "reference"), ("apgd-ce", "torchattacks"),
        ("autoattack", "reference"), ("autoattack", "torchattacks")]
    assert rob["cell_id"].nunique() == 4
    ref = rob[rob["implementation"] == "reference"]
    assert all(r.startswith("pyautoattack.") for r in ref["attack_repr"])
    assert set(rob.loc[rob["attack"] == "autoattack", "n"]) == {AA_EXAMPLES}
    agg = run.read_table(S.ROBUSTNESS_AGG)
    assert len(agg[agg["attack"].isin(["apgd-ce", "autoattack"])]) == 4  # never pooled


def test_torchattacks_cells_keep_the_ids_they_had_before_the_key_existed(run, tmp_path):
    """`implementation` is left out of a cell's identity at its default: a suite that does not
    set it plans the ids it planned before (and a run's torchattacks cells have them)."""
    without = write_suite(tmp_path, SUITE.replace('implementation = "reference"\n', ""))
    ids = {c.id for c in plan(load_suite(without)) if c.kind == "robustness"}
    rob = run.read_table(S.ROBUSTNESS)
    assert set(rob.loc[rob["implementation"] == "torchattacks", "cell_id"]) <= ids
    assert not set(rob.loc[rob["implementation"] == "reference", "cell_id"]) & ids
    config = next(c.config for c in plan(load_suite(without)) if c.kind == "robustness")
    assert "implementation" not in config.as_dict()


def test_the_two_implementations_agree_within_the_paired_test(run):
    corr = run.read_table(S.CORRECTNESS)
    checks = run.read_table(S.CHECKS)
    ours = checks[checks["check"] == "implementation_cross_check"]
    assert sorted(ours["attack"]) == ["apgd-ce", "autoattack"]
    for attack in ("apgd-ce", "autoattack"):
        rows = corr[corr["attack"] == attack].set_index("implementation")
        ref, ta = robust(rows.loc["reference"]), robust(rows.loc["torchattacks"])
        assert 0.2 < ref.mean() < 0.8 and 0.2 < ta.mean() < 0.8  # a test that can fail
        test = mcnemar_two_sided(ref, ta)
        assert test.p_value >= 0.01, (attack, ref.mean(), ta.mean(), test)
        (check,) = ours[ours["attack"] == attack].to_dict("records")
        assert check["passed"] and check["p_value"] == pytest.approx(test.p_value)
        assert check["value"] == pytest.approx(ref.mean() - ta.mean())
        assert f"{ref.mean():.3f} by the reference implementation" in check["detail"]


def test_export_writes_the_robustbench_model_card(run, tmp_path, capsys):
    out = tmp_path / "export"
    assert main(["export", "robustbench", str(run.dir), "--output", str(out)]) == 0
    card_path = out / "model_info" / "digits" / "Linf" / "adv.json"
    assert capsys.readouterr().out.split() == [str(card_path)]
    card = json.loads(card_path.read_text())
    rob = run.read_table(S.ROBUSTNESS)
    (ref,) = rob[(rob["attack"] == "autoattack") &
                 (rob["implementation"] == "reference")].to_dict("records")
    assert card["autoattack_acc"] == str(round(ref["robust_acc"] * 100, 2))
    assert card["clean_acc"] == str(round(ref["clean_acc"] * 100, 2))
    assert (card["eps"], card["dataset"], card["threat_model"], card["n_examples"]) == (
        "0.15", "digits", "Linf", AA_EXAMPLES)
    assert card["architecture"] == "small-cnn" and card["name"] == "adv"
    assert card["bench"]["evaluation"]["implementation"] == "reference"
    assert card["bench"]["source_sha256"] and card["bench"]["version"]
    assert "10 steps per gradient attack (the original runs 100)" in card["footnote"]
    assert f"on {AA_EXAMPLES} examples of the test split" in card["footnote"]
    assert "torchattacks" not in card["footnote"]


def test_the_card_has_robustbench_fields_and_values_its_leaderboard_reads(run, tmp_path):
    """Field names from robustbench 1.1.1 itself: `ModelInfo` (what its update_json writes)
    and `ACC_FIELDS` (the key its leaderboard ranks Linf cards by, read as a float; its
    template is not in the wheel, so the rendering itself is not run here)."""
    import dataclasses

    from bench.reference_extra import import_robustbench

    import_robustbench()
    from robustbench.model_zoo.enums import ThreatModel
    from robustbench.utils import ACC_FIELDS, ModelInfo

    out = tmp_path / "export"
    main(["export", "robustbench", str(run.dir), "--output", str(out)])
    card = json.loads((out / "model_info" / "digits" / "Linf" / "adv.json").read_text())
    info = {f.name for f in dataclasses.fields(ModelInfo)}
    ours = {k: v for k, v in card.items() if k in info}
    assert set(card) - set(ours) == {"threat_model", "n_examples", "bench"}
    assert ModelInfo(**ours).autoattack_acc == card["autoattack_acc"]
    ranked_by = next(k for k in ACC_FIELDS[ThreatModel(card["threat_model"])] if k in card)
    assert ranked_by == "autoattack_acc"
    assert float(card[ranked_by]) == round(card["bench"]["evaluation"]["autoattack_acc"] * 100, 2)
