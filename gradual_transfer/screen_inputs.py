"""The names of a screen job's input files, the one contract between the plan that lists them
(:mod:`gradual_transfer.plan.screen`) and the job that reads them (:mod:`gradual_transfer.screen`).
Its own module so that a screen job imports neither the plan nor the config (its rule's
environment has no jsonschema or pyyaml)."""

from __future__ import annotations

from typing import Mapping


def unit_key(role: str, index: int, lc: int | None = None) -> str:
    """The name of a unit's input file among a screen job's inputs: ``source_0``, ``train_1``,
    ``transfer_0_lc3``."""
    return f"{role}_{index}" if lc is None else f"{role}_{index}_lc{lc}"


def unit_inputs(inputs: Mapping[str, str], index: int) -> dict[str, str]:
    """The input files of one unit of a screen job by role (:func:`unit_key`'s inverse)."""
    suffix = f"_{index}"
    return {key[: -len(suffix)]: path for key, path in inputs.items() if key.endswith(suffix)}
