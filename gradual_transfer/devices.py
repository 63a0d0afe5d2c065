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
- **This workflow's jobs are counted by their lock files**, never by ``nvidia-smi``'s pids
  (under MPS it shows only the MPS server, whatever clients it serves).
- **GPUs used by other programs**: ``nvidia-smi`` lists each GPU's compute processes; a process
  that holds none of the GPU's lock files belongs to another program (an MPS server stands for
  its clients and is not counted). With ``runtime.cuda.busy_gpus: avoid`` (the default) such a
  GPU counts as taken: jobs lease the other GPUs and wait while none is free. ``share`` leases
  it anyway, idle GPUs first.
- **Compute modes**: a GPU in exclusive-process mode runs one process, so it takes one job,
  unless an MPS server runs (then every client shares the server's one context, as NVIDIA
  recommends for MPS); a prohibited one takes none.
- Under SLURM an allocation of one GPU is used as is; an allocation of several (``salloc
  --gpus=2``, then the local profile) is split among its jobs as a machine's GPUs are, with
  locks of its own (SLURM numbers each allocation's GPUs from 0).
- A ``CUDA_VISIBLE_DEVICES`` set by the user restricts the slots to the devices it lists.
- With no NVIDIA GPU nothing is leased and training runs on the CPU.

GPUs are counted without initialising CUDA (which would freeze the device list before the
lease): from ``/proc/driver/nvidia/gpus``, or, where that is absent (WSL2), from ``nvidia-smi``.
``GRADUAL_TRANSFER_GPUS`` overrides the count. A job then checks that PyTorch can use what it
leased (:mod:`gradual_transfer.gpu_support`).

Longer than the library's ~350-line rule of thumb because the lease is one protocol (the device
count, the lock per GPU, the sharing policy, the environment a job is given): each part is only
correct with the others.
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
MPS_SERVER = "nvidia-cuda-mps-server"  # the process nvidia-smi shows for all of MPS's clients
MPS_PIPE_VARIABLE = "CUDA_MPS_PIPE_DIRECTORY"
MPS_PIPES = Path("/tmp/nvidia-mps")  # where a running MPS control daemon keeps its `control` pipe
EXCLUSIVE_MODES = ("Exclusive_Process", "Exclusive_Thread")


class DeviceError(RuntimeError):
    """The GPU lease cannot be taken as configured, or PyTorch disagrees with it."""


@dataclass
class Lease:
    device: str | None  # the CUDA_VISIBLE_DEVICES value this job uses, None for CPU
    slot: int | None = None  # the lock slot held (None when nothing was leased)
    reason: str = ""
    sharing: int = 1  # jobs that may share the device (its slots): each may fill its share of the memory
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
    driver: str = ""  # the driver's version, e.g. 580.65.06
    name: str = ""  # e.g. NVIDIA H100 80GB HBM3
    processes: dict[int, int] = field(default_factory=dict)  # pid → MiB of compute processes (MPS servers aside)
    mps_servers: set[int] = field(default_factory=set)  # pids of MPS servers running on it

    def max_jobs(self, mps: bool) -> int | None:
        """How many jobs its compute mode admits (None: no limit). Exclusive-process mode admits
        one process; under MPS that process is the server, and its clients share it."""
        if self.compute_mode == "Prohibited":
            return 0
        return 1 if self.compute_mode in EXCLUSIVE_MODES and not mps else None


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
    without ``nvidia-smi``. (Names come last: the CSV has no quoting.)"""
    rows = _nvidia_smi(environ, "--query-gpu=index,uuid,compute_mode,driver_version,name")
    if rows is None:
        return None
    gpus = {}
    for row in rows:
        if len(row) >= 3 and row[0].isdigit():
            gpu = Gpu(row[0], row[1], row[2], driver=row[3] if len(row) > 3 else "", name=", ".join(row[4:]))
            gpus[gpu.index] = gpus[gpu.uuid] = gpu
    for row in _nvidia_smi(environ, "--query-compute-apps=gpu_uuid,pid,used_memory,process_name") or []:
        if len(row) >= 2 and row[0] in gpus and row[1].isdigit():
            gpu, pid = gpus[row[0]], int(row[1])
            if Path(", ".join(row[3:])).name == MPS_SERVER:
                gpu.mps_servers.add(pid)
            else:
                gpu.processes[pid] = int(row[2]) if len(row) > 2 and row[2].isdigit() else 0
    return gpus


def mps_running(environ: os._Environ | dict, gpus: dict[str, Gpu]) -> bool:
    """Whether NVIDIA's Multi-Process Service runs: a server on some GPU, or the control daemon's
    pipe (the server starts only when its first client does)."""
    pipes = Path(environ.get(MPS_PIPE_VARIABLE) or MPS_PIPES)
    return any(gpu.mps_servers for gpu in gpus.values()) or (pipes / "control").exists()


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


@dataclass
class _Device:
    """One device as a lease sees it this round: its slots and who else uses it."""

    device: str
    slots: int  # jobs_per_gpu, or fewer where the compute mode admits fewer
    mode: str  # its compute mode ("" without nvidia-smi)
    others: dict[int, int]  # other programs' compute processes (pid → MiB)
    exclusive: bool  # one process at a time (exclusive mode without MPS): never shared with another program
    held: int = 0  # its slots found held by this workflow's jobs

    def in_use(self) -> str:
        return "in use by " + ", ".join(f"pid {pid} ({mib} MiB)" for pid, mib in self.others.items())


def _survey(devices: list[str], gpus: dict[str, Gpu], mps: bool, lock_dir: Path, jobs_per_gpu: int) -> list[_Device]:
    survey = []
    for device in devices:
        gpu = gpus.get(device)
        limit = gpu.max_jobs(mps) if gpu else None
        survey.append(_Device(device, jobs_per_gpu if limit is None else min(limit, jobs_per_gpu),
                              gpu.compute_mode if gpu else "", _in_use_by_others(gpu, lock_dir, device), limit == 1))
    return survey


def _blocked(device: _Device, jobs_per_gpu: int, busy_gpus: str) -> str:
    """Why `device` gave this job no slot, naming the cause (and what would change it)."""
    if device.slots == 0:
        return f"compute mode {device.mode}"
    if device.others and (busy_gpus == "avoid" or device.exclusive):
        return device.in_use() + (f" (compute mode {device.mode}: one process at a time)" if device.exclusive else "")
    if device.slots < jobs_per_gpu:
        return (f"its one slot is held by this workflow's jobs: compute mode {device.mode} runs one process at a "
                f"time, so jobs_per_gpu: {jobs_per_gpu} needs an MPS server (nvidia-cuda-mps-control -d) or the "
                f"Default compute mode")
    return f"its {device.slots} slot{'s' if device.slots > 1 else ''} held by this workflow's jobs"


def lease_gpu(lock_dir: str | Path | None = None, environ: os._Environ | dict = os.environ,
              poll_seconds: float = 2.0, timeout: float | None = None, jobs_per_gpu: int = 1,
              busy_gpus: str = "avoid", proc_dir: Path = PROC_GPUS) -> Lease:
    """Lease a slot of one GPU for this process and point ``CUDA_VISIBLE_DEVICES`` at it.

    Each device has `jobs_per_gpu` slots (``runtime.cuda.jobs_per_gpu``; run Snakemake with
    ``--resources gpu=<GPUs × jobs_per_gpu>``), fewer where its compute mode admits fewer;
    slots are filled breadth first, so every device gets a job before any gets a second. A GPU
    running another program's compute process is passed over with `busy_gpus` = "avoid"
    (``runtime.cuda.busy_gpus``); with "share" it is taken after every idle GPU's slots. Waits
    (polling) while no slot is free, saying why.
    """
    if busy_gpus not in BUSY_GPUS:
        raise DeviceError(f"runtime.cuda.busy_gpus: {busy_gpus!r} is not one of {', '.join(BUSY_GPUS)}.")
    devices = visible_devices(environ, proc_dir)
    allocation = environ.get("SLURM_JOB_ID") if environ.get("CUDA_VISIBLE_DEVICES") else None
    if allocation and len(devices) == 1:
        return Lease(devices[0], reason=f"GPU {devices[0]} allocated by SLURM (job {allocation})")
    if not devices:
        return Lease(None, reason="no GPU: running on the CPU")
    lock_dir = shared_lock_dir(Path(lock_dir or default_lock_dir(environ)))
    if allocation:  # its GPUs are its own, numbered from 0 as another allocation's are: locks of its own
        lock_dir = shared_lock_dir(lock_dir / f"slurm-job-{allocation}")
    environ.setdefault("CUDA_DEVICE_ORDER", "PCI_BUS_ID")  # CUDA's numbers are then nvidia-smi's and /proc's
    started = time.monotonic()
    waiting_for = None
    while True:
        gpus = query_gpus(environ) or {}
        mps = mps_running(environ, gpus)
        survey = _survey(devices, gpus, mps, lock_dir, jobs_per_gpu)
        usable = [d for d in survey if not (d.others and (busy_gpus == "avoid" or d.exclusive))]
        idle, busy = [d for d in usable if not d.others], [d for d in usable if d.others]
        for group in (idle, busy):  # with share: every idle GPU's slots before a busy one's
            for slot in range(jobs_per_gpu):
                for device in group:
                    if slot >= device.slots:
                        continue
                    fd = _try_lock(slot_lock(lock_dir, device.device, slot))
                    if fd is None:
                        device.held += 1
                        continue
                    return _leased(fd, device, slot, jobs_per_gpu, lock_dir, mps, environ, [
                        f"GPU {d.device}: {_blocked(d, jobs_per_gpu, busy_gpus)}" for d in survey
                        if d.slots == 0 or all(d is not u for u in usable)])
        blocked = "; ".join(f"GPU {d.device}: {_blocked(d, jobs_per_gpu, busy_gpus)}" for d in survey)
        if timeout is not None and time.monotonic() - started > timeout:
            raise TimeoutError(f"no free GPU slot among {devices} × {jobs_per_gpu} after {timeout} s "
                               f"(locks in {lock_dir}; {blocked})")
        if blocked != waiting_for:
            hint = ("; set runtime.cuda.busy_gpus: share to use a GPU other programs use"
                    if any(d.others and busy_gpus == "avoid" for d in survey) else "")
            if all(d.held == d.slots == jobs_per_gpu for d in survey):
                hint = f"; is --resources gpu larger than GPUs × jobs_per_gpu ({len(devices)} × {jobs_per_gpu})?"
            log.warning("no free GPU slot among %s × %d; waiting (%s%s; locks in %s)", devices, jobs_per_gpu, blocked,
                        hint, lock_dir)
            waiting_for = blocked
        time.sleep(poll_seconds)


def _leased(fd: int, device: _Device, slot: int, jobs_per_gpu: int, lock_dir: Path, mps: bool, environ,
            passed_over: list[str]) -> Lease:
    try:  # who holds it, for the other jobs and for people (the file may be read-only to us)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {_user()} {socket.gethostname()}\n".encode(), 0)
    except OSError:
        pass
    environ["CUDA_VISIBLE_DEVICES"] = device.device
    shared = f", slot {slot + 1} of {device.slots}" if jobs_per_gpu > 1 else ""
    skipped = "".join(f"; passed over {why}" for why in passed_over)
    return Lease(device.device, slot, reason=f"leased GPU {device.device}{shared}{', under MPS' if mps else ''} "
                                             f"({lock_dir}{skipped})", _fd=fd, sharing=device.slots)


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


def select_device():
    """The ``torch.device`` a job trains and evaluates on, chosen once per job and passed down.
    A job (Snakemake's or the command line's) took the GPU lease first
    (:func:`gradual_transfer.startup.lease`): the GPU it leased, the only one CUDA shows it, or
    the CPU where it leased none. (A leased GPU that PyTorch cannot use stopped the job at its
    start, :mod:`gradual_transfer.gpu_support`, except where no driver shows one: fake GPUs, the
    CPU then.) A process that took no lease (a notebook, a benchmark): CUDA when PyTorch sees it."""
    import torch  # here, not above: the lease must set CUDA_VISIBLE_DEVICES before torch starts CUDA

    lease = held_lease()
    if lease is not None and lease.device is None:
        return torch.device("cpu")
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
