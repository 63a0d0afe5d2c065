"""Which GPU a job uses.

``snakemake --resources gpu=2`` only caps how many GPU jobs run at once; it never says which
device each one gets (snakemake issue 281). So every GPU job leases a device slot itself: an
exclusive ``flock`` on ``<lock dir>/gpu<i>.lock`` (``gpu<i>-slot<k>.lock`` for the k-th
of several jobs per GPU, ``runtime.cuda.jobs_per_gpu``), held by an open file descriptor for the life
of the process, so the kernel frees it when the job ends or is killed. The job then sets
``CUDA_VISIBLE_DEVICES`` before CUDA is initialised, so its device is ``cuda:0``.

- Under SLURM the allocation already set ``CUDA_VISIBLE_DEVICES``: it is used as is.
- A ``CUDA_VISIBLE_DEVICES`` set by the user restricts the slots to the devices it lists.
- With no NVIDIA GPU nothing is leased and training runs on the CPU.

GPUs are counted from ``/proc/driver/nvidia/gpus`` (no CUDA initialisation, which would freeze
the device list before the lease). ``GRADUAL_TRANSFER_GPUS`` overrides the count.
"""

from __future__ import annotations

import fcntl
import logging
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

LOCK_DIR_VARIABLE = "GRADUAL_TRANSFER_LOCK_DIR"
GPU_COUNT_VARIABLE = "GRADUAL_TRANSFER_GPUS"


@dataclass
class Lease:
    device: str | None  # the CUDA_VISIBLE_DEVICES value this job uses, None for CPU
    slot: int | None = None  # the lock slot held (None when nothing was leased)
    reason: str = ""
    _fd: int | None = None

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None


def default_lock_dir() -> Path:
    return Path(os.environ.get(LOCK_DIR_VARIABLE, Path(tempfile.gettempdir()) / f"gradual-transfer-gpu-locks-{os.getuid()}"))


def visible_devices(environ: os._Environ | dict = os.environ) -> list[str]:
    """The physical device ids this machine offers to our jobs, without initialising CUDA."""
    if environ.get(GPU_COUNT_VARIABLE):
        count = int(environ[GPU_COUNT_VARIABLE])
    else:
        proc = Path("/proc/driver/nvidia/gpus")
        count = len(list(proc.iterdir())) if proc.is_dir() else 0
    devices = [str(i) for i in range(count)]
    listed = environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        devices = [d.strip() for d in listed.split(",") if d.strip() and d.strip() != "-1"]
    return devices


def slot_lock(lock_dir: Path, device: str, slot: int) -> Path:
    """The lock of one job slot of a device (slot 0 keeps the name of one-job-per-GPU leases)."""
    return lock_dir / (f"gpu{device}.lock" if slot == 0 else f"gpu{device}-slot{slot}.lock")


def lease_gpu(lock_dir: str | Path | None = None, environ: os._Environ | dict = os.environ,
              poll_seconds: float = 2.0, timeout: float | None = None, jobs_per_gpu: int = 1) -> Lease:
    """Lease a slot of one GPU for this process and point ``CUDA_VISIBLE_DEVICES`` at it.

    Each device has `jobs_per_gpu` slots (``runtime.cuda.jobs_per_gpu``; run Snakemake with
    ``--resources gpu=<GPUs × jobs_per_gpu>``); slots are filled breadth first, so every device
    gets a job before any gets a second. Waits (polling) while every slot is leased by other
    jobs, which only happens when ``--resources gpu`` exceeds the slots.
    """
    if environ.get("SLURM_JOB_ID") and environ.get("CUDA_VISIBLE_DEVICES"):
        return Lease(environ["CUDA_VISIBLE_DEVICES"],
                     reason=f"GPU {environ['CUDA_VISIBLE_DEVICES']} allocated by SLURM (job {environ['SLURM_JOB_ID']})")
    devices = visible_devices(environ)
    if not devices:
        return Lease(None, reason="no GPU: running on the CPU")
    lock_dir = Path(lock_dir or default_lock_dir())
    lock_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    waited = False
    while True:
        for slot in range(jobs_per_gpu):
            for device in devices:
                fd = os.open(slot_lock(lock_dir, device, slot), os.O_RDWR | os.O_CREAT, 0o666)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    os.close(fd)
                    continue
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode())
                environ["CUDA_VISIBLE_DEVICES"] = device
                shared = f", slot {slot + 1} of {jobs_per_gpu}" if jobs_per_gpu > 1 else ""
                return Lease(device, slot, reason=f"leased GPU {device}{shared} ({lock_dir})", _fd=fd)
        if timeout is not None and time.monotonic() - started > timeout:
            raise TimeoutError(f"no free GPU slot among {devices} × {jobs_per_gpu} after {timeout} s "
                               f"(locks in {lock_dir})")
        if not waited:
            log.warning("all GPUs %s are leased by other jobs; waiting (is --resources gpu larger "
                        "than the number of GPUs?)", devices)
            waited = True
        time.sleep(poll_seconds)
