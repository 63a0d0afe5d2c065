"""A training job killed mid-run (SIGKILL, as a node failure or the OOM killer would) resumes
from its last epoch checkpoint when the workflow is run again, and ends with exactly the model
and metrics of an uninterrupted run (on CPU). Driven through Snakemake with profiles/local."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
import yaml

from conftest import REPO, SNAKEMAKE, tiny_config, without_timing

EPOCHS = 8
MODEL = "results/demo/models/densenet_demo/primary/cifar10/fold0/model.pt"
LOG = "results/demo/logs/models/densenet_demo/primary/cifar10/fold0.log"


def config() -> dict:
    config = tiny_config()
    config["demo"]["cifar10"]["train"] = 1200  # epochs long enough (~1 s) to kill one mid-run
    config["tasks"]["cifar10"]["training"].update(epochs=EPOCHS)
    return config


def snakemake(workdir: Path) -> list[str]:
    return [str(SNAKEMAKE), "--profile", str(REPO / "profiles" / "local"), "--cores", "2",
            "-s", str(REPO / "Snakefile"), "-d", str(workdir), MODEL]


def training_processes(workdir: Path) -> list[int]:
    """PIDs of the job scripts Snakemake started for this working directory."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if ".train.py" in cmdline and str(workdir) in cmdline + os.readlink(proc / "cwd"):
            pids.append(int(proc.name))
    return pids


def wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def run_to_end(workdir: Path) -> subprocess.CompletedProcess:
    result = subprocess.run(snakemake(workdir), capture_output=True, text=True, timeout=900, cwd=workdir)
    assert result.returncode == 0, result.stderr[-4000:]
    return result


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    """A working directory with the corpus and prepared images (everything but the model)."""
    workdir = tmp_path_factory.mktemp("resume")
    (workdir / "config.yaml").write_text(yaml.safe_dump(config(), sort_keys=False))
    result = subprocess.run(snakemake(workdir)[:-1] + ["results/demo/data/cifar10/train.arrow"],
                            capture_output=True, text=True, timeout=900, cwd=workdir)
    assert result.returncode == 0, result.stderr[-4000:]
    return workdir


def test_killed_training_resumes_from_its_checkpoint_and_ends_identically(prepared):
    workdir = prepared
    model, log = workdir / MODEL, workdir / LOG
    run = subprocess.Popen(snakemake(workdir), cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, start_new_session=True)
    try:
        wait_for(lambda: log.exists() and f"epoch 2/{EPOCHS}" in log.read_text(), 600, "epoch 2 to finish")
        pids = training_processes(workdir)
        assert pids, "the training job's process was not found"
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        output, _ = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
    assert run.returncode != 0, output  # Snakemake saw the job die
    killed_log = log.read_text()
    assert f"epoch {EPOCHS}/{EPOCHS}" not in killed_log, "the job finished before it was killed: lengthen it"
    assert not model.exists() and (model.parent / "resume" / "last.pt").exists()

    run_to_end(workdir)
    resumed_log = log.read_text()
    assert "resuming from" in resumed_log and "epoch 1/" not in resumed_log
    resumed = (model.parent / "metrics.json").read_text(), torch.load(model, weights_only=True)
    assert not (model.parent / "resume").exists()  # resume state is removed once the model is written

    # the same job uninterrupted (forced: model and metrics are rewritten from scratch)
    subprocess.run(snakemake(workdir) + ["--forcerun", "image_primary"], check=True, capture_output=True,
                   timeout=900, cwd=workdir)
    assert "resuming from" not in log.read_text()
    uninterrupted = (model.parent / "metrics.json").read_text(), torch.load(model, weights_only=True)
    assert without_timing(resumed[0]) == without_timing(uninterrupted[0])
    for name, tensor in uninterrupted[1]["state_dict"].items():
        assert torch.equal(resumed[1]["state_dict"][name], tensor), name
