"""The import graph runs one way: no module imports itself back through others (no circle), no
package imports a module that imports the package back (no arrow running back up between the
library's packages and its top-level modules), the training engine knows nothing of the grid of
jobs, the config or the plan, and the planning modules import no torch. Every library module is
placed in one of the lists below, so a new one is placed when it is added."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import REPO

LIBRARY = REPO / "gradual_transfer"
# The training engine: models, checkpoints and their resume state, transfer, the training loop and
# its parts, devices and the run's cost; it is given a recipe and data, never a config.
ENGINE = ["models", "checkpoints.py", "transfer.py", "train.py", "resume.py", "steps.py", "batches.py",
          "frozen_prefix.py", "recipe.py", "curves.py", "cost.py", "devices.py", "device_memory.py",
          "gpu_support.py", "startup.py"]
# What the workflow reads when it plans: no torch, no numpy, no Snakemake.
PLANNING = ["grid.py", "config", "plan", "architectures.py", "params.py", "stages.py", "families.py", "names.py",
            "claims.py", "data/kinds.py", "data/layouts.py", "screen_inputs.py"]
# The rest: the datasets' readers and the demo's corpora, a job's task and its run, decoding,
# realignment, results, tables, figures and the report, the command line, small shared helpers.
OTHERS = ["data", "demo", "tasks", "experiment.py", "decoding.py", "hmm.py", "realign.py", "metrics.py",
          "statistics.py", "tables.py", "columns.py", "figures.py", "report.py", "cli.py", "__main__.py", "io.py",
          "logs.py", "resources", "__init__.py", "screen.py", "representations.py", "estimates.py", "similarity.py",
          "agreement.py", "screen_figures.py"]


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(LIBRARY.rglob("*.py"))}


def imported_modules(path: Path) -> set[str]:
    """What `path` imports, anywhere in it (a function's import is an arrow too, and so is one
    under TYPE_CHECKING): ``from package import module`` imports the module, not the package."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                names.add(submodule if submodule in MODULES else node.module)
    return names


def library_imports(path: Path) -> set[str]:
    """The library's modules that `path` imports."""
    return {name for name in imported_modules(path) if name in MODULES} - {module_name(path), "gradual_transfer"}


def files(entries: list[str]) -> list[Path]:
    paths = [LIBRARY / entry for entry in entries]
    missing = [str(p.relative_to(REPO)) for p in paths if not p.exists()]
    assert not missing, f"listed but absent: {missing}"
    return [f for p in paths for f in ([p] if p.is_file() else sorted(p.rglob("*.py")))]


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan), each sorted."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in graph[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while not component or component[-1] != node:
                component.append(stack.pop())
                on_stack.discard(component[-1])
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def unit(module: str) -> str:
    """A top-level module, or the package a module belongs to (``gradual_transfer.data``)."""
    return ".".join(module.split(".")[:2])


def module_graph() -> dict[str, set[str]]:
    return {name: library_imports(path) for name, path in MODULES.items()}


def test_every_module_is_placed_once():
    placed = [module_name(f) for f in files(ENGINE) + files(PLANNING)]
    assert len(placed) == len(set(placed)), "a module is listed twice"
    rest = {module_name(f) for f in files(OTHERS)} - set(placed)
    assert set(placed) | rest == set(MODULES)


def test_no_module_imports_itself_back():
    assert circles(module_graph()) == []


def test_no_arrow_runs_back_up_between_packages():
    graph: dict[str, set[str]] = {}
    for name, imported in module_graph().items():
        graph.setdefault(unit(name), set()).update(unit(other) for other in imported if unit(other) != unit(name))
    assert circles(graph) == []


def test_a_circle_is_found(tmp_path):
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert circles({"a": {"b"}, "b": set()}) == []


def test_the_engine_imports_neither_the_grid_nor_the_config_nor_the_plan():
    for path in files(ENGINE):
        upward = {m for m in library_imports(path) if unit(m) in ("gradual_transfer.grid", "gradual_transfer.config",
                                                                 "gradual_transfer.plan")}
        assert not upward, f"{path.relative_to(REPO)} imports {sorted(upward)}"


def test_planning_imports_no_torch():
    for path in files(PLANNING):
        heavy = {m for m in imported_modules(path) if m.split(".")[0] in {"torch", "numpy", "snakemake"}}
        assert not heavy, f"{path.relative_to(REPO)} imports {sorted(heavy)}"


def test_no_module_is_long_without_a_stated_reason():
    """A module past ~350 lines says why in its docstring; otherwise it is cut by concept."""
    long = [f"{path.relative_to(REPO)}: {length} lines" for path in MODULES.values()
            if (length := len(path.read_text().splitlines())) > 350
            and "~350-line rule of thumb" not in (ast.get_docstring(ast.parse(path.read_text())) or "")]
    assert not long, "\n".join(long)
