"""The [[robustness]] keys of issue 11 (attack names, norm, restarts, loss, version,
queries): valid combinations load, the rest are one-line errors naming the key."""

import pytest

from bench.errors import SuiteError
from bench.suite.load import load_suite

BASE = """
[suite]
name = "t"

[datasets.digits]
kind = "digits"

[models.cnn]
arch = "small-cnn"
dataset = "digits"

[[robustness]]
models = ["cnn"]
"""


def section(tmp_path, body: str):
    path = tmp_path / "s.toml"
    path.write_text(BASE + body)
    return load_suite(path).suite.robustness[0]


VALID = [
    ('attack = "autoattack"\nversion = "plus"\nnorm = "l2"\nepsilons = [0.5, 1.5]', "autoattack"),
    ('attack = "pgd"\nloss = "cw"\nrestarts = 5\nsteps = 100\nepsilons = ["8/255"]', "pgd"),
    ('attack = "pgd"\nnorm = "l2"\nepsilons = [2.0]', "pgd"),
    ('attack = "square"\nqueries = 100\nrestarts = 2\nepsilons = [0.1]', "square"),
    ('attack = "apgd-t"\nsteps = 100\nrestarts = 2\nepsilons = [0.1]', "apgd-t"),
    ('attack = "fab-t"\nnorm = "l2"\nepsilons = [0.5]', "fab-t"),
    ('attack = "pgd"\nconvergence = true\nepsilons = [0.1]', "pgd"),
]


@pytest.mark.parametrize("body,attack", VALID, ids=[v[1] for v in VALID])
def test_valid_attack_settings_load(tmp_path, body, attack):
    rob = section(tmp_path, body)
    assert rob.attack == attack


def test_convergence_defaults_to_off(tmp_path):
    assert section(tmp_path, 'attack = "pgd"\nepsilons = [0.1]').convergence is False
    assert section(tmp_path, 'attack = "pgd"\nconvergence = true\nepsilons = [0.1]').convergence


def test_l2_epsilons_are_in_l2_units(tmp_path):
    rob = section(tmp_path, 'attack = "apgd-ce"\nnorm = "l2"\nepsilons = [0, "1/2", 3]')
    assert rob.epsilons == [0.0, 0.5, 3.0] and rob.norm == "l2"
    assert section(tmp_path, 'epsilons = ["8/255"]').norm == "linf"  # the default


INVALID = [
    ('attack = "fgsm"\nnorm = "l2"\nepsilons = [0.5]', "robustness[0].norm",
     "'fgsm' has no 'l2' form"),
    ('attack = "pgd"\nepsilons = [1.5]', "robustness[0].epsilons", "[0, 1] (pixel units)"),
    ('attack = "pgd"\nnorm = "l2"\nepsilons = [-0.5]', "robustness[0].epsilons", ">= 0 (L2 units)"),
    ('attack = "fgsm"\nloss = "dlr"\nepsilons = [0.1]', "robustness[0].loss",
     "not used with attack = 'fgsm' (only with 'pgd')"),
    ('attack = "pgd"\nversion = "plus"\nepsilons = [0.1]', "robustness[0].version",
     "only with 'autoattack'"),
    ('attack = "autoattack"\nqueries = 10\nepsilons = [0.1]', "robustness[0].queries",
     "only with 'square'"),
    ('attack = "autoattack"\nrestarts = 2\nepsilons = [0.1]', "robustness[0].restarts",
     "not used with attack = 'autoattack'"),
    ('attack = "pgd"\nnorm = "l2"\nloss = "dlr"\nepsilons = [0.5]', "robustness[0].loss",
     "PGDL2) has only cross-entropy"),
    ('attack = "pgd"\nrandom_start = false\nrestarts = 3\nepsilons = [0.1]',
     "robustness[0].restarts", "needs random_start = true"),
    ('attack = "pgd"\nloss = "mse"\nepsilons = [0.1]', "robustness[0].loss", "'ce', 'dlr' or 'cw'"),
    ('attack = "autoattack"\nversion = "fast"\nepsilons = [0.1]', "robustness[0].version",
     "'standard', 'plus' or 'rand'"),
    ('attack = "apgd"\nepsilons = [0.1]', "robustness[0].attack", "'apgd-ce'"),
    ('attack = "square"\nqueries = 0\nepsilons = [0.1]', "robustness[0].queries", "greater than 0"),
    ('attack = "autoattack"\nconvergence = true\nepsilons = [0.1]', "robustness[0].convergence",
     "only with 'pgd'"),
    ('attack = "pgd"\nconvergence = 1\nepsilons = [0.1]', "robustness[0].convergence",
     "valid boolean"),
]


@pytest.mark.parametrize("body,key,words", INVALID, ids=[i[1] + ":" + i[2][:20] for i in INVALID])
def test_invalid_attack_settings_are_one_line_errors(tmp_path, body, key, words):
    with pytest.raises(SuiteError) as err:
        section(tmp_path, body)
    message = str(err.value)
    assert "\n" not in message and key in message and words in message, message
