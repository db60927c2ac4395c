"""The step functions that throughput times, built with their inputs already on the device.

Workload -> one step:

- inference:  a forward pass in eval mode under `torch.inference_mode`.
- train-step: forward, cross-entropy, backward and optimiser step in train mode (the optimiser of
  the model's train recipe), as `bench.training.loop` does per batch.
- fgsm:       the shared-gradient FGSM sweep's batch (`bench.attacks.fgsm.fgsm_batch`), one ε,
              its results left on the device (the sweep copies them to the host per batch).
- pgd:        `bench.attacks.pgd` with `pgd_steps` steps on one batch (a fresh seed per step).
- gan-step:   one discriminator and one generator update of the GAN's training API (the
              losses left on the device; the training loop reads them).
- gan-sample: a generator forward pass in eval mode under `torch.inference_mode`.

Every workload processes `batch_size` images per step (gan-step: `batch_size` real images
through D plus `batch_size` generated for G), which is what images/s counts.

No step reads a value back to the host: on CUDA a read (`.item()`, a copy to the CPU, a copy
from pageable CPU memory) makes the host wait for the device, and the timed region would
measure the round trip instead of the device's steady state (tests/test_host_sync.py, and
tests/test_cuda.py on a GPU). The exceptions are fp16 steps with loss scaling, where
torch's GradScaler reads its inf check once per optimiser step, as a real fp16 loop does.

Precision: "fp32" runs as is; "bf16"/"fp16" run under `torch.autocast` (the GAN's own fp16
AMP with gradient scaling on CUDA). `precision_unsupported` says when a precision cannot run
here, so the cell records a skipped row instead of silently timing something else (CPU
autocast disables itself with only a warning for dtypes it does not support).
"""

from __future__ import annotations

import contextlib
import itertools
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from bench import defaults

CLASSIFIER_WORKLOADS = ("inference", "train-step", "fgsm", "pgd")
GAN_WORKLOADS = ("gan-step", "gan-sample")
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass
class Workload:
    step: Callable[[], object]  # one step, timed
    eager_step: Callable[[], object]  # the same step without torch.compile, for FLOP counting
    images_per_step: int


def precision_unsupported(device: str | torch.device, precision: str,
                          capability: tuple[int, int] | None = None) -> str | None:
    """Why `precision` cannot run on `device`, or None when it can.

    `capability` is the CUDA compute capability (looked up when None). bf16 needs Ampere (8.0)
    or newer on CUDA; fp16 on the CPU is not offered (no fp16 arithmetic path worth timing).
    """
    dev = torch.device(device)
    if precision not in DTYPES:
        return f"unknown precision {precision!r}"
    if precision == "fp32":
        return None
    if dev.type == "cpu":
        if precision == "fp16":
            return "fp16 is not supported on CPU (CPU autocast has no fast fp16 path); use bf16"
        return None
    if dev.type == "cuda":
        if capability is None:
            capability = torch.cuda.get_device_capability(dev)
        major, minor = capability
        if precision == "bf16" and major < 8:
            return (f"bf16 needs an Ampere or newer GPU (compute capability >= 8.0); this one is "
                    f"{major}.{minor}")
        return None
    return None


def autocast_for(device: str | torch.device, precision: str):
    """A context manager running the step in `precision` (a no-op for fp32)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=DTYPES[precision])


def to_channels_last(module: nn.Module, *tensors: torch.Tensor):
    """The module and the 4-d tensors in channels_last memory format (others unchanged)."""
    module.to(memory_format=torch.channels_last)
    return [t.contiguous(memory_format=torch.channels_last) if t.dim() == 4 else t for t in tensors]


def compile_module(module: nn.Module) -> nn.Module:
    """torch.compile is lazy: compilation errors surface on the first call (the warm-up)."""
    return torch.compile(module)


# -- classifier workloads ---------------------------------------------------------------------


def classifier_workload(
    workload: str,
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    device: str | torch.device,
    precision: str = "fp32",
    compiled: bool = False,
    optimizer: torch.optim.Optimizer | None = None,
    epsilon: float = defaults.THROUGHPUT_EPSILON,
    pgd_steps: int = defaults.PGD_STEPS,
    seed: int = 0,
) -> Workload:
    """`model`, `x`, `y` must already be on `device` (and in the wanted memory format)."""
    if workload not in CLASSIFIER_WORKLOADS:
        raise ValueError(f"unknown classifier workload {workload!r}")
    net = compile_module(model) if compiled else model
    if workload == "train-step":
        model.train()
        opt = optimizer if optimizer is not None else _default_optimizer(model)
        scaler = _grad_scaler(device, precision)

        def make(m):
            return lambda: train_step(m, x, y, opt, device=device, precision=precision,
                                      scaler=scaler)
    else:
        model.eval()
        if workload == "inference":
            def make(m):
                return lambda: inference_step(m, x, device=device, precision=precision)
        elif workload == "fgsm":
            from bench.attacks.fgsm import forward_chunk

            chunk = forward_chunk(model, x[:1], device)

            def make(m):
                return lambda: fgsm_step(m, x, y, epsilon, chunk, device=device,
                                         precision=precision)
        else:
            seeds = itertools.count(seed)  # drawn on the host: no read-back in the step

            def make(m):
                return lambda: pgd_step(m, x, y, epsilon, pgd_steps, next(seeds), device=device,
                                        precision=precision)
    return Workload(make(net), make(model), images_per_step=int(x.shape[0]))


def _default_optimizer(model: nn.Module) -> torch.optim.Optimizer:
    """The optimiser of a default train recipe (Adam, lr 1e-3), from the one builder."""
    from bench.suite.schema import TrainConfig
    from bench.training.optim import make_optimizer

    return make_optimizer(model.parameters(), TrainConfig())


def inference_step(model: nn.Module, x: torch.Tensor, *, device, precision: str) -> torch.Tensor:
    with torch.inference_mode(), autocast_for(device, precision):
        return model(x)


def train_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor, optimizer: torch.optim.Optimizer,
               *, device, precision: str,
               scaler: torch.amp.GradScaler | None = None) -> torch.Tensor:
    """One optimiser step, the same operations as `bench.training.loop` per batch."""
    with autocast_for(device, precision):
        loss = F.cross_entropy(model(x), y)
    optimizer.zero_grad(set_to_none=True)
    if scaler is not None:
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
    else:
        loss.backward()
        optimizer.step()
    return loss.detach()


def fgsm_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor, epsilon: float, chunk: int,
              *, device, precision: str):
    from bench.attacks.fgsm import fgsm_batch

    with autocast_for(device, precision):
        return fgsm_batch(model, x, y, [epsilon], chunk)


def pgd_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor, epsilon: float, steps: int,
             seed: int, *, device, precision: str):
    from bench.attacks.pgd import pgd_attack

    with autocast_for(device, precision):
        return pgd_attack(model, x, y, epsilon, steps=steps, seed=seed)


def _grad_scaler(device, precision: str) -> torch.amp.GradScaler | None:
    # fp16 gradients underflow without loss scaling; a real fp16 loop scales, so the step does too.
    if precision == "fp16" and torch.device(device).type == "cuda":
        return torch.amp.GradScaler("cuda")
    return None


# -- GAN workloads ----------------------------------------------------------------------------


def gan_workload(workload: str, gan, real: torch.Tensor, *, device, precision: str = "fp32",
                 compiled: bool = False, seed: int = 0) -> Workload:
    """`gan` is a `bench.gans.base.GAN` already moved to `device` (with amp for CUDA fp16);
    `real` is a batch in [-1, 1] on `device`."""
    if workload not in GAN_WORKLOADS:
        raise ValueError(f"unknown GAN workload {workload!r}")
    batch_size = int(real.shape[0])
    # The GAN's own AMP handles CUDA fp16; any other reduced precision runs under autocast.
    outer = contextlib.nullcontext if gan.amp else (lambda: autocast_for(device, precision))
    eager = {"generator": gan.generator, "discriminator": gan.discriminator}
    nets = eager
    if compiled:
        nets = {k: compile_module(v) for k, v in eager.items()}
    if workload == "gan-step":
        gen = torch.Generator().manual_seed(seed)

        def make(modules):
            def step():
                with _swapped(gan, modules), outer():
                    gan.d_update(real, gen)
                    return gan.g_update(batch_size, gen)
            return step
    else:
        gan.generator.eval()
        noise_gen = torch.Generator().manual_seed(seed)
        z = torch.randn(batch_size, gan.z_dim, generator=noise_gen).to(device)

        def make(modules):
            g = modules["generator"]

            def step():
                with torch.inference_mode(), outer():
                    return g(z)
            return step
    return Workload(make(nets), make(eager), images_per_step=batch_size)


@contextlib.contextmanager
def _swapped(gan, modules: dict[str, nn.Module]):
    """Run the GAN's training API with `modules` (e.g. compiled wrappers of its own nets)."""
    old = {k: getattr(gan, k) for k in modules}
    for k, v in modules.items():
        setattr(gan, k, v)
    try:
        yield
    finally:
        for k, v in old.items():
            setattr(gan, k, v)
