"""Building the secondary model of gradual transfer from a primary model, in either family of
:mod:`gradual_transfer.families`:

- ``copy`` (the paper): every layer group of the primary model, a fresh head sized for the
  target task, the first l_c groups held constant;
- ``reinit`` (Yosinski et al. 2014): only the first l_c groups of the primary model, held
  constant; every group above them and the head initialised at random.

Both draw the fresh layers from the job's seed after ``torch.manual_seed(seed)``, as a primary
model does. So a ``reinit`` transfer's upper groups start exactly where the target's own primary
model of that seed started: its control (the target's primary transferred to itself) differs
from that primary only in holding its own trained first l_c groups constant.

The head warm-up of ``copy`` transfers (train the new head alone before the unfrozen groups
join) is part of the training loop: :func:`gradual_transfer.train.fit` with
``recipe.head_warmup_iterations``.
"""

from __future__ import annotations

import torch

from gradual_transfer.architectures import network
from gradual_transfer.checkpoints import CheckpointError
from gradual_transfer.families import family_problem
from gradual_transfer.models import GroupedNet, build_model


def transfer_model(source: dict, arch_name: str, arch: dict, num_classes: int, lc: int, seed: int,
                   upper_groups: str = "copy") -> GroupedNet:
    """The model for the target task: from `source` (a loaded primary model file) every group
    (``copy``) or the first `lc` groups (``reinit``), the rest of the network and a head of
    `num_classes` outputs initialised from `seed`, the first `lc` groups frozen."""
    problem = family_problem(upper_groups, lc)
    if problem:
        raise ValueError(problem)
    if source["arch_name"] != arch_name or network(source["arch"]) != network(arch):
        raise CheckpointError(
            f"the source model is a {source['arch_name']!r} model with settings {source['arch']}; "
            f"a transfer to {arch_name!r} with {arch} cannot copy its layers."
        )
    torch.manual_seed(seed)
    model = build_model(arch, num_classes, source["input_shape"], name=arch_name)
    copied = model.group_names if upper_groups == "copy" else model.group_names[:lc]
    prefixes = tuple(f"body.{name}." for name in copied)
    body = {k: v for k, v in source["state_dict"].items() if k.startswith(prefixes)}
    missing, unexpected = model.load_state_dict(body, strict=False)
    if unexpected or any(k.startswith(prefixes) for k in missing):
        raise CheckpointError(f"source model does not fit: missing {missing}, unexpected {unexpected}")
    return model.freeze(lc)
