"""A failing GAN cell: divergence by rising FID, and the rows it measured before failing."""

from __future__ import annotations

import math

import pytest
import torch

from bench.analysis.tables import build_tables
from bench.cells import gan as gan_cell
from bench.errors import CellFailed
from bench.executors.execute import execute_cell
from bench.store import schema as S
from bench.store.run_store import CellRecord
from bench.suite.plan import Cell
from tests.helpers.gan_cells import env_for, gan_config, quick_extractor_result

# -- the rule ------------------------------------------------------------------------------------


def test_fid_rise_fires_on_a_sustained_rise():
    with pytest.raises(CellFailed, match=r"FID above 2× its best \(4\) for 3 evaluations in a row "
                                         r"\(9, 12, 30\) at step 600"):
        gan_cell.check_fid_rise([190, 5, 4, 9, 12, 30], patience=3, step=600)


@pytest.mark.parametrize("fids", [
    [190, 5, 4, 9, 12, 7.9],  # the last one is back within 2× the best
    [190, 5, 4, 9, 12],  # only two above 2× so far
    [190, 30, 20, 15, 12, 10],  # improving
    [190, 4, 3.9, 7.5, 3.8, 7.7, 7.6],  # noisy near convergence: never three in a row
    [190, 4, 3.9, 9, math.nan, 30],  # a NaN FID (not requested) does not count as a rise
])
def test_fid_rise_is_silent_otherwise(fids):
    gan_cell.check_fid_rise(fids, patience=3, step=1)


def test_fid_rise_patience_is_configurable_and_zero_turns_it_off():
    fids = [190, 5, 4, 9, 12, 30]
    gan_cell.check_fid_rise(fids, patience=0, step=1)
    gan_cell.check_fid_rise(fids, patience=4, step=1)  # 5 is not above 2× 4
    with pytest.raises(CellFailed, match="for 1 evaluations in a row"):
        gan_cell.check_fid_rise([190, 5, 4, 9], patience=1, step=1)


# -- the cell ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def extractor_result(tmp_path_factory):
    return quick_extractor_result(tmp_path_factory.mktemp("ext"))


def rising_fids(monkeypatch, fids):
    """The cell's scorer reports `fids` in turn (the rest of its columns as measured)."""
    real = gan_cell.fidelity.Scorer.score
    queue = list(fids)

    def fake(*args, **kwargs):
        return real(*args, **kwargs) | {"fid": queue.pop(0)}

    monkeypatch.setattr(gan_cell.fidelity.Scorer, "score", fake)


def test_a_cell_diverging_by_fid_fails_and_keeps_its_rows(tmp_path, monkeypatch, extractor_result):
    rising_fids(monkeypatch, [150.0, 20.0, 50.0, 60.0, 70.0])
    cfg = gan_config(steps=10, eval_every=2, divergence_patience=2, metrics=["fid", "prc"])
    with pytest.raises(CellFailed, match=r"^diverged: FID above 2× its best \(20\) for 2 "
                                         r"evaluations in a row \(50, 60\) at step 6") as info:
        gan_cell.run_gan_cell(cfg, {"extractor": extractor_result}, env_for(tmp_path))
    rows = info.value.records[S.GAN]
    assert [r["step"] for r in rows] == [0, 2, 4, 6]  # up to and including the failing one
    assert [r["fid"] for r in rows] == [150.0, 20.0, 50.0, 60.0]
    assert all(r["failure"] == str(info.value) for r in rows)
    assert all(math.isfinite(r["precision"]) and r["seconds"] >= 0 for r in rows)


def test_the_same_rows_pass_with_patience_off(tmp_path, monkeypatch, extractor_result):
    rising_fids(monkeypatch, [150.0, 20.0, 50.0, 60.0, 70.0, 80.0])
    cfg = gan_config(steps=10, eval_every=2, divergence_patience=0, metrics=["fid"])
    rows = gan_cell.run_gan_cell(cfg, {"extractor": extractor_result},
                                 env_for(tmp_path)).records[S.GAN]
    assert [r["step"] for r in rows] == [0, 2, 4, 6, 8, 10]
    assert all(r["failure"] == "" for r in rows)


class NaNAfter:
    """Wraps build_gan: the GAN's D loss turns NaN from its `n`-th update on."""

    def __init__(self, n: int):
        self.n, self.build = n, gan_cell.build_gan

    def __call__(self, *args, **kwargs):
        gan = self.build(*args, **kwargs)
        loss, calls = gan.d_loss, []

        def d_loss(real, fake, gen):
            calls.append(1)
            return loss(real, fake, gen) * (math.nan if len(calls) >= self.n else 1.0)

        gan.d_loss = d_loss
        return gan


def test_partial_rows_reach_the_journal_and_the_tables(tmp_path, monkeypatch, extractor_result):
    monkeypatch.setattr(gan_cell, "build_gan", NaNAfter(5))
    cfg = gan_config(steps=8, eval_every=2, metrics=["fid"])
    cell = Cell("gan", cfg, {}, "gan my-dcgan seed=0")
    record = execute_cell(cell, {"extractor": extractor_result}, env_for(tmp_path))
    assert record.status == "failed" and record.reason == "diverged: D loss is nan at step 5"
    assert [r["step"] for r in record.records[S.GAN]] == [0, 2, 4]

    # Beside a seed that finished, the failed one stays in the table but out of the means.
    ok_rows = [r | {"seed": 1, "failure": "", "fid": 10.0} for r in record.records[S.GAN]]
    ok = CellRecord(id="ok", kind="gan", label="ok", config={}, deps={}, status="ok",
                    records={S.GAN: ok_rows})
    tables = build_tables({record.id: record, "ok": ok})
    gan = tables[S.GAN]
    assert len(gan) == 6 and (gan["failure"] != "").sum() == 3
    agg = tables[S.GAN_AGG]
    assert (agg["n_seeds"] == 1).all() and (agg["fid_mean"] == 10.0).all()
    cells = tables[S.CELLS].set_index(S.CELL_ID)
    assert cells.loc[record.id, "status"] == "failed"


def test_cell_failed_pickles_with_its_records():
    import pickle

    exc = pickle.loads(pickle.dumps(CellFailed("diverged: x", {S.GAN: [{"step": 0}]})))
    assert str(exc) == "diverged: x" and exc.records == {S.GAN: [{"step": 0}]}
    assert CellFailed("plain").records == {}


def test_samples_are_drawn_from_the_ema_generator():
    from bench.gans import GANS

    gan = GANS.get("dcgan")(1, (8, 8), z_dim=8, init_seed=0, ema=0.9)
    gen = torch.Generator().manual_seed(0)
    for _ in range(3):
        gan.d_step(torch.rand(8, 1, 8, 8) * 2 - 1, gen)
        gan.g_step(8, gen)
    z = torch.randn(6, 8)
    gan.generator.eval()
    raw = ((gan.generator(z) + 1) / 2).clamp(0, 1)
    assert not torch.allclose(gan.sample(z), raw.detach())
    gan.ema.model.eval()
    assert torch.equal(gan.sample(z), ((gan.ema.model(z) + 1) / 2).clamp(0, 1))
