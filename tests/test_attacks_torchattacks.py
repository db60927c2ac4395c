"""The APGD, FAB, Square and AutoAttack sweeps equal torchattacks called directly, sample for
sample: same model, same batches, same seed. The references below build the torchattacks
objects by hand (not through bench's make_* functions), so they are independent of bench."""

import inspect

import pytest
import torch
import torchattacks
from torch import nn

from bench.attacks import ATTACKS
from bench.attacks.apgd import apgd_t_sweep
from bench.attacks.autoattack import autoattack_sweep, parts
from bench.suite.attack_options import ATTACK_KEYS, ATTACK_NAMES

N, BATCH = 36, 20  # two batches, the second one partial
EPS = {"linf": [0.05, 0.1], "l2": [0.5, 1.0]}


def reference(model, x, y, attack_for_eps, epsilons, batch_size=BATCH):
    """Predictions after calling the torchattacks object on each batch, as a user would."""
    out = []
    for eps in epsilons:
        attack, preds = attack_for_eps(eps), []
        for start in range(0, len(y), batch_size):
            adv = attack(x[start:start + batch_size], y[start:start + batch_size])
            with torch.no_grad():
                preds.append(model(adv).argmax(1))
        out.append((repr(attack), torch.cat(preds)))
    return out


def assert_rows_equal(results, expected, y, norm):
    for res, (attack_repr, pred) in zip(results, expected):
        assert torch.equal(res.adv_pred, pred), f"ε={res.epsilon}"
        assert torch.equal(res.adv_correct, pred == y)
        assert res.attack_repr == attack_repr
        assert res.norm == norm and res.params["norm"] == norm
        assert res.distance.max().item() <= res.epsilon * (1 + 1e-5) + 1e-6


TA_NORM = {"linf": "Linf", "l2": "L2"}
CASES = {
    "apgd-ce": lambda m, e, n: torchattacks.APGD(m, norm=n, eps=e, steps=10, n_restarts=1,
                                                 seed=3, loss="ce"),
    "apgd-dlr": lambda m, e, n: torchattacks.APGD(m, norm=n, eps=e, steps=10, n_restarts=1,
                                                  seed=3, loss="dlr"),
    "apgd-t": lambda m, e, n: torchattacks.APGDT(m, norm=n, eps=e, steps=10, n_restarts=1,
                                                 seed=3, n_classes=10),
    "fab": lambda m, e, n: torchattacks.FAB(m, norm=n, eps=e, steps=10, n_restarts=1, seed=3,
                                            multi_targeted=False, n_classes=10),
    "fab-t": lambda m, e, n: torchattacks.FAB(m, norm=n, eps=e, steps=10, n_restarts=1, seed=3,
                                              multi_targeted=True, n_classes=10),
    "square": lambda m, e, n: torchattacks.Square(m, norm=n, eps=e, n_queries=60, n_restarts=1,
                                                  seed=3),
}


@pytest.mark.parametrize("norm", ["linf", "l2"])
@pytest.mark.parametrize("attack", sorted(CASES))
def test_sweep_equals_torchattacks_sample_for_sample(digits_mlp, attack, norm):
    model, x, y = digits_mlp
    x, y = x[:N], y[:N]
    params = {"queries": 60} if attack == "square" else {}
    results = ATTACKS.get(attack)(model, x, y, EPS[norm], BATCH, "cpu", norm=norm, seed=3,
                                  **params)
    expected = reference(model, x, y, lambda e: CASES[attack](model, e, TA_NORM[norm]), EPS[norm])
    assert_rows_equal(results, expected, y, norm)
    # Not vacuous: the attack breaks some samples and not others.
    accs = [r.adv_correct.float().mean().item() for r in results]
    clean = (model(x).argmax(1) == y).float().mean().item()
    assert min(accs) < clean - 0.1, accs
    assert results[0].params["attack"] == attack and results[0].params["seed"] == 3


@pytest.mark.parametrize("version,norm,eps", [("standard", "linf", [0.03, 0.2]),
                                              ("rand", "l2", [0.5])])
def test_autoattack_equals_torchattacks_autoattack(digits_mlp, version, norm, eps):
    """One batch: Square's 5000 queries on the survivors cost ~15 s a batch, and batching is
    already covered above (AutoAttack runs these same parts on each batch)."""
    model, x, y = digits_mlp
    x, y = x[:N], y[:N]
    results = autoattack_sweep(model, x, y, eps, N, "cpu", norm=norm, version=version, seed=5)
    expected = reference(model, x, y, lambda e: torchattacks.AutoAttack(
        model, norm=TA_NORM[norm], eps=e, version=version, n_classes=10, seed=5), eps, N)
    assert_rows_equal(results, expected, y, norm)
    assert results[0].params["version"] == version
    assert results[0].params["parts"].count("steps=10") >= 2  # the parts' settings recorded
    if version == "standard":  # some survive to Square at the small ε; none at the large one
        assert 0 < results[0].adv_correct.sum() < (model(x).argmax(1) == y).sum()
        assert results[1].adv_correct.sum() == 0


def test_autoattack_steps_sets_the_gradient_parts_only(digits_mlp):
    model, x, y = digits_mlp
    (res,) = autoattack_sweep(model, x[:8], y[:8], [0.3], 8, "cpu", steps=25)
    described = res.params["parts"].split(" | ")
    assert [p.split("(")[0] for p in described] == ["APGD", "APGDT", "FAB", "Square"]
    assert all("steps=25" in p for p in described[:3]) and "steps=25" not in described[3]
    fresh = torchattacks.AutoAttack(model, eps=0.3, n_classes=10, seed=0)
    assert all("steps=10" in repr(p) for p in parts(fresh)[:3])  # torchattacks' own default


def test_sweeps_leave_the_global_rng_alone(digits_mlp):
    """APGD, FAB and Square call torch.manual_seed themselves; the sweep forks the RNG."""
    model, x, y = digits_mlp
    state = torch.get_rng_state()
    ATTACKS.get("apgd-ce")(model, x[:8], y[:8], [0.1], 8, "cpu", seed=11)
    ATTACKS.get("square")(model, x[:8], y[:8], [0.1], 8, "cpu", queries=5, seed=11)
    assert torch.equal(torch.get_rng_state(), state)


def test_registry_matches_the_attack_options():
    """Every attack the schema accepts is registered, and its sweep takes exactly the suite
    keys the plan will pass it (plus seed and progress)."""
    assert ATTACKS.names() == sorted(ATTACK_NAMES)
    for name in ATTACK_NAMES:
        sig = inspect.signature(ATTACKS.get(name))
        keywords = {p.name for p in sig.parameters.values() if p.kind is p.KEYWORD_ONLY}
        assert keywords == set(ATTACK_KEYS[name]) | {"seed", "offset", "progress"}, name


def test_targeted_attacks_refuse_too_few_classes():
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3)).eval()
    x, y = torch.rand(4, 1, 2, 2), torch.tensor([0, 1, 2, 0])
    with pytest.raises(ValueError, match="at least 4 outputs"):
        apgd_t_sweep(model, x, y, [0.1])
    with pytest.raises(ValueError, match="norm 'l1'"):
        ATTACKS.get("apgd-ce")(model, x, y, [0.1], norm="l1")
