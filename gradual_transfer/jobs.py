"""What every job does first: log to its log file, lease a GPU when it trains, and use the
threads Snakemake gave it."""

from __future__ import annotations

import logging
from pathlib import Path

from gradual_transfer import logs

_lease = None  # held for the life of the process: the kernel frees the lock when it ends


def start(log_file: str | Path | None, threads: int = 1, gpu: bool = False, jobs_per_gpu: int = 1) -> None:
    global _lease
    logs.configure(log_file)
    if gpu:
        from gradual_transfer.devices import lease_gpu

        _lease = lease_gpu(jobs_per_gpu=jobs_per_gpu)  # before torch touches CUDA
        logging.getLogger(__name__).info("device: %s", _lease.reason)
    import torch

    torch.set_num_threads(max(1, threads))
