"""Report sections, in report order. Each is `sections(store, baseline) -> list[Section]`."""

from bench.registry import import_target

_ORDER = [
    "bench.report.sections.summary:sections",
    "bench.report.sections.robustness:sections",
    "bench.report.sections.gan:sections",
    "bench.report.sections.throughput:sections",
    "bench.report.sections.compare:sections",
    "bench.report.sections.provenance:sections",
]
SECTION_BUILDERS = [import_target(target) for target in _ORDER]
