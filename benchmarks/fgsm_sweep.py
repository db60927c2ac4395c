"""FGSM ε-sweep: bench's shared-gradient sweep against the naive torchattacks loop and the
PyTorch FGSM tutorial's loop, timed side by side in one process, alternating.

    python benchmarks/fgsm_sweep.py [--rounds 5] [--tutorial-subset 1000] [--threads N]

Contenders, on the same LeNet and the same 10,000 images, 7 epsilons:

  (a)  bench.attacks.fgsm.fgsm_sweep: one input gradient per batch shared by every ε, adversarial
       forwards under inference_mode; called with the batch size and memory format (channels_last
       model and inputs) that measured fastest here.
  (b)  the naive loop: for each ε a fresh torchattacks.FGSM, called batch by batch (batch 256),
       then a no-grad forward for the predictions.
  (c)  the loop of the PyTorch FGSM tutorial (pytorch.org/tutorials/beginner/fgsm_tutorial.html)
       at batch size 1: forward, skip if already wrong, loss.backward(), sign step, clamp,
       forward. Timed on the first --tutorial-subset images and scaled per image to 10,000
       (printed as such).

With --compare-max-forward N, a separate alternating comparison follows: fgsm_sweep at batch
512 (the robustness cells' default) as it is (MAX_FORWARD=4096: all 7 ε copies of a batch in one
3584-image forward) against bench.attacks.fgsm.MAX_FORWARD set to N, the change proposed for
fgsm.py (adversarial forwards small enough for the CPU caches). It does not change (a).

Data: no MNIST download is possible here, so the images are scikit-learn's real 8×8 digits
upsampled to 28×28 and shifted by up to 2 pixels (benchmarks/_common.py: upsampled_digits);
LeNet is trained briefly (2 epochs of Adam) on 10,000 such images made from the training split,
and attacked on 10,000 made from the test split.
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from benchmarks._common import (  # noqa: E402
    alternate,
    describe_times,
    fmt_load,
    machine_lines,
    ratio_summary,
    train_briefly,
    upsampled_digits,
)

EPSILONS = [0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3]  # the tutorial's list
N_IMAGES = 10_000
NAIVE_BATCH = 256
SWEEP_BATCH = 128  # fastest measured here for fgsm_sweep as it is (MAX_FORWARD=4096)
TARGET_VS_NAIVE, TARGET_VS_TUTORIAL = 2.5, 40.0


def sweep_accuracies(model, x, y, batch_size) -> list[torch.Tensor]:
    from bench.attacks.fgsm import fgsm_sweep

    return [r.adv_pred == y for r in fgsm_sweep(model, x, y, EPSILONS, batch_size, "cpu")]


def naive_accuracies(model, x, y, batch_size=NAIVE_BATCH) -> list[torch.Tensor]:
    import torchattacks

    out = []
    for eps in EPSILONS:
        attack = torchattacks.FGSM(model, eps=eps)
        correct = []
        for start in range(0, len(y), batch_size):
            xb, yb = x[start:start + batch_size], y[start:start + batch_size]
            adv = attack(xb, yb)
            with torch.no_grad():
                correct.append(model(adv).argmax(1) == yb)
        out.append(torch.cat(correct))
    return out


def tutorial_accuracies(model, x, y) -> list[torch.Tensor]:
    """The tutorial's `test(model, device, test_loader, epsilon)` for every ε, batch size 1
    (LeNet here returns logits, so cross_entropy stands for its log_softmax + nll_loss)."""
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
            loss = F.cross_entropy(output, target)
            model.zero_grad()
            loss.backward()
            perturbed = torch.clamp(data + eps * data.grad.data.sign(), 0, 1)
            final_pred = model(perturbed).max(1, keepdim=True)[1]
            correct[i] = final_pred.item() == target.item()
        out.append(correct)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--tutorial-subset", type=int, default=1000)
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's default)")
    parser.add_argument("--sweep-batch", type=int, default=SWEEP_BATCH)
    parser.add_argument("--compare-max-forward", type=int, default=0, metavar="N",
                        help="also compare MAX_FORWARD=N with the current value at batch 512")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    import bench.attacks.fgsm as fgsm_mod
    from bench.models.lenet import build_lenet
    from bench.throughput.flops import count_flops
    from bench.throughput.peaks import cpu_matmul_peak_tflops

    print("FGSM ε-sweep benchmark (bench vs torchattacks loop vs PyTorch tutorial loop)")
    for line in machine_lines():
        print(line)
    t0 = time.perf_counter()
    x_train, y_train = upsampled_digits(N_IMAGES, split="train", seed=1)
    x, y = upsampled_digits(N_IMAGES, split="test", seed=2)
    torch.manual_seed(0)
    model = train_briefly(build_lenet(1, 10, (28, 28)), x_train, y_train, epochs=2)
    for p in model.parameters():
        p.requires_grad_(True)
    with torch.no_grad():
        clean = (model(x).argmax(1) == y).float().mean().item()
    print(f"data: {N_IMAGES} images 1×28×28 = sklearn 8×8 digits (test split) upsampled bilinearly "
          f"and shifted ≤2 px (synthetic stand-in for MNIST; no download possible)")
    print(f"model: LeNet (bench.models.lenet), trained 2 epochs of Adam on {N_IMAGES} upsampled "
          f"train-split digits in {time.perf_counter() - t0:.1f} s; clean accuracy {clean:.4f}")
    print(f"epsilons: {EPSILONS}")

    # (a) uses a channels_last copy of the same weights, which measured faster here.
    model_cl = copy.deepcopy(model).to(memory_format=torch.channels_last)
    x_cl = x.contiguous(memory_format=torch.channels_last)
    sub = args.tutorial_subset
    results: dict[str, list[torch.Tensor]] = {}

    def run_sweep():
        results["a"] = sweep_accuracies(model_cl, x_cl, y, args.sweep_batch)

    def run_naive():
        results["b"] = naive_accuracies(model, x, y)

    def run_tutorial():
        results["c"] = tutorial_accuracies(model, x[:sub], y[:sub])

    contenders = {"a": run_sweep, "b": run_naive, "c": run_tutorial}
    print(f"\ntiming {args.rounds} rounds (plus one warm-up round), alternating; load before: "
          f"{fmt_load()}", flush=True)
    times = alternate(contenders, rounds=args.rounds, warmup=1)
    load_after = fmt_load()
    tutorial_scaled = [t * N_IMAGES / sub for t in times["c"]]

    print("\nseconds for the whole sweep (7 ε × 10,000 images):")
    print(describe_times(f"(a) bench fgsm_sweep, batch {args.sweep_batch}, channels_last", times["a"]))
    print(describe_times(f"(b) torchattacks.FGSM per ε, batch {NAIVE_BATCH}", times["b"]))
    print(describe_times(f"(c) tutorial loop, batch 1 (timed on {sub}, ×{N_IMAGES / sub:g})",
                         tutorial_scaled))

    print("\nspeed-ups of (a) (median of per-round ratios [IQR]; ratio of medians):")
    rows = [("b", times["b"], TARGET_VS_NAIVE), ("c", tutorial_scaled, TARGET_VS_TUTORIAL)]
    for name, slow, target in rows:
        r = ratio_summary(slow, times["a"])
        verdict = "meets" if r["median_ratio"] >= target else "MISSES"
        print(f"  (a) vs ({name}): {r['median_ratio']:.2f}× [{r['ratio_q1']:.2f}, {r['ratio_q3']:.2f}]; "
              f"{r['ratio_of_medians']:.2f}×  — {verdict} the ≥{target:g}× target")

    print("\naccuracy per ε (correct samples; (c) on its subset, compared with (a) there):")
    worst_ab = worst_ac = 0
    for i, eps in enumerate(EPSILONS):
        a, b, c = results["a"][i], results["b"][i], results["c"][i]
        d_ab = int(a.sum() - b.sum())
        d_ac = int(a[:sub].sum() - c.sum())
        worst_ab, worst_ac = max(worst_ab, abs(d_ab)), max(worst_ac, abs(d_ac))
        print(f"  ε={eps:<5} (a) {a.float().mean():.4f}  (b) {b.float().mean():.4f} [Δ {d_ab:+d}, "
              f"{int((a != b).sum())} samples differ]  (c) {c.float().mean():.4f} vs (a) "
              f"{a[:sub].float().mean():.4f} [Δ {d_ac:+d}]")
    print(f"  largest difference: (a)-(b) {worst_ab} of {N_IMAGES} samples, (a)-(c) {worst_ac} of "
          f"{sub} (the tutorial counts clean-misclassified samples as wrong without attacking; "
          "(a) uses channels_last kernels, (b) contiguous ones)")

    flops = count_flops(lambda: sweep_accuracies(model_cl, x_cl, y, args.sweep_batch))
    peak = cpu_matmul_peak_tflops(torch.get_num_threads())
    achieved = flops / float(np.median(times["a"])) / 1e12
    print(f"\n(a) work: {flops / 1e9:.2f} GFLOP per sweep (FlopCounterMode: convolutions and matmuls) "
          f"-> {achieved * 1e3:.1f} GFLOP/s at the median = {achieved / peak:.1%} of the fp32 matmul "
          f"peak measured in this run ({peak * 1e3:.1f} GFLOP/s: best repeat of 512² and 1024² "
          f"matmuls, {torch.get_num_threads()} threads)")
    print(f"load average after: {load_after}")
    if args.compare_max_forward:
        compare_max_forward(fgsm_mod, model_cl, x_cl, y, args.compare_max_forward, args.rounds)
    return 0


def compare_max_forward(fgsm_mod, model, x, y, proposed: int, rounds: int, batch: int = 512) -> None:
    current = fgsm_mod.MAX_FORWARD
    preds: dict[int, list[torch.Tensor]] = {}

    def with_cap(cap):
        def run():
            fgsm_mod.MAX_FORWARD = cap
            try:
                preds[cap] = sweep_accuracies(model, x, y, batch)
            finally:
                fgsm_mod.MAX_FORWARD = current
        return run

    print(f"\nfgsm_sweep at batch {batch}: MAX_FORWARD={current} (as is) vs {proposed} (proposed), "
          f"{rounds} rounds, alternating; load {fmt_load()}")
    times = alternate({"as_is": with_cap(current), "proposed": with_cap(proposed)}, rounds=rounds,
                      warmup=1, progress=False)
    print(describe_times(f"  MAX_FORWARD={current}", times["as_is"]))
    print(describe_times(f"  MAX_FORWARD={proposed}", times["proposed"]))
    r = ratio_summary(times["as_is"], times["proposed"])
    same = all(torch.equal(a, b) for a, b in zip(preds[current], preds[proposed]))
    print(f"  speed-up {r['median_ratio']:.2f}× [{r['ratio_q1']:.2f}, {r['ratio_q3']:.2f}]; "
          f"per-sample results identical: {same}; load after {fmt_load()}")


if __name__ == "__main__":
    raise SystemExit(main())
