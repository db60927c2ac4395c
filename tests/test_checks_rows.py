"""The checks over robustness rows: the size check (bench.checks.rows) fires on a perturbation
outside its ε-ball, in the threat model's norm, and stays silent when every one is inside;
the logit-output check (bench.checks.rows) fires on a model ending in softmax and stays
silent on logits and log-probabilities."""

import pandas as pd
import torch

from bench.attacks.pgd import pgd_sweep
from bench.checks.rows import logit_output_checks, size_checks
from bench.metrics.robustness import robustness_row
from bench.models.outputs import probability_output_warning
from bench.store import schema as S

BASE = {"model": "cnn", "dataset": "digits", "split": "test", "seed": 0, "norm": "linf"}


def table(rows):
    return pd.DataFrame([BASE | r for r in rows])


def test_silent_when_every_perturbation_is_inside_its_ball(digits_mlp):
    model, x, y = digits_mlp
    clean = model(x[:100]).argmax(1)
    rows = [BASE | {"attack": "pgd", "steps": 10, "epsilon": r.epsilon}
            | robustness_row(y[:100], clean, r.adv_pred, r.linf, r.epsilon)
            for r in pgd_sweep(model, x[:100], y[:100], [0.05, 0.1], 100, "cpu")]
    (row,) = size_checks(pd.DataFrame(rows))
    assert row["passed"] and row["value"] == 0 and row["setting"] == "steps=10"
    assert list(row) == list(S.COLUMNS[S.CHECKS]) and row["epsilon"] is None


def test_fires_on_a_perturbation_larger_than_epsilon():
    """A 'perturbation' of 0.2 reported at ε = 0.1 (an attack that ignores its budget)."""
    y = torch.tensor([0, 1])
    big = robustness_row(y, y, torch.tensor([1, 0]), torch.tensor([0.2, 0.2]), 0.1)
    ok = robustness_row(y, y, y, torch.tensor([0.05, 0.05]), 0.05)
    assert not big["within_epsilon"] and ok["within_epsilon"]
    (row,) = size_checks(table([{"attack": "fgsm", "epsilon": 0.05, **ok},
                                {"attack": "fgsm", "epsilon": 0.1, **big}]))
    assert not row["passed"] and row["value"] == 1 and "at ε = 0.1" in row["detail"]


def test_reads_the_threat_models_norm_and_keeps_settings_apart():
    """An L2 attack whose L∞ size is fine but whose L2 size is not fails; two PGD settings
    get one verdict each."""
    rows = table([
        {"attack": "pgd", "norm": "l2", "steps": 10, "epsilon": 2.0, "linf_ok": True,
         "within_epsilon": False},
        {"attack": "pgd", "norm": "l2", "steps": 100, "epsilon": 2.0, "linf_ok": True,
         "within_epsilon": True},
    ])
    verdicts = {r["setting"]: r["passed"] for r in size_checks(rows)}
    assert verdicts == {"steps=10": False, "steps=100": True}


def test_older_tables_use_linf_ok_and_empty_tables_give_nothing():
    (row,) = size_checks(table([{"attack": "fgsm", "epsilon": 0.1, "linf_ok": False}]))
    assert not row["passed"]
    assert size_checks(pd.DataFrame()) == []


def test_logit_outputs_fires_on_softmax_outputs_only(digits_mlp):
    model, x, _ = digits_mlp
    with torch.no_grad():
        logits = model(x[:64])
    warned = {name: probability_output_warning(out, f"models.{name}") for name, out in (
        ("soft", logits.softmax(1)), ("logits", logits), ("logp", logits.log_softmax(1)))}
    rows = table([{"model": name, "attack": "fgsm", "epsilon": e, "output_warning": w}
                  for name, w in warned.items() for e in (0.0, 0.1)])
    verdicts = {r["model"]: r for r in logit_output_checks(rows)}
    assert not verdicts["soft"]["passed"] and "models.soft: its outputs are probabilities" \
        in verdicts["soft"]["detail"]
    assert verdicts["logits"]["passed"] and verdicts["logp"]["passed"]
    assert logit_output_checks(table([{"attack": "fgsm", "epsilon": 0.1}])) == []
