"""The on-disk layout each reader expects, and a cheap check of a data root against it.

The check runs when the workflow is parsed, so a wrong path fails in a second with the layout
spelt out, not an hour later inside a job. It looks only at names (no file is opened).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

EXPECTED = {
    "cifar10": "<root>/cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta} "
               "(the python version of CIFAR-10, as torchvision stores it)",
    "cifar100": "<root>/cifar-100-python/{train, test, meta} "
                "(the python version of CIFAR-100, as torchvision stores it)",
    "svhn": "<root>/{train_32x32.mat, test_32x32.mat, extra_32x32.mat} (SVHN format 2, cropped digits)",
    "timit": "<root>/TRAIN/DR1..DR8/<speaker>/<utt>.WAV + .PHN and <root>/TEST/... "
             "(LDC93S1; upper or lower case names)",
    "iemocap": "<root>/Session1..Session5/sentences/wav/<dialog>/<utt>.wav and "
               "<root>/Session1..Session5/dialog/EmoEvaluation/<dialog>.txt (IEMOCAP_full_release)",
}

_FIX = ("Set datasets.{dataset}.root in your config to your copy{download}, or run the demo on "
        "generated data: make demo.")


def _child(directory: Path, name: str) -> Path | None:
    """`directory/name`, matching the name in either case (TIMIT ships both ways)."""
    for candidate in (name, name.lower(), name.upper()):
        if (directory / candidate).exists():
            return directory / candidate
    return None


def image_files(dataset: str, entry: dict | None = None) -> list[str]:
    """The files of an image dataset, relative to its root."""
    if dataset == "cifar10":
        return [f"cifar-10-batches-py/{n}" for n in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"]]
    if dataset == "cifar100":
        return [f"cifar-100-python/{n}" for n in ("train", "test", "meta")]
    if dataset == "svhn":
        return ["train_32x32.mat", "test_32x32.mat"] + (["extra_32x32.mat"] if (entry or {}).get("use_extra") else [])
    raise ValueError(f"{dataset!r} is not an image dataset")


def missing_entries(dataset: str, root: Path, entry: dict | None = None) -> list[str]:
    """Names the layout requires that are absent under `root` (empty when it looks right)."""
    entry = entry or {}
    if dataset in ("cifar10", "cifar100", "svhn"):
        return [str(root / n) for n in image_files(dataset, entry) if not (root / n).is_file()]
    if dataset == "timit":
        missing = []
        for part in ("TRAIN", "TEST"):
            split = _child(root, part)
            if split is None or not any(p.name.upper().startswith("DR") for p in split.iterdir()):
                missing.append(str(root / part / "DR1..DR8"))
        return missing
    if dataset == "iemocap":
        missing = []
        for s in range(1, 6):
            session = root / f"Session{s}"
            for sub in ("sentences/wav", "dialog/EmoEvaluation"):
                if not (session / sub).is_dir():
                    missing.append(str(session / sub))
        return missing
    raise ValueError(f"unknown dataset {dataset!r}")


def write_placeholders(dataset: str, root: str | Path, entry: dict | None = None) -> None:
    """Empty files and folders with exactly the names :func:`check_root` looks for: a fake data
    tree on which Snakemake can plan the paper's grid (dry runs, tests, benchmarks)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    if dataset == "timit":
        for part in ("TRAIN", "TEST"):
            (root / part / "DR1").mkdir(parents=True, exist_ok=True)
        return
    if dataset == "iemocap":
        for s in range(1, 6):
            for sub in ("sentences/wav", "dialog/EmoEvaluation"):
                (root / f"Session{s}" / sub).mkdir(parents=True, exist_ok=True)
        return
    for name in missing_entries(dataset, root, {"use_extra": True, **(entry or {})}):
        Path(name).parent.mkdir(parents=True, exist_ok=True)
        Path(name).touch()


def check_root(dataset: str, root: Path, entry: dict | None = None) -> str | None:
    """None when `root` looks like `dataset`; otherwise a message with the layout and the fix."""
    root = Path(root)
    download = " (or set download: true on a machine with internet)" if dataset in ("cifar10", "cifar100", "svhn") else ""
    fix = _FIX.format(dataset=dataset, download=download)
    if not root.is_dir():
        return f"{root} does not exist or is not a directory. Expected {EXPECTED[dataset]}. {fix}"
    missing = missing_entries(dataset, root, entry)
    if missing:
        shown = ", ".join(missing[:4]) + (f" and {len(missing) - 4} more" if len(missing) > 4 else "")
        return f"{root} is not laid out as expected: missing {shown}. Expected {EXPECTED[dataset]}. {fix}"
    return None


# --- what a job reads: the corpus content it depends on ---------------------------------------

def corpus_files(dataset: str, root: str | Path, split: str | None = None, entry: dict | None = None) -> list[Path]:
    """The files a reader takes from `root` (for TIMIT, those of one split: TRAIN for train,
    the dev or core-test speakers' folders of TEST for dev and test). Absent files are simply
    not listed: this never fails, the readers report what is wrong."""
    root = Path(root)
    entry = entry or {}
    if dataset in ("cifar10", "cifar100", "svhn"):
        return [root / name for name in image_files(dataset, entry) if (root / name).is_file()]
    if dataset == "timit":
        from gradual_transfer import resources

        part = _child(root, "TRAIN" if split == "train" else "TEST")
        if part is None or not part.is_dir():
            return []
        wanted = None if split == "train" else set(resources.timit_speakers("dev" if split == "dev" else "core_test"))
        files = []
        for region in sorted(p for p in part.iterdir() if p.is_dir() and p.name.upper().startswith("DR")):
            for speaker in sorted(p for p in region.iterdir() if p.is_dir()):
                if wanted is None or speaker.name.lower() in wanted:
                    files += sorted(p for p in speaker.iterdir() if p.is_file())
        return files
    if dataset == "iemocap":
        files = []
        for s in range(1, 6):
            session = root / f"Session{s}"
            files += sorted((session / "dialog" / "EmoEvaluation").glob("*.txt"))
            files += sorted((session / "sentences" / "wav").glob("*/*.wav"))
        return files
    raise ValueError(f"unknown dataset {dataset!r}")


def content_fingerprint(root: str | Path, files: list[Path]) -> str:
    """Names, sizes and modification times of `files` in one short string: a job whose params
    hold it re-runs when a file it reads is replaced, added or removed (the folder's own time
    does not change when a file deep inside it is replaced)."""
    digest = hashlib.sha1()
    for path in files:
        stat = os.stat(path)
        digest.update(f"{os.path.relpath(path, root)}\t{stat.st_size}\t{stat.st_mtime_ns}\n".encode())
    return f"{len(files)} files, sha1 {digest.hexdigest()[:16]}"
