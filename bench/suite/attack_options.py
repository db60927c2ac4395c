"""What each `[[robustness]]` attack accepts: its threat models and its suite keys.

Torch-free, so the schema validates with it and the plan builds each sweep's keyword
parameters from it (`{key: getattr(section, key) for key in ATTACK_KEYS[attack]}`); the
sweeps in bench.attacks take exactly these keywords (tests/test_attack_options.py checks).
"""

from __future__ import annotations

NORMS = ("linf", "l2")
# Who runs the attack: torchattacks (bench's default; FGSM and PGD sweeps proven equal to it)
# or the original AutoAttack code (`pyautoattack`, RobustBench's evaluation), bench.attacks.reference.
IMPLEMENTATIONS = ("torchattacks", "reference")
DEFAULT_IMPLEMENTATION = "torchattacks"
REFERENCE_ATTACKS = ("apgd-ce", "apgd-t", "fab-t", "square", "autoattack")
PGD_LOSSES = ("ce", "dlr", "cw")
AUTOATTACK_VERSIONS = ("standard", "plus", "rand")

# attack -> the norms torchattacks implements it in
ATTACK_NORMS: dict[str, tuple[str, ...]] = {
    "fgsm": ("linf",),
    "pgd": ("linf", "l2"),
    "apgd-ce": NORMS,
    "apgd-dlr": NORMS,
    "apgd-t": NORMS,
    "fab": NORMS,
    "fab-t": NORMS,
    "square": NORMS,
    "autoattack": NORMS,
}
ATTACK_NAMES = tuple(ATTACK_NORMS)

# attack -> the suite keys passed to its sweep as keyword parameters (besides seed, progress)
ATTACK_KEYS: dict[str, tuple[str, ...]] = {
    "fgsm": ("norm",),
    "pgd": ("norm", "steps", "alpha", "random_start", "restarts", "loss"),
    "apgd-ce": ("norm", "steps", "restarts"),
    "apgd-dlr": ("norm", "steps", "restarts"),
    "apgd-t": ("norm", "steps", "restarts"),
    "fab": ("norm", "steps", "restarts"),
    "fab-t": ("norm", "steps", "restarts"),
    "square": ("norm", "queries", "restarts"),
    "autoattack": ("norm", "version", "steps"),
}

# Every setting key: the columns a robustness row carries (None where the attack has no such
# setting) and the group-by keys that keep two settings of one attack apart. `implementation`
# is every row's ("torchattacks" or "reference"): rows of the two backends never pool.
SETTING_KEYS = ("norm", "steps", "alpha", "random_start", "restarts", "loss", "version",
                "queries", "implementation")


def keys_for(attack: str) -> tuple[str, ...]:
    return ATTACK_KEYS[attack]
