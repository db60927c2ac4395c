"""`[suite] deterministic = true`: every cell of the run on deterministic kernels.

- `torch.use_deterministic_algorithms(True)`: each op runs a deterministic implementation or
  raises, naming itself (the cell then fails with that reason: the suite asked for
  reproducible results, and a silently non-deterministic op would break the promise);
- cuDNN held to its deterministic algorithms, its autotuner off (it may pick other kernels
  from one run to the next);
- `CUBLAS_WORKSPACE_CONFIG=:4096:8` when unset: what cuBLAS needs for deterministic results
  on CUDA >= 10.2, and what torch checks for under the first switch.

`execute_cell` wraps each cell in `deterministic_mode(env.deterministic)`; torch's settings are
put back after the cell. The variable stays set: cuBLAS sizes its workspace once per process,
and a fixed workspace changes no result. With the switch off nothing is touched.

On the CPU it changes no result bench computes (its CPU kernels are deterministic already; a
few ops that are not, e.g. `Tensor.put_` without accumulation, then raise). On CUDA the
kernels it excludes (atomics in convolution and scatter backward passes) round differently,
so a result may differ in its last bits from a run without it, as a run on other hardware
does: the switch is recorded in the manifest, not in cell identity.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator

CUBLAS_WORKSPACE_ENV = "CUBLAS_WORKSPACE_CONFIG"
CUBLAS_WORKSPACE_VALUE = ":4096:8"


@contextmanager
def deterministic_mode(enabled: bool) -> Iterator[None]:
    """Deterministic kernels inside the block when `enabled`; torch's settings restored after."""
    if not enabled:
        yield
        return
    import torch

    os.environ.setdefault(CUBLAS_WORKSPACE_ENV, CUBLAS_WORKSPACE_VALUE)
    cudnn = torch.backends.cudnn
    previous = (torch.are_deterministic_algorithms_enabled(),
                torch.is_deterministic_algorithms_warn_only_enabled(),
                cudnn.deterministic, cudnn.benchmark)
    torch.use_deterministic_algorithms(True)
    cudnn.deterministic, cudnn.benchmark = True, False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous[0], warn_only=previous[1])
        cudnn.deterministic, cudnn.benchmark = previous[2], previous[3]
