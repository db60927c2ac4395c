"""FGSM (Goodfellow et al. 2015) over a list of ε, sharing one input gradient per batch.

FGSM's step direction, sign(∇ₓ loss), does not depend on ε, so the sweep computes the
gradient once per batch and forms x_adv = clamp(x + ε·sign(g), 0, 1) for every ε. The
arithmetic is the one in torchattacks' `FGSM.forward` (CrossEntropyLoss with mean reduction,
model in eval mode, the same clamp), so for the same batches the adversarial images, and
hence the predictions, are bit-identical to calling `torchattacks.FGSM(model, eps)` once
per ε; tests/test_attacks.py checks exactly that.
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
    check_norm,
    input_gradient,
    is_eval_mode,
    iter_batches,
    l2_per_sample,
    linf_per_sample,
    zero_fraction,
)

# At most this many adversarial images per no-grad forward (the ε copies of a batch are
# concatenated into one forward, which is where most of the sweep's speed comes from).
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
    progress: bool = False,
) -> list[EpsilonResult]:
    """One `EpsilonResult` per ε. `batch_size=None` takes `x` in one batch; `device=None`
    means `x`'s device. L∞ only: torchattacks has no L2 FGSM."""
    check_norm("fgsm", norm, ("linf",))
    eps = [float(e) for e in epsilons]
    batch_size = batch_size or max(1, len(y))
    device = x.device if device is None else device
    preds: list[list[torch.Tensor]] = [[] for _ in eps]
    linfs: list[list[torch.Tensor]] = [[] for _ in eps]
    l2s: list[list[torch.Tensor]] = [[] for _ in eps]
    zeros = entries = 0
    with attack_mode(model, device):
        # Fresh objects per (model, ε), only to record exactly which attack the sweep equals.
        reprs = [repr(torchattacks.FGSM(model, eps=e)) for e in eps]
        eval_mode = is_eval_mode(model)
        per_forward = max(1, MAX_FORWARD // max(1, batch_size))
        for xb, yb in iter_batches(x, y, batch_size, device, progress, "fgsm"):
            grad = input_gradient(model, xb, yb)
            z, n = zero_fraction(grad)
            zeros, entries = zeros + z, entries + n
            step = grad.sign()
            for first in range(0, len(eps), per_forward):
                chunk = eps[first:first + per_forward]
                eps_t = torch.tensor(chunk, dtype=xb.dtype, device=device).view(-1, *[1] * xb.dim())
                # Same two float ops as torchattacks: images + eps * sign, then clamp.
                x_adv = torch.clamp(xb.unsqueeze(0) + eps_t * step.unsqueeze(0), min=0, max=1)
                with torch.inference_mode():
                    pred = model(x_adv.flatten(0, 1)).argmax(1).view(len(chunk), len(yb))
                for i in range(len(chunk)):
                    preds[first + i].append(pred[i].cpu())
                    linfs[first + i].append(linf_per_sample(x_adv[i], xb).cpu())
                    l2s[first + i].append(l2_per_sample(x_adv[i], xb).cpu())
    zero_frac = zeros / entries if entries else float("nan")
    results = []
    for i, e in enumerate(eps):
        pred = _cat(preds[i], torch.long)
        results.append(EpsilonResult(
            e, pred, _cat(linfs[i], x.dtype), zero_frac, reprs[i], eval_mode,
            adv_correct=pred == y.cpu(), l2=_cat(l2s[i], x.dtype), norm="linf",
            params={"attack": "fgsm", "norm": "linf", "epsilon": e, "seed": int(seed)}))
    return results


def _cat(parts: list[torch.Tensor], dtype: torch.dtype) -> torch.Tensor:
    return torch.cat(parts) if parts else torch.zeros(0, dtype=dtype)
