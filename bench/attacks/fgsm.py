"""FGSM (Goodfellow et al. 2015) over a list of ε, sharing one input gradient per batch.

FGSM's step direction, sign(∇ₓ loss), does not depend on ε, so the sweep computes the
gradient once per batch and forms x_adv = clamp(x + ε·sign(g), 0, 1) for every ε. The
arithmetic is the one in torchattacks' `FGSM.forward` (CrossEntropyLoss with mean reduction,
model in eval mode, the same clamp), so for the same batches the adversarial images, and
hence the predictions, are bit-identical to calling `torchattacks.FGSM(model, eps)` once
per ε; tests/test_attacks.py checks exactly that. The per-sample L∞ and L2 sizes are measured
on the images attacked (x_adv − x), not derived from ε, so the cell's size check can fail:
bit-identical to `linf_per_sample` and `l2_per_sample`, where the clamp bites and where not.

Where the time goes (torch.profiler, benchmarks/fgsm_sweep.py): almost all of it is in the
model's convolutions and pooling, forward and backward; the step, clamp and norms are a few
per cent. What makes the sweep cheaper than the plain shared-gradient loop:

- the gradient pass's forward gives the clean predictions (`EpsilonResult.clean_pred`, what
  `predict` gives: tests/test_attacks.py), so a cell needs no clean pass of its own;
- at ε = 0, FGSM returns the batch unchanged (checked, not assumed), so its predictions are
  those of that same forward: one of the 1 + |ε| forwards is saved;
- the adversarial forwards are cut to a size the CPU handles best (`forward_chunk`): one
  forward of all ε copies of a 512-image batch (3,584 images) spent 1.3-2.3× as long per image
  in the convolutions as 512-image forwards did;
- every elementwise step runs once per piece of the batch for all ε at once (`piece_sweep`:
  the ε copies, their clamp, their L∞ and L2 norms, the argmax), not once per ε: on 2 threads
  each op costs a fork and a join, several milliseconds on a loaded machine.
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
    logits_and_input_gradient,
)
from bench.transfer import to_device

# Images per adversarial forward on the CPU, per torch thread: as many as keep the model's
# largest activation within FORWARD_BYTES, clipped to [MIN_FORWARD, CPU_MAX_FORWARD]. Measured
# on one thread, on a loaded machine, so roughly: about 256 images per forward was fastest for
# both the tutorial LeNet at 28×28 and the small CNN at 8×8 (1024 was 5-20% slower); the
# ResNet-18 at 32×32 was fastest at 32-64. With n threads a forward holds n times as many, so
# that each thread's share of it stays the size one thread handled best (on 2 threads the
# convolutions and pooling split the batch between them); on 2 threads of a loaded machine,
# sweeps of the LeNet with 512-image forwards took 0.74× (wall) and 0.79× (CPU time) as long as
# with 256-image ones (medians of 8 alternating rounds): half the ops, each of which waits for
# both threads. Off the CPU, MAX_FORWARD: a GPU wants the largest forward it can get.
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
    """One `EpsilonResult` per ε, each with the clean predictions of the gradient pass
    (`clean_pred`). `batch_size=None` takes `x` in one batch; `device=None` means `x`'s
    device. L∞ only: torchattacks has no L2 FGSM. FGSM draws no random number, so `offset`
    (where `x` starts among the evaluated examples) changes nothing."""
    check_norm("fgsm", norm, ("linf",))
    eps = [float(e) for e in epsilons]
    batch_size = batch_size or max(1, len(y))
    device = x.device if device is None else device
    parts: list[list[tuple[torch.Tensor, ...]]] = [[] for _ in eps]  # (pred, L∞, L2) per batch
    clean = []
    with attack_mode(model, device):
        # Fresh objects per (model, ε), only to record exactly which attack the sweep equals.
        reprs = [repr(torchattacks.FGSM(model, eps=e)) for e in eps]
        chunk = forward_chunk(model, x[:1].to(device), device) if len(y) else 1
        for xb, yb in iter_batches(x, y, batch_size, device, progress, "fgsm"):
            logits, grad = logits_and_input_gradient(model, xb, yb)
            clean.append(logits.argmax(1))
            for i, out in enumerate(batch_sweep(model, xb, clean[-1], grad.sign(), eps, chunk)):
                parts[i].append(tuple(t.cpu() for t in out))
    clean_pred = cat_or_empty([c.cpu() for c in clean], torch.long)
    results = []
    for i, e in enumerate(eps):
        pred, linf, l2 = (cat_or_empty([p[k] for p in parts[i]], dtype)
                          for k, dtype in enumerate((torch.long, x.dtype, x.dtype)))
        results.append(EpsilonResult(
            e, pred, linf, reprs[i], adv_correct=pred == y.cpu(), l2=l2,
            norm="linf", params={"attack": "fgsm", "norm": "linf", "epsilon": e,
                                 "seed": int(seed)}, clean_pred=clean_pred))
    return results


def fgsm_batch(model: nn.Module, xb: torch.Tensor, yb: torch.Tensor, eps: list[float],
               chunk: int) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """One batch of the sweep, left on its device: (predictions, L∞, L2) per ε. Nothing is
    read back to the host (the throughput fgsm workload times this), except at ε = 0
    (`piece_sweep` checks that the batch is unchanged)."""
    logits, grad = logits_and_input_gradient(model, xb, yb)
    return batch_sweep(model, xb, logits.argmax(1), grad.sign(), eps, chunk)


def batch_sweep(model: nn.Module, xb: torch.Tensor, clean: torch.Tensor, step: torch.Tensor,
                eps: list[float], chunk: int) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """(predictions, L∞, L2) on one batch for every ε, given the clean predictions and the
    step sign(∇ₓ loss): the batch is cut into equal pieces of at most `chunk` images, and the
    adversarial forwards hold about `chunk` images (several ε copies of a small batch)."""
    piece = -(-len(xb) // -(-len(xb) // chunk))
    per_forward = max(1, chunk // len(xb))
    # Through pinned memory: no host-device sync inside a timed step (bench.transfer).
    eps_t = to_device(torch.tensor(eps, dtype=xb.dtype), xb.device).view(-1, *[1] * xb.dim())
    outs = [piece_sweep(model, xb[s:s + piece], clean[s:s + piece], step[s:s + piece], eps_t,
                        eps, per_forward) for s in range(0, len(xb), piece)]
    pred, linf, l2 = (torch.cat([o[k] for o in outs], dim=1) for k in (0, 1, 2))
    return [(pred[i], linf[i], l2[i]) for i in range(len(eps))]


def piece_sweep(model: nn.Module, xs: torch.Tensor, clean: torch.Tensor, step: torch.Tensor,
                eps_t: torch.Tensor, eps: list[float], per_forward: int
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Predictions, L∞ and L2, each (len(eps), len(xs)), at clamp(xs + ε·step, 0, 1);
    `eps_t` holds `eps` on the batch's device, shaped to broadcast.

    Each step is one op over every ε at once: on 2 threads each op costs a fork and a join."""
    # torchattacks' two float ops, images + eps * sign then clamp: eps·sign is exactly ±ε or
    # 0, so addcmul rounds once, as the add does.
    x_adv = torch.addcmul(xs, eps_t, step).clamp_(min=0, max=1)
    # The norms measured on the images attacked, not derived from ε, so that a check of them
    # can fail: the same arithmetic as linf_per_sample and l2_per_sample, every ε at once.
    # (vector_norm's ord=inf is not vectorised on the CPU: abs_ then amax is 6× faster.)
    delta = (x_adv - xs).flatten(2)
    l2 = torch.linalg.vector_norm(delta, ord=2, dim=2)
    linf = delta.abs_().amax(2)
    pred = torch.empty(linf.shape, dtype=torch.long, device=xs.device)
    todo = []
    for i, e in enumerate(eps):  # the host's copy: reading eps_t back would sync
        if e == 0 and torch.equal(x_adv[i], xs):  # unchanged: the clean forward predicted it
            pred[i] = clean
        else:
            todo.append(i)
    if todo:
        logits = []
        with torch.inference_mode():
            for first in range(0, len(todo), per_forward):
                group = todo[first:first + per_forward]
                logits.append(model(_rows(x_adv, group).flatten(0, 1)))
        pred[todo] = torch.cat(logits).argmax(1).view(len(todo), len(xs))
    return pred, linf, l2


def _rows(t: torch.Tensor, index: list[int]) -> torch.Tensor:
    """t[index]: a view when the indices are consecutive (no copy), else a gather."""
    if index == list(range(index[0], index[-1] + 1)):
        return t[index[0]:index[-1] + 1]
    return t[index]


def forward_chunk(model: nn.Module, example: torch.Tensor, device: str | torch.device,
                  threads: int | None = None) -> int:
    """Images per adversarial forward (see FORWARD_BYTES). `example` is one input image;
    `threads` the torch threads the forwards run on (None: torch's current count)."""
    if torch.device(device).type != "cpu":
        return MAX_FORWARD
    threads = torch.get_num_threads() if threads is None else threads
    largest = largest_activation_bytes(model, example)
    per_thread = min(CPU_MAX_FORWARD, max(MIN_FORWARD, FORWARD_BYTES // max(1, largest)))
    return int(per_thread * max(1, threads))


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
