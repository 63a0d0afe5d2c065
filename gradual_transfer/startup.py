"""What every job does first: log to its log file, lease a GPU when it trains, and use the
threads Snakemake gave it."""

from __future__ import annotations

import logging
from pathlib import Path

from gradual_transfer import logs

log = logging.getLogger(__name__)


def lease(cuda: dict):
    """Lease a GPU for this process by the config's ``runtime.cuda`` settings (``jobs_per_gpu``,
    ``busy_gpus``), before CUDA is initialised, and check that PyTorch agrees
    (:func:`gradual_transfer.devices.check_with_torch`). Every entry point that trains calls it:
    the Snakemake scripts (through :func:`start`) and the command line."""
    from gradual_transfer import devices

    held = devices.lease_for_process(jobs_per_gpu=cuda["jobs_per_gpu"], busy_gpus=cuda["busy_gpus"])
    log.info("device: %s", held.reason)
    import torch

    warning = devices.check_with_torch(held, torch.cuda.device_count() if torch.cuda.is_available() else 0,
                                       torch.__version__)
    if warning:
        log.warning("%s", warning)
    return held


def start(log_file: str | Path | None, threads: int = 1, cuda: dict | None = None) -> None:
    """`cuda`: the config's ``runtime.cuda`` for a job that trains (it leases a GPU)."""
    logs.configure(log_file)
    if cuda is not None:
        lease(cuda)
    import torch

    torch.set_num_threads(max(1, threads))
