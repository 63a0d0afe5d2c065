"""The dataset-kind registry (data/kinds.py) is the one owner of what a kind is: each kind's reader
module answers its layout, files, placeholders, checks and preparation, and no other module of
the library names a dataset."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tokenize
from pathlib import Path

import pytest

from gradual_transfer.data import layouts
from gradual_transfer.data.kinds import KINDS, reader
from conftest import REPO

LIBRARY = REPO / "gradual_transfer"
PAPER_DATASETS = re.compile(r"cifar10|cifar100|svhn|timit|iemocap", re.IGNORECASE)


def _module_file(module: str) -> Path:
    return REPO / (module.replace(".", "/") + ".py")


def _module_name(path: Path) -> str:
    return ".".join(path.relative_to(REPO).with_suffix("").parts)


# Where a dataset's name may stand: the registry, each kind's reader module and the modules it is
# cut into by concept (data/<kind>_*.py: TIMIT's labels, a Kaldi directory's tables), and the demo
# package (stand-ins of the paper's corpora in their formats; it imports its generators by name,
# so that tests/test_envs.py sees what the demo rule's environment must hold).
OWNERS = ({LIBRARY / "data" / "kinds.py"} | {_module_file(kind.reader) for kind in KINDS.values()}
          | {path for kind in KINDS.values() for path in (LIBRARY / "data").glob(f"{kind.name}_*.py")})
DEMO = LIBRARY / "demo"


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
                found.add(id(first.value))
    return found


def dataset_names_in(path: Path, root: Path = REPO) -> list[str]:
    """Every string (docstrings aside: prose may mention the paper's corpora) and every identifier
    of `path`'s code that holds a paper dataset's name; an import of a kind's reader module is
    a dependency on the owner, not a second owner, and is left out (as is an import of a module a
    reader is cut into)."""
    tree = ast.parse(path.read_text())
    docstrings = _docstrings(tree)
    readers = {module_name for module_name in map(_module_name, OWNERS)} - {"gradual_transfer.data.kinds"}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module in readers:
            continue
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            text = node.value
        elif isinstance(node, ast.Name):
            text = node.id
        elif isinstance(node, ast.Attribute):
            text = node.attr
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            text = node.name
        elif isinstance(node, ast.arg):
            text = node.arg
        elif isinstance(node, ast.alias):
            text = f"{node.name} {node.asname or ''}"
        else:
            continue
        if PAPER_DATASETS.search(text):
            found.append(f"{path.relative_to(root)}:{node.lineno}: {text[:60]!r}")
    return found


def test_dataset_names_appear_only_in_their_kinds_modules_and_the_registry():
    others = [path for path in sorted(LIBRARY.rglob("*.py")) if path not in OWNERS and DEMO not in path.parents]
    assert len(others) > 40  # the scan sees the whole library
    named = [line for path in others for line in dataset_names_in(path)]
    assert named == [], "\n".join(named)


# The rules ask the plan (gradual_transfer/plan) by kind and speech role, never by a dataset's name.
RULE_FILES = [REPO / "Snakefile", *sorted((REPO / "workflow").rglob("*.smk"))]
CODE_TOKENS = {tokenize.NAME, tokenize.STRING, getattr(tokenize, "FSTRING_MIDDLE", tokenize.STRING)}


def dataset_names_in_rules(path: Path, root: Path = REPO) -> list[str]:
    """Every name and string of a rule file's code that holds a paper dataset's name; comments
    and docstrings (triple-quoted) are prose and may name the paper's corpora."""
    found = []
    with tokenize.open(path) as lines:
        for token in tokenize.generate_tokens(lines.readline):
            text = token.string
            if token.type not in CODE_TOKENS or text.lstrip("rbfuRBFU").startswith(('"""', "'''")):
                continue
            if PAPER_DATASETS.search(text):
                found.append(f"{path.relative_to(root)}:{token.start[0]}: {text[:60]!r}")
    return found


def test_no_rule_names_a_dataset():
    assert len(RULE_FILES) >= 7  # the scan sees the Snakefile and every rule file
    named = [line for path in RULE_FILES for line in dataset_names_in_rules(path)]
    assert named == [], "\n".join(named)


def test_the_rule_scan_finds_a_dataset_named_in_code(tmp_path):
    stray = tmp_path / "stray.smk"
    stray.write_text('# TIMIT in a comment is prose\n\n\nrule timit_stats:\n    """Prose: IEMOCAP."""\n'
                     '    input:\n        f"{OUT}/features/svhn/all.arrow",\n')
    found = [line.split(": ", 1)[1] for line in dataset_names_in_rules(stray, tmp_path)]
    assert found == ["'timit_stats'", "'f\"{OUT}/features/svhn/all.arrow\"'"]


def test_the_scan_finds_a_dataset_named_outside_its_owner(tmp_path):
    stray = tmp_path / "stray.py"
    stray.write_text('"""Prose may name TIMIT."""\n\nfrom gradual_transfer.data.timit import PhoneMap\n\n\n'
                     'def rate(dataset):\n    return 8000 if dataset == "timit" else 16000\n\n\n'
                     'def extract_iemocap():\n    pass\n')
    found = sorted(line.split(": ", 1)[1] for line in dataset_names_in(stray, tmp_path))
    assert found == ["'extract_iemocap'", "'timit'"]


@pytest.mark.parametrize("name", sorted(KINDS))
def test_every_kind_has_a_reader_that_answers_the_registry(name):
    kind = KINDS[name]
    module = reader(kind)
    assert isinstance(module.LAYOUT[name], str) and "<root>" in module.LAYOUT[name]
    for function in ("missing_entries", "write_placeholders", "corpus_files"):
        assert callable(getattr(module, function)), f"{kind.reader} lacks {function}"
    steps = ("prepare_as_configured",) if kind.is_image else ("extract", "extract_as_configured")
    for function in steps:
        assert callable(getattr(module, function)), f"{kind.reader} lacks {function}"
    if kind.data_checks:
        assert callable(module.data_errors)


@pytest.mark.parametrize("name", sorted(KINDS))
def test_placeholders_pass_the_layout_check_and_an_empty_root_is_told_the_layout(name, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    message = layouts.check_root(name, empty, {})
    assert message.startswith(f"{empty} is not laid out as expected: missing ")
    assert f"Expected {layouts.expected(name)}." in message
    layouts.write_placeholders(name, tmp_path / "fake", {})
    assert layouts.check_root(name, tmp_path / "fake", {}) is None


def test_the_layout_checks_import_no_torch_and_no_audio_reader(tmp_path):
    """They run when Snakemake parses the workflow: every kind's layout, placeholders and files
    through the registry, with none of the heavy libraries imported."""
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from gradual_transfer.data import layouts\n"
        "from gradual_transfer.data.kinds import KINDS\n"
        f"base = Path({str(tmp_path)!r})\n"
        "for name in KINDS:\n"
        "    layouts.write_placeholders(name, base / name, {})\n"
        "    assert layouts.check_root(name, base / name, {}) is None\n"
        "    layouts.corpus_files(name, base / name, 'train', {})\n"
        "print(sorted(m for m in ('torch', 'torchvision', 'torchaudio', 'soundfile', 'PIL') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
