"""The order in which a batch source serves its examples in one pass over them."""

from __future__ import annotations

import torch


def epoch_order(n: int, generator: torch.Generator | None, device: torch.device | str = "cpu") -> torch.Tensor:
    """Indices 0..n-1 shuffled by `generator`, or in order when it is None, placed on `device`.

    Drawn on the host whatever the device: every source (memory-mapped files, tensors in
    memory, data held on a GPU, the frozen-prefix cache) then serves the same examples in the
    same order for the same generator, which is what makes them interchangeable in training."""
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    return order.to(device)
