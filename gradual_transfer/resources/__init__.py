"""Data files shipped with the library, each read by the module of its kind (``timit/``: the
phone map and speaker lists of the Kaldi TIMIT recipe, read by :mod:`gradual_transfer.data.timit`)."""

from __future__ import annotations

from pathlib import Path

RESOURCES = Path(__file__).resolve().parent
