import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

# One torch thread, as every CPU cell runs by default ([suite] threads = 1): the same numbers
# as a run, and the tiny test models only lose time to thread synchronisation on 2 cores.
torch.set_num_threads(1)

