"""Comparison with a baseline run (`bench report RUN --baseline OTHER`): regressions highlighted."""

from __future__ import annotations

from bench.report.blocks import Section, Table, Text, Warning_


def sections(run, baseline) -> list[Section]:
    if baseline is None:
        return []
    from bench.compare import compare_runs
    from bench.compare.render import display_frame, footer_lines, header_lines

    c = compare_runs(baseline, run.dir)
    blocks = [Text("Each metric against the baseline run: the mean over seeds on each side "
                   "(speed and memory: the median, judged by a run-to-run tolerance). A change "
                   "counts when it is beyond the metric's tolerance and, where seeds show noise, "
                   "significant by a margin t-test (paired by seed) or a worst-seed test; with one "
                   "sample a side or no spread the tolerance alone decides (\"deterministic\"). "
                   "`mde` is the smallest change the gate would catch. See docs/compare.md.")]
    blocks.append(Text("\n".join(f"- {line}" for line in header_lines(c))))
    blocks += [Warning_(f"machine: {note}") for note in c.machine_notes]
    blocks += [Warning_(line) for line in footer_lines(c)
               if line.startswith(("REGRESSED", "FAILED", "MISSING", "NOTHING"))]
    df = display_frame(c)
    df.insert(0, "regressed", df["verdict"] == "regressed")
    blocks.append(Table(df, "Candidate (this run) against the baseline",
                        highlight_column="regressed"))
    summary = footer_lines(c)[-1]
    blocks.append(Text(f"**{summary}**"))
    return [Section("Comparison with baseline", blocks)]
