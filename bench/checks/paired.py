"""McNemar's exact test: is evaluation A right on more of the same examples than B?

Two evaluations of one model on the same examples (two ε, PGD and FGSM, a gradient attack
and Square) are paired: an example right under both or wrong under both says nothing about
which is stronger. Only the discordant examples do: `only_a` right under A and wrong under B,
`only_b` the reverse. If A and B were equally accurate, each discordant example would fall
either way with probability 1/2, so `only_a` ~ Binomial(only_a + only_b, 1/2); the one-sided
p-value is scipy's exact binomial test on it. This is much sharper than comparing the two
accuracies as if they came from different examples: at ε = 0.1 and 0.2, hundreds of examples
can be right under both, and a difference of a few discordant ones is then already telling.

`mcnemar_two_sided` asks the symmetric question, whether A and B differ at all (two
implementations of one attack): the two-sided exact test on the same discordant counts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import binomtest


@dataclass(frozen=True)
class Paired:
    n: int  # examples compared
    only_a: int  # right under A, wrong under B
    only_b: int  # wrong under A, right under B
    # one-sided: P(only_a at least this large | A and B equally accurate); two-sided (when
    # `two_sided`): P(a split at least this uneven, either way | equally accurate)
    p_value: float
    two_sided: bool = False

    @property
    def difference(self) -> float:
        """accuracy(A) - accuracy(B)."""
        return (self.only_a - self.only_b) / self.n if self.n else 0.0


def mcnemar_greater(a_correct, b_correct) -> Paired:
    """One-sided exact McNemar test that A is right on more examples than B. `a_correct`
    and `b_correct` are bool per example, the same examples in the same order."""
    a = np.asarray(a_correct, dtype=bool).reshape(-1)
    b = np.asarray(b_correct, dtype=bool).reshape(-1)
    if a.shape != b.shape:
        raise ValueError(f"paired test over {a.size} and {b.size} examples: not the same ones")
    only_a, only_b = int((a & ~b).sum()), int((~a & b).sum())
    discordant = only_a + only_b
    p = 1.0 if discordant == 0 else float(
        binomtest(only_a, discordant, 0.5, alternative="greater").pvalue)
    return Paired(int(a.size), only_a, only_b, p)


def mcnemar_two_sided(a_correct, b_correct) -> Paired:
    """Two-sided exact McNemar test that A and B are right on as many of the same examples."""
    one = mcnemar_greater(a_correct, b_correct)
    discordant = one.only_a + one.only_b
    p = 1.0 if discordant == 0 else float(
        binomtest(one.only_a, discordant, 0.5, alternative="two-sided").pvalue)
    return Paired(one.n, one.only_a, one.only_b, p, two_sided=True)


def describe(test: Paired, a: str, b: str) -> str:
    """"12 examples right under A only, 1 under B only (p = 0.0017)"."""
    sided = "two-sided" if test.two_sided else "one-sided"
    return (f"{test.only_a} of {test.n} examples right under {a} only, {test.only_b} under "
            f"{b} only ({sided} McNemar p = {test.p_value:.2g})")
