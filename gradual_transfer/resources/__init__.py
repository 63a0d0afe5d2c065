"""Data files shipped with the library, each read by the module of its kind (``timit/``: the
phone map and speaker lists of the Kaldi TIMIT recipe, read by :mod:`gradual_transfer.data.timit`;
the demo's TIMIT stand-in picks its speakers from the same lists)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

RESOURCES = Path(__file__).resolve().parent


@lru_cache(maxsize=None)
def listed(relative: str) -> tuple[str, ...]:
    """The entries of a shipped list (one per line, blank lines skipped), in the file's order."""
    return tuple(line.strip() for line in (RESOURCES / relative).read_text().splitlines() if line.strip())
