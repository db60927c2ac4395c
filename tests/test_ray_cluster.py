"""The Ray executor against a real cluster: `ray start --head` in a temporary folder, joined
by `bench run --ray-address HOST:PORT` in a separate process (this test process never calls
ray.init, so nothing short-circuits the joining path).

Also the one-line errors that must come before anything runs: a request no node can hold, a
driver of another Ray version, an address where nothing listens.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.runner import run_suite
from tests.helpers.ray_cluster import free_port, local_cluster, ray_env
from tests.helpers.suites import cells_per_tiny_suite, tiny_digits_suite, write_suite
from tests.helpers.tables import assert_same_tables, comparable_tables

pytest.importorskip("ray")

TOTAL = cells_per_tiny_suite()
TIMEOUT = 300


@pytest.fixture(scope="module")
def cluster():
    with local_cluster(num_cpus=2) as (address, temp_dir):
        yield address


def bench(*args: str, cwd: Path, prelude: str = "") -> subprocess.CompletedProcess:
    """`bench ARGS` in a fresh process; `prelude` is Python run before the CLI."""
    code = f"import sys\n{prelude}\nfrom bench.cli import main\nsys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          cwd=cwd, env=ray_env(), timeout=TIMEOUT)


def test_real_cluster_gives_the_local_tables(cluster, tmp_path):
    suite = write_suite(tmp_path, tiny_digits_suite())
    local = run_suite(suite, results_dir=tmp_path / "local", cache_dir=tmp_path / "local-cache",
                      run_id="local", executor="local", executor_options={"workers": 1},
                      progress=False, report=False)
    assert local.status == "complete"

    done = bench("run", str(suite), "--executor", "ray", "--ray-address", cluster,
                 "--results-dir", str(tmp_path / "results"), "--cache-dir",
                 str(tmp_path / "cache"), "--run-id", "ray", "--no-progress", "--no-report",
                 cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    run_dir = tmp_path / "results" / "tiny" / "ray"
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["executor"] == "ray"
    assert manifest["sessions"][-1]["ray_address"] == cluster
    assert_same_tables(comparable_tables(run_dir), comparable_tables(local.run_dir))


def test_request_no_node_can_hold_is_refused_before_anything_runs(cluster, tmp_path):
    suite = write_suite(tmp_path, tiny_digits_suite(extra_suite_keys="threads = 3"))
    done = bench("run", str(suite), "--executor", "ray", "--ray-address", cluster,
                 "--results-dir", str(tmp_path / "results"), cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "bench: error: ray executor: no node of the cluster can run a cell: each asks for "
        "CPU=3 ([suite] threads = 3), and the cluster has CPU=2")
    assert not (tmp_path / "results").exists()  # refused before any run folder


def test_driver_of_another_ray_version_is_a_one_line_error(cluster, tmp_path):
    suite = write_suite(tmp_path, tiny_digits_suite())
    done = bench("run", str(suite), "--executor", "ray", "--ray-address", cluster,
                 "--results-dir", str(tmp_path / "results"), cwd=tmp_path,
                 prelude="import ray\nray.__version__ = '0.0.1'")
    assert done.returncode == 2, done.stderr
    (line,) = [ln for ln in done.stderr.splitlines() if ln.startswith("bench:")]
    assert line.startswith(f"bench: error: cannot join the Ray cluster at '{cluster}': "
                           "Version mismatch: The cluster was started with: Ray: ")
    assert "This process on" in line and "Ray: 0.0.1" in line
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "results").exists()


def test_address_where_nothing_listens_is_a_one_line_error(tmp_path):
    suite = write_suite(tmp_path, tiny_digits_suite())
    address = f"127.0.0.1:{free_port()}"  # bound and closed again: nothing listens there
    done = bench("run", str(suite), "--executor", "ray", "--ray-address", address,
                 "--results-dir", str(tmp_path / "results"), cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"bench: error: cannot reach a Ray cluster at '{address}': Connection refused (is "
        f"`ray start --head --port={address.split(':')[1]}` running there? `ray status "
        f"--address {address}` checks)")
    assert not (tmp_path / "results").exists()
