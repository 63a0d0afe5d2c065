"""benchmarks/gpu_check.py, the prepared GPU check (its parts in gpu_check_parts.py, on the models
and data of gpu_check_setup.py, shared with these tests), always reports: every part, check and row is
saved as it goes and guarded; CUDA that does not start is recorded with the versions and the
reason; --budget ends the run by then, its child processes killed; the lease's child jobs are
bounded. Run here on a CPU (CUDA does not start here), the modules the GPU machine lacks blocked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import REPO
from test_devices import fake_nvidia_smi
from test_engine import CPU

sys.path.insert(0, str(REPO / "benchmarks"))
import gpu_check_runner as runner  # noqa: E402
import gpu_check_setup as setup  # noqa: E402

MISSING_ON_THE_GPU_MACHINE = ("snakemake", "kaldiio", "soundfile", "jsonschema", "kaldialign", "tensorboard")
BLOCKER = f"""
import importlib.abc, sys

class Missing(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in {MISSING_ON_THE_GPU_MACHINE!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}} (not on the GPU machine)", name=name)

sys.meta_path.insert(0, Missing())
"""


def blocked_environment(tmp_path) -> dict:
    (tmp_path / "blocker").mkdir(exist_ok=True)
    (tmp_path / "blocker" / "sitecustomize.py").write_text(BLOCKER)
    return {**os.environ, "PYTHONPATH": f"{tmp_path / 'blocker'}{os.pathsep}{REPO}"}


def test_each_part_check_and_row_is_saved_as_it_goes_and_a_failure_is_recorded(tmp_path):
    out = tmp_path / "report.json"
    report = runner.Report(out, torch="x")
    seen_on_disk = []

    def fails():
        raise ModuleNotFoundError("No module named 'kaldiio'")

    def checks():
        report.check("second", "fine", lambda: True)
        report.check("second", "late failure", lambda: 1 / 0)
        report.row("second", "rows", {"model": "a"}, lambda: {"rate": 2})
        seen_on_disk.append(json.loads(out.read_text()))
        report.row("second", "rows", {"model": "b"}, fails)

    runner.run_parts(report, {"first": fails, "second": checks,
                              "third": lambda: seen_on_disk.append(json.loads(out.read_text())) or {"x": 1}})
    during = seen_on_disk[0]
    assert during["first"]["error"] == "ModuleNotFoundError: No module named 'kaldiio'"
    assert during["second"] == {"fine": True, "late failure": {"error": "ZeroDivisionError: division by zero"},
                                "rows": [{"model": "a", "rate": 2}]}
    final = json.loads(out.read_text())
    assert final["second"]["rows"][1] == {"model": "b", "error": "ModuleNotFoundError: No module named 'kaldiio'"}
    assert set(final["seconds"]) == {"first", "second", "third"} and final["third"] == {"x": 1}


def test_with_cuda_that_does_not_start_the_check_writes_its_report_with_the_reason(tmp_path):
    """--device cuda (the default) where CUDA does not start: the report holds the driver's and
    PyTorch's versions and the sentence a job would refuse with; no part runs. (CUDA hidden,
    so that this holds on any machine; the stand-in nvidia-smi shows a driver too old.)"""
    stand_in = fake_nvidia_smi(tmp_path, 1, driver="535.104.05", name="NVIDIA RTX A6000")
    env = {**blocked_environment(tmp_path), **stand_in, "CUDA_VISIBLE_DEVICES": "",
           "PATH": f"{stand_in['PATH']}{os.pathsep}{os.environ['PATH']}"}
    out = tmp_path / "gpu_check.json"
    run = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu_check.py"), "--out", str(out)],
                         capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr[-3000:]
    report = json.loads(out.read_text())
    cuda = report["cuda"]
    assert cuda["usable"] is False and cuda["driver"] == "535.104.05" and cuda["torch"] == torch.__version__
    assert cuda["torch_cuda"] == torch.version.cuda
    assert cuda["reason"].startswith("NVIDIA RTX A6000 (driver 535.104.05) is too old for this PyTorch")
    assert "seconds" not in report and report["parts"] == ["lease", "resident", "graphs", "throughput", "feeding"]


WATCHED = """
import json, sys, time
sys.path.insert(0, sys.argv[1])
import gpu_check_runner as runner
report = runner.Report(__import__("pathlib").Path(sys.argv[2]), budget_s=1.5)
report.start_watchdog()
code = ("import os, subprocess, sys, time; grandchild = subprocess.Popen(['sleep', '60']); "
        f"open({sys.argv[3]!r}, 'w').write(f'{{os.getpid()}} {{grandchild.pid}}'); time.sleep(60)")
runner.run_parts(report, {"lease": lambda: report.check("lease", "children", lambda: runner.run_children(
    code, 1, 60, {}))})
print("not reached")
"""


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"  # a zombie is dead
    except (FileNotFoundError, IndexError):
        return False


def test_the_budget_ends_the_run_with_its_children_and_says_where(tmp_path):
    started = time.monotonic()
    run = subprocess.run([sys.executable, "-c", WATCHED, str(REPO / "benchmarks"), str(tmp_path / "report.json"),
                          str(tmp_path / "pids")], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and "not reached" not in run.stdout, run.stderr[-2000:]
    assert time.monotonic() - started < 30
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["stopped"] == "the budget of 1.5 s ran out during lease: children"
    pids = [int(pid) for pid in (tmp_path / "pids").read_text().split()]
    deadline = time.monotonic() + 5
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(alive(pid) for pid in pids), pids


def test_a_late_child_is_killed_and_answers_with_its_error():
    started = time.monotonic()
    answers = runner.run_children("import json; print(json.dumps({'ok': 1}))", 1, 30, {})
    late = runner.run_children("import time; time.sleep(60)", 1, 0.5, {})
    assert answers == [{"ok": 1}] and late[0]["error"] == "killed after 0.5 s" and not alive(late[0]["pid"])
    assert time.monotonic() - started < 20 and not runner.CHILDREN


def test_parts_and_rows_past_the_budget_are_listed_as_skipped(tmp_path):
    report = runner.Report(tmp_path / "r.json", budget_s=100)
    report.deadline = time.monotonic() + 3  # 3 s of 100 left: no new part (needs 10), a row (needs 2) still
    report.row("graphs", "throughput", {"model": "a"}, lambda: {"rate": 1})
    runner.run_parts(report, {"feeding": lambda: {"ran": True}})
    report.deadline = time.monotonic() + 1
    report.row("graphs", "throughput", {"model": "b"}, lambda: {"rate": 1})
    saved = json.loads((tmp_path / "r.json").read_text())
    assert saved["skipped"] == {"feeding": "the budget ran out"} and "feeding" not in saved
    assert saved["graphs"]["throughput"] == [{"model": "a", "rate": 1}, {"model": "b", "skipped": "the budget ran out"}]


def test_gpu_check_runs_to_its_report_without_the_modules_the_gpu_machine_lacks(tmp_path):
    """The prepared GPU command's parts on a CPU (tiny data, narrow models), with Snakemake,
    kaldiio, soundfile, jsonschema, kaldialign and tensorboard unimportable: every part reports
    (lease: no GPU here, recorded as its error), and eager, graph-ready and a second eager run
    train alike."""
    env = blocked_environment(tmp_path)
    blocked = subprocess.run([sys.executable, "-c", "import kaldiio"], capture_output=True, text=True, env=env)
    assert "not on the GPU machine" in blocked.stderr  # the blocker works
    out = tmp_path / "gpu_check.json"
    run = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu_check.py"), "--device", "cpu", "--quick",
                          "--only", "lease", "resident", "graphs", "--out", str(out)],
                         capture_output=True, text=True, env=env, cwd=tmp_path, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(out.read_text())
    assert set(report["seconds"]) == {"lease", "resident", "graphs"}
    assert report["lease"]["error"] == "RuntimeError: no CUDA device: nothing to lease"
    resident = report["resident"]
    assert all(resident[k] is True for k in ("images_same_batches", "frames_same_batches", "images_same_accuracy",
                                             "frames_same_scores", "same_posteriors")), resident
    assert resident["cached_prefix_fit"]["start_group"] == resident["cached_prefix_fit_graphed"]["start_group"] == 5
    assert resident["cached_prefix_fit"]["losses"] == pytest.approx(resident["cached_prefix_fit_graphed"]["losses"])
    rows = report["graphs"]["same_training"]
    assert [row["model"] for row in rows] == ["densenet40", "model_a", "model_b"]
    for row in rows:
        assert "error" not in row, row
        assert row["eager_again_off_eager"] == 0.0 and row["graphed_off_eager"] < 1e-4 < row["wrong_lr_off_eager"]
    assert all("error" not in row and row["eager_per_s"] > 0 for row in report["graphs"]["throughput"])


def test_gpu_check_compares_training_from_a_briefly_trained_densenet(tmp_path):
    """A fresh DenseNet-40's BatchNorm statistics are the initial ones: in the head warm-up (body
    in eval mode) its loss is thousands, which fit refuses as diverged, so graphed-vs-eager never
    got compared. One epoch of plain training gives statistics that make it sane."""
    from gradual_transfer.steps import DIVERGED_LOSS_FACTOR

    run = setup.Run(CPU, {**setup.SIZES["full"], "batch_divisor": 4})  # the real DenseNet-40
    source = setup.image_source(tmp_path, 160)
    x, y = next(source.batches(16, None))
    refused = DIVERGED_LOSS_FACTOR * np.log(10)

    def warm_up_loss(model) -> float:
        with torch.no_grad():
            return torch.nn.functional.cross_entropy(model.freeze(model.num_groups).eval()(x), y).item()

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # batches of 16: more threads only wait for each other
    try:
        assert warm_up_loss(setup.fresh_model(run, "densenet40", False, dropout=0.0)) > refused
        start = setup.briefly_trained(run, "densenet40", source)
        assert warm_up_loss(setup.from_state(run, "densenet40", start, False)) < 2 * np.log(10)
    finally:
        torch.set_num_threads(threads)
