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

DIGITS_TEST_FRACTION = 0.25
TRAIN_EPOCHS = 10
TRAIN_LR = 1e-3
TRAIN_BATCH_SIZE = 64
PGD_TRAIN_STEPS = 7
EVAL_BATCH_SIZE = 512
PGD_STEPS = 10

GAN_STEPS = 2000
GAN_BATCH_SIZE = 64
GAN_EVAL_EVERY = 500
GAN_NUM_SAMPLES = 2000
GAN_METRICS = ["fid", "kid", "isc", "prc"]

THROUGHPUT_WARMUP = 10
THROUGHPUT_EPSILON = 8 / 255  # for the attack workloads (fgsm, pgd)
THROUGHPUT_REPEATS = 30
THROUGHPUT_BATCH_SIZES = [64]

# [[robustness]] attack settings (bench/suite/attack_options.py says which attack takes which).
NORM = "linf"
RESTARTS = 1
PGD_LOSS = "ce"
AUTOATTACK_VERSION = "standard"
SQUARE_QUERIES = 5000  # AutoAttack's own budget for its Square stage
# Examples whose clean input gradient is checked for exact zeros (the masking hint) by every
# sweep but FGSM's, which has every example's gradient anyway.
ZERO_GRAD_SAMPLE = 128
# The binomial interval over examples given beside every accuracy (scipy's binomtest).
BINOMIAL_CI_METHOD = "wilson"
BINOMIAL_CI_LEVEL = 0.95
