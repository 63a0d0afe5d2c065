"""Which GPU a job uses.

``snakemake --resources gpu=2`` only caps how many GPU jobs run at once; it never says which
device each one gets (snakemake issue 281). So every GPU job leases a device slot itself: an
exclusive ``flock`` on ``<lock dir>/gpu<i>.lock`` (``gpu<i>-slot<k>.lock`` for the k-th
of several jobs per GPU, ``runtime.cuda.jobs_per_gpu``), held by an open file descriptor for the life
of the process, so the kernel frees it when the job ends or is killed. The job then sets
``CUDA_VISIBLE_DEVICES`` (and ``CUDA_DEVICE_ORDER=PCI_BUS_ID``, so that CUDA numbers the GPUs
as ``nvidia-smi`` and ``/proc`` do) before CUDA is initialised, so its device is ``cuda:0``. The
lease's answer is the only device a job uses (:func:`select_device`).

- **One lock folder per machine**, whoever runs the jobs: ``/tmp/gradual-transfer-gpu-locks``
  (``GRADUAL_TRANSFER_LOCK_DIR`` overrides it), made world-writable with the sticky bit like
  ``/tmp`` itself, its lock files readable and writable by all. Two users' workflows then share
  the GPUs as one user's jobs do. A folder some user cannot write is refused in one sentence.
- **GPUs used by other programs**: ``nvidia-smi`` lists each GPU's compute processes; a process
  that holds none of the GPU's lock files belongs to another program. With
  ``runtime.cuda.busy_gpus: avoid`` (the default) such a GPU counts as taken: jobs lease the
  other GPUs and wait while none is free. ``share`` leases it anyway. A GPU in exclusive-process
  compute mode takes one job at most; a prohibited one none.
- Under SLURM the allocation already set ``CUDA_VISIBLE_DEVICES``: it is used as is.
- A ``CUDA_VISIBLE_DEVICES`` set by the user restricts the slots to the devices it lists.
- With no NVIDIA GPU nothing is leased and training runs on the CPU.

GPUs are counted without initialising CUDA (which would freeze the device list before the
lease): from ``/proc/driver/nvidia/gpus``, or, where that is absent (WSL2), from ``nvidia-smi``.
``GRADUAL_TRANSFER_GPUS`` overrides the count. A job then checks that PyTorch agrees
(:func:`check_with_torch`).
"""

from __future__ import annotations

import fcntl
import logging
import os
import pwd
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

LOCK_DIR_VARIABLE = "GRADUAL_TRANSFER_LOCK_DIR"
GPU_COUNT_VARIABLE = "GRADUAL_TRANSFER_GPUS"
MACHINE_LOCK_DIR = Path("/tmp/gradual-transfer-gpu-locks")  # not $TMPDIR: that may be per user
PROC_GPUS = Path("/proc/driver/nvidia/gpus")
BUSY_GPUS = ("avoid", "share")  # runtime.cuda.busy_gpus


class DeviceError(RuntimeError):
    """The GPU lease cannot be taken as configured, or PyTorch disagrees with it."""


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


@dataclass
class Gpu:
    """One GPU as ``nvidia-smi`` reports it."""

    index: str
    uuid: str
    compute_mode: str = "Default"
    processes: dict[int, int] = field(default_factory=dict)  # pid → MiB of compute processes

    def max_jobs(self) -> int | None:
        """How many jobs its compute mode admits (None: no limit)."""
        return {"Exclusive_Process": 1, "Exclusive_Thread": 1, "Prohibited": 0}.get(self.compute_mode)


def _user() -> str:
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return f"uid {os.getuid()}"


def default_lock_dir(environ: os._Environ | dict = os.environ) -> Path:
    return Path(environ.get(LOCK_DIR_VARIABLE) or MACHINE_LOCK_DIR)


def _nvidia_smi(environ, *args: str) -> list[list[str]] | None:
    """Rows of an ``nvidia-smi`` CSV query, or None where it is missing or fails."""
    program = shutil.which("nvidia-smi", path=environ.get("PATH", os.defpath))
    if program is None:
        return None
    try:
        done = subprocess.run([program, *args, "--format=csv,noheader,nounits"], capture_output=True, text=True,
                              timeout=30, env=dict(environ))
    except (OSError, subprocess.SubprocessError) as error:
        log.warning("nvidia-smi failed (%s): GPUs used by other programs cannot be seen", error)
        return None
    if done.returncode != 0:
        log.warning("nvidia-smi failed (exit %d: %s): GPUs used by other programs cannot be seen", done.returncode,
                    done.stdout.strip() or done.stderr.strip())
        return None
    return [[cell.strip() for cell in line.split(",")] for line in done.stdout.splitlines() if line.strip()]


def query_gpus(environ: os._Environ | dict = os.environ) -> dict[str, Gpu] | None:
    """The GPUs ``nvidia-smi`` sees, by index and by UUID, with their compute processes; None
    without ``nvidia-smi``."""
    rows = _nvidia_smi(environ, "--query-gpu=index,uuid,compute_mode")
    if rows is None:
        return None
    gpus = {}
    for row in rows:
        if len(row) >= 3 and row[0].isdigit():
            gpu = Gpu(row[0], row[1], row[2])
            gpus[gpu.index] = gpus[gpu.uuid] = gpu
    for row in _nvidia_smi(environ, "--query-compute-apps=gpu_uuid,pid,used_memory") or []:
        if len(row) >= 2 and row[0] in gpus and row[1].isdigit():
            gpus[row[0]].processes[int(row[1])] = int(row[2]) if len(row) > 2 and row[2].isdigit() else 0
    return gpus


def count_gpus(environ: os._Environ | dict = os.environ, proc_dir: Path = PROC_GPUS) -> int:
    """NVIDIA GPUs of this machine, without initialising CUDA: ``GRADUAL_TRANSFER_GPUS``, else
    the driver's list in /proc, else (WSL2 has no such list) ``nvidia-smi``."""
    if environ.get(GPU_COUNT_VARIABLE):
        return int(environ[GPU_COUNT_VARIABLE])
    if proc_dir.is_dir():
        return len(list(proc_dir.iterdir()))
    return len({gpu.index for gpu in (query_gpus(environ) or {}).values()})


def visible_devices(environ: os._Environ | dict = os.environ, proc_dir: Path = PROC_GPUS) -> list[str]:
    """The device ids this machine offers to our jobs, without initialising CUDA."""
    listed = environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [d.strip() for d in listed.split(",") if d.strip() and d.strip() != "-1"]
    return [str(i) for i in range(count_gpus(environ, proc_dir))]


def slot_lock(lock_dir: Path, device: str, slot: int) -> Path:
    """The lock of one job slot of a device (slot 0 keeps the name of one-job-per-GPU leases)."""
    return lock_dir / (f"gpu{device}.lock" if slot == 0 else f"gpu{device}-slot{slot}.lock")


def shared_lock_dir(lock_dir: Path) -> Path:
    """`lock_dir`, created world-writable with the sticky bit (as /tmp: everyone may add files, no
    one may remove another's) and checked writable by this user."""
    try:
        lock_dir.mkdir(parents=True)
        os.chmod(lock_dir, 0o1777)  # mkdir's mode is cut by the umask
    except FileExistsError:
        pass
    except OSError as error:
        raise DeviceError(f"{lock_dir}: cannot create the GPU lock folder ({error.strerror}). Set "
                          f"{LOCK_DIR_VARIABLE} to a folder that every user of these GPUs can write.") from None
    for _ in range(20):  # (another user may have created it an instant ago and be setting its mode)
        if os.access(lock_dir, os.W_OK | os.X_OK):
            return lock_dir
        time.sleep(0.05)
    raise DeviceError(f"{lock_dir}: the GPU lock folder is not writable by {_user()}, so this job "
                      f"cannot take part in sharing the GPUs. Make it writable by every user of these GPUs "
                      f"(chmod 1777 {lock_dir}, as its owner or root), or set {LOCK_DIR_VARIABLE} to a folder "
                      f"they all can write.")


def _open_lock(path: Path) -> int:
    """A descriptor of the lock file `path`, created readable and writable by all if missing.
    An existing file is opened without O_CREAT: Linux refuses O_CREAT on another user's file in
    a sticky folder (fs.protected_regular), even when it exists and is writable."""
    while True:
        try:
            return os.open(path, os.O_RDWR)
        except FileNotFoundError:
            pass
        except PermissionError:
            return os.open(path, os.O_RDONLY)  # (a file some older lease made 0644): flock needs no write access
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        os.fchmod(fd, 0o666)  # the umask cut the mode: the next holder may be another user
        return fd


def _try_lock(path: Path) -> int | None:
    """`path` locked for this process, or None when another process holds it."""
    while True:
        fd = _open_lock(path)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        try:
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)  # the file was removed (a /tmp cleaner) between opening and locking: lock the new one


def _holders(lock_dir: Path, device: str) -> set[int]:
    """The processes named in a device's lock files: this workflow's jobs (anyone's) on it."""
    pids = set()
    for lock in [*lock_dir.glob(f"gpu{device}.lock"), *lock_dir.glob(f"gpu{device}-slot*.lock")]:
        try:
            first = lock.read_text().split(maxsplit=1)
        except OSError:
            continue
        if first and first[0].isdigit():
            pids.add(int(first[0]))
    return pids


def _in_use_by_others(gpu: Gpu | None, lock_dir: Path, device: str) -> dict[int, int]:
    """Compute processes on the GPU that hold none of its lock files (pid → MiB)."""
    if gpu is None or not gpu.processes:
        return {}
    ours = _holders(lock_dir, device)
    return {pid: mib for pid, mib in gpu.processes.items() if pid not in ours}


def lease_gpu(lock_dir: str | Path | None = None, environ: os._Environ | dict = os.environ,
              poll_seconds: float = 2.0, timeout: float | None = None, jobs_per_gpu: int = 1,
              busy_gpus: str = "avoid", proc_dir: Path = PROC_GPUS) -> Lease:
    """Lease a slot of one GPU for this process and point ``CUDA_VISIBLE_DEVICES`` at it.

    Each device has `jobs_per_gpu` slots (``runtime.cuda.jobs_per_gpu``; run Snakemake with
    ``--resources gpu=<GPUs × jobs_per_gpu>``); slots are filled breadth first, so every device
    gets a job before any gets a second. A GPU running another program's compute process is
    passed over with `busy_gpus` = "avoid" (``runtime.cuda.busy_gpus``). Waits (polling) while
    no slot is free, which happens when ``--resources gpu`` exceeds the slots or other programs
    hold the GPUs.
    """
    if busy_gpus not in BUSY_GPUS:
        raise DeviceError(f"runtime.cuda.busy_gpus: {busy_gpus!r} is not one of {', '.join(BUSY_GPUS)}.")
    if environ.get("SLURM_JOB_ID") and environ.get("CUDA_VISIBLE_DEVICES"):
        return Lease(environ["CUDA_VISIBLE_DEVICES"],
                     reason=f"GPU {environ['CUDA_VISIBLE_DEVICES']} allocated by SLURM (job {environ['SLURM_JOB_ID']})")
    devices = visible_devices(environ, proc_dir)
    if not devices:
        return Lease(None, reason="no GPU: running on the CPU")
    lock_dir = shared_lock_dir(Path(lock_dir or default_lock_dir(environ)))
    environ.setdefault("CUDA_DEVICE_ORDER", "PCI_BUS_ID")  # CUDA's numbers are then nvidia-smi's and /proc's
    started = time.monotonic()
    waiting_for = None
    while True:
        gpus = query_gpus(environ) or {}
        passed_over = {}
        for slot in range(jobs_per_gpu):
            for device in devices:
                gpu = gpus.get(device)
                limit = gpu.max_jobs() if gpu else None
                if limit is not None and slot >= limit:
                    if slot == 0:
                        passed_over[device] = f"compute mode {gpu.compute_mode}"
                    continue
                fd = _try_lock(slot_lock(lock_dir, device, slot))
                if fd is None:
                    continue
                others = _in_use_by_others(gpu, lock_dir, device)
                if others and (busy_gpus == "avoid" or limit == 1):
                    os.close(fd)
                    passed_over[device] = "in use by " + ", ".join(f"pid {pid} ({mib} MiB)"
                                                                   for pid, mib in others.items())
                    continue
                try:  # who holds it, for the other jobs and for people (the file may be read-only to us)
                    os.ftruncate(fd, 0)
                    os.pwrite(fd, f"{os.getpid()} {_user()} {socket.gethostname()}\n".encode(), 0)
                except OSError:
                    pass
                environ["CUDA_VISIBLE_DEVICES"] = device
                shared = f", slot {slot + 1} of {jobs_per_gpu}" if jobs_per_gpu > 1 else ""
                skipped = "".join(f"; passed over GPU {d}: {why}" for d, why in passed_over.items())
                return Lease(device, slot, reason=f"leased GPU {device}{shared} ({lock_dir}{skipped})", _fd=fd)
        blocked = "; ".join(f"GPU {d}: {why}" for d, why in passed_over.items())
        if timeout is not None and time.monotonic() - started > timeout:
            raise TimeoutError(f"no free GPU slot among {devices} × {jobs_per_gpu} after {timeout} s "
                               f"(locks in {lock_dir}{'; ' + blocked if blocked else ''})")
        if blocked != waiting_for:
            log.warning("no free GPU slot among %s × %d; waiting (%s)", devices, jobs_per_gpu,
                        f"{blocked}; set runtime.cuda.busy_gpus: share to use a GPU other programs use" if blocked
                        else f"all leased by other jobs, locks in {lock_dir}: is --resources gpu larger than "
                             f"GPUs × jobs_per_gpu?")
            waiting_for = blocked
        time.sleep(poll_seconds)


_held: Lease | None = None  # this process's lease, held for its life: the kernel frees the lock when it ends


def lease_for_process(jobs_per_gpu: int = 1, busy_gpus: str = "avoid") -> Lease:
    """This process's lease (taken once, before CUDA is initialised): what
    :func:`select_device` follows."""
    global _held
    if _held is None:
        _held = lease_gpu(jobs_per_gpu=jobs_per_gpu, busy_gpus=busy_gpus)
    return _held


def held_lease() -> Lease | None:
    """The lease this process took, if any."""
    return _held


def check_with_torch(lease: Lease, cuda_devices: int, torch_version: str) -> str | None:
    """Refuse a job whose PyTorch sees CUDA devices that the lease did not count (it would use a
    GPU no lease gave it); a warning to log when the lease holds a GPU that PyTorch cannot use
    (the job trains on the CPU). `cuda_devices`: how many PyTorch sees after the lease."""
    if lease.device is None and cuda_devices > 0:
        raise DeviceError(
            f"PyTorch sees {cuda_devices} CUDA device(s) but the GPU lease counted none (no {PROC_GPUS}, no "
            f"nvidia-smi on PATH): set {GPU_COUNT_VARIABLE}={cuda_devices} so that jobs lease them, or export "
            f"CUDA_VISIBLE_DEVICES= to train on the CPU.")
    if lease.device is not None and cuda_devices == 0:
        return (f"{lease.reason}, but this PyTorch ({torch_version}) cannot use CUDA: training on the CPU. Install "
                f"a CUDA build of PyTorch to use the GPU.")
    return None


def select_device():
    """The ``torch.device`` a job trains and evaluates on, chosen once per job and passed down.
    A job (Snakemake's or the command line's) took the GPU lease first
    (:func:`gradual_transfer.startup.lease`): the GPU it leased, the only one CUDA shows it (on
    the CPU where PyTorch cannot use CUDA), or the CPU where it leased none. A process that took
    no lease (a notebook, a benchmark): CUDA when PyTorch sees it."""
    import torch  # here, not above: the lease must set CUDA_VISIBLE_DEVICES before torch starts CUDA

    lease = held_lease()
    if lease is not None and lease.device is None:
        return torch.device("cpu")
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
