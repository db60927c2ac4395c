"""FGSM (Goodfellow et al. 2015) over a list of ε, sharing one input gradient per batch.

FGSM's step direction, sign(∇ₓ loss), does not depend on ε, so the sweep computes the
gradient once per batch and forms x_adv = clamp(x + ε·sign(g), 0, 1) for every ε. The
arithmetic is the one in torchattacks' `FGSM.forward` (CrossEntropyLoss with mean reduction,
model in eval mode, the same clamp), so for the same batches the adversarial images, and
hence the predictions, are bit-identical to calling `torchattacks.FGSM(model, eps)` once
per ε; tests/test_attacks.py checks exactly that.

Where the time goes (torch.profiler, benchmarks/fgsm_sweep.py): almost all of it is in the
model's convolutions and pooling, forward and backward; the sign, clamp and L∞ are a few per
cent. Two things make the sweep cheaper than the plain shared-gradient loop:

- at ε = 0, FGSM returns the batch unchanged (checked, not assumed), so its predictions are
  those of the forward the gradient was taken through: one of the 1 + |ε| forwards is saved;
- the adversarial forwards are cut to a size the CPU handles best (`forward_chunk`): one
  forward of all ε copies of a 512-image batch (3,584 images) spent 1.3-2.3× as long per image
  in the convolutions as 512-image forwards did.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torchattacks
from torch import nn

from bench import defaults
from bench.attacks import (
    EpsilonResult,
    attack_mode,
    cat_or_empty,
    check_norm,
    iter_batches,
    l2_per_sample,
    linf_per_sample,
    logits_and_input_gradient,
)
from bench.transfer import to_device

# Images per adversarial forward on the CPU: as many as keep the model's largest activation
# within FORWARD_BYTES, clipped to [MIN_FORWARD, CPU_MAX_FORWARD]. Measured on one thread,
# on a loaded machine, so roughly: about 256 images per forward was fastest for both the
# tutorial LeNet at 28×28 and the small CNN at 8×8 (1024 was 5-20% slower); the ResNet-18 at
# 32×32 was fastest at 32-64. Off the CPU, MAX_FORWARD: a GPU wants the largest forward it can get.
FORWARD_BYTES = 8 * 2**20
MIN_FORWARD = 32
CPU_MAX_FORWARD = 256
MAX_FORWARD = 4096


def fgsm_sweep(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    epsilons: Sequence[float],
    batch_size: int | None = None,
    device: str | torch.device | None = None,
    *,
    norm: str = defaults.NORM,
    seed: int = 0,
    offset: int = 0,
    progress: bool = False,
) -> list[EpsilonResult]:
    """One `EpsilonResult` per ε. `batch_size=None` takes `x` in one batch; `device=None`
    means `x`'s device. L∞ only: torchattacks has no L2 FGSM. FGSM draws no random number,
    so `offset` (where `x` starts among the evaluated examples) changes nothing."""
    check_norm("fgsm", norm, ("linf",))
    eps = [float(e) for e in epsilons]
    batch_size = batch_size or max(1, len(y))
    device = x.device if device is None else device
    parts: list[list[tuple[torch.Tensor, ...]]] = [[] for _ in eps]  # (pred, L∞, L2) per batch
    with attack_mode(model, device):
        # Fresh objects per (model, ε), only to record exactly which attack the sweep equals.
        reprs = [repr(torchattacks.FGSM(model, eps=e)) for e in eps]
        chunk = forward_chunk(model, x[:1].to(device), device) if len(y) else 1
        for xb, yb in iter_batches(x, y, batch_size, device, progress, "fgsm"):
            for i, out in enumerate(fgsm_batch(model, xb, yb, eps, chunk)):
                parts[i].append(tuple(t.cpu() for t in out))
    results = []
    for i, e in enumerate(eps):
        pred, linf, l2 = (cat_or_empty([p[k] for p in parts[i]], dtype)
                          for k, dtype in enumerate((torch.long, x.dtype, x.dtype)))
        results.append(EpsilonResult(
            e, pred, linf, reprs[i], adv_correct=pred == y.cpu(), l2=l2,
            norm="linf", params={"attack": "fgsm", "norm": "linf", "epsilon": e,
                                 "seed": int(seed)}))
    return results


def fgsm_batch(model: nn.Module, xb: torch.Tensor, yb: torch.Tensor, eps: list[float],
               chunk: int) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """One batch of the sweep, left on its device: (predictions, L∞, L2) per ε. Nothing is
    read back to the host (the throughput fgsm workload times this), except at ε = 0
    (`batch_sweep`)."""
    logits, grad = logits_and_input_gradient(model, xb, yb)
    return batch_sweep(model, xb, logits, grad.sign(), eps, chunk)


def batch_sweep(model: nn.Module, xb: torch.Tensor, logits: torch.Tensor, step: torch.Tensor,
                eps: list[float], chunk: int) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """(predictions, L∞, L2) on one batch for every ε, with adversarial forwards of about
    `chunk` images: several ε copies of the batch in one forward when they fit, else pieces."""
    out: dict[int, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}
    todo = []
    for i, e in enumerate(eps):
        if e == 0:
            x_adv = torch.clamp(xb + e * step, min=0, max=1)
            if torch.equal(x_adv, xb):  # unchanged: the gradient's forward already predicted it
                out[i] = (logits.argmax(1), linf_per_sample(x_adv, xb), l2_per_sample(x_adv, xb))
                continue
        todo.append(i)
    per_forward = max(1, chunk // len(xb))
    piece = -(-len(xb) // -(-len(xb) // chunk))  # equal pieces of at most `chunk` images
    for first in range(0, len(todo), per_forward):
        group = todo[first:first + per_forward]
        eps_t = to_device(torch.tensor([eps[i] for i in group], dtype=xb.dtype), xb.device)
        eps_t = eps_t.view(-1, *[1] * xb.dim())
        pieces = [_adversarial_forward(model, xb[s:s + piece], step[s:s + piece], eps_t)
                  for s in range(0, len(xb), piece)]
        pred, linf, l2 = (torch.cat([p[k] for p in pieces], dim=1) for k in (0, 1, 2))
        for j, i in enumerate(group):
            out[i] = (pred[j], linf[j], l2[j])
    return [out[i] for i in range(len(eps))]


def _adversarial_forward(model: nn.Module, xs: torch.Tensor, step: torch.Tensor,
                         eps_t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Predictions, L∞ and L2, each (len(eps_t), len(xs)), at clamp(xs + ε·step, 0, 1)."""
    # Same two float ops as torchattacks: images + eps * sign, then clamp.
    x_adv = torch.clamp(xs.unsqueeze(0) + eps_t * step.unsqueeze(0), min=0, max=1)
    shape = x_adv.shape[:2]
    flat = x_adv.flatten(0, 1)
    with torch.inference_mode():
        pred = model(flat).argmax(1).view(shape)
    clean = xs.unsqueeze(0).expand_as(x_adv).flatten(0, 1)
    return pred, linf_per_sample(flat, clean).view(shape), l2_per_sample(flat, clean).view(shape)


def forward_chunk(model: nn.Module, example: torch.Tensor, device: str | torch.device) -> int:
    """Images per adversarial forward (see FORWARD_BYTES). `example` is one input image."""
    if torch.device(device).type != "cpu":
        return MAX_FORWARD
    largest = largest_activation_bytes(model, example)
    return int(min(CPU_MAX_FORWARD, max(MIN_FORWARD, FORWARD_BYTES // max(1, largest))))


def largest_activation_bytes(model: nn.Module, example: torch.Tensor) -> int:
    """Bytes of the largest tensor any module of `model` outputs, for the batch `example`."""
    sizes = [example.numel() * example.element_size()]

    def record(module, args, output):
        if isinstance(output, torch.Tensor):
            sizes.append(output.numel() * output.element_size())

    handles = [m.register_forward_hook(record) for m in model.modules()]
    try:
        with torch.inference_mode():
            model(example)
    finally:
        for handle in handles:
            handle.remove()
    return max(sizes) // max(1, len(example))
