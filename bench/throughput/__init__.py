"""Throughput measured the way performance engineers trust it.

- `timing`: warm-up, then every repeat timed (CUDA events on CUDA, `time.perf_counter` elsewhere),
  summarised as median and interquartile range.
- `flops`: work per step from `torch.utils.flop_counter.FlopCounterMode`.
- `peaks`: the peak that achieved FLOP/s is compared with (a table of GPU peaks; on CPU a fp32
  matmul peak measured in this process).
- `memory`: peak memory of the measured region (CUDA allocator peak, or peak RSS on CPU).
- `workloads`: the step functions being timed (inference, train-step, fgsm, pgd, gan-step,
  gan-sample), with inputs already on the device.
"""
