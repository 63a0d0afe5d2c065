"""A job's ``params`` as Snakemake compares them (by ``repr``): plain builtins, sorted keys."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def canonical(value: Any) -> Any:
    """A hyper-parameter as plain builtins with sorted keys, so that Snakemake's ``repr``-based
    params comparison sees a change only when a value changes (not key order, not numpy types)."""
    if isinstance(value, dict):
        return {str(k): canonical(value[k]) for k in sorted(value, key=str)}
    if isinstance(value, (list, tuple)):
        return [canonical(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        return value.item()  # numpy scalar
    if isinstance(value, Path):
        return str(value)
    return value
