"""How often does `bench history` see a step that is not there, and find one that is? Simulated.

    python benchmarks/history_step_power.py [--trials 500]

One value per run, normal noise with SD 1, tolerance 0 (the worst case: only the fit and the
noise test stand between noise and a step; a real tolerance only removes steps):
  - noise alone, n runs: the share of series with any step, and with the latest run judged a
    pending regression (compare's worst-seed test at alpha = 5%);
  - a step of d SDs at run 30 of 60: the share found as exactly one regression at 30 +- 1;
  - one outlier run of 5-50 SDs at run 30 of 60: the share reported as a step.
tests/test_history.py asserts the first (<= 5%) and the step and outlier cases on run folders.
"""

from __future__ import annotations

import argparse

import numpy as np

from bench.compare.rules import Rule
from bench.history.steps import detect_steps

RULE = Rule("higher", abs_tol=0.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=500)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print("| runs | noise alone: any step | latest run a pending regression |")
    print("|---|---|---|")
    for n in (6, 10, 20, 60, 200, 500):
        fits = [detect_steps(rng.normal(0, 1, n), RULE) for _ in range(args.trials)]
        steps = np.mean([bool(f.steps) for f in fits])
        pending = np.mean([bool(f.pending and f.pending.regression) for f in fits])
        print(f"| {n} | {steps:.1%} | {pending:.1%} |")
    print("\n| step at run 30 of 60 | found once, at 30 +- 1, as a regression |")
    print("|---|---|")
    for d in (1.5, 2.0, 3.0, 4.0):
        print(f"| {d:g} SD | {np.mean([_found(rng, d) for _ in range(args.trials)]):.1%} |")
    outliers = []
    for _ in range(args.trials):
        y = rng.normal(0, 1, 60)
        y[30] += rng.choice([-1, 1]) * rng.uniform(5, 50)
        outliers.append(bool(detect_steps(y, RULE).steps))
    print(f"\none outlier run (5-50 SD) at run 30 of 60, reported as a step: "
          f"{np.mean(outliers):.1%}")


def _found(rng, d: float) -> bool:
    y = rng.normal(0, 1, 60)
    y[30:] -= d
    steps = detect_steps(y, RULE).steps
    return len(steps) == 1 and abs(steps[0].index - 30) <= 1 and steps[0].regression


if __name__ == "__main__":
    main()
