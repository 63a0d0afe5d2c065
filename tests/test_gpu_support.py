"""A GPU that this PyTorch cannot train on is refused in one sentence at job start and in
check-config, naming the driver, PyTorch's CUDA version, the GPU and the fix; never a silent
run on the CPU. Stand-ins: an nvidia-smi on PATH (tests/test_devices.py) and torch.cuda's
answers monkeypatched."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from gradual_transfer import devices, gpu_support, startup
from gradual_transfer.devices import DeviceError, Lease
from gradual_transfer.gpu_support import BUILDS, Driver, TorchCuda, check_job, has_kernels
from test_devices import fake_nvidia_smi

CUDA_13 = TorchCuda("2.14.1+cu130", "13.0", False)
LEASED = Lease("0", 0, reason="leased GPU 0 (/tmp/x)")
INSTALL_12_6 = ".venv/bin/pip install torch==2.14.1+cu126 torchvision==0.29.1+cu126 --extra-index-url " \
               "https://download.pytorch.org/whl/cu126"


def test_the_builds_kernels_are_what_pytorch_says():
    """The table the refusals and README quote, against the pinned torch's own table of its builds."""
    releases = getattr(torch.cuda, "PYTORCH_RELEASES_CODE_CC", None)
    if releases is None:
        pytest.skip("this torch has no table of its builds")
    for cuda, capabilities in BUILDS.values():
        assert set(capabilities) == releases[cuda]["x86_64"], cuda
    assert torch.version.cuda.startswith("13.") and set(torch.cuda.get_arch_list()) <= {
        f"sm_{c}" for c in BUILDS["cu130"][1]}


@pytest.mark.parametrize("capability,arch_list,expected", [
    ((8, 9), ["sm_80", "sm_86"], True),  # an L40S runs the 8.6 kernels
    ((10, 3), ["sm_100"], True),
    ((7, 0), ["sm_75", "sm_80", "sm_90"], False),  # a V100 under the CUDA 13 build
    ((6, 0), ["sm_75", "sm_80"], False),  # a P100
    ((7, 5), ["sm_70", "compute_70"], True),  # PTX is compiled for later GPUs
    ((11, 0), ["sm_100", "sm_120"], False),
])
def test_which_gpu_runs_which_kernels(capability, arch_list, expected):
    assert has_kernels(capability, arch_list) is expected


def test_a_driver_too_old_is_refused_with_the_build_it_runs():
    with pytest.raises(DeviceError) as refused:
        check_job(LEASED, CUDA_13, Driver("535.104.05", {"0": "NVIDIA RTX A6000", "GPU-0": "NVIDIA RTX A6000"}))
    sentence = str(refused.value)
    assert sentence.startswith("NVIDIA RTX A6000 (driver 535.104.05) is too old for this PyTorch 2.14.1+cu130, a "
                               "CUDA 13.0 build that needs driver 580 or newer on Linux: update the driver, or "
                               f"install PyTorch's CUDA 12.6 build, which this driver runs: {INSTALL_12_6} (README")
    assert sentence.endswith("to train on the CPU instead, export CUDA_VISIBLE_DEVICES= (empty).")
    assert "\n" not in sentence
    with pytest.raises(DeviceError, match=r"\(driver 470.82.01\) is too old .* needs driver 580 or newer on Linux: "
                                          r"update the driver \(README"):
        check_job(LEASED, CUDA_13, Driver("470.82.01", {"0": "Tesla T4"}))  # no build of this torch runs on it


def test_a_cpu_build_or_a_cuda_that_will_not_start_is_refused():
    with pytest.raises(DeviceError, match=r"NVIDIA H100 80GB HBM3 \(driver 580.65.06\): this PyTorch \(2.14.1\+cpu\) "
                                          r"is a CPU-only build; install a CUDA build: .*torch==2.14.1\+cu130"):
        check_job(LEASED, TorchCuda("2.14.1+cpu", None, False), Driver("580.65.06", {"0": "NVIDIA H100 80GB HBM3"}))
    with pytest.raises(DeviceError, match=r"cannot start CUDA \(CUDA initialization: no device\); check the driver"):
        check_job(LEASED, TorchCuda("2.14.1+cu130", "13.0", False, said="CUDA initialization: no device"),
                  Driver("580.65.06", {"0": "NVIDIA H100 80GB HBM3"}))


def test_without_a_driver_a_leased_gpu_is_a_warning_and_the_cpu():
    """Fake GPUs (the SLURM test cluster's, GRADUAL_TRANSFER_GPUS on a machine without one): no
    driver shows a GPU, so nothing can be diagnosed; the log says the job trains on the CPU."""
    warning = check_job(LEASED, CUDA_13, Driver())
    assert warning.startswith("leased GPU 0 (/tmp/x), but no NVIDIA driver shows a GPU here") and "CPU" in warning
    assert check_job(Lease(None), CUDA_13, Driver()) is None


def test_pytorch_must_not_see_gpus_the_lease_did_not_count():
    with pytest.raises(DeviceError, match="PyTorch sees 2 CUDA device.* but the GPU lease counted none .*"
                                          "set GRADUAL_TRANSFER_GPUS=2 .*or export CUDA_VISIBLE_DEVICES= "):
        check_job(Lease(None, reason="no GPU: running on the CPU"), TorchCuda("2.14.1", "13.0", True, 2), Driver())


@pytest.fixture
def job_environment(tmp_path, monkeypatch):
    """os.environ as a job on a one-GPU workstation sees it (stand-in nvidia-smi), lease not yet taken."""
    for name in ("CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER", "SLURM_JOB_ID", "GRADUAL_TRANSFER_GPUS"):
        monkeypatch.delenv(name, raising=False)

    def with_gpu(**state):
        for name, value in fake_nvidia_smi(tmp_path, 1, **state).items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("GRADUAL_TRANSFER_LOCK_DIR", str(tmp_path / "locks"))
        monkeypatch.setattr(devices, "_held", None)
    yield with_gpu
    if devices._held is not None:
        devices._held.release()


def test_a_gpu_too_old_for_the_build_is_refused_at_job_start(job_environment, monkeypatch):
    job_environment(name="Tesla V100-SXM2-32GB")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "get_arch_list", lambda: ["sm_75", "sm_80", "sm_86", "sm_90", "sm_100", "sm_120"])
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (7, 0))
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Tesla V100-SXM2-32GB")
    monkeypatch.setattr(torch, "__version__", "2.14.1+cu130")
    with pytest.raises(DeviceError) as refused:
        startup.lease({"jobs_per_gpu": 1, "busy_gpus": "avoid"})
    assert str(refused.value).startswith(
        "Tesla V100-SXM2-32GB (compute capability 7.0, driver 580.65.06) has no kernels in this PyTorch 2.14.1+cu130 "
        "(CUDA 13.0: sm 75, 80, 86, 90, 100, 120): install PyTorch's CUDA 12.6 build, which has them: "
        f"{INSTALL_12_6} (README")


NO_CUDA_HERE = pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine where CUDA does not start")


@NO_CUDA_HERE
def test_a_job_on_a_driver_too_old_stops_with_one_sentence_and_check_config_says_it_first(tmp_path):
    """The real job start (the Snakemake scripts' startup.start) and check-config, on this
    machine's torch (CUDA does not start here) with a stand-in nvidia-smi of driver 535: the
    sentence, no traceback, no training on the CPU."""
    from conftest import REPO

    environ = {k: v for k, v in os.environ.items()
               if k not in ("CUDA_VISIBLE_DEVICES", "SLURM_JOB_ID", "GRADUAL_TRANSFER_GPUS")}
    stand_in = fake_nvidia_smi(tmp_path, 1, driver="535.104.05", name="NVIDIA RTX A6000")
    environ.update(stand_in, PATH=f"{stand_in['PATH']}{os.pathsep}{os.environ['PATH']}",
                   GRADUAL_TRANSFER_LOCK_DIR=str(tmp_path / "locks"))
    job = ("from gradual_transfer import startup\n"
           "startup.start(None, cuda={'jobs_per_gpu': 1, 'busy_gpus': 'avoid'})\n"
           "print('trained')\n")
    run = subprocess.run([sys.executable, "-c", job], capture_output=True, text=True, env=environ, timeout=120)
    expected = "NVIDIA RTX A6000 (driver 535.104.05) is too old for this PyTorch"
    assert run.returncode == 1 and expected in run.stderr and "Traceback" not in run.stderr, run.stderr[-2000:]
    assert "trained" not in run.stdout
    check = subprocess.run([sys.executable, "-m", "gradual_transfer", "check-config", "--no-data"], cwd=REPO,
                           capture_output=True, text=True, env=environ, timeout=300)
    assert check.returncode == 2 and expected in check.stderr and "Traceback" not in check.stderr, check.stderr[-2000:]
