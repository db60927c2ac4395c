"""What ran, on what, how long, and what failed."""

from __future__ import annotations

from datetime import datetime

from bench.report.blocks import Section, Table, Text, Warning_
from bench.store import schema as S


def sections(run, baseline) -> list[Section]:
    m = run.manifest
    dev = m["provenance"]["device"]
    counts = m.get("counts", {})
    cells = run.table(S.CELLS)
    lines = [
        f"- **Status:** {m['status']} ({counts.get('ok', '?')} of {counts.get('total', '?')} cells ok, "
        f"{counts.get('failed', 0)} failed)",
        f"- **Device:** {dev['device']} ({dev.get('device_name', '')}), "
        f"{m.get('cell_threads', dev.get('torch_threads'))} torch thread(s) per CPU cell",
        f"- **Executor:** {m['executor']}; **seeds:** {m['seeds']}",
        f"- **Started:** {m['started_utc']} UTC; **wall time:** {_wall(m)}",
    ]
    blocks = [Text("\n".join(lines))]
    if not cells.empty:
        by_kind = cells.groupby(["kind", "status"]).agg(cells=(S.CELL_ID, "count"), seconds=("seconds", "sum"))
        blocks.append(Table(by_kind.reset_index(), "Cells by kind", digits=1))
        for row in cells[cells["status"] == "failed"].itertuples():
            blocks.append(Warning_(f"cell `{row.label}` failed: {row.reason}"))
    return [Section("Summary", blocks)]


def _wall(m: dict) -> str:
    if not m.get("finished_utc"):
        return "unfinished"
    seconds = sum(
        (datetime.fromisoformat(s["finished_utc"]) - datetime.fromisoformat(s["started_utc"])).total_seconds()
        for s in m.get("sessions", []) if s.get("finished_utc"))
    return f"{seconds:.1f} s"
