"""The sanity checks inside a run: the plan asks one robustness cell per model and seed for
the model-level checks and PGD cells for convergence when the suite says so; the cells and
the analysis fill the `checks` table; a failed check is the report's first section. A run
over a sound user model and the same weights with dropout left on (F.dropout(training=True))
shows every check silent on the first and the determinism check firing on the second."""

import textwrap

import pandas as pd
import pytest
import torch

from bench.cli import main
from bench.report.sections.checks import ALERT_TITLE
from bench.store import schema as S
from bench.store.run_store import RunStore
from bench.suite.load import load_suite
from bench.suite.plan import plan

NETS = """
import torch.nn.functional as F
from torch import nn


def Mlp():
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))


class DropoutOn(nn.Sequential):
    \"\"\"The same MLP with dropout called as F.dropout(training=True): eval() cannot stop it.\"\"\"

    def __init__(self):
        super().__init__(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))

    def forward(self, x):
        flatten, hidden, relu, out = self
        return out(F.dropout(relu(hidden(flatten(x))), 0.5, training=True))
"""

SUITE = """
[suite]
name = "checked"
seeds = [0]

[datasets.digits]
kind = "digits"
limit_test = 200

[models.sound]
factory = "check_nets:Mlp"
checkpoint = "mlp.pt"
dataset = "digits"

[models.dropout]
factory = "check_nets:DropoutOn"
checkpoint = "mlp.pt"
dataset = "digits"

[[robustness]]
models = ["sound", "dropout"]
attack = "fgsm"
epsilons = [0, 0.05, 0.1]

[[robustness]]
models = ["sound", "dropout"]
attack = "pgd"
steps = 10
epsilons = [0.05, 0.1]
convergence = true
"""

MODEL_CHECKS = {"deterministic_predictions", "gradient_saturation", "unbounded_epsilon"}


@pytest.fixture()
def suite_path(tmp_path, monkeypatch, digits_mlp):
    (tmp_path / "check_nets.py").write_text(NETS)
    monkeypatch.syspath_prepend(str(tmp_path))
    torch.save(digits_mlp[0].state_dict(), tmp_path / "mlp.pt")
    path = tmp_path / "checked.toml"
    path.write_text(SUITE)
    return path


def test_plan_asks_one_cell_per_model_and_seed_for_the_model_checks(suite_path):
    cells = [c for c in plan(load_suite(suite_path)) if c.kind == "robustness"]
    flags = {(c.config.model, c.config.attack): (c.config.model_checks, c.config.convergence)
             for c in cells}
    assert flags == {("sound", "fgsm"): (True, False), ("dropout", "fgsm"): (True, False),
                     ("sound", "pgd"): (False, True), ("dropout", "pgd"): (False, True)}
    # Off, the switches stay out of the cell's identity (ids published before them hold).
    off = next(c for c in cells if c.config.attack == "pgd").config
    off = off.model_copy(update={"convergence": False})
    assert not {"model_checks", "convergence"} & set(off.as_dict())
    assert "model_checks" in next(c for c in cells if c.config.model_checks).config.as_dict()


def test_a_second_norm_gets_its_own_model_checks_a_subset_does_not(suite_path):
    suite_path.write_text(SUITE + textwrap.dedent("""
        [[robustness]]
        models = ["sound"]
        attack = "pgd"
        norm = "l2"
        epsilons = [0.5]

        [[robustness]]
        models = ["sound"]
        attack = "autoattack"
        epsilons = [0.1]
        limit = 50
        """))
    cells = [c for c in plan(load_suite(suite_path)) if c.kind == "robustness"
             and c.config.model == "sound" and c.config.model_checks]
    assert sorted((c.config.attack, c.config.attack_params.norm) for c in cells) == [
        ("fgsm", "linf"), ("pgd", "l2")]


def test_a_run_fills_the_checks_table_and_puts_a_failure_first(suite_path, tmp_path):
    results = tmp_path / "results"
    assert main(["run", str(suite_path), "--results-dir", str(results), "--no-progress"]) == 0
    run = next((results / "checked").iterdir())
    checks = RunStore(run).read_table(S.CHECKS)
    assert list(checks.columns) == [S.CELL_ID, *S.COLUMNS[S.CHECKS]]
    sound, dropout = (checks[checks.model == m] for m in ("sound", "dropout"))

    assert sound["passed"].all(), sound.loc[~sound.passed, "detail"].tolist()
    assert set(sound.check) == MODEL_CHECKS | {
        "pgd_convergence", "zero_epsilon_is_clean", "accuracy_non_increasing_in_epsilon",
        "pgd_not_weaker_than_fgsm", "linf_within_epsilon", "logit_outputs"}
    # The model-level checks once per model (from one cell), convergence once per ε > 0.
    assert (sound.check.value_counts()[sorted(MODEL_CHECKS)] == 1).all()
    assert sorted(sound.loc[sound.check == "pgd_convergence", "epsilon"]) == [0.05, 0.1]
    model_level = sound[sound.check.isin(MODEL_CHECKS)]
    assert model_level.cell_id.nunique() == 1 and model_level.cell_id.notna().all()

    failed = set(dropout.loc[~dropout.passed, "check"])
    assert "deterministic_predictions" in failed
    det = dropout[dropout.check == "deterministic_predictions"].iloc[0]
    assert "not a fixed function" in det.detail and det.value > 0

    md = (run / "report.md").read_text()
    first = next(line for line in md.splitlines() if line.startswith("## "))
    assert first == f"## {ALERT_TITLE}"
    assert "deterministic_predictions failed for dropout" in md
    assert pd.api.types.is_bool_dtype(checks.passed)
