"""The order in which a batch source serves its examples in one pass over them, and the pass
itself for every source whose examples are gathered by index where they are held."""

from __future__ import annotations

import torch


def epoch_order(n: int, generator: torch.Generator | None, device: torch.device | str = "cpu") -> torch.Tensor:
    """Indices 0..n-1 shuffled by `generator`, or in order when it is None, placed on `device`.

    Drawn on the host whatever the device: every source (memory-mapped files, tensors in
    memory, data held on a GPU, the frozen-prefix cache) then serves the same examples in the
    same order for the same generator, which is what makes them interchangeable in training."""
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    return order.to(device)


class IndexedSource:
    """Examples gathered by index on the device that holds them (data copied to a GPU once,
    the frozen-prefix cache): one pass is the same loop for every such source. A subclass sets
    ``targets`` (a tensor on that device) and says how the inputs of a batch are gathered."""

    targets: torch.Tensor

    def __len__(self) -> int:
        return len(self.targets)

    def gather(self, index: torch.Tensor) -> torch.Tensor:
        """The model inputs of the examples at `index` (a tensor on the targets' device)."""
        raise NotImplementedError

    def batches(self, batch_size: int, generator: torch.Generator | None):
        order = epoch_order(len(self), generator, self.targets.device)  # on the data's device: no copy per batch
        for start in range(0, len(self), batch_size):
            index = order[start:start + batch_size]
            yield self.gather(index), self.targets[index]
