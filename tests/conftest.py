import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
# Threads that wait sleep instead of spinning: a test on 2 torch threads shares the 2 cores
# with the other pytest-xdist worker, and spinning OpenMP threads made such tests 3-5x slower.
# (Read when torch loads its OpenMP runtime, so before the import below.)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest  # noqa: E402
import torch  # noqa: E402

from bench.executors.local import usable_cores as MACHINE_CORES  # noqa: E402
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


@pytest.fixture(scope="session", autouse=True)
def _one_worker_by_default():
    """`bench run` in the test process defaults ("auto": cores // threads) to one worker, so
    its cells run one by one in this process, as on a one-core machine: on 2 cores every such
    run (fixtures' included) would start 2 worker processes, seconds of imports each, beside
    the other pytest-xdist worker. Tests of the parallel executor ask for their workers
    explicitly (tests/test_parallel.py, tests/test_signals.py: the same tables either way); a
    test marked `all_cores` sees the machine's cores; `python -m bench run` subprocesses are
    untouched."""
    import bench.executors.local as local

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(local, "usable_cores", lambda: 1)
        yield


@pytest.fixture(autouse=True)
def _all_cores_if_marked(request, monkeypatch):
    if request.node.get_closest_marker("all_cores") is not None:
        import bench.executors.local as local

        monkeypatch.setattr(local, "usable_cores", MACHINE_CORES)


# Under pytest-xdist (-n auto), each module is one unit of work, run on one worker (its
# module-scoped fixtures, a trained model or a run, are made once), except these: modules
# whose tests start several processes each (`bench run` subprocesses, worker pools, Ray) are
# one unit per group, so that their tests run one after another, never two at once fighting
# for the cores. (xdist's own xdist_group marks are lost with pytest >= 9.2:
# pytest-dev/pytest-xdist#1386.)
SERIAL_GROUPS = {
    "tests/test_signals.py": "processes", "tests/test_parallel.py": "processes",
    "tests/test_resume.py": "processes",
    "tests/test_ray.py": "ray", "tests/test_ray_cluster.py": "ray",
    "tests/test_ray_shards.py": "ray",
}
# The two longest units go out first, one to each worker, so neither ends the run alone.
FIRST = ("processes", "ray")


def unit_of(nodeid: str) -> str:
    module = nodeid.split("::", 1)[0]
    return SERIAL_GROUPS.get(module, module)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    from xdist.scheduler import LoadScopeScheduling

    class ModulesAndSerialGroups(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return unit_of(nodeid)

    return ModulesAndSerialGroups(config, log)


def pytest_collection_modifyitems(config, items):
    """The FIRST groups' tests first: with --no-loadscope-reorder, units go out in this order."""
    def rank(item) -> int:
        unit = unit_of(item.nodeid)
        return FIRST.index(unit) if unit in FIRST else len(FIRST)

    items.sort(key=rank)


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
    """Headless Chromium for the browser tests; without it they skip, saying why, except where
    BENCH_REQUIRE_CHROMIUM=1 (CI, .ci/run): there a missing browser fails them."""
    path = find_chromium()
    if path is None:
        why = ("chromium not found: install Debian's chromium package "
               "(apt-get update && apt-get install -y chromium)")
        if os.environ.get("BENCH_REQUIRE_CHROMIUM") == "1":
            pytest.fail(f"{why}; BENCH_REQUIRE_CHROMIUM=1 says this run must have it")
        pytest.skip(why)
    return path


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """The results folder of `bench run E2E_TINY` (tests/helpers/suites.py), report included,
    made once per session: RESULTS/tiny/<run>, RESULTS/.cache. Read it; copy it to change it."""
    from bench.cli import main
    from tests.helpers.shared import made_once
    from tests.helpers.suites import E2E_TINY

    def make(folder):
        (folder / "tiny.toml").write_text(E2E_TINY)
        code = main(["run", str(folder / "tiny.toml"), "--results-dir", str(folder / "results"),
                     "--no-progress"])
        assert code == 0

    return made_once(tmp_path_factory, "tiny_run", make) / "results"
