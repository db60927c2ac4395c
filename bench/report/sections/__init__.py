"""Report sections, in report order. Each is `sections(run, baseline) -> list[Section]`, with `run` a RunView (bench.store.migrate)."""

from bench.registry import import_target

_ORDER = [
    "bench.report.sections.checks:alerts",  # failed sanity checks come first
    "bench.report.sections.summary:sections",
    "bench.report.sections.robustness:sections",
    "bench.report.sections.cost:sections",
    "bench.report.sections.checks:sections",
    "bench.report.sections.training:sections",
    "bench.report.sections.gan:sections",
    "bench.report.sections.throughput:sections",
    "bench.report.sections.compare:sections",
    "bench.report.sections.provenance:sections",
]
SECTION_BUILDERS = [import_target(target) for target in _ORDER]
