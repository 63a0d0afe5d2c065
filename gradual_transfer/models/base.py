"""The shape every architecture shares: an ordered body of named layer groups and a head.

Gradual transfer counts layer groups: l_c = k holds the first k groups constant. With the body
an ``nn.Sequential`` of named children (as torchvision's ``densenet.py`` builds its features),
a group is a name, freezing is a loop over names, and running a prefix of the body (to cache
the output of frozen groups) is slicing.
"""

from __future__ import annotations

import torch
from torch import nn


class GroupedNet(nn.Module):
    """``head(body(x))`` where ``body`` is an ``nn.Sequential`` of named layer groups.

    ``frozen_groups`` (l_c) is part of the model's state of mind: the first l_c groups have
    ``requires_grad=False`` and stay in eval mode even when the model is put in train mode, so
    their BatchNorm running statistics never change and their dropout never fires.
    """

    body: nn.Sequential
    head: nn.Linear

    def __init__(self) -> None:
        super().__init__()
        self.frozen_groups = 0

    @property
    def group_names(self) -> list[str]:
        return list(self.body._modules)

    @property
    def num_groups(self) -> int:
        """L_H: the number of layer groups below the head."""
        return len(self.body)

    def forward(self, x: torch.Tensor, start_group: int = 0) -> torch.Tensor:
        """Logits; with `start_group` = k, `x` is the output of group k (the first k groups were
        run before, e.g. their output cached while they are frozen)."""
        return self.head(self.body[start_group:](x))

    def forward_groups(self, x: torch.Tensor, start: int = 0, stop: int | None = None) -> torch.Tensor:
        """Run groups ``start..stop-1`` only (e.g. the frozen prefix, whose output can be cached)."""
        return self.body[start:stop](x)

    def freeze(self, num_groups: int) -> "GroupedNet":
        """Hold the first `num_groups` groups constant; everything after them trains."""
        if not 0 <= num_groups <= self.num_groups:
            raise ValueError(f"l_c = {num_groups} is outside 0..{self.num_groups} for {type(self).__name__}")
        self.frozen_groups = num_groups
        for index, group in enumerate(self.body):
            group.requires_grad_(index >= num_groups)
        self.head.requires_grad_(True)
        return self.train(self.training)

    def train(self, mode: bool = True) -> "GroupedNet":
        super().train(mode)
        for group in self.body[: self.frozen_groups]:
            group.eval()  # BatchNorm statistics and dropout of frozen groups never change
        return self

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]
