"""Versions, device, machine and git state, from the manifest."""

from __future__ import annotations

import pandas as pd

from bench.report.blocks import Section, Table


def sections(run, baseline) -> list[Section]:
    m = run.manifest
    p = m["provenance"]
    rows = [("schema_version", m["schema_version"]), ("bench_version", m["bench_version"]),
            ("suite_sha256", m["suite"]["sha256"][:16]),
            ("git_commit", p["git"].get("commit")), ("git_dirty", p["git"].get("dirty"))]
    rows += [(f"version.{k}", v) for k, v in p["versions"].items()]
    rows += [(f"device.{k}", v) for k, v in p["device"].items()]
    rows += [(f"machine.{k}", v) for k, v in p["machine"].items()]
    df = pd.DataFrame(rows, columns=["key", "value"]).astype({"value": str})
    return [Section("Provenance", [Table(df)])]
