"""The GPU lease: concurrent jobs never share a device slot; a killed job frees its slot."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from gradual_transfer.devices import lease_gpu, visible_devices

HOLDER = """
import json, os, sys, time
from gradual_transfer.devices import lease_gpu
lease = lease_gpu(sys.argv[1], poll_seconds=0.02)
start = time.monotonic()
time.sleep(float(sys.argv[2]))
print(json.dumps({"device": lease.device, "env": os.environ["CUDA_VISIBLE_DEVICES"],
                  "start": start, "end": time.monotonic()}))
"""


def spawn(lock_dir, hold: float, gpus: int = 2, **env) -> subprocess.Popen:
    environ = {k: v for k, v in os.environ.items() if k not in ("CUDA_VISIBLE_DEVICES", "SLURM_JOB_ID")}
    environ.update(GRADUAL_TRANSFER_GPUS=str(gpus), **env)
    return subprocess.Popen([sys.executable, "-c", HOLDER, str(lock_dir), str(hold)], env=environ,
                            stdout=subprocess.PIPE, text=True)


def test_concurrent_jobs_never_share_a_device(tmp_path):
    jobs = [spawn(tmp_path, 0.4) for _ in range(6)]
    leases = [json.loads(job.communicate(timeout=60)[0]) for job in jobs]
    assert {lease["device"] for lease in leases} == {"0", "1"}
    assert all(lease["env"] == lease["device"] for lease in leases)
    for device in ("0", "1"):
        spans = sorted((l["start"], l["end"]) for l in leases if l["device"] == device)
        assert all(a_end <= b_start for (_, a_end), (b_start, _) in zip(spans, spans[1:])), spans


def test_a_killed_job_frees_its_device(tmp_path):
    holder = spawn(tmp_path, 30, gpus=1)
    time.sleep(1.0)
    with pytest.raises(TimeoutError, match="no free GPU"):
        lease_gpu(tmp_path, environ={"GRADUAL_TRANSFER_GPUS": "1"}, poll_seconds=0.05, timeout=0.3)
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    environ = {"GRADUAL_TRANSFER_GPUS": "1"}
    lease = lease_gpu(tmp_path, environ=environ, timeout=5)
    assert lease.device == "0" and environ["CUDA_VISIBLE_DEVICES"] == "0"
    lease.release()


def test_slurm_allocation_is_used_as_is(tmp_path):
    environ = {"SLURM_JOB_ID": "42", "CUDA_VISIBLE_DEVICES": "1", "GRADUAL_TRANSFER_GPUS": "2"}
    lease = lease_gpu(tmp_path, environ=environ)
    assert lease.device == "1" and lease.slot is None and "SLURM" in lease.reason
    assert not list(tmp_path.iterdir())


def test_no_gpu_means_cpu(tmp_path):
    lease = lease_gpu(tmp_path, environ={"GRADUAL_TRANSFER_GPUS": "0"})
    assert lease.device is None and "CPU" in lease.reason


def test_user_device_list_restricts_the_slots(tmp_path):
    environ = {"GRADUAL_TRANSFER_GPUS": "4", "CUDA_VISIBLE_DEVICES": "2,3"}
    assert visible_devices(environ) == ["2", "3"]
    first = lease_gpu(tmp_path, environ=dict(environ))
    second = lease_gpu(tmp_path, environ=dict(environ))
    assert (first.device, second.device) == ("2", "3")
    first.release()
    second.release()


def test_several_jobs_per_gpu_fill_every_device_first_and_never_exceed_the_slots(tmp_path):
    environ = {"GRADUAL_TRANSFER_GPUS": "2"}
    leases = [lease_gpu(tmp_path, environ=dict(environ), jobs_per_gpu=2, timeout=0) for _ in range(4)]
    assert [(lease.device, lease.slot) for lease in leases] == [("0", 0), ("1", 0), ("0", 1), ("1", 1)]
    assert "slot 2 of 2" in leases[2].reason
    with pytest.raises(TimeoutError, match=r"no free GPU slot among \['0', '1'\] × 2"):
        lease_gpu(tmp_path, environ=dict(environ), jobs_per_gpu=2, poll_seconds=0.01, timeout=0.05)
    leases[1].release()
    assert lease_gpu(tmp_path, environ=dict(environ), jobs_per_gpu=2, timeout=0).device == "1"
    for lease in leases:
        lease.release()
