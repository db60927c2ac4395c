"""The report's GAN section: curves of every GAN, readable sample grids, honest notes."""

from __future__ import annotations

import io

import torch
from PIL import Image

from bench.cells.gan import png_grid
from bench.report import build_sections, write_report
from bench.report.blocks import Figure, Table, Warning_
from bench.store import schema as S
from bench.store.migrate import open_run
from bench.store.run_store import CellRecord
from tests.helpers.runs import make_run

STEPS = [0, 100, 200]
REASON = "diverged: FID above 2× its best (9) for 3 evaluations in a row (20, 25, 30) at step 100"


def gan_rows(gan: str, seed: int, fids: list[float], num_samples: int, failure: str = "") -> list[dict]:
    return [{"gan": gan, "arch": gan, "dataset": "digits", "seed": seed, "step": step, "fid": fid,
             "kid_mean": 0.01, "isc_mean": 5.0, "precision": 0.8, "recall": 0.7,
             "num_samples": num_samples, "num_real_samples": min(num_samples, 1347),
             "real_floor_fid": 1.0, "real_floor_num_samples": min(num_samples, 450),
             "extractor": "bench-domain-x", "train_images_per_s": 100.0, "note": "",
             "failure": failure} for step, fid in zip(STEPS, fids)]


def grids(folder, name: str) -> dict[str, str]:
    out = {}
    gen = torch.Generator().manual_seed(0)
    for key in ("real_samples", "samples_step0", "samples"):
        path = folder / f"{name}-{key}.png"
        path.write_bytes(png_grid(torch.rand(64, 1, 8, 8, generator=gen)))
        out[key] = str(path)
    return out


def gan_cell(tmp_path, gan: str, seed: int, fids: list[float], num_samples: int = 450,
             failure: str = "") -> CellRecord:
    status = "failed" if failure else "ok"
    return CellRecord(id=f"{gan}-{seed}", kind="gan", label=f"gan {gan} seed={seed}",
                      config={"gan": gan, "seed": seed}, deps={}, status=status,
                      reason=failure or None,
                      records={S.GAN: gan_rows(gan, seed, fids, num_samples, failure)},
                      artifacts={} if failure else grids(tmp_path, f"{gan}-{seed}"))


def gan_section(run_dir):
    (section,) = [s for s in build_sections(open_run(run_dir)) if s.title == "GANs"]
    return section


def test_section_has_all_curves_grids_and_the_failure(tmp_path):
    cells = [gan_cell(tmp_path, "dcgan", 0, [190, 5, 2]), gan_cell(tmp_path, "dcgan", 1, [180, 6, 2.2]),
             gan_cell(tmp_path, "sngan", 0, [190, 9, 3]),
             gan_cell(tmp_path, "sngan", 1, [190, 20, 25], failure=REASON)]
    run = make_run(tmp_path / "run", cells)
    section = gan_section(run)
    figures = {b.name: b for b in section.blocks if isinstance(b, Figure)}
    assert set(figures) == {"gan_fid_over_steps", "gan_samples_dcgan", "gan_samples_sngan"}
    for name in ("gan_samples_dcgan", "gan_samples_sngan"):
        image = Image.open(io.BytesIO(figures[name].png))
        # Three 73-pixel grids side by side, each enlarged ≥ 4×: an 8-pixel digit spans ≥ 32 px.
        assert image.width >= 3 * 4 * 73 and image.height >= 4 * 73, image.size
    warnings = [b.message for b in section.blocks if isinstance(b, Warning_)]
    assert any("`sngan` seed 1 failed: " + REASON in w and "up to step 200" in w for w in warnings)
    assert not any("floor was measured" in w for w in warnings)  # same N on both sides
    (final,) = [b.df for b in section.blocks if isinstance(b, Table)]
    final = final.set_index("gan")
    assert final.loc["sngan", "n_seeds"] == 1 and final.loc["sngan", "fid_mean"] == 3
    assert final.loc["dcgan", "fid_x_floor"] == 2.1
    write_report(run)  # renders to Markdown and HTML with every figure


def test_a_floor_at_another_sample_count_is_said(tmp_path):
    run = make_run(tmp_path / "run", [gan_cell(tmp_path, "dcgan", 0, [190, 5, 2], num_samples=2000)])
    warnings = [b.message for b in gan_section(run).blocks if isinstance(b, Warning_)]
    (note,) = [w for w in warnings if "floor was measured" in w]
    assert "2000 generated samples" in note and "1347 real train" in note and "on 450 real test" in note
