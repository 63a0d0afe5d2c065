"""What every job does first: log to its log file, lease a GPU when it trains, and use the
threads Snakemake gave it."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from gradual_transfer import logs

log = logging.getLogger(__name__)


def lease(cuda: dict):
    """Lease a GPU for this process by the config's ``runtime.cuda`` settings (``jobs_per_gpu``,
    ``busy_gpus``), before CUDA is initialised, and check that PyTorch can train on it
    (:func:`gradual_transfer.gpu_support.check_job`: a refusal is a DeviceError). Every entry
    point that trains calls it: the Snakemake scripts (through :func:`start`) and the command line."""
    from gradual_transfer import devices, gpu_support

    held = devices.lease_for_process(jobs_per_gpu=cuda["jobs_per_gpu"], busy_gpus=cuda["busy_gpus"])
    log.info("device: %s", held.reason)
    warning = gpu_support.check_job(held, gpu_support.torch_cuda(), gpu_support.nvidia_driver())
    if warning:
        log.warning("%s", warning)
    return held


def _device_refusal_in_one_sentence(kind, error, traceback) -> None:
    """A job's device refusal (no usable GPU, out of memory) ends it with its sentence in the log,
    not a traceback; anything else as Python reports it. (The exit status is 1 either way.)"""
    from gradual_transfer.devices import DeviceError

    if isinstance(error, DeviceError):
        log.error("%s", error)
    else:
        sys.__excepthook__(kind, error, traceback)


def start(log_file: str | Path | None, threads: int = 1, cuda: dict | None = None) -> None:
    """`cuda`: the config's ``runtime.cuda`` for a job that trains (it leases a GPU)."""
    logs.configure(log_file)
    sys.excepthook = _device_refusal_in_one_sentence
    if cuda is not None:
        lease(cuda)
    import torch

    torch.set_num_threads(max(1, threads))
