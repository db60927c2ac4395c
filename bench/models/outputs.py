"""Checks on what a user's model returns, before it is attacked."""

from __future__ import annotations

import torch

PROBABILITY_ATOL = 1e-4  # float32 softmax rows sum to 1 within ~1e-6


def probability_output_warning(outputs: torch.Tensor, name: str = "the model",
                               atol: float = PROBABILITY_ATOL) -> str | None:
    """The warning text when every row of a batch of outputs is a probability vector
    (entries in [0, 1], summing to 1), else None.

    Attacks take the outputs for logits. Cross-entropy (and the margin and DLR losses) on
    probabilities is a flattened loss: a softmax of values in [0, 1] moves little, so the
    loss varies by at most about 1 over all inputs, and its gradient vanishes where the
    model's softmax saturates (Carlini & Wagner 2017 attack logits for this reason). Attacks
    that only use the gradient's sign (FGSM, PGD in L∞) mostly keep their direction; those
    that use the loss's value or the gradient's size (APGD's step-size rule, FAB's
    linearisation) can come out weaker, overstating robustness. Log-probabilities
    (log_softmax, as the PyTorch MNIST and FGSM-tutorial nets return) are fine: cross-entropy
    on them equals cross-entropy on the logits.
    """
    out = outputs.detach().float()
    if out.dim() != 2 or out.shape[0] == 0 or out.shape[1] < 2:
        return None
    in_range = bool(((out >= -atol) & (out <= 1 + atol)).all())
    sums_to_one = bool(torch.allclose(out.sum(1), torch.ones_like(out[:, 0]), atol=atol))
    if not (in_range and sums_to_one):
        return None
    return (f"{name}: its outputs are probabilities (each row is in [0, 1] and sums to 1); "
            "attacks take them for logits, and their losses on probabilities are flattened and "
            "vanish where the softmax saturates, which can make attacks look weaker than they "
            "are. Return logits (drop the final softmax) or log-probabilities")
