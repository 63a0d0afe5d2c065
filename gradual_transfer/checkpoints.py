"""Model files: state dicts plus plain metadata, loaded with ``torch.load(weights_only=True)``.

A model file says which architecture (name and full config entry) it holds, its number of
classes and input shape, so a model can be rebuilt from the file alone and a file from another
architecture is refused with a clear message instead of a wall of missing-key errors.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from gradual_transfer.architectures import network
from gradual_transfer.io import atomic_path
from gradual_transfer.models import GroupedNet, build_model

FORMAT = "gradual-transfer/model/1"


class CheckpointError(RuntimeError):
    """A model or checkpoint file is unreadable or does not fit what was asked of it."""


def save_model(path: str | Path, model: GroupedNet, *, arch_name: str, arch: dict, num_classes: int,
               input_shape: list[int], meta: dict[str, Any] | None = None) -> None:
    arch = network(arch)  # what builds the network, never the l_c sweep
    state = {k: v.detach().to("cpu").clone() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        torch.save({
            "format": FORMAT, "arch_name": arch_name, "arch": arch, "num_classes": num_classes,
            "input_shape": list(input_shape), "frozen_groups": model.frozen_groups,
            "state_dict": state, "meta": meta or {},
        }, tmp)


def load_file(path: str | Path, what: str = "model", format: str = FORMAT) -> dict:
    """`torch.load` with weights_only=True, turning every failure into one clear error."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such {what} file. Run the rule that produces it first.")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - pickle/zip errors come in many types
        raise CheckpointError(
            f"{path}: not a readable {what} file (corrupt or truncated: {type(error).__name__}: {error}). "
            f"Delete it and rerun the rule that produces it."
        ) from None
    if not isinstance(data, dict) or data.get("format") != format:
        raise CheckpointError(f"{path}: not a gradual-transfer {what} file (format {format} expected).")
    return data


def load_model_file(path: str | Path, arch_name: str | None = None, arch: dict | None = None) -> dict:
    """Load a model file, checking it holds the expected network when one is given. Files
    written before the sweep was split from the network carry the `lc` list in their `arch`:
    it is dropped on loading, so they load and compare like new ones."""
    data = load_file(path)
    data["arch"] = network(data["arch"])
    if arch is not None:
        arch = network(arch)
    if arch_name is not None and data["arch_name"] != arch_name:
        raise CheckpointError(
            f"{path}: holds a {data['arch_name']!r} model, but {arch_name!r} was asked for."
        )
    if arch is not None and data["arch"] != arch:
        raise CheckpointError(
            f"{path}: was trained with architecture settings {data['arch']}, which differ from the "
            f"configured {arch}. Rerun the primary training (snakemake reruns it when the config changed)."
        )
    return data


def require_primary_of(data: dict, path: str | Path, task: str) -> None:
    """A transfer from `task` starts from the primary model of `task`: a loaded model file
    (`data`) whose stored identity says otherwise (a transfer, another task's primary, none)
    is refused, so that no result records a source it did not come from."""
    meta = data.get("meta") or {}
    kind, target = meta.get("kind"), meta.get("target")
    if kind == "primary" and target == task:
        return
    if kind is None or target is None:
        found = "holds no identity (its metadata names no kind and task)"
    elif kind == "primary":
        found = f"is the primary model of {target!r}"
    else:
        found = f"is a {kind} model ({meta.get('source')} → {target}, l_c = {meta.get('lc')})"
    raise CheckpointError(f"{path}: {found}, not a primary model of {task!r}; a transfer from {task!r} starts from "
                          f"the primary model of {task!r}.")


def model_from_file(data: dict) -> GroupedNet:
    model = build_model(data["arch"], data["num_classes"], data["input_shape"])
    model.load_state_dict(data["state_dict"])
    return model.freeze(data.get("frozen_groups", 0))
