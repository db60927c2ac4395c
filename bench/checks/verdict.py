"""The row every sanity check produces, and what each check catches.

A check first yields an `Outcome` (passed, value, detail, and the p-value of its paired
test, if any); the caller that knows what was checked adds the identity with `check_row`.
The rows form the run's `checks` table (its columns: bench.store.schema). `CATCHES` is the one place that says, in a sentence,
what each check is there to catch; the report shows it beside the verdicts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from bench import defaults
from bench.store import schema as S

# check name -> what it catches (the report's "what this check means")
CATCHES: dict[str, str] = {
    "deterministic_predictions":
        "Predictions that change between two identical passes, with the batch around them, or "
        "for an input on its own: dropout left on (F.dropout(training=True)), BatchNorm "
        "without running statistics, randomized defenses. Attacks then chase a moving target.",
    "gradient_saturation":
        "Examples whose input gradient is exactly zero (a saturated softmax, dead units): "
        "gradient attacks cannot move them, so they count as robust without being tested.",
    "unbounded_epsilon":
        "An attack that does not reach the model: at an ε that covers every image, PGD must "
        "break nearly every example; if not, the model ignores or clamps its input or masks "
        "its gradients.",
    "gradient_free_cross_check":
        "Gradient masking, or gradient attacks too weak: Square (gradient-free) or AutoAttack "
        "breaks, beyond chance, examples that every gradient attack run left standing. Square "
        "beating them means masking; AutoAttack alone cannot tell the two apart (its APGD "
        "stages may simply be stronger): run Square to tell.",
    "implementation_cross_check":
        "A reimplementation that disagrees with the original: torchattacks and the original "
        "AutoAttack code (pyautoattack, what RobustBench evaluates with), run with the same "
        "settings on the same model, examples and ε, differ in robust accuracy beyond the "
        "paired uncertainty (two-sided exact McNemar test on the examples only one breaks). "
        "Then the torchattacks number is not the leaderboard's.",
    "pgd_convergence":
        "A PGD that has not converged: 5× the steps and restarts lower accuracy beyond "
        "chance, so the reported accuracy overstates robustness.",
    "accuracy_non_increasing_in_epsilon":
        "An attack failing at large budgets: on the same examples, accuracy rises with ε "
        "beyond chance.",
    "pgd_not_weaker_than_fgsm":
        "A PGD too weak to trust (too few steps, too small a step size, masked gradients): "
        "one FGSM step breaks, beyond chance, more of the same examples than PGD does.",
    "zero_epsilon_is_clean":
        "An inconsistent evaluation: with no perturbation, the attacked predictions must be "
        "the clean ones, up to a few argmax flips from kernel rounding.",
    "logit_outputs":
        "A model whose outputs are already probabilities (ending in softmax): attacks take "
        "them for logits, and their losses on probabilities are flattened and vanish where "
        "the softmax saturates, so attacks can look weaker than they are.",
    "linf_within_epsilon":
        "Perturbations larger than the budget ε in the threat model's norm.",
    "fid_batch_size_invariance":
        "An FID that depends on the batch size: the same samples' features change with the "
        "batch around them (kernel choice, TF32 convolutions, batch statistics in the "
        "extractor; torch-fidelity #43), so the FID moves with a setting that should not "
        "matter. float64 features are the remedy.",
    "fid_sample_count":
        "FIDs compared at different sample counts: FID is biased upward the fewer the "
        "samples, so a GAN's FID and the real-data floor are comparable only at one count "
        "(and Inception FID needs at least 2048 samples).",
    "samples_not_memorised":
        "A generator that copies its training images: FID against the training set rewards "
        "copies, so an excellent FID can hide memorisation. Generated samples much nearer "
        "to a training image (in feature space) than real images are to each other.",
    # Checks of older runs (replaced by deterministic_predictions and gradient_saturation).
    "eval_mode": "Modules left in training mode during the attack (a read-back of eval()).",
    "zero_gradients": "Many exactly-zero entries in the input gradient, over all examples.",
}

@dataclass(frozen=True)
class Outcome:
    check: str  # a key of CATCHES
    passed: bool
    value: float  # the checked quantity (a count, a share, an accuracy difference)
    detail: str  # one line, what was seen and, when failed, what it means
    p_value: float = math.nan  # the paired test's, for checks that run one

    def __post_init__(self):
        if self.check not in CATCHES:
            raise ValueError(f"unknown check {self.check!r}; add it to CATCHES")


def check_row(outcome: Outcome, *, model: str, seed: int | None, attack: str | None = None,
              setting: str = "", epsilon: float | None = None, dataset: str | None = None,
              split: str | None = None) -> dict:
    """One `checks` row (bench.store.schema): the outcome and what it was measured on.
    `setting` is the attack's settings ("steps=10, loss=ce"); `epsilon` is None for checks
    over the model or every ε."""
    detail = outcome.detail if outcome.detail.endswith(".") else outcome.detail + "."
    return S.row(S.CHECKS, check=outcome.check, model=model, dataset=dataset, split=split,
                 attack=attack, setting=setting,
                 epsilon=None if epsilon is None else float(epsilon),
                 seed=None if seed is None else int(seed), passed=bool(outcome.passed),
                 value=float(outcome.value), p_value=float(outcome.p_value), detail=detail,
                 catches=CATCHES[outcome.check])


def allowed_flips(n: int, share: float = defaults.KERNEL_FLIP_SHARE) -> int:
    """Argmax flips excused as kernel rounding among n examples: `share` of them, at least 1."""
    return max(1, math.floor(share * n))
