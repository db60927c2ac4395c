"""How often does `bench compare` flag a regression? False alarms and detection, simulated.

    python benchmarks/compare_gate_power.py [--trials 2000]

For 3 and 5 seeds a side (paired, as runs of one suite are), seed values normal with an SD of
0.25, 1 or 4 tolerances, independent between the runs: the rate of "regressed" verdicts under
noise alone (must stay <= 5%, tests/test_compare_stats.py asserts it) and when the candidate
is truly worse by 2 or 4 tolerances. Uses the default rules of robust_acc (abs_tol 0.01,
worst-seed test on), fid (rel_tol 5% of 10, worst-seed on) and precision (abs_tol 0.02).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.test_compare_stats import NOISE_OVER_TOL, SIMULATED, simulate  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=2000)
    args = parser.parse_args()
    print("| metric | seeds | noise SD / tol | false alarms | detected at 2x tol | at 4x tol |")
    print("|---|---|---|---|---|---|")
    for metric, center in SIMULATED:
        for n in (3, 5):
            for ratio in NOISE_OVER_TOL:
                rates = [simulate(metric, center, n, ratio, shift, args.trials, seed=n)
                         for shift in (0.0, 2.0, 4.0)]
                print(f"| {metric} | {n} | {ratio:g} | " + " | ".join(f"{r:.1%}" for r in rates)
                      + " |")


if __name__ == "__main__":
    main()
