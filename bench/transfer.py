"""Host-to-device copies that do not make the host wait.

A copy from ordinary (pageable) CPU memory to CUDA blocks the host until the device has
caught up with its queue: a host-device sync in the middle of a step. Through pinned memory
the copy is queued like a kernel and the step runs on; the values are the same. Elsewhere
(the CPU, other devices) this is a plain `.to(device)`.
"""

from __future__ import annotations

import torch


def to_device(t: torch.Tensor, device: str | torch.device) -> torch.Tensor:
    """`t` (on the CPU) on `device`, without a sync on CUDA."""
    if torch.device(device).type != "cuda":
        return t.to(device)
    return t.pin_memory().to(device, non_blocking=True)
