"""Building the secondary model of gradual transfer: copy every layer group of a primary
model, give it a fresh head sized for the target task, and hold the first l_c groups constant.

The head warm-up (train the new head alone before the unfrozen groups join) is part of the
training loop: :func:`gradual_transfer.train.fit` with ``recipe.head_warmup_iterations``.
"""

from __future__ import annotations

import torch

from gradual_transfer.checkpoints import CheckpointError
from gradual_transfer.grid import network
from gradual_transfer.models import GroupedNet, build_model


def transfer_model(source: dict, arch_name: str, arch: dict, num_classes: int, lc: int, seed: int) -> GroupedNet:
    """The model for the target task: the body of `source` (a loaded primary model file),
    a fresh head of `num_classes` outputs (initialised from `seed`), the first `lc` groups frozen."""
    if source["arch_name"] != arch_name or network(source["arch"]) != network(arch):
        raise CheckpointError(
            f"the source model is a {source['arch_name']!r} model with settings {source['arch']}; "
            f"a transfer to {arch_name!r} with {arch} cannot copy its layers."
        )
    torch.manual_seed(seed)
    model = build_model(arch, num_classes, source["input_shape"])
    body = {k: v for k, v in source["state_dict"].items() if k.startswith("body.")}
    missing, unexpected = model.load_state_dict(body, strict=False)
    if unexpected or any(not k.startswith("head.") for k in missing):
        raise CheckpointError(f"source model does not fit: missing {missing}, unexpected {unexpected}")
    return model.freeze(lc)
