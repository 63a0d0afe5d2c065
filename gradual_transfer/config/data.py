"""The checks that look at the disk before any job is planned: the data roots of the datasets the
enabled experiments use (their layout, and what each kind's reader checks: IEMOCAP's folds, an
image folder's classes, a Kaldi data directory's tables, classes and folds), the files tasks
name (a Kaldi alignment), and `outdir` (a folder of its own). No corpus file is decoded."""

from __future__ import annotations

from pathlib import Path

from gradual_transfer.data import layouts
from gradual_transfer.data.kinds import kind_of, reader, task_kind


def used_datasets(config: dict) -> list[str]:
    """Datasets read by the enabled experiments, in config order."""
    used = []
    for exp in config["experiments"].values():
        if exp["enabled"]:
            used += [config["tasks"][t]["dataset"] for t in exp["tasks"]]
    return [d for d in config["datasets"] if d in used]


def demo_datasets(config: dict) -> list[str]:
    """Datasets whose root the demo rules generate."""
    return [d for d in config.get("demo", {}) if d in config["datasets"]]


# Where no outdir may be: the system's own trees (and anything inside them), and folders that
# hold others' files (themselves: a folder of one's own inside them is fine). An outdir there
# scatters corpora/, logs/, models/ and a lock file among what is already there.
SYSTEM_TREES = ("/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/proc", "/sbin", "/sys",
                "/usr")
SHARED_FOLDERS = ("/", "/home", "/media", "/mnt", "/opt", "/root", "/run", "/srv", "/tmp", "/var")


def outdir_errors(config: dict, base: Path = Path(".")) -> list[str]:
    """`outdir` must be a folder of its own: not a file, not `/` or a shared folder itself (a
    home directory included), nothing inside a system tree."""
    given = config["outdir"]
    path = (Path(base) / given).resolve()
    if path.exists() and not path.is_dir():
        return [f"outdir: {given} is a file, not a folder. Set outdir to a folder (it is made when missing)."]
    try:
        home = Path.home().resolve()
    except (KeyError, RuntimeError):  # no home directory known
        home = None
    if str(path) in SHARED_FOLDERS or path == home:
        shown = given if str(path) == str(given) else f"{given} ({path})"
        return [f"outdir: {shown} is a folder that holds other files than this workflow's. Set outdir to a folder "
                f"of its own (e.g. results)."]
    tree = next((t for t in SYSTEM_TREES if path == Path(t) or Path(t) in path.parents), None)
    if tree is not None:
        return [f"outdir: {given} is inside {tree}, which holds the system's own files. Set outdir to a folder of "
                f"your own, e.g. results."]
    return []


def task_file_errors(config: dict, base: Path = Path(".")) -> list[str]:
    """The files the tasks of the enabled experiments name (a TIMIT task's Kaldi alignment), each
    checked by the reader of the task's kind (its ``task_file_errors``, where it has one)."""
    tasks = dict.fromkeys(t for exp in config["experiments"].values() if exp["enabled"] for t in exp["tasks"])
    problems = []
    for name in tasks:
        module = reader(task_kind(config, name))
        if hasattr(module, "task_file_errors"):
            problems += module.task_file_errors(name, config["tasks"][name], Path(base))
    return problems


def data_root_errors(config: dict, base: Path = Path(".")) -> list[str]:
    generated = set(demo_datasets(config))
    problems = []
    for dataset in used_datasets(config):
        if dataset in generated:
            continue
        entry = config["datasets"][dataset]
        if entry.get("download"):
            continue  # torchvision fetches it into the root during preparation
        kind = kind_of(config, dataset).name
        problem = layouts.check_root(kind, base / entry["root"], entry)
        if problem:
            problems.append(f"datasets.{dataset}.root: {problem}")
        else:  # what only the kind's reader knows: its classes, folds, tables
            problems += data_errors(config, dataset, base / entry["root"])
    return problems


def data_errors(config: dict, dataset: str, root: Path) -> list[str]:
    """The checks of a dataset's data that its kind's reader module owns (``data_errors``:
    IEMOCAP's folds, an image folder's classes, a Kaldi data directory's tables), if any."""
    kind = kind_of(config, dataset)
    return reader(kind).data_errors(config, dataset, Path(root)) if kind.data_checks else []
