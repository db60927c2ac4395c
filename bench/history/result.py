"""What history found: the runs in order, the series, their steps; and the exit code."""

from __future__ import annotations

from dataclasses import dataclass, field

from bench.history.runs import RunInfo
from bench.history.series import Series
from bench.history.steps import StepFit


@dataclass
class History:
    suite_dir: str
    runs: list[RunInfo]  # complete runs in the window, in order
    ordering: str  # how the runs were ordered, and why
    series: list[Series]
    skipped: list[str] = field(default_factory=list)  # runs that are not complete, and why
    notes: list[str] = field(default_factory=list)
    rule_sources: list[str] = field(default_factory=list)
    fail_on_step: bool = False

    @property
    def latest(self) -> RunInfo | None:
        return self.runs[-1] if self.runs else None

    def steps(self) -> list[tuple[Series, StepFit]]:
        return [(s, step) for s in self.series for step in s.steps]

    def pending(self) -> list[tuple[Series, StepFit]]:
        return [(s, s.fit.pending) for s in self.series if s.fit.pending is not None]

    def failing(self) -> list[tuple[Series, StepFit]]:
        """Regressions, beyond tolerance and noise, that start at the most recent run."""
        latest = self.latest
        return [(s, step) for s, step in self.steps() + self.pending()
                if step.regression and latest is not None
                and s.runs[step.index].run_id == latest.run_id]

    @property
    def exit_code(self) -> int:
        return 1 if self.fail_on_step and self.failing() else 0
