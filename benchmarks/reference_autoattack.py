"""bench's torchattacks path against the original AutoAttack code on the same attack: APGD-CE
and AutoAttack (standard), side by side in one process, alternating.

    python benchmarks/reference_autoattack.py [--rounds 3] [--threads 1] [--attacks apgd-ce autoattack]

Three contenders per attack, on the same images, model, batches, ε, steps and seed:
  bench-torchattacks  `bench.attacks.sweep_for(attack, "torchattacks")`, bench's default path;
  bench-reference     `sweep_for(attack, "reference")`, the original code behind bench's sweep
                      (one object per ε, each batch seeded alike, per-example records);
  pyautoattack        the original code called directly, as its README shows
                      (`AutoAttack(...).run_standard_evaluation(x, y)`, or
                      `APGDAttack(...).perturb(x, y)`) and one forward for the predictions.
Each ends with the predictions on the adversarial images. Before timing, one call of each
gives the accuracies printed: clean, robust under each implementation, n and the discordant
examples (robust under one only) with the two-sided exact McNemar p-value, the rule of the
`implementation_cross_check`.

Model and data: bench's small CNN adversarially trained by bench (PGD at ε = 0.1, 6 epochs,
3 steps: what tests/test_reference_crosscheck.py trains) on the 8×8 digits; the attack at
ε = 0.15, where about 40% of the test images survive; steps = 10 on every contender (the
original's default is 100). APGD-CE on the 450 test images in one batch; AutoAttack on 200 in
one batch (its Square stage costs per iteration, so one call is tens of seconds: 3 rounds).
Target: bench-torchattacks ≤ 1.05 × pyautoattack on the same attack (median per-round CPU
time ratio; CPU time decides on a shared machine, wall time is printed too).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from bench.suite.cell_configs import DatasetSpec  # noqa: E402
from benchmarks._common import (  # noqa: E402
    alternate_clocks,
    describe_times,
    fmt_load,
    machine_lines,
    ratio_summary,
)

DIGITS = DatasetSpec(name="digits", kind="digits")
EPS, STEPS, SEED = 0.15, 10, 0
EXAMPLES = {"apgd-ce": 450, "autoattack": 200}
MAX_RATIO = 1.05


def adversarially_trained() -> torch.nn.Module:
    from bench.data import load_dataset
    from bench.models.build import build_classifier
    from bench.seeding import seeded
    from bench.suite.schema import TrainConfig
    from bench.training.loop import train_classifier

    train, test = load_dataset(DIGITS, "train"), load_dataset(DIGITS, "test")
    cfg = TrainConfig(recipe="pgd", epsilon=0.1, epochs=6, steps=3).with_arch_defaults(
        "small-cnn", "digits")
    with seeded(SEED):
        model = build_classifier("small-cnn", None, (1, 8, 8), 10)
    train_classifier(model, train, test, cfg, SEED, "cpu")
    return model.eval()


def contenders(attack: str, model, x, y) -> dict:
    from bench.attacks import sweep_for
    from bench.attacks.reference import original, set_apgd_steps

    def bench_side(implementation):
        sweep = sweep_for(attack, implementation)
        return lambda: sweep(model, x, y, [EPS], len(y), "cpu", seed=SEED, steps=STEPS)[0].adv_pred

    def direct():
        if attack == "autoattack":
            adversary = original("AutoAttack")(model, norm="Linf", eps=EPS, version="standard",
                                               seed=SEED, device="cpu")
            adversary.verbose = False
            for part in (adversary.apgd, adversary.apgd_targeted):  # 10 steps, not 100
                set_apgd_steps(part, STEPS)
            adversary.fab.n_iter = STEPS
            x_adv, _ = adversary.run_standard_evaluation(x, y, batch_size=len(y))
        else:
            x_adv = original("APGDAttack")(model, n_iter=STEPS, norm="Linf", eps=EPS, seed=SEED,
                                           loss="ce", device="cpu").perturb(x, y)
        with torch.inference_mode():
            return model(x_adv).argmax(1)

    return {"bench-torchattacks": bench_side("torchattacks"),
            "bench-reference": bench_side("reference"), "pyautoattack": direct}


def accuracies(attack: str, model, x, y, sides: dict) -> None:
    from bench.checks.paired import mcnemar_two_sided

    with torch.inference_mode():
        clean = model(x).argmax(1) == y
    robust = {name: clean & (run() == y) for name, run in sides.items()}
    test = mcnemar_two_sided(robust["bench-reference"].numpy(),
                             robust["bench-torchattacks"].numpy())
    print(f"\n{attack}: ε = {EPS:g}, steps = {STEPS}, n = {len(y)} (one batch); clean acc "
          f"{clean.float().mean():.4f}")
    for name, r in robust.items():
        print(f"  robust acc {name:<20s} {r.float().mean():.4f} ({int(r.sum())}/{len(y)})")
    same = torch.equal(robust["bench-reference"], robust["pyautoattack"])
    print(f"  discordant (reference vs torchattacks): {test.only_a} robust under the reference "
          f"only, {test.only_b} under torchattacks only; two-sided McNemar p = "
          f"{test.p_value:.3g}; bench-reference = pyautoattack per example: {same}")


def measure(attack: str, model, x, y, rounds: int) -> dict:
    sides = contenders(attack, model, x, y)
    accuracies(attack, model, x, y, sides)  # also the warm-up
    clocks = {"wall": time.perf_counter, "cpu": time.process_time}
    times = alternate_clocks(sides, rounds, warmup=0, clocks=clocks)
    out = {}
    for clock, per_side in times.items():
        for side, t in per_side.items():
            print("  " + describe_times(f"{side} ({clock} time)", t))
        for side in ("bench-torchattacks", "bench-reference"):
            s = ratio_summary(per_side[side], per_side["pyautoattack"])
            out[(clock, side)] = s
            print(f"  {side} / pyautoattack, {clock} time: median per-round ratio "
                  f"{s['median_ratio']:.4f} IQR [{s['ratio_q1']:.4f}, {s['ratio_q3']:.4f}], "
                  f"ratio of medians {s['ratio_of_medians']:.4f}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--attacks", nargs="+", default=list(EXAMPLES), choices=list(EXAMPLES))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    from bench.data import load_dataset

    for line in machine_lines():
        print(line)
    model = adversarially_trained()
    test = load_dataset(DIGITS, "test")
    ok = True
    for attack in args.attacks:
        n = EXAMPLES[attack]
        summary = measure(attack, model, test.x[:n], test.y[:n], args.rounds)
        ratio = summary[("cpu", "bench-torchattacks")]["median_ratio"]
        ok &= ratio <= MAX_RATIO
        print(f"  target bench-torchattacks ≤ {MAX_RATIO:.2f} × pyautoattack (CPU): "
              f"{'met' if ratio <= MAX_RATIO else 'missed'} ({ratio:.3f})")
    print(f"\nload average after: {fmt_load()}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
