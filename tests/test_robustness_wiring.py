"""Issue 11 wired through `bench run`: typed attack settings from the suite to the sweep, two
settings of one attack kept apart in every table, check, plot and compare, the worst case over
every attack (AutoAttack on a `limit`ed subset included), and users' checkpoints as they come
in the wild (wrapped, `module.`-prefixed, probability outputs)."""

from __future__ import annotations

import inspect
import json
import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from bench.attacks import ATTACKS
from bench.cli import main
from bench.compare import compare_runs
from bench.metrics.worst_case import WORST_CASE
from bench.report.sections.robustness import plot_lines
from bench.store import schema as S
from bench.store.correctness import unpack_bits
from bench.store.run_store import RunStore
from bench.suite.attack_options import ATTACK_KEYS, ATTACK_NAMES
from bench.suite.cell_configs import (
    ATTACK_PARAMS,
    FgsmParams,
    IterativeParams,
    PgdParams,
    RobustnessCellConfig,
)
from bench.suite.load import load_suite
from bench.suite.plan import plan
from tests.helpers.models import train_digits_mlp
from tests.helpers.runs import copy_run

# -- typed settings: suite -> plan -> cell config -> sweep --------------------------------------


@pytest.mark.parametrize("attack", ATTACK_NAMES)
def test_each_attack_params_model_holds_exactly_its_suite_keys_and_sweep_keywords(attack):
    fields = set(ATTACK_PARAMS[attack].model_fields)
    assert fields == set(ATTACK_KEYS[attack])
    keywords = {name for name, p in inspect.signature(ATTACKS.get(attack)).parameters.items()
                if p.kind is p.KEYWORD_ONLY} - {"seed", "offset", "progress"}
    assert fields == keywords


EVERY_ATTACK = """
[suite]
name = "every"
[datasets.digits]
kind = "digits"
[models.cnn]
arch = "small-cnn"
dataset = "digits"
[[robustness]]
models = ["cnn"]
epsilons = [0.1]
[[robustness]]
models = ["cnn"]
attack = "pgd"
steps = 100
alpha = "1/255"
loss = "cw"
restarts = 2
epsilons = [0.1]
[[robustness]]
models = ["cnn"]
attack = "apgd-t"
norm = "l2"
steps = 20
epsilons = [0.5]
[[robustness]]
models = ["cnn"]
attack = "square"
queries = 300
epsilons = [0.1]
[[robustness]]
models = ["cnn"]
attack = "autoattack"
version = "plus"
epsilons = [0.1]
"""


def test_plan_builds_each_attack_its_typed_settings_and_they_read_back(tmp_path):
    path = tmp_path / "every.toml"
    path.write_text(EVERY_ATTACK)
    configs = [c.config for c in plan(load_suite(path)) if c.kind == "robustness"]
    params = {c.attack: c.attack_params for c in configs}
    assert params["fgsm"] == FgsmParams(norm="linf")
    assert params["pgd"] == PgdParams(norm="linf", steps=100, alpha=1 / 255, random_start=True,
                                      restarts=2, loss="cw")
    assert params["apgd-t"] == IterativeParams(norm="l2", steps=20, restarts=1)
    assert params["square"].queries == 300 and params["autoattack"].version == "plus"
    for config in configs:
        data = config.model_dump(mode="json") | {"dataset": config.dataset,
                                                 "source": config.source}
        again = RobustnessCellConfig.model_validate(data)
        assert again == config and type(again.attack_params) is type(config.attack_params)
        assert again.attack_params.sweep_kwargs() == dict(zip(
            ATTACK_KEYS[config.attack], (getattr(config.attack_params, k)
                                         for k in ATTACK_KEYS[config.attack])))


def test_settings_of_another_attack_are_refused(tmp_path):
    path = tmp_path / "every.toml"
    path.write_text(EVERY_ATTACK)
    pgd = next(c.config for c in plan(load_suite(path))
               if c.kind == "robustness" and c.config.attack == "pgd")
    data = pgd.model_dump(mode="json") | {"dataset": pgd.dataset, "source": pgd.source}
    with pytest.raises(ValueError, match="Extra inputs"):
        RobustnessCellConfig.model_validate(data | {"attack": "apgd-ce"})  # PGD's keys
    with pytest.raises(ValueError, match="takes IterativeParams, got PgdParams"):
        RobustnessCellConfig.model_validate(data | {"attack": "apgd-ce",
                                                    "attack_params": pgd.attack_params})


# -- one `bench run`: two PGD settings, AutoAttack on a subset, users' checkpoints ---------------

SUITE = """
[suite]
name = "wired"
seeds = [0, 1]
device = "cpu"

[datasets.digits]
kind = "digits"
limit_train = 600
limit_test = 60

[models.cnn]
arch = "small-cnn"
dataset = "digits"
train = {{ epochs = 2, lr = 0.003 }}

[models.mine]   # saved as {{"state_dict": {{"module.net...": ...}}, "epoch": 3}}
factory = "wired_pkg.nets:Mlp"
checkpoint = "{wrapped}"
dataset = "digits"

[models.soft]   # the same weights, a softmax at the end
factory = "wired_pkg.nets:SoftMlp"
checkpoint = "{plain}"
dataset = "digits"

[[robustness]]
models = ["cnn", "mine", "soft"]
attack = "fgsm"
epsilons = [0, 0.1, 0.2]

[[robustness]]   # PGD-10 and PGD-100 (Carlini et al.'s convergence check): two settings
models = ["cnn"]
attack = "pgd"
steps = 10
epsilons = [0.1, 0.2]

[[robustness]]
models = ["cnn"]
attack = "pgd"
steps = 100
epsilons = [0.1, 0.2]

[[robustness]]
models = ["cnn"]
attack = "autoattack"
epsilons = [0.2]
limit = {aa_limit}
"""
AA_LIMIT = 10  # AutoAttack (Square's 5000 queries) on a subset: what is checked is the subset
N = 60  # the test split, as limit_test loads it
NETS = """
from torch import nn


class Mlp(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))

    def forward(self, x):
        return self.net(x)


class SoftMlp(Mlp):
    def forward(self, x):
        return super().forward(x).softmax(1)
"""


@pytest.fixture(scope="module")
def wired(tmp_path_factory):
    """The run folder of SUITE, run once for the tests below."""
    root = tmp_path_factory.mktemp("wired")
    (root / "wired_pkg").mkdir()
    (root / "wired_pkg" / "__init__.py").write_text("")
    (root / "wired_pkg" / "nets.py").write_text(NETS)
    mlp, _, _ = train_digits_mlp(hidden=32, steps=200)
    state = {f"net.{k}": v for k, v in mlp.state_dict().items()}
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}, "epoch": 3},
               root / "wrapped.pt")
    torch.save(state, root / "plain.pt")
    suite = root / "wired.toml"
    suite.write_text(SUITE.format(wrapped="wrapped.pt", plain="plain.pt", aa_limit=AA_LIMIT))
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(root))
        assert main(["run", str(suite), "--results-dir", str(root / "results"),
                     "--no-progress"]) == 0
    (run,) = (root / "results" / "wired").iterdir()
    return RunStore(run)


def pgd_steps(df: pd.DataFrame) -> pd.DataFrame:
    return df[(df["attack"] == "pgd") & (df["model"] == "cnn")]


def test_two_pgd_settings_stay_two_rows_in_every_table(wired):
    rob, agg = wired.read_table(S.ROBUSTNESS), wired.read_table(S.ROBUSTNESS_AGG)
    correctness = wired.read_table(S.CORRECTNESS)
    for table in (rob, correctness):  # one row per seed, ε and setting
        counts = pgd_steps(table).groupby(["seed", "epsilon"])["steps"].agg(sorted)
        assert counts.map(tuple).tolist() == [(10, 100)] * 4
    pgd = pgd_steps(agg)
    assert sorted(zip(pgd["steps"], pgd["epsilon"])) == [(10, 0.1), (10, 0.2), (100, 0.1),
                                                         (100, 0.2)]
    assert set(pgd["n_seeds"]) == {2} and set(pgd["n"]) == {N}  # not 4 values pooled
    for steps, g in pgd.groupby("steps"):  # each row is the mean of its own setting's seeds
        mine = pgd_steps(rob)[pgd_steps(rob)["steps"] == steps].groupby("epsilon")["robust_acc"]
        assert np.allclose(g.set_index("epsilon")["robust_acc_mean"], mine.mean())
    assert set(pgd_steps(rob)["alpha"].isna()) == {True}  # configured: the default rule
    assert set(pgd_steps(rob)["alpha_used"].round(6)) == {0.025, 0.05, 0.0025, 0.005}
    params = [json.loads(p) for p in pgd_steps(rob)["attack_params"]]
    assert {(p["steps"], p["loss"], p["restarts"]) for p in params} == {(10, "ce", 1),
                                                                         (100, "ce", 1)}


def test_two_pgd_settings_are_checked_and_plotted_apart(wired):
    checks = wired.read_table(S.CHECKS)
    for check in ("accuracy_non_increasing_in_epsilon", "pgd_not_weaker_than_fgsm"):
        rows = checks[(checks["check"] == check) & (checks["model"] == "cnn")
                      & (checks["attack"] == "pgd")]
        assert len(rows) == 2 * 2 * (1 if check.startswith("accuracy") else 2)  # settings x seeds
        assert sum(rows["setting"].str.startswith("steps=10,")) == len(rows) // 2
        assert sum(rows["setting"].str.startswith("steps=100,")) == len(rows) // 2
        assert sum("pgd(steps=10," in d for d in rows["detail"]) == len(rows) // 2
    labels = [line.label for line in plot_lines(wired.read_table(S.ROBUSTNESS_AGG))]
    assert {"cnn / pgd(steps=10)", "cnn / pgd(steps=100)"} <= set(labels)
    assert len(labels) == len(set(labels))
    report = (wired.dir / "report.md").read_text()
    assert report.count("| cnn | digits | pgd(steps=10) |") == 2
    assert report.count("| cnn | digits | pgd(steps=100) |") == 2


@pytest.mark.parametrize("journal", [True, False], ids=["by-cell", "by-row-keys"])
def test_compare_never_pools_two_pgd_settings(wired, tmp_path, journal):
    base, cand = copy_run(wired.dir, tmp_path / "base"), copy_run(wired.dir, tmp_path / "cand")
    if not journal:  # matched by the rows' key columns alone
        for run in (base, cand):
            shutil.rmtree(run / "cells")
    rows = [r for r in compare_runs(base, cand).rows
            if r.metric == "robust_acc" and r.key["attack"] == "pgd"]
    assert sorted((r.key["steps"], r.key["epsilon"]) for r in rows) == [
        (10, 0.1), (10, 0.2), (100, 0.1), (100, 0.2)]
    assert all(r.n_baseline == r.n_candidate == 2 for r in rows)  # one sample per seed


def test_autoattack_on_a_subset_gives_worst_case_rows_over_every_attack(wired):
    worst = wired.read_table(S.WORST_CASE)
    rob = wired.read_table(S.ROBUSTNESS)
    assert set(worst["attack"]) == {WORST_CASE}
    sub = worst[(worst["model"] == "cnn") & (worst["n"] == AA_LIMIT) & (worst["epsilon"] == 0.2)]
    assert len(sub) == 2  # one per seed
    assert all(set(a.split("; ")) == {"autoattack(steps=10, version=standard)", "fgsm",
                                      "pgd(steps=10, random_start=True, restarts=1, loss=ce)",
                                      "pgd(steps=100, random_start=True, restarts=1, loss=ce)"}
               for a in sub["attacks"])
    correct = wired.read_table(S.CORRECTNESS)
    for r in sub.itertuples():
        aa = rob[(rob.attack == "autoattack") & (rob.seed == r.seed)].iloc[0]
        assert r.robust_acc <= aa.robust_acc and r.data_fingerprint == aa.data_fingerprint
        # Each attack on the whole split, restricted to the subset's examples, is no better.
        rows = correct[(correct.model == "cnn") & (correct.seed == r.seed)
                       & (correct.epsilon == 0.2)]
        whole = rows[rows.n == N]
        members = unpack_bits(rows[rows.n == AA_LIMIT].iloc[0]["examples"], N)
        for w in whole.itertuples():
            robust = (unpack_bits(w.clean_correct, N) & unpack_bits(w.adv_correct, N))
            assert r.robust_acc <= robust[members].mean()
    agg = wired.read_table(S.ROBUSTNESS_AGG)
    mean = agg[(agg.attack == WORST_CASE) & (agg.n == AA_LIMIT) & (agg.epsilon == 0.2)
               & (agg.model == "cnn")]
    assert len(mean) == 1 and mean.iloc[0]["n_seeds"] == 2
    assert mean.iloc[0]["robust_acc_mean"] == pytest.approx(sub["robust_acc"].mean())


def test_worst_case_on_the_whole_split_is_the_per_example_and_of_every_attack(wired):
    """Recomputed from the stored bits: robust under the worst case = clean-correct and correct
    under every attack at that ε and (nested) at every smaller ε; so it is <= each attack."""
    worst, rob = wired.read_table(S.WORST_CASE), wired.read_table(S.ROBUSTNESS)
    correct = wired.read_table(S.CORRECTNESS)
    whole = worst[(worst.model == "cnn") & (worst.n == N)]
    assert sorted(set(whole.epsilon)) == [0.0, 0.1, 0.2] and len(whole) == 3 * 2
    def same(table: pd.DataFrame, r) -> pd.DataFrame:
        return table[(table.model == "cnn") & (table.seed == r.seed) & (table.n == N)]

    for r in whole.itertuples():
        attacked = same(rob, r)[same(rob, r).epsilon == r.epsilon]
        assert len(attacked) == (1 if r.epsilon == 0 else 3)  # fgsm (+ pgd-10, pgd-100)
        assert (r.robust_acc <= attacked.robust_acc + 1e-12).all()
        bits = same(correct, r)[same(correct, r).epsilon <= r.epsilon]  # nested: smaller ε too
        robust = np.logical_and.reduce([unpack_bits(b.clean_correct, N)
                                        & unpack_bits(b.adv_correct, N)
                                        for b in bits.itertuples()])
        assert r.robust_acc == pytest.approx(robust.mean())


def test_a_wrapped_prefixed_checkpoint_runs_and_the_manifest_says_what_was_done(wired):
    notes = ("unwrapped the checkpoint's 'state_dict' entry (beside epoch); stripped "
             "DataParallel's 'module.' prefix from 4 keys")
    assert wired.read_manifest()["checkpoint_notes"] == {"models.mine.checkpoint": [notes]}
    rob = wired.read_table(S.ROBUSTNESS)
    assert set(rob.loc[rob.model == "mine", "checkpoint_notes"]) == {notes}
    assert rob.loc[rob.model.isin(["cnn", "soft"]), "checkpoint_notes"].isna().all()
    clean = rob[(rob.model == "mine") & (rob.epsilon == 0)]["clean_acc"]
    assert (clean > 0.8).all()  # the trained weights were really loaded


def test_a_probability_output_model_is_warned_about_in_checks_and_report(wired):
    checks = wired.read_table(S.CHECKS)
    logit = checks[checks["check"] == "logit_outputs"].set_index(["model", "seed"])
    assert not logit.loc[("soft", 0), "passed"]
    assert "models.soft: its outputs are probabilities" in logit.loc[("soft", 0), "detail"]
    assert logit.loc[["cnn", "mine"], "passed"].all()  # silent on logits
    report = (wired.dir / "report.md").read_text()
    assert "**Warning:** logit_outputs failed for soft (2×): models.soft: its outputs" in report


# -- rows a cell of this run could not produce by itself ------------------------------------------

def test_accuracy_columns_and_their_intervals_in_the_aggregate(wired):
    agg = wired.read_table(S.ROBUSTNESS_AGG)
    rob = wired.read_table(S.ROBUSTNESS)
    fgsm = agg[(agg.attack == "fgsm") & (agg.model == "soft") & (agg.epsilon == 0.1)].iloc[0]
    # A user's checkpoint under FGSM ignores the seed: no interval over seeds, one over examples.
    assert fgsm["robust_acc_ci_low"] == pytest.approx(fgsm["robust_acc_ci_high"])
    assert fgsm["robust_acc_binom_low"] < fgsm["robust_acc_mean"] < fgsm["robust_acc_binom_high"]
    one = rob[(rob.attack == "fgsm") & (rob.model == "soft") & (rob.epsilon == 0.1)].iloc[0]
    assert fgsm["robust_acc_binom_low"] == pytest.approx(one["robust_acc_binom_low"])
    assert fgsm["adv_acc_mean"] >= fgsm["robust_acc_mean"] and fgsm["n"] == N


def test_old_runs_without_the_setting_columns_still_report(tmp_path):
    """Aggregates of runs before issue 11 (no settings, no n) still plot, one line per attack."""
    agg = pd.DataFrame({"model": ["cnn"] * 2, "dataset": ["digits"] * 2, "split": ["test"] * 2,
                        "attack": ["fgsm", "pgd"], "epsilon": [0.1, 0.1], "n_seeds": [3, 3],
                        "robust_acc_mean": [0.5, 0.4], "robust_acc_ci_low": [0.4, 0.3],
                        "robust_acc_ci_high": [0.6, 0.5]})
    assert [line.label for line in plot_lines(agg)] == ["cnn / fgsm", "cnn / pgd"]
