"""Sample shards on a real Ray cluster of two worker nodes (ray.cluster_utils.Cluster: a
head without CPUs and two nodes of one CPU each, every process on this machine): a sharded
AutoAttack cell merges into the rows a local run gives, its shards ran on both nodes, and a
worker killed in the middle of a shard has that shard retried, with nothing lost."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from bench.executors.execute import TEST_KILL_ONCE_ENV
from bench.runner import run_suite
from bench.store import schema as S
from bench.store.run_store import RunStore
from bench.suite.load import load_suite
from bench.suite.plan import plan
from tests.helpers.suites import write_suite
from tests.helpers.tables import comparable_tables

ray = pytest.importorskip("ray")

SUITE = """
[suite]
name = "ray-shards"
seeds = [0]
device = "cpu"

[datasets.digits]
kind = "digits"
limit_train = 300

[models.cnn]
arch = "small-cnn"
dataset = "digits"
train = { epochs = 1 }

[[robustness]]
models = ["cnn"]
attack = "autoattack"
epsilons = [0.3]
limit = 32
batch_size = 8
shards = 4
"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """Two worker nodes; their workers die once at the start of a chosen cell (the markers
    folder, set before the nodes start so that every worker process inherits it)."""
    from ray.cluster_utils import Cluster

    markers = tmp_path_factory.mktemp("markers")
    old = os.environ.get(TEST_KILL_ONCE_ENV)
    os.environ[TEST_KILL_ONCE_ENV] = str(markers)
    nodes = Cluster(initialize_head=True, head_node_args={"num_cpus": 0,
                                                          "include_dashboard": False})
    try:
        for _ in range(2):
            nodes.add_node(num_cpus=1)
        nodes.wait_for_nodes()
        yield nodes.address, markers
    finally:
        nodes.shutdown()
        if old is None:
            os.environ.pop(TEST_KILL_ONCE_ENV, None)
        else:
            os.environ[TEST_KILL_ONCE_ENV] = old


def test_sharded_autoattack_on_two_nodes_equals_the_local_run(cluster, tmp_path):
    address, markers = cluster
    suite = write_suite(tmp_path, SUITE)
    cells = plan(load_suite(suite))
    shards = [c for c in cells if c.kind == "robustness-shard"]
    assert len(shards) == 4
    for c in cells:  # every cell is spared but the second shard: its worker dies once
        if c is not shards[1]:
            (markers / f"{c.id}.killed").touch()
    os.environ.pop(TEST_KILL_ONCE_ENV)  # the local run (this process) kills nothing
    try:
        local = run_suite(suite, results_dir=tmp_path / "local", cache_dir=tmp_path / "c1",
                          run_id="local", executor="local", executor_options={"workers": 1},
                          progress=False, report=False)
    finally:
        os.environ[TEST_KILL_ONCE_ENV] = str(markers)
    distributed = run_suite(suite, results_dir=tmp_path / "ray", cache_dir=tmp_path / "c2",
                            run_id="ray", executor="ray",
                            executor_options={"address": address, "max_retries": 2},
                            progress=False, report=False)
    assert local.status == distributed.status == "complete"

    mine, theirs = (comparable_tables(r.run_dir) for r in (distributed, local))
    for name in (S.ROBUSTNESS, S.CORRECTNESS, S.EXAMPLES, S.WORST_CASE, S.CHECKS):
        pd.testing.assert_frame_equal(mine[name], theirs[name], check_exact=True, obj=name)
    rob = mine[S.ROBUSTNESS]
    assert list(rob["attack"]) == ["autoattack"] and rob["n"].tolist() == [32]

    journal = RunStore(distributed.run_dir).read_cells()
    hosts = {journal[c.id].host for c in shards}
    nodes = {h.rsplit(" node ", 1)[1] for h in hosts}
    assert len(nodes) == 2, hosts  # both worker nodes ran shards
    assert (markers / f"{shards[1].id}.killed").exists()  # its worker really died once
    assert journal[shards[1].id].attempts == 2 and journal[shards[1].id].ok
    assert all(journal[c.id].attempts == 1 for c in shards if c is not shards[1])
    assert Path(distributed.run_dir).is_dir()
