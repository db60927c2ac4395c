"""McNemar's exact test: is evaluation A right on more of the same examples than B?

Two evaluations of one model on the same examples (two ε, PGD and FGSM, a gradient attack
and Square) are paired: an example right under both or wrong under both says nothing about
which is stronger. Only the discordant examples do: `only_a` right under A and wrong under B,
`only_b` the reverse. If A and B were equally accurate, each discordant example would fall
either way with probability 1/2, so `only_a` ~ Binomial(only_a + only_b, 1/2); the one-sided
p-value is scipy's exact binomial test on it. This is much sharper than comparing the two
accuracies as if they came from different examples: at ε = 0.1 and 0.2, hundreds of examples
can be right under both, and a difference of a few discordant ones is then already telling.
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
    p_value: float  # one-sided: P(only_a at least this large | A and B equally accurate)

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


def describe(test: Paired, a: str, b: str) -> str:
    """"12 examples right under A only, 1 under B only (p = 0.0017)"."""
    return (f"{test.only_a} of {test.n} examples right under {a} only, {test.only_b} under "
            f"{b} only (one-sided McNemar p = {test.p_value:.2g})")
