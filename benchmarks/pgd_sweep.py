"""PGD-10 ε-sweep: bench's `pgd_sweep` against one seeded `torchattacks.PGD` per ε, timed side
by side in one process, alternating.

    python benchmarks/pgd_sweep.py [--shapes lenet,small-cnn] [--batches 512,64] [--rounds 3]

Contenders, on the same model and images, 7 ε (the FGSM tutorial's list), 10 steps,
α = 2.5·ε/10, random start, seed 0:

  naive  for each ε a fresh torchattacks.PGD, the global RNG seeded, called batch by batch,
         then a no-grad forward for the predictions
  plain  the same PGD written out by hand (`plain_pgd`, the loop of torchattacks.PGD.forward),
         the global RNG seeded the same way
  bench  bench.attacks.pgd.pgd_sweep, as a robustness cell calls it: the same attacks, plus the
         zero-gradient hint at the clean inputs (its first examples only)

All give identical predictions (checked and printed). Shapes and data: benchmarks/_shapes.py.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from benchmarks._common import alternate, fmt_load, machine_lines, quartiles, ratio_summary  # noqa: E402
from benchmarks._shapes import build_shape  # noqa: E402

EPSILONS = [0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3]
STEPS, SEED = 10, 0
IMAGES = {"lenet": 1024, "small-cnn": 1024, "resnet18": 32}


def naive_pgd(model, x, y, batch_size, epsilons=EPSILONS, steps=STEPS) -> list[torch.Tensor]:
    import torchattacks

    from bench.attacks.pgd import default_alpha

    out = []
    for eps in epsilons:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(SEED)
            attack = torchattacks.PGD(model, eps=eps, alpha=default_alpha(eps, steps),
                                      steps=steps, random_start=True)
            preds = []
            for xb, yb in zip(x.split(batch_size), y.split(batch_size)):
                adv = attack(xb, yb)
                with torch.no_grad():
                    preds.append(model(adv).argmax(1))
        out.append(torch.cat(preds))
    return out


def plain_pgd(model, x, y, batch_size, epsilons=EPSILONS, steps=STEPS) -> list[torch.Tensor]:
    """L∞ PGD by hand: random start in the ε-ball, then `steps` signed-gradient steps of α
    projected back onto the ball and [0, 1] (the operations of torchattacks.PGD, in order)."""
    import torch.nn.functional as F

    from bench.attacks.pgd import default_alpha

    out = []
    for eps in epsilons:
        alpha = default_alpha(eps, steps)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(SEED)
            preds = []
            for xb, yb in zip(x.split(batch_size), y.split(batch_size)):
                adv = torch.clamp(xb + torch.empty_like(xb).uniform_(-eps, eps), 0, 1)
                for _ in range(steps):
                    adv.requires_grad_(True)
                    (grad,) = torch.autograd.grad(F.cross_entropy(model(adv), yb), adv)
                    adv = adv.detach() + alpha * grad.sign()
                    adv = torch.clamp(xb + torch.clamp(adv - xb, -eps, eps), 0, 1)
                with torch.no_grad():
                    preds.append(model(adv).argmax(1))
        out.append(torch.cat(preds))
    return out


def bench_pgd(model, x, y, batch_size, epsilons=EPSILONS, steps=STEPS) -> list[torch.Tensor]:
    """On `x`'s device, as a robustness cell runs it (its results come back on the CPU)."""
    from bench.attacks.pgd import pgd_sweep

    results = pgd_sweep(model, x, y, epsilons, batch_size, x.device, steps=steps, seed=SEED)
    return [r.adv_pred for r in results]


CONTENDERS = {"naive": naive_pgd, "plain": plain_pgd, "bench": bench_pgd}


def run(shape, batch: int, rounds: int) -> dict:
    print(f"\n=== {shape.title}, batch {batch} ({'; '.join(shape.notes)}); "
          f"load {fmt_load()}", flush=True)
    preds: dict[str, list[torch.Tensor]] = {}
    runs = {name: (lambda name=name, fn=fn: preds.__setitem__(
                name, fn(shape.model, shape.x, shape.y, batch)))
            for name, fn in CONTENDERS.items()}
    times = alternate(runs, rounds=rounds, warmup=0, progress=False)
    same = all(torch.equal(a, b) for name in ("plain", "bench")
               for a, b in zip(preds["naive"], preds[name]))
    row = {"shape": shape.name, "batch": batch, "same": same, **ratio_summary(times["naive"], times["bench"])}
    print(f"  plain vs naive: {ratio_summary(times['naive'], times['plain'])['median_ratio']:.2f}×")
    for name in ("naive", "bench"):
        row[name] = quartiles(times[name])
        q1, med, q3 = row[name]
        print(f"  {name:<6s} median {med:8.3f} s  IQR [{q1:.3f}, {q3:.3f}]")
    print(f"  bench vs naive: {row['median_ratio']:.2f}× [{row['ratio_q1']:.2f}, "
          f"{row['ratio_q3']:.2f}]; identical predictions: {same}; load {fmt_load()}", flush=True)
    return row


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", default="lenet,small-cnn")
    parser.add_argument("--batches", default="512,64")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--images", type=int, help="images per shape (default: IMAGES)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"PGD-{STEPS} ε-sweep: bench vs torchattacks.PGD per ε; epsilons {EPSILONS}")
    for line in machine_lines():
        print(line)
    rows = []
    for name in args.shapes.split(","):
        shape = build_shape(name.strip(), args.images or IMAGES[name.strip()])
        for batch in (int(b) for b in args.batches.split(",")):
            rows.append(run(shape, batch, args.rounds))
    print("\n| shape | batch | naive s [IQR] | bench s [IQR] | bench vs naive [IQR] |")
    print("|---|---|---|---|---|")
    for r in rows:
        (n1, n, n3), (b1, b, b3) = r["naive"], r["bench"]
        print(f"| {r['shape']} | {r['batch']} | {n:.2f} [{n1:.2f}, {n3:.2f}] | "
              f"{b:.2f} [{b1:.2f}, {b3:.2f}] | {r['median_ratio']:.2f}× [{r['ratio_q1']:.2f}, "
              f"{r['ratio_q3']:.2f}] |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
