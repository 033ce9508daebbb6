"""The layers point one way: cli -> export -> live -> core, and inside core studies -> learning ->
evaluation -> data. Checked twice: statically on every import statement of the source (function
bodies included, so a lazy import cannot hide), and dynamically on what a fresh interpreter loads.

core/errors.py (the FcError every layer raises) sits below all four core layers and imports
nothing of fc: it is the one module of core outside them.
"""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("cli", "export", "live", "core")
CORE_ORDER = ("studies", "learning", "evaluation", "data")  # each imports only those after it
# the executor seam's cluster half: the one module that imports dask, lazily
DASK_HOME = "fc.core.studies.cluster"
SEAM = "fc.core.studies.executor"


def modules(folder: str) -> list[str]:
    """Every module under the folder, subpackages included (core/ is split by role)."""
    return [
        "fc." + ".".join(p.relative_to(ROOT).with_suffix("").parts)
        for p in sorted((ROOT / folder).rglob("*.py"))
        if p.stem != "__init__"
    ]


def imported(source: str, known: set[str]) -> set[str]:
    """The modules (fc.* resolved to the deepest known module; others by top-level name) that a
    module's source imports anywhere in it."""
    out = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{a.name}" for a in node.names] + [node.module]
        else:
            continue
        for name in names:
            if not name.startswith("fc."):
                out.add(name.split(".")[0])
                continue
            while name not in known and name.count(".") > 1:
                name = name.rsplit(".", 1)[0]  # from fc.x.module import function
            if name in known:
                out.add(name)
    return out


def import_graph() -> dict[str, set[str]]:
    """module -> the fc modules and third-party top-level packages it imports."""
    paths = {}
    for folder in FOLDERS:
        for p in sorted((ROOT / folder).rglob("*.py")):
            parts = p.relative_to(ROOT).with_suffix("").parts
            name = "fc." + ".".join(parts[:-1] if p.stem == "__init__" else parts)
            paths[name] = p
    known = set(paths)
    return {name: imported(path.read_text(), known) for name, path in paths.items()}


def part(module: str) -> str:
    """'cli', 'export', 'live', 'core.<layer>' or 'core.errors' for an fc module name."""
    pieces = module.split(".")
    if len(pieces) < 2:
        return "fc"
    if pieces[1] == "core" and len(pieces) > 2:
        return f"core.{pieces[2]}"
    return pieces[1]


def violations(graph: dict[str, set[str]]) -> list[str]:
    """Every import that points the wrong way, as 'importer -> imported: rule'."""
    bad = []
    for module, targets in graph.items():
        here = part(module)
        for target in sorted(targets):
            if not target.startswith("fc."):
                if here == "live" and target == "torch":
                    bad.append(f"{module} -> torch: live never imports torch")
                if target in ("dask", "distributed") and module != DASK_HOME:
                    bad.append(f"{module} -> {target}: dask only behind the executor seam")
                continue
            there = part(target)
            if here == "core.errors" and target != module:
                bad.append(f"{module} -> {target}: core/errors.py imports nothing of fc")
            if here.startswith("core") and there in ("cli", "live", "export"):
                bad.append(f"{module} -> {target}: core imports no cli, live or export")
            if here == "live" and there in ("export", "cli"):
                bad.append(f"{module} -> {target}: live imports neither export nor cli")
            if here == "export" and there == "cli":
                bad.append(f"{module} -> {target}: export imports no cli")
            layers = [f"core.{name}" for name in CORE_ORDER]
            if here in layers and there in layers:
                if layers.index(there) < layers.index(here):
                    bad.append(f"{module} -> {target}: {here} may not import {there}")
    for module, targets in graph.items():
        for target in targets:
            if part(module) == part(target) == "cli" and module in graph.get(target, ()):
                if module < target:
                    bad.append(f"{module} <-> {target}: two cli modules import each other")
    return bad


def test_every_import_points_the_right_way():
    graph = import_graph()
    assert "fc.core.studies.backtest_run" in graph and "fc.core.learning.family" in graph
    assert violations(graph) == []


@pytest.mark.parametrize(
    "module, target, rule",
    [
        ("fc.core.data.candles", "fc.core.evaluation.metrics", "core.data may not import"),
        ("fc.core.data.candles", "fc.core.studies.runs", "core.data may not import"),
        ("fc.core.evaluation.backtest", "fc.core.learning.model", "core.evaluation may not"),
        ("fc.core.evaluation.backtest", "fc.core.studies.runs", "core.evaluation may not"),
        ("fc.core.learning.training", "fc.core.studies.runs", "core.learning may not"),
        ("fc.core.learning.training", "fc.cli.train", "core imports no cli"),
        ("fc.core.evaluation.backtest", "fc.live.journal", "core imports no cli, live"),
        ("fc.core.studies.runs", "fc.export.graphs", "core imports no cli, live or export"),
        ("fc.live.service", "fc.export.run", "live imports neither export"),
        ("fc.live.predictor", "torch", "live never imports torch"),
        ("fc.core.errors", "fc.core.data.candles", "core/errors.py imports nothing"),
        ("fc.core.studies.walk", "distributed", "dask only behind the executor seam"),
        ("fc.live.service", "dask", "dask only behind the executor seam"),
    ],
)
def test_the_check_catches_each_wrong_way(module, target, rule):
    """The checker is itself tested: one planted import per rule is reported."""
    graph = import_graph()
    graph[module] = graph[module] | {target}
    assert any(rule in line and target in line for line in violations(graph)), rule


def test_the_check_catches_two_cli_modules_importing_each_other():
    graph = import_graph()
    graph["fc.cli.paper"] = graph["fc.cli.paper"] | {"fc.cli.backtest"}
    graph["fc.cli.backtest"] = graph["fc.cli.backtest"] | {"fc.cli.paper"}
    assert any("import each other" in line for line in violations(graph))


def test_a_lazy_import_inside_a_function_is_seen():
    source = "def f():\n    from fc.core.studies.runs import load_run\n"
    assert "fc.core.studies.runs" in imported(source, {"fc.core.studies.runs"})


def loaded_by(names: list[str]) -> set[str]:
    """The modules a fresh interpreter holds after importing `names`."""
    code = f"import sys, {', '.join(names)}; print(' '.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_live_service_and_cli_root_run_without_torch():
    live = modules("live")
    loaded = loaded_by([*live, "fc.cli.paper", "fc.cli.main"])
    assert "torch" not in loaded
    assert not {"dask", "distributed"} & loaded  # the cluster extra: never the live service's


def test_core_imports_no_cli_exchange_runtime_or_scheduler():
    loaded = loaded_by(modules("core"))
    assert "fc.core.learning.model" in loaded and DASK_HOME in loaded
    for banned in ("typer", "ccxt", "onnxruntime", "apscheduler", "dask", "distributed"):
        assert banned not in loaded, f"core imports {banned}"


def test_only_the_seam_reaches_dask():
    """Dask is the cluster extra: the seam's cluster half imports it inside its functions (the
    two tests above see that importing fc loads no dask) and only the seam imports that half."""
    graph = import_graph()
    assert {m for m, targets in graph.items() if DASK_HOME in targets} == {SEAM}
    assert "distributed" in graph[DASK_HOME]
