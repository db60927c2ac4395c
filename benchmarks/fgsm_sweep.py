"""FGSM ε-sweep on three real architectures: bench's sweep against the code people write instead,
timed side by side in one process, alternating.

    python benchmarks/fgsm_sweep.py [--shapes lenet,small-cnn,resnet18] [--rounds N] [--threads 1]

Shapes (7 ε, the tutorial's list; the model in eval mode, contiguous, as a suite gives it):

  lenet      the PyTorch FGSM tutorial's LeNet (benchmarks/_models.py: log_softmax, dropout) on
             10,000 1×28×28 images, trained 2 epochs
  small-cnn  bench's small CNN (bench.models.small_cnn, BatchNorm) on 10,000 1×8×8 digits,
             trained 2 epochs
  resnet18   bench's CIFAR ResNet-18 (bench.models.resnet) on 128 3×32×32 images, untrained
             (its time does not depend on its weights; training it here would take an hour)

Contenders, each at the suite's default batch size (bench.defaults.EVAL_BATCH_SIZE) and at the
batch size that was fastest *for that contender* in a search over --candidates:

  naive     for each ε a fresh torchattacks.FGSM, called batch by batch, then a no-grad forward
  plain     the shared-gradient loop anyone can write (`plain_sweep` below, 15 lines): one input
            gradient per batch, then one no-grad forward per ε
  bench     bench.attacks.fgsm.fgsm_sweep, as a robustness cell calls it
  tutorial  the loop of the PyTorch FGSM tutorial at batch size 1 (forward, skip if already
            wrong, backward, sign step, clamp, forward), timed on the first --tutorial-subset
            images and scaled per image

Each ratio is the median of per-round ratios against `naive` at the default batch, with its
IQR. The FLOP floor is the time the work would take at the fp32 matmul peak measured in this
run: the work is one input gradient and 7 forwards per image (FLOPs counted by
torch.utils.flop_counter on a slice of the data), the same for every contender.

Data: no dataset download is possible here, so the images are scikit-learn's real 8×8 digits,
upsampled (bilinear) and shifted by up to 2 pixels (benchmarks/_common.upsampled_digits); the
ResNet's are the same digits at 32×32, repeated over 3 channels.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from benchmarks._common import (  # noqa: E402
    alternate,
    fmt_load,
    machine_lines,
    quartiles,
    ratio_summary,
)
from benchmarks._shapes import SHAPES, Shape, build_shape  # noqa: E402

EPSILONS = [0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3]  # the tutorial's list
TARGET_VS_NAIVE = 2.5

Correct = list[torch.Tensor]  # per ε, a bool mask over the images


# --- the contenders ------------------------------------------------------------------------

def naive_sweep(model, x, y, batch_size, epsilons=EPSILONS) -> Correct:
    import torchattacks

    out = []
    for eps in epsilons:
        attack = torchattacks.FGSM(model, eps=eps)
        correct = []
        for xb, yb in zip(x.split(batch_size), y.split(batch_size)):
            adv = attack(xb, yb)
            with torch.no_grad():
                correct.append(model(adv).argmax(1) == yb)
        out.append(torch.cat(correct))
    return out


def plain_sweep(model, x, y, batch_size, epsilons=EPSILONS) -> Correct:
    """The plain shared-gradient loop: what a user writes once they see that sign(∇) does not
    depend on ε."""
    correct = [[] for _ in epsilons]
    for xb, yb in zip(x.split(batch_size), y.split(batch_size)):
        xr = xb.clone().requires_grad_(True)
        loss = F.cross_entropy(model(xr), yb)
        (grad,) = torch.autograd.grad(loss, xr)
        step = grad.sign()
        with torch.no_grad():
            for i, eps in enumerate(epsilons):
                adv = torch.clamp(xb + eps * step, 0, 1)
                correct[i].append(model(adv).argmax(1) == yb)
    return [torch.cat(c) for c in correct]


def bench_sweep(model, x, y, batch_size, epsilons=EPSILONS) -> Correct:
    """On `x`'s device, as a robustness cell runs it (its results come back on the CPU)."""
    from bench.attacks.fgsm import fgsm_sweep

    return [r.adv_correct for r in fgsm_sweep(model, x, y, epsilons, batch_size, x.device)]


def tutorial_sweep(model, x, y, nll: bool) -> Correct:
    """The tutorial's `test(model, device, test_loader, epsilon)` for every ε, batch size 1.
    Its LeNet ends in log_softmax and takes nll_loss; models ending in logits take cross_entropy."""
    loss_fn = F.nll_loss if nll else F.cross_entropy
    out = []
    for eps in EPSILONS:
        correct = torch.zeros(len(y), dtype=torch.bool)
        for i in range(len(y)):
            data, target = x[i:i + 1].clone(), y[i:i + 1]
            data.requires_grad = True
            output = model(data)
            init_pred = output.max(1, keepdim=True)[1]
            if init_pred.item() != target.item():
                continue
            loss = loss_fn(output, target)
            model.zero_grad()
            loss.backward()
            perturbed = torch.clamp(data + eps * data.grad.data.sign(), 0, 1)
            final_pred = model(perturbed).max(1, keepdim=True)[1]
            correct[i] = final_pred.item() == target.item()
        out.append(correct)
    return out


BATCHED = {"naive": naive_sweep, "plain": plain_sweep, "bench": bench_sweep}


# --- per shape: images, batch-size candidates, search subset, tutorial subset ------------

SETTINGS = {
    "lenet": {"images": 10_000, "candidates": [64, 128, 256, 512, 1024], "search": 2048,
              "tutorial": 300},
    "small-cnn": {"images": 10_000, "candidates": [64, 128, 256, 512, 1024], "search": 2048,
                  "tutorial": 300},
    "resnet18": {"images": 128, "candidates": [32, 128], "search": 128, "tutorial": 16},
}


# --- measuring -----------------------------------------------------------------------------

def search_best_batches(shape: Shape, repeats: int) -> dict[str, int]:
    """For each batched contender, the candidate batch size with the lowest median time on the
    first SETTINGS["search"] images (one call per candidate per repeat, alternating)."""
    settings = SETTINGS[shape.name]
    x, y = shape.x[:settings["search"]], shape.y[:settings["search"]]
    runs = {f"{name}@{bs}": (lambda fn=fn, bs=bs: fn(shape.model, x, y, bs))
            for name, fn in BATCHED.items() for bs in settings["candidates"]}
    times = alternate(runs, rounds=repeats, warmup=0, progress=False)
    best = {}
    for name in BATCHED:
        medians = {bs: float(np.median(times[f"{name}@{bs}"])) for bs in settings["candidates"]}
        best[name] = min(medians, key=medians.get)
        cells = ", ".join(f"{bs}: {t:.3f}" for bs, t in medians.items())
        print(f"  search {name:<6s} s per call on {len(y)} images: {cells} -> best {best[name]}")
    return best


def work_flops(shape: Shape, sample: int = 64) -> float:
    """FLOPs of one input gradient and len(EPSILONS) forwards over all images."""
    from bench.throughput.flops import count_flops

    x, y = shape.x[:sample], shape.y[:sample]
    return count_flops(lambda: plain_sweep(shape.model, x, y, sample)) * len(shape.y) / len(y)


def contenders(shape: Shape, default: int, best: dict[str, int]):
    runs: dict[str, Callable[[], Correct]] = {}
    batches: dict[str, int] = {}
    for name, fn in BATCHED.items():
        for bs in dict.fromkeys([default, best[name]]):
            label = f"{name}@{bs}" + (" (default)" if bs == default else " (best)")
            runs[label] = lambda fn=fn, bs=bs: fn(shape.model, shape.x, shape.y, bs)
            batches[label] = bs
    sub = min(SETTINGS[shape.name]["tutorial"], len(shape.y))
    runs["tutorial@1"] = lambda: tutorial_sweep(shape.model, shape.x[:sub], shape.y[:sub], shape.nll)
    batches["tutorial@1"] = 1
    return runs, batches, len(shape.y) / sub


def run_shape(shape: Shape, rounds: int, search_repeats: int, peak_tflops: float) -> list[dict]:
    from bench.defaults import EVAL_BATCH_SIZE

    print(f"\n=== {shape.title} ({'; '.join(shape.notes)}); load {fmt_load()}", flush=True)
    best = search_best_batches(shape, search_repeats)
    runs, batches, tutorial_scale = contenders(shape, EVAL_BATCH_SIZE, best)
    results: dict[str, Correct] = {}
    recorded = {label: (lambda label=label, fn=fn: results.__setitem__(label, fn()))
                for label, fn in runs.items()}
    print(f"  timing {rounds} rounds (+1 warm-up), alternating", flush=True)
    times = alternate(recorded, rounds=rounds, warmup=1, progress=False)
    times["tutorial@1"] = [t * tutorial_scale for t in times["tutorial@1"]]
    floor_s = work_flops(shape) / (peak_tflops * 1e12)
    baseline = f"naive@{EVAL_BATCH_SIZE} (default)"
    rows = []
    for label, ts in times.items():
        q1, med, q3 = quartiles(ts)
        r = ratio_summary(times[baseline], ts)
        rows.append({"shape": shape.name, "contender": label, "batch": batches[label],
                     "median": med, "q1": q1, "q3": q3, "ratio": r["median_ratio"],
                     "ratio_q1": r["ratio_q1"], "ratio_q3": r["ratio_q3"],
                     "floor_multiple": med / floor_s})
    print_shape_table(rows, floor_s, tutorial_scale)
    print_accuracies(shape, results, batches, EVAL_BATCH_SIZE)
    print_verdict(rows, EVAL_BATCH_SIZE)
    print(f"  load after: {fmt_load()}", flush=True)
    return rows


# --- reporting -----------------------------------------------------------------------------

def print_shape_table(rows: list[dict], floor_s: float, tutorial_scale: float) -> None:
    print(f"  FLOP floor of the work: {floor_s:.3f} s; tutorial timed on 1/{tutorial_scale:g} "
          "of the images and scaled")
    print(f"  {'contender':<24s} {'median s':>9s} {'IQR':>19s} {'vs naive@default':>24s} "
          f"{'× floor':>8s}")
    for r in rows:
        print(f"  {r['contender']:<24s} {r['median']:9.3f} [{r['q1']:7.3f}, {r['q3']:7.3f}] "
              f"{r['ratio']:7.2f}× [{r['ratio_q1']:.2f}, {r['ratio_q3']:.2f}]    "
              f"{r['floor_multiple']:6.1f}")


def print_accuracies(shape: Shape, results: dict[str, Correct], batches, default: int) -> None:
    print("  correct samples per ε (" + ", ".join(f"{e:g}" for e in EPSILONS) + "):")
    for label, correct in results.items():
        counts = " ".join(f"{int(c.sum()):>6d}" for c in correct)
        print(f"    {label:<24s} {counts}")
    naive = results[f"naive@{default} (default)"]
    for label, correct in results.items():
        if batches[label] == default and not label.startswith("naive"):
            same = all(torch.equal(a, b) for a, b in zip(naive, correct))
            print(f"    {label} identical per sample to naive@{default}: {same}")
    sub = len(results["tutorial@1"][0])
    bench = results[f"bench@{default} (default)"]
    diff = sum(int((a[:sub] != b).sum()) for a, b in zip(bench, results["tutorial@1"]))
    print(f"    tutorial vs bench on its {sub} images: {diff} (sample, ε) pairs differ "
          "(the tutorial skips images it already misclassifies)")


def print_verdict(rows: list[dict], default: int) -> None:
    by = {r["contender"]: r for r in rows}
    bench, plain = by[f"bench@{default} (default)"], by[f"plain@{default} (default)"]
    ahead = bench["median"] <= plain["median"]
    fast = bench["ratio"] >= TARGET_VS_NAIVE
    print(f"  at the default batch {default}: bench {'ahead of' if ahead else 'BEHIND'} the plain "
          f"loop ({plain['median'] / bench['median']:.2f}× by medians); "
          f"{bench['ratio']:.2f}× naive, {'meets' if fast else 'MISSES'} ≥{TARGET_VS_NAIVE:g}×")


def print_markdown(rows: list[dict]) -> None:
    print("\n| shape | contender | median s | IQR s | vs naive@default [IQR] | × FLOP floor |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['shape']} | {r['contender']} | {r['median']:.3f} | "
              f"[{r['q1']:.3f}, {r['q3']:.3f}] | {r['ratio']:.2f}× [{r['ratio_q1']:.2f}, "
              f"{r['ratio_q3']:.2f}] | {r['floor_multiple']:.1f} |")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", default=",".join(SHAPES))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--search-repeats", type=int, default=2)
    parser.add_argument("--images", type=int, help="images per shape (default: SETTINGS)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (default 1, as bench runs CPU cells)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    from bench.throughput.peaks import cpu_matmul_peak_tflops

    print("FGSM ε-sweep: bench vs torchattacks per ε vs the plain shared-gradient loop vs the "
          "PyTorch tutorial loop")
    for line in machine_lines():
        print(line)
    peak = cpu_matmul_peak_tflops(torch.get_num_threads())
    print(f"fp32 matmul peak measured now: {peak * 1e3:.1f} GFLOP/s "
          f"({torch.get_num_threads()} threads, best repeat); epsilons {EPSILONS}")
    rows = []
    for name in args.shapes.split(","):
        name = name.strip()
        shape = build_shape(name, args.images or SETTINGS.get(name, {}).get("images", 0))
        rows += run_shape(shape, args.rounds, args.search_repeats, peak)
    print_markdown(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
