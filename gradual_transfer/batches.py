"""Batch sources and their placement on a device: what the training step reads.

The batch order of epoch e depends only on (seed, e) (:func:`epoch_generator`), not on how many
epochs ran before, so a resumed run sees the batches an uninterrupted one would."""

from __future__ import annotations

import logging
import queue
import threading
from typing import Callable, Iterator, Protocol

import torch

from gradual_transfer import device_memory
from gradual_transfer.data.order import IndexedSource
from gradual_transfer.recipe import RuntimeOptions

log = logging.getLogger(__name__)


class BatchSource(Protocol):
    """Training or evaluation examples, served in batches of (inputs, integer targets)."""

    def __len__(self) -> int: ...

    def batches(self, batch_size: int, generator: torch.Generator | None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """All examples once; shuffled with `generator`, in order when it is None."""
        ...


class TensorSource(IndexedSource):
    """Examples held in memory as tensors; `prepare` turns a gathered batch into model input
    (e.g. uint8 pixels to normalised floats) so only batches are ever converted."""

    def __init__(self, inputs: torch.Tensor, targets: torch.Tensor,
                 prepare: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        if len(inputs) != len(targets):
            raise ValueError(f"{len(inputs)} inputs but {len(targets)} targets")
        # the targets live with the inputs: a batch is gathered by one index on their device
        self.inputs, self.targets, self.prepare = inputs, targets.long().to(inputs.device), prepare

    @property
    def resident(self) -> bool:
        """Held on a GPU (the frozen-prefix cache): no host work to prefetch."""
        return self.inputs.device.type != "cpu"

    def gather(self, index: torch.Tensor) -> torch.Tensor:
        x = self.inputs[index]
        return self.prepare(x) if self.prepare else x


def place_on_device(sources: dict, device: torch.device, budget_mb: int,
                    splits: tuple[str, ...] = ("train", "validation")) -> dict:
    """`sources` with `splits` (in that order) copied to `device` while together they fit
    `budget_mb` (``runtime.cuda.resident_data_mb``) and this job's room on the card
    (:mod:`~gradual_transfer.device_memory`); the others stay streamed from the host, which gives
    the same batches. The training set is read every step and validation every epoch; the test
    split once."""
    placed, used = dict(sources), 0.0
    if budget_mb <= 0:
        return placed
    for split in splits:
        source = sources[split]
        if not hasattr(source, "to_device"):
            continue
        size_mb = source.resident_bytes() / 2**20
        if used + size_mb > budget_mb:
            log.info("%s data stay on the host: %.0f MB would exceed runtime resident_data_mb = %d (%.0f MB used)",
                     split, size_mb, budget_mb, used)
            continue
        no_room = device_memory.no_room(size_mb, device)
        if no_room:
            log.info("%s data stay on the host: %s", split, no_room)
            continue
        try:
            placed[split] = source.to_device(device)
        except torch.OutOfMemoryError:
            log.warning("%s data stay on the host: out of memory copying %.0f MB to %s", split, size_mb, device)
            continue
        used += size_mb
        log.info("%s data on %s: %d examples, %.0f MB", split, device, len(source), size_mb)
    return placed



def pinned(x: torch.Tensor) -> torch.Tensor:
    return x.pin_memory() if x.device.type == "cpu" else x  # (a cached batch may already be on the GPU)



def memory_format(options: RuntimeOptions) -> torch.memory_format:
    """The layout of 4-D batches and convolution weights that ``channels_last`` says."""
    return torch.channels_last if options.channels_last else torch.contiguous_format



def to_device(x: torch.Tensor, device: torch.device, options: RuntimeOptions) -> torch.Tensor:
    """A batch on `device`; a 4-D one with the strides of the configured layout. Batches arrive in
    either (image pixels are stored channels-last and permuted; speech windows are contiguous),
    and cuDNN runs a convolution channels-last whenever its input is, whatever the setting says.
    (``Tensor.to(memory_format=...)`` also sets the strides of a 1-channel batch, which
    ``contiguous(memory_format=...)`` leaves alone: PyTorch counts it as both layouts.)"""
    if device.type == "cuda":
        # a copy from pageable memory blocks the host until the GPU has drained its queue;
        # from pinned memory it is queued, so the next batch is gathered while this one trains
        x = pinned(x)
    # copied as it is, then re-laid on the device: a copy to other strides would first make a
    # pageable contiguous copy on the host (and wait for the GPU)
    x = x.to(device, non_blocking=True)
    if x.dim() == 4:
        x = x.to(memory_format=memory_format(options))
    return x



def prefetched(batches: Iterator[tuple[torch.Tensor, torch.Tensor]], depth: int = 4,
               pin: bool = True) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """`batches`, gathered (and pinned) on a background thread up to `depth` ahead of the caller.

    On a GPU the training step is mostly kernel launches; gathering the next batch meanwhile
    (NumPy indexing releases the GIL) keeps the device busy. Order and content are unchanged;
    an error in the gatherer is raised here; leaving the loop early stops the thread.
    """
    ready: queue.Queue = queue.Queue(depth)
    stop = threading.Event()
    end = object()

    def hand_over(item) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def gather() -> None:
        try:
            for x, y in batches:
                if not hand_over((pinned(x), pinned(y)) if pin else (x, y)):
                    return
            hand_over(end)
        except BaseException as error:  # noqa: BLE001 - re-raised in the consumer
            hand_over(error)

    worker = threading.Thread(target=gather, name="prefetch", daemon=True)
    worker.start()
    try:
        while (item := ready.get()) is not end:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        worker.join()



def is_resident(source: BatchSource) -> bool:
    """Whether `source` holds its examples on the training device (no host work per batch)."""
    return bool(getattr(source, "resident", False))



def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 1_000_003 + epoch)



def endless_batches(source: BatchSource, batch_size: int, seed: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Endless shuffled batches (for warm-up iterations that may span epochs)."""
    round_ = 0
    while True:
        yield from source.batches(batch_size, epoch_generator(seed, -1 - round_))
        round_ += 1
