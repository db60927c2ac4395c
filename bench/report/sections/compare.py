"""Comparison with a baseline run (`bench report RUN --baseline OTHER`): regressions highlighted."""

from __future__ import annotations

from bench.report.blocks import Section, Table, Text, Warning_


def sections(store, baseline) -> list[Section]:
    if baseline is None:
        return []
    from bench.compare import compare_runs
    from bench.compare.render import display_frame, footer_lines, header_lines

    c = compare_runs(baseline, store.dir)
    blocks = [Text("Each metric against the baseline run: the median over seeds (or timed "
                   "repeats) on each side; a change counts only when it is beyond the metric's "
                   "tolerance and significant (Mann-Whitney U with ≥5 samples a side, else a "
                   "seeded bootstrap of the median difference). See `bench compare --help`.")]
    blocks.append(Text("\n".join(f"- {line}" for line in header_lines(c))))
    blocks += [Warning_(f"machine: {note}") for note in c.machine_notes]
    blocks += [Warning_(line) for line in footer_lines(c)
               if line.startswith(("REGRESSED", "FAILED"))]
    df = display_frame(c)
    df.insert(0, "regressed", df["verdict"] == "regressed")
    blocks.append(Table(df, "Candidate (this run) against the baseline",
                        highlight_column="regressed"))
    summary = footer_lines(c)[-1]
    blocks.append(Text(f"**{summary}**"))
    return [Section("Comparison with baseline", blocks)]
