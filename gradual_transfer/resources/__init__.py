"""Data files shipped with the library (TIMIT speaker lists and phone map, from the
references of the Kaldi TIMIT recipe)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

RESOURCES = Path(__file__).resolve().parent
TIMIT_PHONE_MAP = RESOURCES / "timit" / "phones.61-48-39.map"


@lru_cache(maxsize=None)
def timit_speakers(which: str) -> list[str]:
    """Speaker ids (lower case) of TIMIT's 50-speaker dev set ("dev") or 24-speaker core
    test set ("core_test"), in the order of the lists."""
    path = RESOURCES / "timit" / f"{which}_speakers.txt"
    return [line.strip().lower() for line in path.read_text().splitlines() if line.strip()]
