import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

from tests.helpers.browser import find_chromium  # noqa: E402

# One torch thread, as every CPU cell runs by default ([suite] threads = 1): the same numbers
# as a run, and the tiny test models only lose time to thread synchronisation on 2 cores.
torch.set_num_threads(1)


# Hypothesis profiles (tests/test_suite_fuzz.py). `fast`, the default run: a bounded number of
# examples from a fixed seed, so every run tries the same inputs. `slow`: thousands of fresh
# examples, saved in .hypothesis/ when one fails. Pick one with `--hypothesis-profile=slow`
# or HYPOTHESIS_PROFILE=slow (tox -e slow does).
from hypothesis import HealthCheck, settings  # noqa: E402

_FUZZ = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                   HealthCheck.filter_too_much])
settings.register_profile("fast", max_examples=150, derandomize=True, **_FUZZ)
settings.register_profile("slow", max_examples=2500, **_FUZZ)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "fast"))


@pytest.fixture(scope="session")
def digits_mlp():
    """(model, x_test, y_test): a tiny MLP trained on the digits, shared by the attack tests."""
    from tests.helpers.models import train_digits_mlp

    return train_digits_mlp()


@pytest.fixture(scope="session")
def digits_extractor(tmp_path_factory):
    """bench's domain extractor for the digits, quickly trained once per session and saved as
    the extractor cell saves it (bench.metrics.fidelity.Extractor), for the FID tests."""
    from tests.helpers.fid import quick_domain_extractor

    return quick_domain_extractor(tmp_path_factory.mktemp("digits-extractor"))


@pytest.fixture(scope="session")
def chromium() -> str:
    """Headless Chromium for the browser tests; without it they skip, saying why."""
    path = find_chromium()
    if path is None:
        pytest.skip("chromium not found: install Debian's chromium package "
                    "(apt-get update && apt-get install -y chromium)")
    return path
