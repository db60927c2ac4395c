import os

import pytest

# Tests run on the CPU with few threads: results must not depend on a GPU, and the
# 2-core CI machine should not be oversubscribed.
os.environ.setdefault("OMP_NUM_THREADS", "2")


@pytest.fixture
def results_dir(tmp_path):
    return tmp_path / "results"
