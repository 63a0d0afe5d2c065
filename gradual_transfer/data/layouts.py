"""The on-disk layout of each kind of dataset (:mod:`gradual_transfer.data.kinds`), a cheap check
of a data root against it, and the files a job reads from it.

The check runs when the workflow is parsed, so a wrong path fails in a second with the layout
spelt out, not an hour later inside a job. It looks only at names (no file is opened). Every
answer comes from the module that reads the kind (its ``reader`` in the registry), which says:

- ``LAYOUT``: the layout of each kind it reads, in words (what the config check prints);
- ``missing_entries(root, entry)``: what the layout requires and `root` lacks;
- ``write_placeholders(root, entry)``: empty files and folders that pass that check;
- ``corpus_files(root, entry, split=None)``: the files its preparation reads (of one split,
  where the kind has official splits that are extracted apart).

`entry` is the dataset's config entry with its ``kind`` set (a module may read several kinds).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from gradual_transfer.data.kinds import KINDS, reader


def _owner(kind: str):
    """The module that reads a kind; imported light (no torch: the layout checks run at parse time)."""
    return reader(KINDS[kind])


def _entry(kind: str, entry: dict | None) -> dict:
    return {**(entry or {}), "kind": kind}


def expected(kind: str) -> str:
    """The layout of a kind, in words (what the config check prints)."""
    return _owner(kind).LAYOUT[kind]


_FIX = ("Set this root in your config to your copy{download}, or run the demo on generated data: "
        "make demo.")


def missing_entries(kind: str, root: Path, entry: dict | None = None) -> list[str]:
    """Names the layout requires that are absent under `root` (empty when it looks right)."""
    return _owner(kind).missing_entries(Path(root), _entry(kind, entry))


def write_placeholders(kind: str, root: str | Path, entry: dict | None = None) -> None:
    """Empty files and folders with exactly the names :func:`check_root` looks for: a fake data
    tree on which Snakemake can plan the paper's grid (dry runs, tests, benchmarks)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    _owner(kind).write_placeholders(root, _entry(kind, entry))


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
    """The files a reader takes from `root` (of one split where the kind's splits are extracted
    apart, e.g. TIMIT's). Absent files are simply not listed: this never fails, the readers
    report what is wrong."""
    return _owner(kind).corpus_files(Path(root), _entry(kind, entry), split)


def content_fingerprint(root: str | Path, files: list[Path]) -> str:
    """Names, sizes and modification times of `files` in one short string: a job whose params
    hold it re-runs when a file it reads is replaced, added or removed (the folder's own time
    does not change when a file deep inside it is replaced)."""
    digest = hashlib.sha1()
    for path in files:
        stat = os.stat(path)
        digest.update(f"{os.path.relpath(path, root)}\t{stat.st_size}\t{stat.st_mtime_ns}\n".encode())
    return f"{len(files)} files, sha1 {digest.hexdigest()[:16]}"
