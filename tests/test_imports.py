"""The import graph runs one way: the training engine (models, checkpoints, transfer, the training
loop) knows nothing of the grid of jobs or of the config, and the planning modules import no torch."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import REPO

LIBRARY = REPO / "gradual_transfer"
ENGINE = ["models", "checkpoints.py", "transfer.py", "train.py", "training"]
PLANNING = ["grid.py", "config", "architectures.py", "params.py", "stages.py", "data/kinds.py"]


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def files(entries: list[str]) -> list[Path]:
    paths = [LIBRARY / entry for entry in entries]
    return [f for p in paths if p.exists() for f in ([p] if p.is_file() else sorted(p.rglob("*.py")))]


def test_the_engine_imports_neither_the_grid_nor_the_config():
    for path in files(ENGINE):
        upward = {m for m in imported_modules(path)
                  if m.split(".")[:2] in (["gradual_transfer", "grid"], ["gradual_transfer", "config"])}
        assert not upward, f"{path.relative_to(REPO)} imports {sorted(upward)}"


def test_planning_imports_no_torch():
    for path in files(PLANNING):
        heavy = {m for m in imported_modules(path) if m.split(".")[0] in {"torch", "numpy", "snakemake"}}
        assert not heavy, f"{path.relative_to(REPO)} imports {sorted(heavy)}"
