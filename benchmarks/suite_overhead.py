"""bench's overhead on a training step: bench's code path against the same work written by hand,
timed side by side in one process, alternating.

    python benchmarks/suite_overhead.py [--rounds 15] [--threads 1]

Two comparisons, small-cnn on the 8×8 digits (bench's default training setup: Adam 1e-3,
batch 64), fp32, on the CPU:

  step   the train-step workload exactly as `bench run` times it: the closure built by
         bench.cells.throughput.build_workload (bench.throughput.workloads.train_step: precision
         context, cross-entropy, zero_grad, backward, optimiser step) against the five lines of
         a hand-written step, each `--steps` steps per round on the same on-device batch.
  epoch  bench.training.loop.train_classifier for `--epochs` epochs (shuffle, per-step loss and
         accuracy kept on the device, one-cycle schedule, held-out accuracy after each epoch)
         against a hand-written loop doing the same work.

Both sides start from the same weights (same seed); the target is bench ≤ 5% slower.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from bench.seeding import seeded  # noqa: E402
from bench.suite.cell_configs import DatasetSpec, ThroughputCellConfig, TrainedTarget  # noqa: E402
from bench.suite.schema import TrainConfig  # noqa: E402
from benchmarks._common import alternate, describe_times, fmt_load, machine_lines, ratio_summary  # noqa: E402

DIGITS = DatasetSpec(name="digits", kind="digits")
TARGET = TrainedTarget(model="cnn", arch="small-cnn", normalize=None,
                       train=TrainConfig(recipe="standard", optimizer="adam", lr=1e-3,
                                         batch_size=64, epochs=1))
BATCH = 64
MAX_SLOWDOWN = 0.05


def fresh_model(seed: int = 0) -> torch.nn.Module:
    from bench.models.build import build_classifier

    with seeded(seed):
        return build_classifier(TARGET.arch, TARGET.normalize, (1, 8, 8), 10)


def bench_step(steps: int):
    from bench.cells.throughput import build_workload

    config = ThroughputCellConfig(
        workload="train-step", target=TARGET, dataset=DIGITS, batch_size=BATCH, precision="fp32",
        channels_last=False, compile=False, warmup=0, repeats=1, epsilon=8 / 255, pgd_steps=10,
        peak_tflops=None, seed=0)
    with seeded(0):
        workload = build_workload(config, "cpu")

    def run():
        for _ in range(steps):
            workload.step()
    return run


def handwritten_step(steps: int, x: torch.Tensor, y: torch.Tensor):
    model = fresh_model().train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def run():
        for _ in range(steps):
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return run


def bench_epochs(epochs: int, train, heldout):
    from bench.training.loop import train_classifier

    cfg = TARGET.train.model_copy(update={"epochs": epochs})

    def run():
        train_classifier(fresh_model(), train, heldout, cfg, seed=0, device="cpu")
    return run


def handwritten_epochs(epochs: int, train, heldout):
    """The same work as train_classifier's standard recipe, written out."""
    def run():
        model = fresh_model()
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        n = len(train.y)
        steps = epochs * math.ceil(n / BATCH)
        warm = max(1, int(0.2 * steps))
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: (s + 1) / warm if s < warm else max(0.0, (steps - s) / max(1, steps - warm)))
        gen = torch.Generator().manual_seed(0)
        for _ in range(epochs):
            model.train()
            loss_sum, correct, seen = torch.zeros(()), torch.zeros((), dtype=torch.long), 0
            for idx in torch.randperm(n, generator=gen).split(BATCH):
                if len(idx) < 2:
                    continue
                xb, yb = train.x[idx], train.y[idx]
                logits = model(xb)
                loss = F.cross_entropy(logits, yb)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                loss_sum += loss.detach() * len(yb)
                correct += (logits.argmax(1) == yb).sum()
                seen += len(yb)
            _ = loss_sum.item() / seen, correct.item() / seen
            model.eval()
            with torch.inference_mode():
                hits = sum((model(xb).argmax(1) == yb).sum().item()
                           for xb, yb in zip(heldout.x.split(512), heldout.y.split(512)))
            _ = hits / len(heldout.y)
    return run


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--steps", type=int, default=100, help="train steps per round (step comparison)")
    parser.add_argument("--epochs", type=int, default=2, help="epochs per round (epoch comparison)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (default 1, as bench runs CPU cells by default)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    from bench.data import load_dataset

    print("bench overhead on a training step (bench's code path vs hand-written PyTorch)")
    for line in machine_lines():
        print(line)
    train, heldout = load_dataset(DIGITS, "train"), load_dataset(DIGITS, "test")
    x, y = train.x[:BATCH].contiguous(), train.y[:BATCH].contiguous()
    print(f"model: small-cnn (bench.models.small_cnn), 1×8×8 digits, batch {BATCH}, Adam 1e-3, fp32")

    print(f"\nstep: {args.steps} steps per round, {args.rounds} rounds, alternating; load {fmt_load()}")
    step_times = alternate({"bench": bench_step(args.steps),
                            "hand": handwritten_step(args.steps, x, y)},
                           rounds=args.rounds, warmup=1, progress=False)
    print(f"epoch: {args.epochs} epochs of {len(train.y)} images per round, {args.rounds} rounds, "
          f"alternating; load {fmt_load()}")
    epoch_times = alternate({"bench": bench_epochs(args.epochs, train, heldout),
                             "hand": handwritten_epochs(args.epochs, train, heldout)},
                            rounds=args.rounds, warmup=1, progress=False)

    ok = True
    for label, times, unit_scale, unit in (("step", step_times, 1e3 / args.steps, "ms/step"),
                                           ("epoch", epoch_times, 1.0 / args.epochs, "s/epoch")):
        print(f"\n{label}:")
        print(describe_times("  bench", times["bench"], unit_scale, unit))
        print(describe_times("  hand-written", times["hand"], unit_scale, unit))
        r = ratio_summary(times["bench"], times["hand"])
        slower = r["median_ratio"] - 1
        verdict = "within" if slower <= MAX_SLOWDOWN else "OVER"
        ok &= slower <= MAX_SLOWDOWN
        print(f"  bench / hand-written: {r['median_ratio']:.3f} [{r['ratio_q1']:.3f}, "
              f"{r['ratio_q3']:.3f}] (median of per-round ratios [IQR]); ratio of medians "
              f"{r['ratio_of_medians']:.3f} -> {slower:+.1%}, {verdict} the +{MAX_SLOWDOWN:.0%} budget")
    print(f"\nload average after: {fmt_load()}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
