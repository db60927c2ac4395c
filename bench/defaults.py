"""Defaults in one place, shared by the suite schema, the API and the CLI."""

from pathlib import Path

RESULTS_DIR = Path("results")  # relative to the working directory, like every CLI path
CACHE_SUBDIR = ".cache"  # under the results dir: trained weights, FID statistics
SEEDS = [0]
DEVICE = "auto"
# torch threads per CPU cell. 1 keeps CPU numbers identical across machines and executors
# (kernels round differently with other thread counts) and lets Ray run cells side by side.
THREADS = 1
# Cells the local executor runs at once, each in its own worker process: "auto" is
# cores // threads on the CPU (so every core is busy and each cell keeps its thread count),
# and 1 on a CUDA device (cells would share the one GPU). 1 runs cells in-process, one by one.
WORKERS = "auto"
RAY_NUM_GPUS = 1.0
RAY_MAX_RETRIES = 3
# Seconds a Ray task may wait to be scheduled while the cluster should have room for it
# (lost node, resources taken by another job); then its cell fails with that reason.
RAY_SCHEDULE_TIMEOUT = 300.0
EXECUTOR = "local"
# Deterministic kernels for every cell (bench/executors/deterministic.py): off by default, as
# in torch, because some CUDA kernels it excludes are faster and a few ops have none.
DETERMINISTIC = False

DIGITS_TEST_FRACTION = 0.25
TRAIN_EPOCHS = 10
TRAIN_LR = 1e-3
TRAIN_BATCH_SIZE = 64
PGD_TRAIN_STEPS = 7
EVAL_BATCH_SIZE = 512
PGD_STEPS = 10

# SGD settings when a suite picks optimizer = "sgd" for an arch without its own (below).
SGD_MOMENTUM = 0.9
SGD_NESTEROV = True

# Recipe defaults of a built-in arch, for the `train` keys a suite leaves unset (applied by
# bench.suite.schema when the suite loads, so plans and manifests show the values used).
# ResNet-18 trains with the standard CIFAR-10 recipe of Madry et al. 2018 and Wong et al. 2020:
# SGD with plain momentum 0.9 and weight decay 5e-4 at a peak learning rate of 0.1 (bench's
# one-cycle schedule, bench.training.optim), and, on CIFAR-10 only, random crops (zero
# padding 4, cropped back to 32×32) and horizontal flips. Flips are wrong for digits, so no
# other dataset gets augmentation unless its suite asks.
ARCH_OPTIMIZER = {"resnet18": "sgd"}
ARCH_OPTIMIZER_SETTINGS = {  # (arch, optimizer) -> settings
    ("resnet18", "sgd"): {"lr": 0.1, "momentum": 0.9, "nesterov": False, "weight_decay": 5e-4},
}
ARCH_AUGMENTATION = {  # (arch, dataset kind) -> settings
    ("resnet18", "cifar10"): {"crop_padding": 4, "flip": True},
}

# Step sizes of the L∞ attacks, in pixel units.
FGSM_RS_ALPHA_FACTOR = 1.25  # FGSM-RS training: α = 1.25·ε (Wong et al. 2020, their best value)
PGD_TRAIN_ALPHA_FACTOR = 0.25  # PGD training: α = ε/4 (Madry et al.: 2/255 at ε = 8/255, 7 steps)
PGD_EVAL_ALPHA_SPAN = 2.5  # PGD evaluation: α = 2.5·ε/steps, enough to cross the ball


def pgd_train_alpha(epsilon: float) -> float:
    """PGD adversarial training's default step (Madry et al.'s CIFAR-10 setting, ε/4).

    With fewer than about 4 steps the walk cannot reach the ball's faces from its centre:
    set `alpha` for short walks."""
    return PGD_TRAIN_ALPHA_FACTOR * epsilon


def pgd_eval_alpha(epsilon: float, steps: int) -> float:
    """PGD evaluation's default step, 2.5·ε/steps: the walk can cross the ball and reach its
    corners whatever the step count."""
    return PGD_EVAL_ALPHA_SPAN * epsilon / steps


# Which epoch's weights adversarial training keeps, by recipe: "best-pgd" is the epoch with the
# best held-out PGD accuracy (Wong et al. 2020's early stopping, as Rice et al. 2020 frame it).
KEEP_BY_RECIPE = {"standard": "last", "fgsm-rs": "best-pgd", "pgd": "last"}

GAN_STEPS = 2000
GAN_BATCH_SIZE = 64
GAN_EVAL_EVERY = 500
GAN_NUM_SAMPLES = 2000
GAN_METRICS = ["fid", "kid", "isc", "prc"]
GAN_Z_DIM = 64
# Divergence by FID: a cell fails once this many evaluations in a row score above
# GAN_DIVERGENCE_RISE × the best FID before them (suite key `divergence_patience`; 0: off).
GAN_DIVERGENCE_PATIENCE = 3
GAN_DIVERGENCE_RISE = 2.0

THROUGHPUT_WARMUP = 10
THROUGHPUT_EPSILON = 8 / 255  # for the attack workloads (fgsm, pgd)
THROUGHPUT_REPEATS = 30
THROUGHPUT_BATCH_SIZES = [64]

# [[robustness]] attack settings (bench/suite/attack_options.py says which attack takes which).
NORM = "linf"
RESTARTS = 1
PGD_LOSS = "ce"
AUTOATTACK_VERSION = "standard"
ROBUSTBENCH_MODEL_DIR = "models"  # [models.X] model_dir: RobustBench's own default folder
SQUARE_QUERIES = 5000  # AutoAttack's own budget for its Square stage
# The binomial interval over examples given beside every accuracy (scipy's binomtest).
BINOMIAL_CI_METHOD = "wilson"
BINOMIAL_CI_LEVEL = 0.95

# Evaluation sanity checks (bench/checks).
# A paired check (McNemar, one-sided) fires when its p-value is below this. A run holds many
# checks (every ε, model and seed), so it is stricter than the usual 0.05.
CHECK_ALPHA = 0.01
# Argmax flips excused as kernel rounding (cuDNN and oneDNN pick kernels by batch shape)
# when the same inputs should give the same predictions: this share of the examples, and
# at least one.
KERNEL_FLIP_SHARE = 0.001
# Examples the model-level checks (determinism, gradient saturation, unbounded ε) look at:
# the first ones of the evaluated subset.
CHECK_SAMPLE = 256
# Above this share of examples with an exactly-zero input gradient, gradient attacks leave
# too many examples untested.
SATURATION_MAX_SHARE = 0.05
# PGD at an unbounded ε must leave at most this share of the examples correct.
UNBOUNDED_MAX_ACC = 0.02
# The stronger PGD of the convergence check: this many times the steps and the restarts,
# on this many examples.
CONVERGENCE_FACTOR = 5
CONVERGENCE_SAMPLE = 256

# FID and its checks (bench/metrics/fidelity.py, bench/checks/fid*.py, memorisation.py).
FID_BATCH_SIZE = 256  # images per extractor forward, and per sampler call in bench.api.fid
# Samples the FID checks look at (the first ones): the batch-size check extracts them again,
# the memorisation check searches their nearest reference image (and measures the reference's
# own spacing on as many reference images). Bounded so that the checks cost a fixed amount
# (for Inception on 50,000 samples, 2% more extraction), not a second evaluation.
FID_CHECK_SAMPLES = 1000
# The same samples' FID at two batch sizes may differ by max(RTOL × FID, ATOL): 0.1% of the
# FID is below the last digit anyone reports (FIDs are quoted to 3 significant digits), and
# ATOL covers FIDs near 0. Measured (benchmarks/fid_checks_calibration.py batch), float32 on
# a CPU: the domain extractor's two FIDs agree to ~1e-9 relative, often exactly; Inception's
# (random weights, 3×32×32) to ~1e-8; torch-fidelity #43 saw 5× on a GPU at batch 2.
FID_BATCH_RTOL = 1e-3
FID_BATCH_ATOL = 1e-3
# Memorisation (bench/checks/memorisation.py): a generated sample nearer to a reference image
# than FID_COPY_RATIO × the real data's spacing is a near-copy; the check fails when
# near-copies exceed the reference's own near-copy share by FID_COPY_SHARE. Measured on the
# digits under the domain extractor (benchmarks/fid_checks_calibration.py copies, gan):
# held-out real images sit at a median 1.05 spacings from the train split, 0.2% of them
# below a third (at most 2.2% against a reference of only 16 images); training images with
# pixel noise of σ = 0.01 (2.5 grey levels) at 0.11, σ = 0.03 at 0.32; a DCGAN trained on
# 8 digits has 26% of its samples below a third after 300 steps, 45% after 600. A third
# keeps real data well clear while catching copies up to visible noise; 5% more than the
# data's own duplicates is above held-out real images even against 16 reference images.
FID_COPY_RATIO = 1 / 3
FID_COPY_SHARE = 0.05
