"""The on-disk layout each kind of dataset expects (:mod:`gradual_transfer.data.kinds`), a
cheap check of a data root against it, and the files a job reads from it.

The check runs when the workflow is parsed, so a wrong path fails in a second with the layout
spelt out, not an hour later inside a job. It looks only at names (no file is opened). Every
function takes the dataset's *kind*; a dataset of the user's own (``imagefolder``) is answered
by its reader's module, the paper's five here.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from gradual_transfer.data.kinds import KINDS

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



def _own(kind: str):
    """The module that owns a kind of the user's own (its layout, files and placeholders)."""
    import importlib

    return importlib.import_module(KINDS[kind].reader)


def expected(kind: str) -> str:
    """The layout of a kind, in words (what the config check prints)."""
    return EXPECTED[kind] if kind in EXPECTED else _own(kind).EXPECTED


_FIX = ("Set this root in your config to your copy{download}, or run the demo on generated data: "
        "make demo.")


def _child(directory: Path, name: str) -> Path | None:
    """`directory/name`, matching the name in either case (TIMIT ships both ways)."""
    for candidate in (name, name.lower(), name.upper()):
        if (directory / candidate).exists():
            return directory / candidate
    return None


def image_files(kind: str, entry: dict | None = None) -> list[str]:
    """The files of an image kind, relative to its root."""
    if kind == "cifar10":
        return [f"cifar-10-batches-py/{n}" for n in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"]]
    if kind == "cifar100":
        return [f"cifar-100-python/{n}" for n in ("train", "test", "meta")]
    if kind == "svhn":
        return ["train_32x32.mat", "test_32x32.mat"] + (["extra_32x32.mat"] if (entry or {}).get("use_extra") else [])
    raise ValueError(f"{kind!r} is not an image kind")


def missing_entries(kind: str, root: Path, entry: dict | None = None) -> list[str]:
    """Names the layout requires that are absent under `root` (empty when it looks right)."""
    entry = entry or {}
    if kind in ("cifar10", "cifar100", "svhn"):
        return [str(root / n) for n in image_files(kind, entry) if not (root / n).is_file()]
    if kind == "timit":
        missing = []
        for part in ("TRAIN", "TEST"):
            split = _child(root, part)
            if split is None or not any(p.name.upper().startswith("DR") for p in split.iterdir()):
                missing.append(str(root / part / "DR1..DR8"))
        return missing
    if kind == "iemocap":
        missing = []
        for s in range(1, 6):
            session = root / f"Session{s}"
            for sub in ("sentences/wav", "dialog/EmoEvaluation"):
                if not (session / sub).is_dir():
                    missing.append(str(session / sub))
        return missing
    return _own(kind).missing_entries(root, entry)


def write_placeholders(kind: str, root: str | Path, entry: dict | None = None) -> None:
    """Empty files and folders with exactly the names :func:`check_root` looks for: a fake data
    tree on which Snakemake can plan the paper's grid (dry runs, tests, benchmarks)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    if kind == "timit":
        for part in ("TRAIN", "TEST"):
            (root / part / "DR1").mkdir(parents=True, exist_ok=True)
        return
    if kind == "iemocap":
        for s in range(1, 6):
            for sub in ("sentences/wav", "dialog/EmoEvaluation"):
                (root / f"Session{s}" / sub).mkdir(parents=True, exist_ok=True)
        return
    if kind not in EXPECTED:
        _own(kind).write_placeholders(root, entry or {})
        return
    for name in missing_entries(kind, root, {"use_extra": True, **(entry or {})}):
        Path(name).parent.mkdir(parents=True, exist_ok=True)
        Path(name).touch()


def check_root(kind: str, root: Path, entry: dict | None = None) -> str | None:
    """None when `root` looks like `kind`; otherwise a message with the layout and the fix."""
    root = Path(root)
    download = " (or set download: true on a machine with internet)" if KINDS[kind].downloadable else ""
    fix = _FIX.format(download=download)
    if not root.is_dir():
        return f"{root} does not exist or is not a directory. Expected {expected(kind)}. {fix}"
    missing = missing_entries(kind, root, entry)
    if missing:
        shown = ", ".join(missing[:4]) + (f" and {len(missing) - 4} more" if len(missing) > 4 else "")
        return f"{root} is not laid out as expected: missing {shown}. Expected {expected(kind)}. {fix}"
    return None


# --- what a job reads: the corpus content it depends on ---------------------------------------

def corpus_files(kind: str, root: str | Path, split: str | None = None, entry: dict | None = None) -> list[Path]:
    """The files a reader takes from `root` (for TIMIT, those of one split: TRAIN for train,
    the dev or core-test speakers' folders of TEST for dev and test). Absent files are simply
    not listed: this never fails, the readers report what is wrong."""
    root = Path(root)
    entry = entry or {}
    if kind in ("cifar10", "cifar100", "svhn"):
        return [root / name for name in image_files(kind, entry) if (root / name).is_file()]
    if kind == "timit":
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
    if kind == "iemocap":
        files = []
        for s in range(1, 6):
            session = root / f"Session{s}"
            files += sorted((session / "dialog" / "EmoEvaluation").glob("*.txt"))
            files += sorted((session / "sentences" / "wav").glob("*/*.wav"))
        return files
    return _own(kind).corpus_files(root, entry)


def content_fingerprint(root: str | Path, files: list[Path]) -> str:
    """Names, sizes and modification times of `files` in one short string: a job whose params
    hold it re-runs when a file it reads is replaced, added or removed (the folder's own time
    does not change when a file deep inside it is replaced)."""
    digest = hashlib.sha1()
    for path in files:
        stat = os.stat(path)
        digest.update(f"{os.path.relpath(path, root)}\t{stat.st_size}\t{stat.st_mtime_ns}\n".encode())
    return f"{len(files)} files, sha1 {digest.hexdigest()[:16]}"
