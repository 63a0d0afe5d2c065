"""The frozen-prefix cache: the output of the frozen groups, computed once per fine-tuning run."""

from __future__ import annotations

import logging

import torch

from gradual_transfer import device_memory
from gradual_transfer.batches import BatchSource, TensorSource, memory_format, to_device
from gradual_transfer.models import GroupedNet
from gradual_transfer.recipe import RuntimeOptions
from gradual_transfer.steps import autocast

log = logging.getLogger(__name__)


@torch.no_grad()
def frozen_output(model: GroupedNet, source: BatchSource, batch_size: int, device: torch.device,
                  options: RuntimeOptions) -> TensorSource | None:
    """`source` as the output of the model's frozen groups, computed once (docs/method.md, "Frozen-prefix cache").

    Frozen groups are fixed functions of their input (eval mode, no augmentation), so every
    epoch would compute the same values again; with them cached, fine-tuning at high l_c pays
    only for the groups that train. Kept on `device`. None when nothing is frozen, when the cache
    would exceed ``options.frozen_cache_mb`` or this job's room on the card
    (:mod:`~gradual_transfer.device_memory`), or when building it ran out of memory (logged): the
    job then trains uncached, to the same result. Its batches come in the same order as the
    source's (both draw :func:`~gradual_transfer.data.order.epoch_order`), so training sees the
    same examples.
    """
    lc = model.frozen_groups
    if lc == 0 or options.frozen_cache_mb <= 0:
        return None
    model.eval()
    n = len(source)
    first, _ = next(iter(source.batches(1, None)))
    with autocast(device, options):
        one = model.forward_groups(to_device(first, device, options), 0, lc)
    size_mb = one.numel() * one.element_size() * n / 2**20
    if size_mb > options.frozen_cache_mb:
        log.info("frozen groups' output not cached: %.0f MB > runtime frozen_cache_mb = %d", size_mb,
                 options.frozen_cache_mb)
        return None
    no_room = device_memory.no_room(size_mb, device)
    if no_room:
        log.info("frozen groups' output not cached: %s", no_room)
        return None
    try:
        outputs, targets = _fill(model, source, batch_size, device, options, one)
    except torch.OutOfMemoryError:
        outputs = None
    if outputs is None:  # (out here, the error's traceback no longer holds the half-built cache)
        if device.type == "cuda":
            torch.cuda.empty_cache()  # for the other jobs on the card
        log.warning("frozen groups' output not cached: out of memory building its %.0f MB (%s); training without "
                    "the cache, to the same result (lower frozen_cache_mb for this architecture to skip the attempt)",
                    size_mb, device_memory.read(device) or device)
        return None
    log.info("cached the output of the %d frozen groups for %d examples (%.0f MB on %s)", lc, n, size_mb,
             device.type)
    return TensorSource(outputs, targets)


def _fill(model: GroupedNet, source: BatchSource, batch_size: int, device: torch.device, options: RuntimeOptions,
          one: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The frozen groups' output of every example, allocated once at its final size and filled
    batch by batch: at its peak the cache needs itself and one batch, not twice itself (chunks,
    then their concatenation)."""
    n, lc = len(source), model.frozen_groups
    layout = {"memory_format": memory_format(options)} if one.dim() == 4 else {}
    outputs = torch.empty((n, *one.shape[1:]), dtype=one.dtype, device=device, **layout)
    targets = torch.empty(n, dtype=torch.long, device=device)
    start = 0
    for x, y in source.batches(batch_size, None):
        with autocast(device, options):
            outputs[start:start + len(y)] = model.forward_groups(to_device(x, device, options), 0, lc)
        targets[start:start + len(y)] = y
        start += len(y)
    return outputs, targets
