"""`bench run` end to end: tables, manifest, report and plot; a user's own model; resume."""

import json
import shutil
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from bench.cli import main
from bench.store.run_store import RunStore
from tests.helpers.formats import write_mnist
from tests.helpers.suites import E2E_TINY as TINY


def copy_results(results: Path, to: Path) -> Path:
    """A copy of a results folder (runs and weights cache) to change at will."""
    shutil.copytree(results, to)
    return to


def only_run(results):
    runs = [p for p in (results / "tiny").iterdir() if p.is_dir()]
    assert len(runs) == 1
    return runs[0]


def test_tiny_suite_writes_tables_manifest_report_and_plot(tiny_run, tmp_path):
    """`tiny_run` (tests/conftest.py) is `bench run E2E_TINY --results-dir RESULTS`."""
    results = copy_results(tiny_run, tmp_path / "results")
    suite = tmp_path / "tiny.toml"
    suite.write_text(TINY)
    run = only_run(results)
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    assert manifest["seeds"] == [0, 1]
    assert manifest["suite"]["text"] == TINY
    assert manifest["provenance"]["versions"]["torch"] == torch.__version__
    assert {"commit", "dirty"} <= set(manifest["provenance"]["git"])
    assert all(c["status"] == "ok" for c in manifest["cells"].values())

    rob = pd.read_parquet(run / "tables" / "robustness.parquet")
    assert len(rob) == 2 * (3 + 1)  # seeds x (fgsm epsilons + pgd epsilons)
    # CSV has one null: a setting the attack lacks (None in Parquet) reads back as NaN.
    pd.testing.assert_frame_equal(rob.fillna(np.nan),
                                  pd.read_csv(run / "tables" / "robustness.csv"),
                                  check_dtype=False)
    fgsm0 = rob[(rob.attack == "fgsm") & (rob.epsilon == 0)]
    assert (fgsm0.robust_acc == fgsm0.clean_acc).all()  # ε = 0 changes nothing
    assert (rob.acc_drop == rob.clean_acc - rob.robust_acc).all()
    agg = pd.read_parquet(run / "tables" / "robustness_agg.parquet")
    assert set(agg.n_seeds) == {2}
    assert (run / "tables" / "checks.parquet").exists()
    assert (run / "report.md").read_text().count("plots/robustness_accuracy_vs_epsilon.png") == 1
    png = (run / "plots" / "robustness_accuracy_vs_epsilon.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"

    # Running the same command again starts a new run but does not retrain (weights cache).
    train_rows = pd.read_parquet(run / "tables" / "training.parquet")
    # In this process (--workers 1): the same numbers as the parallel first run, and cheaper.
    assert main(["run", str(suite), "--results-dir", str(results), "--no-progress", "--run-id",
                 "again", "--workers", "1"]) == 0
    again = RunStore(results / "tiny" / "again")
    pd.testing.assert_frame_equal(again.read_table("training").drop(columns=["cell_id"]),
                                  train_rows.drop(columns=["cell_id"]))
    rob2 = again.read_table("robustness")
    assert rob2["robust_acc"].tolist() == rob["robust_acc"].tolist()


def test_the_report_a_run_writes_equals_bench_report_of_its_folder(tiny_run, tmp_path):
    """`bench run` reports from the tables it has just written, not read back: the report
    must be byte for byte the one `bench report` makes from the folder on disk."""
    run = only_run(copy_results(tiny_run, tmp_path / "results"))
    written = {p.relative_to(run): p.read_bytes()
               for p in [run / "report.md", run / "report.html", *(run / "plots").iterdir()]}
    assert len(written) >= 3  # the report, the page, at least one figure
    for path in written:
        (run / path).unlink()
    assert main(["report", str(run)]) == 0
    assert {path: (run / path).read_bytes() for path in written} == written


def test_resume_skips_finished_cells(tiny_run, tmp_path):
    results = copy_results(tiny_run, tmp_path / "results")  # a finished run of TINY
    suite = tmp_path / "tiny.toml"
    suite.write_text(TINY)
    run = only_run(results)
    # Pretend the run was killed: drop one robustness journal entry and mark it unfinished.
    store = RunStore(run)
    manifest = store.read_manifest()
    manifest["status"] = "interrupted"
    store.write_manifest(manifest)
    victim = next(i for i, r in store.read_cells().items() if r.kind == "robustness")
    kept = {p.name: p.read_bytes() for p in store.cells_dir.glob("*.json") if p.stem != victim}
    (store.cells_dir / f"{victim}.json").unlink()
    assert main(["run", str(suite), "--results-dir", str(results), "--no-progress"]) == 0
    assert only_run(results) == run  # resumed the unfinished run, not a new one
    for name, data in kept.items():
        assert (store.cells_dir / name).read_bytes() == data  # not recomputed
    assert (store.cells_dir / f"{victim}.json").exists()
    assert store.read_manifest()["status"] == "complete"
    assert len(store.read_manifest()["sessions"]) == 2


class TinyNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(1, 8, 5, stride=2), nn.ReLU(), nn.Flatten(),
                                 nn.Linear(8 * 12 * 12, 10))

    def forward(self, x):
        return self.net(x)


def test_user_model_from_factory_and_checkpoint_on_mnist_idx(tmp_path, monkeypatch):
    root = write_mnist(tmp_path / "mnist", n_train=200, n_test=100, seed=0)
    from bench.data import load_dataset
    from bench.suite.cell_configs import DatasetSpec

    cfg = DatasetSpec(name="mnist", kind="mnist", root=str(root))
    train = load_dataset(cfg, "train")
    torch.manual_seed(0)
    model = TinyNet()
    mean, std = 0.1307, 0.3081
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    for _ in range(30):
        opt.zero_grad()
        nn.functional.cross_entropy(model((train.x - mean) / std), train.y).backward()
        opt.step()
    (tmp_path / "weights").mkdir()
    torch.save(model.state_dict(), tmp_path / "weights" / "tiny.pt")
    pkg = tmp_path / "my_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "nets.py").write_text("from tests.test_run_e2e import TinyNet\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    suite = tmp_path / "mine.toml"
    suite.write_text(textwrap.dedent(f"""
        [suite]
        name = "mine"
        [datasets.mnist]
        kind = "mnist"
        root = "{root}"
        [models.mine]
        factory = "my_pkg.nets:TinyNet"
        checkpoint = "weights/tiny.pt"
        dataset = "mnist"
        normalize = {{ mean = [{mean}], std = [{std}] }}
        [[robustness]]
        models = ["mine"]
        epsilons = [0, 0.1]
        """))
    results = tmp_path / "results"
    assert main(["run", str(suite), "--results-dir", str(results), "--no-progress"]) == 0
    rob = RunStore(next((results / "mine").iterdir())).read_table("robustness")
    test = load_dataset(cfg, "test")
    with torch.no_grad():
        expected = (model.eval()((test.x - mean) / std).argmax(1) == test.y).float().mean().item()
    assert rob.loc[rob.epsilon == 0, "clean_acc"].item() == pytest.approx(expected)
    assert expected > 0.5  # the checkpoint really was trained and really was loaded
