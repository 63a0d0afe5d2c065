"""How much of its GPU's memory a job may fill, and an out-of-memory error as one sentence.

The data held on the device (``runtime.cuda.resident_data_mb``) and the frozen-prefix cache
(``frozen_cache_mb``) are sized to the leased card: a job takes no more than its share of the
card's memory (the total divided by the jobs that may share it: the lease's slots,
``jobs_per_gpu``, one under SLURM), less what it already holds, never more than is free now
(other programs may hold the rest), and leaves RESERVE_MB for what training allocates later.
The config's settings stay caps. Both are placements only: a split left on the host or a cache
not built gives the same batches and the same result (tests/test_device_paths.py).
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass

import torch

from gradual_transfer.devices import DeviceError, held_lease

log = logging.getLogger(__name__)

MB = 2**20
# what a job allocates after its data and cache: the model, gradients, momentum and the best
# copy, a step's activations, cuDNN's workspace. Not yet measured against the jobs' peak memory
# on a GPU (metrics.json records each job's peak): a guess on the safe side for the study's models.
RESERVE_MB = 2048


class OutOfMemory(DeviceError):
    """The GPU ran out of memory: the sentence names the numbers and the setting to change."""


@dataclass(frozen=True)
class DeviceMemory:
    total_mb: float
    free_mb: float  # on the card now, whoever holds the rest
    held_mb: float  # by this job (PyTorch's caching allocator)
    sharing: int = 1  # jobs that may share the card
    peak_mb: float = 0.0  # the most this job's tensors have taken at once

    @property
    def room_mb(self) -> float:
        """What more this job may place on the card and still train."""
        return max(0.0, min(self.free_mb, self.total_mb / self.sharing - self.held_mb) - RESERVE_MB)

    def __str__(self) -> str:
        shared = f", one of {self.sharing} jobs sharing it (runtime.cuda.jobs_per_gpu)" if self.sharing > 1 else ""
        return (f"{self.free_mb:,.0f} of {self.total_mb:,.0f} MB free, {self.held_mb:,.0f} MB held by this "
                f"job{shared}")


def read(device: torch.device) -> DeviceMemory | None:
    """The card's memory as this job sees it; None on the CPU (whose budgets are the config's)."""
    if device.type != "cuda":
        return None
    free, total = torch.cuda.mem_get_info(device)
    lease = held_lease()
    return DeviceMemory(total / MB, free / MB, torch.cuda.memory_reserved(device) / MB, lease.sharing if lease else 1,
                        torch.cuda.max_memory_allocated(device) / MB)


def no_room(size_mb: float, device: torch.device) -> str | None:
    """None when `size_mb` more fits this job's share of `device`; else why not, for the log."""
    memory = read(device)
    if memory is None or size_mb <= memory.room_mb:
        return None
    return (f"{size_mb:,.0f} MB would exceed this job's room on the GPU, {memory.room_mb:,.0f} MB ({memory}; "
            f"{RESERVE_MB} MB kept for training)")


def out_of_memory_sentence(device: torch.device, arch: str) -> str:
    memory = read(device)
    numbers = f" ({memory}, at most {memory.peak_mb:,.0f} MB in use by its tensors)" if memory else ""
    fewer = "lower runtime.cuda.jobs_per_gpu, or " if memory and memory.sharing > 1 else ""
    return (f"the GPU ran out of memory training {arch}{numbers}: {fewer}lower resident_data_mb and frozen_cache_mb "
            f"for {arch} under runtime.cuda_by_architecture (placements only: the result is the same), or free the "
            f"GPU of other programs.")


@contextlib.contextmanager
def out_of_memory_named(device: torch.device, arch: str):
    """Turn CUDA's out-of-memory error (a traceback and an allocator dump) into one sentence."""
    try:
        yield
    except torch.OutOfMemoryError:
        raise OutOfMemory(out_of_memory_sentence(device, arch)) from None
