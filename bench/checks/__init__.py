"""Evaluation sanity checks that can fail (Carlini et al. 2019, "On evaluating adversarial
robustness"), each as a pure function with a test that builds a model made to trip it.

- `verdict`: the row every check produces, and what each check catches (for the report).
- `paired`: McNemar's exact test on the examples two evaluations share.
- Model-level checks, run where the model is (the robustness cell, through `model`):
  `determinism` (same inputs, same predictions, whatever the batch around them),
  `saturation` (examples whose input gradient is exactly zero),
  `unbounded` (PGD at an ε that reaches every image must break nearly everything),
  `convergence` (PGD with 5× the steps and restarts must not do better beyond chance).
- Table-level checks over per-example correctness (bench.store.correctness), run where
  every cell's rows are (bench.analysis): `table` (accuracy not rising with ε, PGD not weaker
  than FGSM, ε = 0 equal to clean, gradient-free attacks not beating gradient ones), and
  over the robustness rows: `rows` (perturbations inside their ε-ball, logit outputs).
- FID checks, run where the generated samples and their features are (the GAN cell on its
  final samples, bench.api.fid on the samples it scores), through `fid`: `fid_batch`
  (the same samples' FID at two batch sizes), `fid_count` (FID and its real-data floor at
  one sample count), `memorisation` (near-copies of reference images).
"""
