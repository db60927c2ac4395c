"""`bench export FORMAT RUN`: a run's results in another project's format. Exporters only
read the run (through bench.store.migrate.open_run), like reports, and write to a folder of
their own."""

from __future__ import annotations

from pathlib import Path

from bench.registry import Registry

EXPORTERS: Registry = Registry("export format")
EXPORTERS.register("robustbench", "bench.export.robustbench:export_robustbench")


def run_export(fmt: str, run_dir: Path, output: Path | None = None) -> list[Path]:
    """Write `run_dir`'s results as `fmt` under `output` (default: RUN/export/FORMAT);
    return the files written."""
    from bench.errors import UserError
    from bench.store.migrate import open_run

    if fmt not in EXPORTERS:
        raise UserError(EXPORTERS.unknown_message(fmt))
    run = open_run(run_dir)
    return EXPORTERS.get(fmt)(run, output or Path(run_dir) / "export" / fmt)
