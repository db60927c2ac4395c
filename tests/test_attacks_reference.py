"""The reference backend (bench.attacks.reference): the original AutoAttack code behind the
torchattacks sweeps' signatures, one object per (model, ε), each batch seeded alike, and what
happens without the reference extra (those tests always run: they simulate its absence)."""

from __future__ import annotations

import inspect

import pytest
import torch

from bench.attacks import ATTACKS, REFERENCE_ATTACKS, sweep_for
from bench.cli import main
from bench.errors import UserError
from bench.reference_extra import missing_reference_packages
from bench.suite.attack_options import REFERENCE_ATTACKS as REFERENCE_NAMES
from tests.helpers.suites import write_suite

needs_extra = pytest.mark.skipif(
    bool(missing_reference_packages()),
    reason="the reference extra is not installed (pip install -e \".[reference]\"): "
           f"missing {', '.join(missing_reference_packages())}")

EPS = 0.1
CHEAP = {"apgd-ce": {"steps": 5}, "apgd-t": {"steps": 5}, "fab-t": {"steps": 5},
         "square": {"queries": 50}, "autoattack": {"steps": 5}}


@pytest.fixture(scope="module")
def small(digits_mlp):
    model, x, y = digits_mlp
    return model, x[:40], y[:40]


def test_reference_sweeps_take_the_torchattacks_sweeps_keywords():
    assert set(REFERENCE_ATTACKS.names()) == set(REFERENCE_NAMES)
    for name in REFERENCE_NAMES:
        ours = inspect.signature(ATTACKS.get(name)).parameters
        ref = inspect.signature(REFERENCE_ATTACKS.get(name)).parameters
        assert {k: (p.kind, p.default) for k, p in ref.items()} == \
            {k: (p.kind, p.default) for k, p in ours.items()}, name


@needs_extra
@pytest.mark.parametrize("attack", REFERENCE_NAMES)
def test_each_reference_attack_writes_the_same_record_as_torchattacks(small, attack):
    model, x, y = small
    (ref,) = sweep_for(attack, "reference")(model, x, y, [EPS], 20, "cpu", seed=3, **CHEAP[attack])
    (ta,) = sweep_for(attack, "torchattacks")(model, x, y, [EPS], 20, "cpu", seed=3,
                                               **CHEAP[attack])
    assert ref.attack_repr.startswith("pyautoattack.")
    assert ref.params["implementation"] == "reference" and ref.params["seed"] == 3
    assert {k: v for k, v in ref.params.items() if k not in ("implementation", "reference")} == \
        {k: v for k, v in ta.params.items() if k != "parts"} | (
            {"loss": "ce"} if attack == "apgd-ce" else {})
    for field in ("adv_pred", "adv_correct", "linf", "l2"):
        assert getattr(ref, field).shape == getattr(ta, field).shape == (len(y),)
    assert torch.equal(ref.adv_correct, ref.adv_pred == y)
    assert float(ref.linf.max()) <= EPS + 1e-6
    # what a model cannot resist at this ε, both backends break: same order of accuracy
    assert abs(float(ref.adv_correct.float().mean()) - float(ta.adv_correct.float().mean())) < 0.3


@needs_extra
@pytest.mark.parametrize("attack", ["apgd-ce", "square", "autoattack"])
def test_a_batch_gives_the_same_result_whatever_batches_come_before_it(small, attack):
    """Shards of an evaluation must merge into the unsharded result: each batch is seeded
    alike, so examples 20..39 get the same adversarial predictions alone or after 0..19."""
    model, x, y = small
    sweep = sweep_for(attack, "reference")
    (whole,) = sweep(model, x, y, [EPS], 20, "cpu", seed=1, **CHEAP[attack])
    (tail,) = sweep(model, x[20:], y[20:], [EPS], 20, "cpu", seed=1, **CHEAP[attack])
    assert torch.equal(whole.adv_pred[20:], tail.adv_pred)
    torch.testing.assert_close(whole.linf[20:], tail.linf, rtol=0, atol=0)
    again = sweep(model, x, y, [EPS], 20, "cpu", seed=1, **CHEAP[attack])[0]
    assert torch.equal(again.adv_pred, whole.adv_pred)  # and it is reproducible


@needs_extra
def test_steps_reach_the_original_apgd_with_the_schedule_it_derives_from_them(small):
    from bench.attacks.reference import make_autoattack, original

    model, _, _ = small
    attack = make_autoattack(model, EPS, norm="linf", version="standard", steps=10, seed=0,
                             device="cpu", n_classes=10)
    built = original("APGDAttack")(model, n_iter=10, eps=EPS, norm="Linf")
    for part in (attack.attack.apgd, attack.attack.apgd_targeted):
        assert (part.n_iter, part.n_iter_2, part.n_iter_min, part.size_decr) == \
            (10, built.n_iter_2, built.n_iter_min, built.size_decr)
    assert attack.attack.fab.n_iter == 10
    assert attack.attack.attacks_to_run == ["apgd-ce", "apgd-t", "fab-t", "square"]
    assert attack.attack.square.n_queries == 5000  # the original's, as torchattacks'


@needs_extra
def test_the_rng_of_the_caller_is_left_alone(small):
    model, x, y = small
    torch.manual_seed(123)
    before = torch.rand(3)
    torch.manual_seed(123)
    sweep_for("autoattack", "reference")(model, x[:8], y[:8], [EPS], 8, "cpu", seed=0, steps=3)
    assert torch.equal(torch.rand(3), before)


# -- without the extra: simulated by hiding its distributions --------------------------------

SUITE = """
[suite]
name = "ref"
[datasets.digits]
kind = "digits"
[models.cnn]
arch = "small-cnn"
dataset = "digits"
[[robustness]]
models = ["cnn"]
attack = "apgd-ce"
implementation = "reference"
epsilons = [0.1]
"""
IMPLEMENTATION_LINE = SUITE.splitlines().index('implementation = "reference"') + 1


@pytest.fixture
def no_extra(monkeypatch):
    """As if `pip install -e .` (no reference extra): its distributions are not installed."""
    import bench.reference_extra as extra

    real = extra.installed_version
    monkeypatch.setattr(extra, "installed_version",
                        lambda dist: None if dist in extra.PINNED else real(dist))


def test_validate_says_which_extra_to_install_when_it_is_missing(tmp_path, no_extra, capsys):
    path = write_suite(tmp_path, SUITE)
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert f"robustness[0].implementation (line {IMPLEMENTATION_LINE})" in err
    assert "reference extra (not installed: pyautoattack)" in err
    assert 'pip install -e ".[reference]"' in err


def test_a_cell_asking_for_the_reference_without_the_extra_fails_with_the_same_line(
        small, no_extra):
    model, x, y = small
    with pytest.raises(UserError, match=r"reference extra \(not installed: pyautoattack\)"):
        sweep_for("apgd-ce", "reference")(model, x, y, [EPS], 20, "cpu")


def test_an_unknown_implementation_is_refused_at_validate(tmp_path, capsys):
    path = write_suite(tmp_path, SUITE.replace('"reference"', '"original"'))
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"robustness[0].implementation (line {IMPLEMENTATION_LINE})" in err
    assert "'torchattacks' or 'reference'" in err


def test_reference_is_refused_for_an_attack_the_original_code_lacks(tmp_path, capsys):
    path = write_suite(tmp_path, SUITE.replace('"apgd-ce"', '"pgd"'))
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "attack 'pgd' has no reference implementation" in err


def test_validate_imports_neither_torch_nor_the_extra(tmp_path):
    import subprocess
    import sys

    path = write_suite(tmp_path, SUITE)
    code = ("import sys; from bench.cli import main; rc = main(['validate', sys.argv[1]]); "
            "heavy = [m for m in ('torch', 'pyautoattack', 'robustbench') if m in sys.modules]; "
            "print(rc, heavy)")
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True,
                         text=True, check=True).stdout.split("\n")[-2]
    assert out.endswith("[]"), out
