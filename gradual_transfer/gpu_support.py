"""Whether this PyTorch can run on the GPU a job leased: refused in one sentence when it cannot,
never a silent run on the CPU.

The pinned torch is a CUDA 13 build. With an NVIDIA driver older than that build needs, CUDA
does not start; on a GPU older than the build's kernels (V100, P100), it starts and then has no
kernel to run. Either way the job stops before training, naming the driver, PyTorch's CUDA
version, the GPU and the fix (the install line of PyTorch's CUDA 12.6 build, README "GPU
requirements"). Training on the CPU is what ``CUDA_VISIBLE_DEVICES=`` (empty) asks for.

Facts used (README "GPU requirements" states the same):

- the least Linux driver of each CUDA major, from NVIDIA's minor-version compatibility table
  (docs.nvidia.com/deploy/cuda-compatibility): CUDA 13.x needs 580, 12.x 525, 11.x 450;
- the compute capabilities PyTorch's x86_64 builds have kernels for, from PyTorch's own table
  (``torch.cuda.PYTORCH_RELEASES_CODE_CC`` of the pinned torch; tests/test_gpu_support.py checks
  that they agree): CUDA 13.0: 7.5, 8.0, 8.6, 9.0, 10.0, 12.0; CUDA 12.6: 5.0, 6.0, 7.0, 7.5,
  8.0, 8.6, 9.0. A kernel built for X.Y runs on X.Y and the later X.Z.

Nothing here starts CUDA before the lease: :func:`torch_cuda` is called after it.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from gradual_transfer.devices import GPU_COUNT_VARIABLE, PROC_GPUS, DeviceError, Lease, query_gpus, visible_devices

MIN_DRIVER = {11: 450, 12: 525, 13: 580}  # CUDA major → least Linux driver (major version)
BUILDS = {  # PyTorch's CUDA builds for x86_64 → (CUDA version, compute capabilities it has kernels for)
    "cu130": ("13.0", (75, 80, 86, 90, 100, 120)),
    "cu126": ("12.6", (50, 60, 70, 75, 80, 86, 90)),
}
PYTORCH_INDEX = "https://download.pytorch.org/whl"


@dataclass(frozen=True)
class TorchCuda:
    """What this PyTorch says about CUDA, asked once CUDA_VISIBLE_DEVICES is set."""

    version: str  # torch.__version__
    cuda: str | None  # torch.version.cuda: None for a CPU-only build
    available: bool
    devices: int = 0
    arch_list: tuple[str, ...] = ()  # the kernels it carries: sm_75 …, compute_XY for PTX
    capability: tuple[int, int] | None = None  # of cuda:0
    name: str = ""  # of cuda:0
    said: str = ""  # PyTorch's own warning when CUDA did not start (its first line)


@dataclass(frozen=True)
class Driver:
    """What the NVIDIA driver shows, without CUDA: its version and the GPUs' names by index and UUID."""

    version: str = ""
    gpus: dict[str, str] = field(default_factory=dict)


def torch_cuda() -> TorchCuda:
    import torch

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        available = torch.cuda.is_available()
    said = next((str(w.message).strip().splitlines()[0] for w in caught if "CUDA" in str(w.message)), "")
    if not available:
        return TorchCuda(torch.__version__, torch.version.cuda, False, said=said)
    return TorchCuda(torch.__version__, torch.version.cuda, True, torch.cuda.device_count(),
                     tuple(torch.cuda.get_arch_list()), tuple(torch.cuda.get_device_capability(0)),
                     torch.cuda.get_device_name(0))


def nvidia_driver(environ: os._Environ | dict = os.environ, proc_dir: Path = PROC_GPUS) -> Driver:
    """From ``nvidia-smi``, else from the driver's files in /proc; empty where there is no driver."""
    gpus = query_gpus(environ)
    if gpus:
        return Driver(next(iter(gpus.values())).driver, {key: gpu.name for key, gpu in gpus.items()})
    if not proc_dir.is_dir():
        return Driver()
    names = {}
    for i, folder in enumerate(sorted(proc_dir.iterdir())):
        lines = _read(folder / "information").splitlines()
        names[str(i)] = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("Model:")), "a GPU")
    words = _read(proc_dir.parent / "version").split()  # "NVRM version: NVIDIA UNIX x86_64 Kernel Module  580.65.06 …"
    version = next((w for w in words if w[:1].isdigit() and "." in w), "")
    return Driver(version, names)


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def has_kernels(capability: tuple[int, int], arch_list: tuple[str, ...] | list[str]) -> bool:
    """Whether a GPU of `capability` can run one of the kernels in `arch_list`: a cubin for X.Y runs
    on X.Y and later X.Z; PTX (``compute_XY``) is compiled by the driver for any later GPU."""
    cc = 10 * capability[0] + capability[1]
    for arch in arch_list:
        kind, _, number = arch.partition("_")
        code = int(number.rstrip("af") or 0)
        if (kind == "sm" and code // 10 == cc // 10 and code <= cc) or (kind == "compute" and code <= cc):
            return True
    return False


def _driver_major(driver: str) -> int | None:
    head = driver.split(".")[0]
    return int(head) if head.isdigit() else None


def _cuda_major(cuda: str | None) -> int | None:
    return int(cuda.split(".")[0]) if cuda and cuda.split(".")[0].isdigit() else None


def install_line(build: str, torch_version: str) -> str:
    """The pip command that replaces this torch (and torchvision) by the same versions' `build`."""
    from importlib.metadata import PackageNotFoundError, version

    base = torch_version.split("+")[0]
    try:
        vision = f" torchvision=={version('torchvision').split('+')[0]}+{build}"
    except PackageNotFoundError:
        vision = ""
    return f".venv/bin/pip install torch=={base}+{build}{vision} --extra-index-url {PYTORCH_INDEX}/{build}"


def _build_for(capability: tuple[int, int] | None, driver: str, current: str | None) -> str | None:
    """A build other than the current one that runs here: kernels for `capability` (when known)
    and a driver it accepts."""
    major = _driver_major(driver)
    for build, (cuda, capabilities) in BUILDS.items():
        if cuda == current:
            continue
        if capability is not None and not has_kernels(capability, [f"sm_{c}" for c in capabilities]):
            continue
        if major is None or major >= MIN_DRIVER[_cuda_major(cuda)]:
            return build
    return None


ON_THE_CPU = "to train on the CPU instead, export CUDA_VISIBLE_DEVICES= (empty)"


def cuda_problem(torch: TorchCuda, driver: Driver, device: str | None = None) -> str | None:
    """Why this PyTorch cannot train on the GPU the driver shows (`device`: the leased one), as
    one sentence with the fix; None when it can, or when no driver shows a GPU at all."""
    if not driver.gpus:
        return None
    gpu = driver.gpus.get(device or "", "") or next(iter(driver.gpus.values())) or "the GPU"
    at = f"{gpu} (driver {driver.version or 'of unknown version'})"
    build = f"CUDA {torch.cuda}"
    if not torch.available:
        if torch.cuda is None:
            fix = _build_for(None, driver.version, None) or "cu126"
            return (f"{at}: this PyTorch ({torch.version}) is a CPU-only build; install a CUDA build: "
                    f"{install_line(fix, torch.version)} (README, \"GPU requirements\"); {ON_THE_CPU}.")
        needed = MIN_DRIVER.get(_cuda_major(torch.cuda) or 0)
        major = _driver_major(driver.version)
        if needed and major is not None and major < needed:
            other = _build_for(None, driver.version, torch.cuda)
            fix = (f"update the driver, or install PyTorch's CUDA {BUILDS[other][0]} build, which this driver runs: "
                   f"{install_line(other, torch.version)}" if other else "update the driver")
            return (f"{at} is too old for this PyTorch {torch.version}, a {build} build that needs driver {needed} or "
                    f"newer on Linux: {fix} (README, \"GPU requirements\"); {ON_THE_CPU}.")
        said = f" ({torch.said})" if torch.said else ""
        return (f"{at}: this PyTorch {torch.version} ({build}) cannot start CUDA{said}; check the driver with "
                f"nvidia-smi and see README, \"GPU requirements\"; {ON_THE_CPU}.")
    if torch.capability is None or not torch.arch_list or has_kernels(torch.capability, torch.arch_list):
        return None
    cc = ".".join(map(str, torch.capability))
    kernels = ", ".join(a.split("_")[1] for a in torch.arch_list)
    other = _build_for(torch.capability, driver.version, torch.cuda)
    fix = (f"install PyTorch's CUDA {BUILDS[other][0]} build, which has them: {install_line(other, torch.version)} "
           f"(README, \"GPU requirements\")" if other else "no build of this PyTorch has them")
    return (f"{torch.name or gpu} (compute capability {cc}, driver {driver.version or 'of unknown version'}) has no "
            f"kernels in this PyTorch {torch.version} ({build}: sm {kernels}): {fix}; {ON_THE_CPU}.")


def check_job(lease: Lease, torch: TorchCuda, driver: Driver) -> str | None:
    """Refuse a job that would not train where its lease says (:class:`DeviceError`): PyTorch sees
    CUDA devices that the lease did not count (it would use a GPU no lease gave it), or cannot
    run on the GPU it leased. A warning to log where a GPU was leased that no driver shows (a
    test rig's fake GPUs, ``GRADUAL_TRANSFER_GPUS`` on a machine without one): the CPU then."""
    if lease.device is None and torch.devices > 0:
        raise DeviceError(
            f"PyTorch sees {torch.devices} CUDA device(s) but the GPU lease counted none (no {PROC_GPUS}, no "
            f"nvidia-smi on PATH): set {GPU_COUNT_VARIABLE}={torch.devices} so that jobs lease them, or export "
            f"CUDA_VISIBLE_DEVICES= to train on the CPU.")
    if lease.device is None:
        return None
    problem = cuda_problem(torch, driver, lease.device)
    if problem:
        raise DeviceError(problem)
    if not torch.available:
        return (f"{lease.reason}, but no NVIDIA driver shows a GPU here (no {PROC_GPUS}, no nvidia-smi) and this "
                f"PyTorch ({torch.version}) cannot use CUDA: training on the CPU.")
    return None


def check_machine(environ: os._Environ | dict = os.environ, proc_dir: Path = PROC_GPUS) -> None:
    """``check-config`` on a machine whose driver shows GPUs that jobs would lease: refuse now what
    every job would refuse at its start. Nothing (and no torch import) without such GPUs."""
    devices = visible_devices(environ, proc_dir)
    if not devices:
        return
    driver = nvidia_driver(environ, proc_dir)
    if driver.gpus:
        problem = cuda_problem(torch_cuda(), driver, devices[0])
        if problem:
            raise DeviceError(problem)
