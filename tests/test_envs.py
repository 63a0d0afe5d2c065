"""The rules' conda environments: every pin agrees with pyproject.toml, every third-party module
a rule's script imports (through the library, at any depth, in any function) is provided by that
rule's environment, and an environment holds nothing its rules do not import."""

from __future__ import annotations

import ast
import functools
import re
import sys
import tomllib
from importlib.metadata import packages_distributions as _packages_distributions
from pathlib import Path

import yaml

from conftest import REPO

# Imports of a submodule that need a distribution of their own.
SUBMODULE_DISTRIBUTIONS = {"torch.utils.tensorboard": "tensorboard"}


packages_distributions = functools.cache(_packages_distributions)  # a scan of every installed package


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(requirements: list[str]) -> dict[str, str]:
    return {normalise(r.split("==")[0]): r.split("==")[1] for r in requirements}


def project_pins() -> dict[str, str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = [r for group in project["optional-dependencies"].values() for r in group]
    return pins(project["dependencies"] + extras)


def env_pins(env: Path) -> dict[str, str]:
    entries = yaml.safe_load(env.read_text())["dependencies"]
    return pins(next(e["pip"] for e in entries if isinstance(e, dict)))


def rules() -> dict[str, tuple[str, str]]:
    """rule → (conda env, script), read from the rule files (`use rule` inherits both)."""
    found: dict[str, tuple[str, str]] = {}
    for path in [REPO / "Snakefile", *sorted((REPO / "workflow" / "rules").glob("*.smk"))]:
        text = path.read_text()
        for match in re.finditer(r"^rule (\w+):\n(.*?)(?=^\S|\Z)", text, re.M | re.S):
            body = match.group(2)
            conda = re.search(r'conda:\s*\n\s*"([^"]+)"', body)
            script = re.search(r'script:\s*\n\s*"([^"]+)"', body)
            if conda and script:
                found[match.group(1)] = (Path(conda.group(1)).name, Path(script.group(1)).name)
        for match in re.finditer(r"^use rule (\w+) as (\w+)", text, re.M):
            found[match.group(2)] = found[match.group(1)]
    return found


def module_file(name: str) -> Path | None:
    path = REPO.joinpath(*name.split("."))
    for candidate in (path.with_suffix(".py"), path / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def distributions_imported(script: Path) -> set[str]:
    """Third-party distributions imported by a script and, transitively, by every library module
    it imports (module level or inside functions: a function-level import runs when called)."""
    modules = packages_distributions()
    seen: set[Path] = set()
    found: set[str] = set()
    todo = [script]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top == "gradual_transfer":
                    if (library := module_file(name)) is not None:
                        todo.append(library)
                elif name in SUBMODULE_DISTRIBUTIONS:
                    found.add(SUBMODULE_DISTRIBUTIONS[name])
                elif top not in sys.stdlib_module_names and top != "__future__":
                    found.update(normalise(d) for d in modules[top])
    return found


def test_every_env_pin_agrees_with_pyproject():
    project = project_pins()
    for env in sorted((REPO / "envs").glob("*.yaml")):
        for name, version in env_pins(env).items():
            assert project.get(name) == version, f"{env.name}: {name}=={version}, pyproject.toml: {project.get(name)}"


def test_each_rule_env_provides_what_its_script_imports_and_nothing_more():
    by_env: dict[str, set[str]] = {}
    found = rules()
    assert {"demo_corpus", "image_primary", "asr_control", "decode_asr", "figure_curves"} <= set(found)
    for rule, (env, script) in found.items():
        needed = distributions_imported(REPO / "scripts" / script)
        provided = set(env_pins(REPO / "envs" / env))
        assert needed <= provided, f"rule {rule} ({script}) imports {sorted(needed - provided)}, not in envs/{env}"
        by_env.setdefault(env, set()).update(needed)
    for env, needed in by_env.items():
        extra = set(env_pins(REPO / "envs" / env)) - needed
        assert not extra, f"envs/{env} installs {sorted(extra)}, which none of its rules imports"


def test_the_scan_follows_the_library_and_function_level_imports():
    train = distributions_imported(REPO / "scripts" / "train.py")
    assert {"torch", "kaldiio", "kaldialign", "tensorboard"} <= train  # kaldiio: inside a function of io.py
    assert "torch" not in distributions_imported(REPO / "scripts" / "demo_corpus.py")
