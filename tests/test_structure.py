"""The package's shape, read off its own source: short functions, no import circles, the
suite layer never reaching into later layers, and every suite key reaching a cell config."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "bench"
MAX_FUNCTION_LINES = 60


def modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def imports(module: str, path: Path, known: set[str]) -> set[str]:
    """Modules of bench that `module` imports anywhere in its body (lazy imports included)."""
    out = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name in known}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                prefix = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(prefix + ([node.module] if node.module else []))
            for alias in node.names:
                full = f"{base}.{alias.name}"
                out.add(full if full in known else base)
    return out & known


def import_graph() -> dict[str, set[str]]:
    mods = modules()
    return {m: imports(m, p, set(mods)) - {m} for m, p in mods.items()}


def test_no_function_in_bench_is_longer_than_60_lines():
    long = []
    for module, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{module}.{node.name}: {lines} lines")
    assert not long, long


def test_the_import_graph_has_no_circle():
    graph, seen, stack, cycles = import_graph(), set(), [], []

    def visit(node: str) -> None:
        if node in stack:
            cycles.append(stack[stack.index(node):] + [node])
            return
        if node in seen:
            return
        seen.add(node)
        stack.append(node)
        for other in sorted(graph[node]):
            visit(other)
        stack.pop()

    for node in sorted(graph):
        visit(node)
    assert not cycles, cycles


@pytest.mark.parametrize("layer, later", [
    ("bench.suite", ("bench.cells", "bench.executors", "bench.store.run_store",
                     "bench.store.migrate", "bench.report", "bench.compare", "bench.runner",
                     "bench.analysis")),
    ("bench.store", ("bench.cells", "bench.executors", "bench.report", "bench.compare",
                     "bench.runner", "bench.analysis")),
    ("bench.cells", ("bench.executors", "bench.report", "bench.compare", "bench.runner")),
])
def test_no_layer_imports_one_that_runs_after_it(layer, later):
    """suite -> cells -> executors -> store -> report / compare: data flows one way, and so do
    imports (a later layer may use an earlier one's types, never the reverse). The result
    schema (bench.store.schema: table and column names) is the contract every layer shares."""
    wrong = sorted((m, o) for m, deps in import_graph().items() if m.startswith(layer)
                   for o in deps if o.startswith(later))
    assert not wrong, wrong


def test_every_suite_key_reaches_a_cell_config():
    """A key that no cell reads is impossible by construction: each section's fields are in
    the cell config that plan builds from it, or are consumed by plan itself (named here)."""
    from bench.suite import cell_configs as C
    from bench.suite import schema

    planned_only = {  # read by plan to decide which cells exist and how they connect
        "GanConfig": {"dataset", "feature_extractor", "train"},
        # the attack's own keys go into its typed attack_params
        "RobustnessConfig": {"models", "shard_size", "shards"}  # shards: which cells exist
        | {k for p in C.ATTACK_PARAMS.values() for k in p.model_fields},
        "ThroughputConfig": {"models", "gans", "workloads", "batch_sizes", "precision",
                             "channels_last", "compile"},  # grid axes, one value per cell
    }
    cell_config = {"GanConfig": C.GanCellConfig, "RobustnessConfig": C.RobustnessCellConfig,
                   "ThroughputConfig": C.ThroughputCellConfig, "TrainConfig": C.TrainCellConfig}
    for section, cfg in cell_config.items():
        fields = set(getattr(schema, section).model_fields)
        carried = set(cfg.model_fields) | planned_only.get(section, set())
        if section == "TrainConfig":
            carried = set(C.TrainCellConfig.model_fields["train"].annotation.model_fields)
        assert fields <= carried, (section, sorted(fields - carried))
    assert {"steps", "alpha", "random_start"} <= set(C.PgdParams.model_fields)
