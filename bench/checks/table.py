"""Checks over per-example correctness (bench.store.correctness), across every cell of a run.

Each compares evaluations of the same examples, so each is a paired test (McNemar,
bench.checks.paired) on the examples where the two disagree, not a comparison of two
accuracies as if they came from different examples. Robust correctness (right clean and
under attack, as `robust_acc` counts it) is what is compared.

- `accuracy_non_increasing_in_epsilon`: one attack setting, a larger ε against the smaller ε
  with the lowest accuracy so far (an adversarial example inside a small ball lies inside the
  large one).
- `pgd_not_weaker_than_fgsm`: each PGD setting against FGSM at the same ε.
- `zero_epsilon_is_clean`: at ε = 0 the attacked correctness equals the clean one, up to
  `allowed_flips` examples (kernel rounding).
- `gradient_free_cross_check`: Square (or AutoAttack) against every gradient attack run on
  the model at that ε or a smaller one, example by example.
- `implementation_cross_check`: an attack run by the original AutoAttack code
  (`implementation = "reference"`) against the same attack and settings run by torchattacks,
  at the same ε: two-sided, they must agree within the paired uncertainty.

Rows are compared only within one group of `GROUP_KEYS` (the same model, checkpoint, data,
seed and norm): the same examples under the same model.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import groupby

import numpy as np
import pandas as pd

from bench import defaults
from bench.checks.paired import describe, mcnemar_greater, mcnemar_two_sided
from bench.checks.verdict import Outcome, allowed_flips, check_row
from bench.metrics.robustness import is_unset
from bench.metrics.worst_case import GROUP_KEYS, attack_label, onto_subsets, setting_text
from bench.store.correctness import unpack_bits
from bench.suite.attack_options import DEFAULT_IMPLEMENTATION

GRADIENT_ATTACKS = ("fgsm", "pgd", "apgd-ce", "apgd-dlr", "apgd-t", "fab", "fab-t")
# The attack held against the gradient attacks: Square needs no gradient, so when it breaks
# what they all left standing, their gradients mislead them (Carlini et al. 2019, sec. 4.7).
# AutoAttack is not one: its APGD parts are gradient attacks, and its beating PGD-10 says
# that PGD-10 is weak, which the worst-case rows already show, not that gradients are masked.
CROSS_CHECK_ATTACKS = ("square",)


@dataclass(frozen=True)
class Evaluation:
    """One correctness row, unpacked."""

    attack: str
    label: str  # "pgd(steps=10)": attack and settings
    setting: str  # "steps=10"
    epsilon: float
    clean: np.ndarray  # bool per example
    adv: np.ndarray
    restricted: bool = False  # a row of a larger subset, restricted to this group's examples
    implementation: str = DEFAULT_IMPLEMENTATION  # "torchattacks" or "reference"
    base_label: str = ""  # `label` without the implementation: the attack and its settings

    @property
    def robust(self) -> np.ndarray:
        return self.clean & self.adv


def correctness_checks(correctness: pd.DataFrame, *,
                       alpha: float = defaults.CHECK_ALPHA) -> list[dict]:
    """`checks` rows (bench.checks.verdict.check_row) of the paired checks, for every group.
    A row of the whole split also joins, restricted to its examples, the group of a `limit`ed
    subset (bench.metrics.worst_case.onto_subsets), so AutoAttack or Square on a subset is
    held against gradient attacks run on the whole split; restricted rows serve only as
    those gradient attacks (their own checks are made on their own group)."""
    if correctness.empty:
        return []
    own = len(correctness)
    extended = onto_subsets(correctness.reset_index(drop=True))  # its own rows come first
    extended = extended.assign(_restricted=extended.index >= own)
    keys = [k for k in GROUP_KEYS if k in extended.columns]
    rows: list[dict] = []
    for group, g in extended.groupby(keys, sort=True, dropna=False):
        ident = dict(zip(keys, group if isinstance(group, tuple) else (group,)))
        evals = [_unpack(r) for _, r in g.sort_values("epsilon", kind="stable").iterrows()]
        rows += [check_row(outcome, model=ident.get("model"), seed=ident.get("seed"),
                           dataset=ident.get("dataset"), split=ident.get("split"),
                           attack=ev.attack, setting=ev.setting, epsilon=ev.epsilon)
                 for outcome, ev in group_outcomes(evals, _where(ident), alpha)]
    return rows


def group_outcomes(evals: list[Evaluation], where: str = "",
                   alpha: float = defaults.CHECK_ALPHA) -> list[tuple[Outcome, Evaluation]]:
    """Every paired check over the evaluations of one group, with the evaluation checked.
    Restricted evaluations only stand as gradient attacks in the cross-check."""
    evals, borrowed = [e for e in evals if not e.restricted], evals
    out = [(zero_epsilon_outcome(ev, where), ev) for ev in evals if ev.epsilon == 0]
    for _, same in groupby(sorted(evals, key=lambda e: (e.label, e.epsilon)),
                           key=lambda e: e.label):
        out += [(monotone_outcome(ev, lowest, where, alpha), ev)
                for ev, lowest in _against_lowest(list(same))]
    for ev in (e for e in evals if e.attack == "pgd"):
        out += [(pgd_fgsm_outcome(ev, fgsm, where, alpha), ev) for fgsm in evals
                if fgsm.attack == "fgsm" and fgsm.epsilon == ev.epsilon]
    for ev in (e for e in evals if e.attack in CROSS_CHECK_ATTACKS):
        gradient = [e for e in borrowed
                    if e.attack in GRADIENT_ATTACKS and e.epsilon <= ev.epsilon]
        if gradient:
            out.append((cross_check_outcome(ev, gradient, where, alpha), ev))
    out += [(implementation_outcome(ref, ta, where, alpha), ref)
            for ref, ta in implementation_pairs(borrowed)]
    return out


def implementation_pairs(evals: list[Evaluation]) -> list[tuple[Evaluation, Evaluation]]:
    """(reference, torchattacks) evaluations of the same attack and settings at the same ε,
    at least one of them the group's own (two rows both restricted from a larger subset
    are checked in that subset's group)."""
    return [(ref, ta) for ref in evals if ref.implementation == "reference"
            for ta in evals if ta.implementation != "reference"
            and (ta.base_label, ta.epsilon) == (ref.base_label, ref.epsilon)
            and not (ref.restricted and ta.restricted)]


def implementation_outcome(ref: Evaluation, ta: Evaluation, where: str = "",
                           alpha: float = defaults.CHECK_ALPHA) -> Outcome:
    """The original AutoAttack code against torchattacks on the same examples: either may
    break examples the other misses (their random starts differ), but their robust
    accuracies must agree within chance (two-sided exact McNemar on those examples)."""
    test = mcnemar_two_sided(ref.robust, ta.robust)
    seen = (f"{where}{ref.base_label} at ε = {ref.epsilon:g}: robust accuracy "
            f"{ref.robust.mean():.3f} by the reference implementation, {ta.robust.mean():.3f} "
            f"by torchattacks; {describe(test, 'the reference', 'torchattacks')}")
    if test.p_value >= alpha:
        return Outcome("implementation_cross_check", True, test.difference, seen, test.p_value)
    return Outcome("implementation_cross_check", False, test.difference, (
        f"{seen}: the two implementations disagree beyond chance; the torchattacks number is "
        "not the original AutoAttack's (RobustBench's)"), test.p_value)


def zero_epsilon_outcome(ev: Evaluation, where: str = "") -> Outcome:
    flips = int((ev.clean != ev.adv).sum())
    allowed = allowed_flips(len(ev.clean))
    seen = (f"{where}{ev.label} at ε = 0: correctness differs from the clean pass on {flips} "
            f"of {len(ev.clean)} examples")
    if flips <= allowed:
        return Outcome("zero_epsilon_is_clean", True, flips,
                       f"{seen} (up to {allowed} flips excused as kernel rounding)")
    return Outcome("zero_epsilon_is_clean", False, flips, (
        f"{seen}, more than the {allowed} kernel rounding explains: the model or the "
        "evaluation is not deterministic (see deterministic_predictions)"))


def monotone_outcome(ev: Evaluation, lowest: Evaluation, where: str = "",
                     alpha: float = defaults.CHECK_ALPHA) -> Outcome:
    test = mcnemar_greater(ev.robust, lowest.robust)
    seen = (f"{where}{ev.label}: robust accuracy {ev.robust.mean():.3f} at ε = "
            f"{ev.epsilon:g}, {lowest.robust.mean():.3f} at ε = {lowest.epsilon:g}; "
            f"{describe(test, f'ε = {ev.epsilon:g}', f'ε = {lowest.epsilon:g}')}")
    if test.p_value >= alpha:
        return Outcome("accuracy_non_increasing_in_epsilon", True, test.difference, seen,
                       test.p_value)
    return Outcome("accuracy_non_increasing_in_epsilon", False, test.difference, (
        f"{seen}: more examples survive the larger budget beyond chance, so the attack is "
        "failing at large ε (a step size too small to use the budget, or masked gradients)"),
                   test.p_value)


def pgd_fgsm_outcome(pgd: Evaluation, fgsm: Evaluation, where: str = "",
                     alpha: float = defaults.CHECK_ALPHA) -> Outcome:
    """FGSM is one signed-gradient step of size ε from the clean point; PGD takes many
    projected steps on the same loss, from a random point in the ball when random_start is
    set (its first step is then not FGSM's). So example by example PGD may miss what FGSM
    finds, but a working PGD breaks at least about as many: right on more examples than
    FGSM, beyond chance, means too few steps, too small a step or masked gradients."""
    test = mcnemar_greater(pgd.robust, fgsm.robust)
    seen = (f"{where}at ε = {pgd.epsilon:g}: {pgd.label} robust accuracy "
            f"{pgd.robust.mean():.3f}, FGSM {fgsm.robust.mean():.3f}; "
            f"{describe(test, 'PGD', 'FGSM')}")
    if test.p_value >= alpha:
        return Outcome("pgd_not_weaker_than_fgsm", True, test.difference, seen, test.p_value)
    return Outcome("pgd_not_weaker_than_fgsm", False, test.difference, (
        f"{seen}: PGD is weaker than one FGSM step beyond chance; too few steps, too small a "
        "step size, or masked gradients"), test.p_value)


def cross_check_outcome(cross: Evaluation, gradient: list[Evaluation], where: str = "",
                        alpha: float = defaults.CHECK_ALPHA) -> Outcome:
    """`cross` (Square) against the per-example worst case of the gradient
    attacks at ε or below: fails when it breaks, beyond chance, examples they all missed."""
    grad_robust = np.logical_and.reduce([g.robust for g in gradient])
    test = mcnemar_greater(grad_robust, cross.robust)
    names = "; ".join(sorted({f"{g.label} ε={g.epsilon:g}" for g in gradient}))
    seen = (f"{where}at ε = {cross.epsilon:g}: {cross.label} robust accuracy "
            f"{cross.robust.mean():.3f}, gradient attacks ({names}) together "
            f"{grad_robust.mean():.3f}; {describe(test, 'the gradient attacks', cross.label)}")
    if test.p_value >= alpha:
        return Outcome("gradient_free_cross_check", True, test.difference, seen, test.p_value)
    why = "gradients are masked: report the gradient-free attack's accuracy, not theirs"
    return Outcome("gradient_free_cross_check", False, test.difference, (
        f"{seen}: {cross.label} breaks examples every gradient attack left standing; {why}"),
                   test.p_value)


def _against_lowest(evals: list[Evaluation]) -> list[tuple[Evaluation, Evaluation]]:
    """(evaluation, the lowest-accuracy one at a smaller ε) for one setting, ε ascending."""
    pairs, lowest = [], None
    for ev in evals:
        if lowest is not None and ev.epsilon > lowest.epsilon:
            pairs.append((ev, lowest))
        if lowest is None or ev.robust.mean() < lowest.robust.mean():
            lowest = ev
    return pairs


def _unpack(row: pd.Series) -> Evaluation:
    n = int(row["n"])
    implementation = row.get("implementation")
    implementation = DEFAULT_IMPLEMENTATION if is_unset(implementation) else str(implementation)
    base = attack_label(row.drop("implementation", errors="ignore"))
    return Evaluation(str(row["attack"]), attack_label(row), setting_text(row),
                      float(row["epsilon"]), unpack_bits(row["clean_correct"], n),
                      unpack_bits(row["adv_correct"], n), bool(row.get("_restricted", False)),
                      implementation, base)


def _where(ident: dict) -> str:
    """"cnn seed 0, digits test, linf: " for details."""
    parts = [f"{ident['model']}" if "model" in ident else "",
             f"seed {ident['seed']}" if not is_unset(ident.get("seed")) else "",
             " ".join(str(ident[k]) for k in ("dataset", "split", "norm")
                      if not is_unset(ident.get(k)))]
    text = ", ".join(p for p in parts if p)
    return f"{text}: " if text else ""
