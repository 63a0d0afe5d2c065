"""The GPU lease: concurrent jobs never share a device slot; a killed job frees its slot."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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


# --- a workstation shared with other users and other programs ---------------------------------

NVIDIA_SMI = """#!{python}
import json, sys
from pathlib import Path
state = json.loads(Path(__file__).with_name("gpus.json").read_text())
query = next(a for a in sys.argv[1:] if a.startswith("--query"))
kind, _, fields = query.partition("=")
for entry in state["gpus" if kind == "--query-gpu" else "apps"]:
    print(", ".join(str(entry.get(field, "[N/A]")) for field in fields.split(",")))
"""


def fake_nvidia_smi(tmp_path, gpus: int, apps: dict[int, int] | None = None, mode: str = "Default", **state) -> dict:
    """An environment whose nvidia-smi (a stand-in) reports `gpus` GPUs, compute processes
    `apps` (pid → GPU index), no MPS control daemon, and no /proc list of GPUs is read (see NO_PROC)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    program = bin_dir / "nvidia-smi"
    program.write_text(NVIDIA_SMI.format(python=sys.executable))
    program.chmod(0o755)
    set_gpu_processes(tmp_path, gpus, apps or {}, mode, **state)
    return {"PATH": str(bin_dir), "CUDA_MPS_PIPE_DIRECTORY": str(tmp_path / "mps")}


def set_gpu_processes(tmp_path, gpus: int, apps: dict[int, int], mode: str = "Default", driver: str = "580.65.06",
                      name: str = "NVIDIA H100 80GB HBM3", mps_servers: dict[int, int] | None = None) -> None:
    """What the stand-in reports: `apps` and `mps_servers` map pids to GPU indices."""
    state = {"gpus": [{"index": i, "uuid": f"GPU-{i}", "compute_mode": mode, "driver_version": driver, "name": name}
                      for i in range(gpus)],
             "apps": [{"gpu_uuid": f"GPU-{gpu}", "pid": pid, "used_memory": 500, "process_name": "python"}
                      for pid, gpu in apps.items()]
             + [{"gpu_uuid": f"GPU-{gpu}", "pid": pid, "used_memory": 30, "process_name": "nvidia-cuda-mps-server"}
                for pid, gpu in (mps_servers or {}).items()]}
    (tmp_path / "bin" / "gpus.json").write_text(json.dumps(state))


NO_PROC = "no-proc-gpus"  # a /proc without the driver's GPU list, as under WSL2


def test_without_a_proc_list_the_gpus_are_counted_by_nvidia_smi(tmp_path):
    environ = fake_nvidia_smi(tmp_path, 2)
    assert visible_devices(environ, proc_dir=tmp_path / NO_PROC) == ["0", "1"]
    lease = lease_gpu(tmp_path / "locks", environ=environ, proc_dir=tmp_path / NO_PROC, timeout=0)
    assert lease.device == "0" and environ["CUDA_VISIBLE_DEVICES"] == "0"
    assert environ["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"  # CUDA numbers the GPUs as nvidia-smi does
    lease.release()
    assert visible_devices({"PATH": str(tmp_path / "empty")}, proc_dir=tmp_path / NO_PROC) == []


def test_a_gpu_another_program_uses_is_passed_over_and_waited_for(tmp_path):
    environ = fake_nvidia_smi(tmp_path, 2, apps={999_999: 0})  # another program on GPU 0
    first = lease_gpu(tmp_path / "locks", environ=dict(environ), proc_dir=tmp_path / NO_PROC, timeout=0)
    assert first.device == "1" and "passed over GPU 0: in use by pid 999999 (500 MiB)" in first.reason
    with pytest.raises(TimeoutError, match=r"GPU 0: in use by pid 999999 \(500 MiB\)"):
        lease_gpu(tmp_path / "locks", environ=dict(environ), proc_dir=tmp_path / NO_PROC, poll_seconds=0.02,
                  timeout=0.1)
    shared = lease_gpu(tmp_path / "locks", environ=dict(environ), proc_dir=tmp_path / NO_PROC, busy_gpus="share",
                       timeout=0)
    assert shared.device == "0"
    shared.release()
    set_gpu_processes(tmp_path, 2, {})  # the other program ended
    assert lease_gpu(tmp_path / "locks", environ=dict(environ), proc_dir=tmp_path / NO_PROC, timeout=0).device == "0"
    first.release()


def test_a_gpu_running_our_own_job_is_not_busy_for_its_second_slot(tmp_path):
    """The lock files say which processes are this workflow's jobs (of any user)."""
    environ = fake_nvidia_smi(tmp_path, 1)
    first = lease_gpu(tmp_path / "locks", environ=dict(environ), proc_dir=tmp_path / NO_PROC, jobs_per_gpu=2, timeout=0)
    assert (tmp_path / "locks" / "gpu0.lock").read_text().split()[0] == str(os.getpid())
    set_gpu_processes(tmp_path, 1, {os.getpid(): 0})  # the first job started using its GPU
    second = lease_gpu(tmp_path / "locks", environ=dict(environ), proc_dir=tmp_path / NO_PROC, jobs_per_gpu=2,
                       timeout=0)
    assert (second.device, second.slot) == ("0", 1)
    first.release()
    second.release()


def test_an_exclusive_process_gpu_takes_one_job_and_says_why_the_next_waits(tmp_path, caplog):
    environ = fake_nvidia_smi(tmp_path, 1, mode="Exclusive_Process")
    first = lease_gpu(tmp_path / "locks", environ=dict(environ), proc_dir=tmp_path / NO_PROC, jobs_per_gpu=2, timeout=0)
    assert first.slot == 0 and first.sharing == 1  # its memory is not split: no second job comes
    with caplog.at_level("WARNING", logger="gradual_transfer"), pytest.raises(TimeoutError) as waited:
        lease_gpu(tmp_path / "locks", environ=dict(environ), proc_dir=tmp_path / NO_PROC, jobs_per_gpu=2,
                  poll_seconds=0.02, timeout=0.3)  # (the stand-in answers in tens of ms: it logs before the timeout)
    cause = ("GPU 0: its one slot is held by this workflow's jobs: compute mode Exclusive_Process runs one process "
             "at a time, so jobs_per_gpu: 2 needs an MPS server (nvidia-cuda-mps-control -d)")
    assert cause in str(waited.value) and cause in caplog.text
    assert "--resources" not in caplog.text  # the cause is the compute mode, not Snakemake's resources
    first.release()
    set_gpu_processes(tmp_path, 1, {999_999: 0}, mode="Exclusive_Process")  # another program has it
    with pytest.raises(TimeoutError, match=r"in use by pid 999999 \(500 MiB\) \(compute mode Exclusive_Process"):
        lease_gpu(tmp_path / "locks", environ=dict(environ), proc_dir=tmp_path / NO_PROC, busy_gpus="share",
                  poll_seconds=0.02, timeout=0.05)  # share cannot share a GPU that runs one process
    set_gpu_processes(tmp_path, 1, {999_999: 0}, mode="Prohibited")
    with pytest.raises(TimeoutError, match="GPU 0: compute mode Prohibited"):
        lease_gpu(tmp_path / "locks", environ=dict(environ), proc_dir=tmp_path / NO_PROC, poll_seconds=0.02,
                  timeout=0.05)


@pytest.mark.parametrize("mode", ["Default", "Exclusive_Process"])
def test_under_mps_our_jobs_share_a_gpu_by_their_lock_files(tmp_path, mode):
    """Under MPS nvidia-smi shows the MPS server (its pid in no lock file) for every client: it is
    not another program, and our jobs' slots are counted by their locks. In exclusive-process
    mode (NVIDIA's advice for MPS) the server is the one process, so jobs_per_gpu holds too; the
    control daemon's pipe says MPS runs before its server has started."""
    environ = fake_nvidia_smi(tmp_path, 1, mode=mode)
    (tmp_path / "mps").mkdir()
    (tmp_path / "mps" / "control").touch()  # the control daemon runs; no client has started its server yet
    first = lease_gpu(tmp_path / "locks", environ=dict(environ), proc_dir=tmp_path / NO_PROC, jobs_per_gpu=2, timeout=0)
    set_gpu_processes(tmp_path, 1, {}, mode=mode, mps_servers={4242: 0})  # the first job started: the server shows
    second = lease_gpu(tmp_path / "locks", environ=dict(environ), proc_dir=tmp_path / NO_PROC, jobs_per_gpu=2,
                       timeout=0)
    assert [(first.device, first.slot), (second.device, second.slot)] == [("0", 0), ("0", 1)]
    assert "slot 2 of 2, under MPS" in second.reason and second.sharing == 2
    with pytest.raises(TimeoutError, match="its 2 slots held by this workflow's jobs"):
        lease_gpu(tmp_path / "locks", environ=dict(environ), proc_dir=tmp_path / NO_PROC, jobs_per_gpu=2,
                  poll_seconds=0.02, timeout=0.05)
    first.release()
    second.release()
    if mode == "Default":  # a program that nvidia-smi shows beside the server is still another program's
        set_gpu_processes(tmp_path, 1, {999_999: 0}, mode=mode, mps_servers={4242: 0})
        with pytest.raises(TimeoutError, match=r"GPU 0: in use by pid 999999 \(500 MiB\)"):
            lease_gpu(tmp_path / "locks", environ=dict(environ), proc_dir=tmp_path / NO_PROC, poll_seconds=0.02,
                      timeout=0.05)


def test_a_slurm_allocation_of_several_gpus_is_split_among_its_jobs(tmp_path):
    """salloc --gpus=2, then the local profile: each job of the allocation leases one of its GPUs
    (not both, training on the first); another allocation's GPUs, numbered from 0 too, are its own."""
    allocation = {"SLURM_JOB_ID": "77", "CUDA_VISIBLE_DEVICES": "0,1", "PATH": str(tmp_path / "no-nvidia-smi")}
    leases = [lease_gpu(tmp_path, environ=dict(allocation), timeout=0) for _ in range(2)]
    assert [(lease.device, lease.slot) for lease in leases] == [("0", 0), ("1", 0)]
    assert sorted(path.name for path in (tmp_path / "slurm-job-77").iterdir()) == ["gpu0.lock", "gpu1.lock"]
    with pytest.raises(TimeoutError, match=r"no free GPU slot among \['0', '1'\] × 1"):
        lease_gpu(tmp_path, environ=dict(allocation), poll_seconds=0.01, timeout=0.05)
    other = lease_gpu(tmp_path, environ={**allocation, "SLURM_JOB_ID": "78"}, timeout=0)
    assert other.device == "0"
    for lease in [*leases, other]:
        lease.release()


def test_share_leases_the_idle_gpus_first(tmp_path):
    environ = fake_nvidia_smi(tmp_path, 2, apps={999_999: 0})  # another program on GPU 0
    leases = [lease_gpu(tmp_path / "locks", environ=dict(environ), proc_dir=tmp_path / NO_PROC, jobs_per_gpu=2,
                        busy_gpus="share", timeout=0) for _ in range(3)]
    assert [(lease.device, lease.slot) for lease in leases] == [("1", 0), ("1", 1), ("0", 0)]
    for lease in leases:
        lease.release()


def test_an_unknown_busy_setting_is_refused(tmp_path):
    from gradual_transfer.devices import DeviceError

    with pytest.raises(DeviceError, match="runtime.cuda.busy_gpus: 'wait' is not one of avoid, share"):
        lease_gpu(tmp_path, environ={"GRADUAL_TRANSFER_GPUS": "1"}, busy_gpus="wait")


REFUSED_AS_USER = """
import sys
sys.path.insert(0, sys.argv[1])
from gradual_transfer.devices import DeviceError, lease_gpu
try:
    lease_gpu(sys.argv[2], environ={"GRADUAL_TRANSFER_GPUS": "1"}, timeout=0)
except DeviceError as error:
    print(error)
"""


@pytest.mark.skipif(os.geteuid() == 0 and shutil.which("setpriv") is None,
                    reason="root writes any folder: the refusal needs another user (setpriv)")
def test_a_lock_folder_this_user_cannot_write_is_refused_in_one_sentence():
    from conftest import REPO

    shared = Path(tempfile.mkdtemp(prefix="gradual-transfer-users-", dir="/tmp"))
    try:
        (shared / "locks").mkdir()
        shared.chmod(0o755)
        (shared / "locks").chmod(0o755 if os.geteuid() == 0 else 0o555)  # root's, or read-only to this user
        run = subprocess.run([*(as_user("nobody") if os.geteuid() == 0 else []), sys.executable, "-c", REFUSED_AS_USER,
                              str(REPO), str(shared / "locks")], capture_output=True, text=True, cwd="/", timeout=60)
        user = "nobody" if os.geteuid() == 0 else None
        assert run.stdout.startswith(f"{shared / 'locks'}: the GPU lock folder is not writable by {user or ''}"), (
            run.stdout + run.stderr)
        assert f"chmod 1777 {shared / 'locks'}" in run.stdout and run.stdout.count("\n") == 1
    finally:
        shutil.rmtree(shared, ignore_errors=True)


LEASE_AS_USER = """
import json, os, sys, time
sys.path.insert(0, sys.argv[1])
from gradual_transfer.devices import lease_gpu
lease = lease_gpu(sys.argv[2], environ={"GRADUAL_TRANSFER_GPUS": sys.argv[3]}, timeout=0)
print(json.dumps({"device": lease.device, "uid": os.getuid(), "pid": os.getpid()}), flush=True)
time.sleep(float(sys.argv[4]))
"""


def as_user(user: str) -> list[str]:
    return [] if user == "root" else ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"]


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None,
                    reason="running a job as a second user (nobody) needs root and setpriv")
@pytest.mark.parametrize("first_user,second_user", [("root", "nobody"), ("nobody", "root")])
def test_two_users_share_one_lock_folder(first_user, second_user):
    """The first user's job creates the machine's lock folder and GPU 0's lock; the second
    user's job, meanwhile, gets GPU 1 (per-user folders would both lease GPU 0), and once the
    first is gone re-uses the lock file the first user created."""
    from conftest import REPO

    shared = Path(tempfile.mkdtemp(prefix="gradual-transfer-users-", dir="/tmp"))
    try:
        shared.chmod(0o1777)  # as /tmp, where the machine's lock folder is made by whoever comes first
        lock_dir = shared / "locks"

        def job(user: str, gpus: int, hold: float) -> subprocess.Popen:
            return subprocess.Popen([*as_user(user), sys.executable, "-c", LEASE_AS_USER, str(REPO), str(lock_dir),
                                     str(gpus), str(hold)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    text=True, env={"PATH": os.environ["PATH"]}, cwd="/")

        first = job(first_user, 2, 30)
        held = json.loads(first.stdout.readline() or first.stderr.read())
        second = job(second_user, 2, 0)
        out, err = second.communicate(timeout=60)
        assert second.returncode == 0, err
        assert (held["device"], json.loads(out)["device"]) == ("0", "1")
        assert lock_dir.stat().st_mode & 0o7777 == 0o1777  # world-writable, sticky: as /tmp
        for name, pid in (("gpu0.lock", held["pid"]), ("gpu1.lock", json.loads(out)["pid"])):
            lock = lock_dir / name
            assert lock.stat().st_mode & 0o777 == 0o666, name  # readable (and the holder's line writable) by all
            assert lock.read_text().split()[:2] == [str(pid), first_user if name == "gpu0.lock" else second_user]
        first.kill()
        first.wait()
        again = job(second_user, 1, 0)  # GPU 0's lock file belongs to the first user
        out, err = again.communicate(timeout=60)
        assert again.returncode == 0, err
        assert json.loads(out)["device"] == "0"
        assert (lock_dir / "gpu0.lock").read_text().split()[:2] == [str(json.loads(out)["pid"]), second_user]
    finally:
        shutil.rmtree(shared, ignore_errors=True)


def test_a_job_uses_the_device_its_lease_gave(monkeypatch, tmp_path):
    """CUDA only with a leased GPU: a job whose lease found none trains on the CPU even where
    PyTorch sees a GPU (and is refused before, see below); without a lease (a notebook) PyTorch
    decides."""
    import torch

    from gradual_transfer import devices
    from gradual_transfer.devices import Lease
    from gradual_transfer.devices import select_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(devices, "_held", None)
    assert select_device().type == "cuda"
    monkeypatch.setattr(devices, "_held", Lease(None, reason="no GPU: running on the CPU"))
    assert select_device().type == "cpu"
    monkeypatch.setattr(devices, "_held", Lease("1", 0, reason="leased GPU 1"))
    assert select_device().type == "cuda"


def test_the_command_line_takes_the_lease_too(tmp_path):
    """train-image outside Snakemake leases as a workflow job does: with GPU 0 held by a job, it
    gets GPU 1."""
    from conftest import REPO

    held = lease_gpu(tmp_path / "locks", environ={"GRADUAL_TRANSFER_GPUS": "2"}, timeout=0)
    environ = {k: v for k, v in os.environ.items() if k not in ("CUDA_VISIBLE_DEVICES", "SLURM_JOB_ID")}
    environ.update(GRADUAL_TRANSFER_GPUS="2", GRADUAL_TRANSFER_LOCK_DIR=str(tmp_path / "locks"))
    run = subprocess.run([sys.executable, "-m", "gradual_transfer", "train-image", "--arch", "densenet40", "--task",
                          "cifar10", "--data-dir", str(tmp_path / "missing"), "--out-dir", str(tmp_path / "out"),
                          "--configfile", str(REPO / "config.yaml")], capture_output=True, text=True, env=environ,
                         cwd=REPO, timeout=300)
    held.release()
    assert "device: leased GPU 1 (" in run.stderr, run.stderr[-3000:]
