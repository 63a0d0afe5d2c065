"""Cost is a result: FLOPs of a training step (known answers), throughput and MFU arithmetic,
device peaks, the cost table, and every job of the tiny run reporting its cost."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from gradual_transfer import cost
from gradual_transfer.cost import cost_table
from gradual_transfer.models import build_model

DENSENET40 = {"kind": "densenet", "depth": 40, "growth_rate": 12, "init_features": 24, "dropout": 0.2}


def test_a_head_only_step_is_its_matrix_products():
    """Cached input of the head, only the head trains: forward 2·B·F·C, weight gradient
    2·B·F·C (no gradient flows into the cached features)."""
    model = build_model(DENSENET40, 10, [3, 32, 32]).freeze(7)
    features = model.head.in_features
    flops = cost.train_step_flops(model, [3, 32, 32], 64, start_group=7)
    assert flops.total == flops.matmul == 4 * 64 * features * 10 and flops.convolution == 0


def test_densenet40_step_flops_at_the_papers_batch():
    # 108.6 GFLOP per step, as measured independently on an H200 (issue of the grid's cost)
    model = build_model(DENSENET40, 10, [3, 32, 32])
    assert cost.train_step_flops(model, [3, 32, 32], 64).total == 108_555_319_296
    frozen = build_model(DENSENET40, 10, [3, 32, 32]).freeze(3)
    assert cost.train_step_flops(frozen, [3, 32, 32], 64).total < 108_555_319_296  # no backward through 3 groups


def test_summary_rates_exclude_the_warm_up_and_cpus_have_no_mfu():
    history = [{"epoch": 0, "phase": "head warm-up", "seconds": 5.0},
               {"epoch": 1, "seconds": 10.0, "examples_per_s": 100.0},
               {"epoch": 2, "seconds": 30.0, "examples_per_s": 100.0 / 3}]
    step = cost.StepFlops(convolution=48 * 10**9, matmul=16 * 10**9)
    summary = cost.summary(history, step_flops=step, batch_size=64, device=torch.device("cpu"), bf16=False)
    assert summary["train_seconds"] == 45.0 and summary["seconds_per_epoch"] == 20.0
    assert summary["examples_per_s"] == pytest.approx(2000 / 40)
    assert summary["achieved_tflops"] == pytest.approx(1e9 * 50 / 1e12)
    assert summary["mfu"] is None and summary["peak"] is None and summary["peak_memory"] == "host rss"
    assert summary["settings"] == {} and summary["units"] is None
    assert summary["step_flops"] == 64 * 10**9 and summary["step_flops_by_kind"] == {"convolution": 48 * 10**9,
                                                                                      "matmul": 16 * 10**9}
    json.dumps(summary, allow_nan=False)


CONVOLUTIONS_ONLY = cost.StepFlops(convolution=10**12, matmul=0)
MATMULS_ONLY = cost.StepFlops(convolution=0, matmul=10**12)
TF32 = {"convolution": "tf32", "matmul": "tf32"}
FP32 = {"convolution": "fp32", "matmul": "fp32"}


@pytest.mark.parametrize("name, bf16, units, peak", [
    ("NVIDIA H200", True, FP32, 989.4),  # bf16 autocast: both kinds on bf16 tensor cores
    ("NVIDIA H100 80GB HBM3", False, TF32, 494.7),
    ("NVIDIA H100 80GB HBM3", False, FP32, 66.9),
    ("NVIDIA H100 PCIe", True, FP32, 756.0),
    ("NVIDIA H100 NVL", True, FP32, 835.5),  # not the SXM part's 989.4
    ("NVIDIA H200 NVL", False, TF32, 417.5),
    ("NVIDIA A100-SXM4-80GB", False, TF32, 156.0),
    ("NVIDIA A100 80GB PCIe", False, FP32, 19.5),
    ("NVIDIA L40S", True, FP32, 362.05),
    ("Some Future GPU", True, FP32, None),
    ("NVIDIA H100X", True, FP32, None),  # a name that merely starts like a known one is not it
])
def test_device_peaks_by_exact_name_and_the_units_that_ran(monkeypatch, name, bf16, units, peak):
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: name)
    for flops in (CONVOLUTIONS_ONLY, MATMULS_ONLY):
        value, source = cost.device_peak(torch.device("cuda"), bf16, flops, units)
        assert value == (pytest.approx(peak) if peak else None)
        if peak is not None:
            unit = "bf16" if bf16 else units["convolution"]
            assert source.startswith(name + ":") and f"{unit.upper()} " in source


def test_fp32_matmuls_on_fp32_cores_weigh_in_by_their_share_of_the_flops(monkeypatch):
    """cuDNN runs fp32 convolutions on TF32 tensor cores by default, cuBLAS fp32 matrix products on
    FP32 cores (PyTorch's defaults): the step's peak is the rate at which its FLOPs could run, each
    kind on its unit."""
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA H100 80GB HBM3")
    model_a = cost.StepFlops(convolution=23_750_246_400, matmul=13_514_047_488)  # 36 % in matrix products
    peak, source = cost.device_peak(torch.device("cuda"), False, model_a, {"convolution": "tf32", "matmul": "fp32"})
    assert peak == pytest.approx(model_a.total / (model_a.convolution / 494.7 + model_a.matmul / 66.9))
    assert 140 < peak < 160
    assert "convolutions on TF32 tensor cores" in source and "matrix products on FP32 cores" in source


def test_a_mig_slice_is_named_and_gets_no_whole_gpu_peak(monkeypatch):
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA H100 80GB HBM3 MIG 3g.40gb")
    peak, source = cost.device_peak(torch.device("cuda"), True, MATMULS_ONLY, TF32)
    assert peak is None and source == ("NVIDIA H100 80GB HBM3 MIG 3g.40gb: a MIG slice (3g.40gb) of a GPU; no peak is "
                                       "known for a slice")


def test_the_units_follow_pytorchs_tf32_flags():
    """Whatever API set them (the legacy allow_tf32 flags or fp32_precision)."""
    matmul, convolution = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    try:
        assert cost.fp32_units() == {"convolution": "tf32" if convolution else "fp32",
                                     "matmul": "tf32" if matmul else "fp32"}
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = True, False
        assert cost.fp32_units() == {"convolution": "fp32", "matmul": "tf32"}
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = False, True
        assert cost.fp32_units() == {"convolution": "tf32", "matmul": "fp32"}
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = matmul, convolution


def test_the_step_count_splits_convolutions_from_matrix_products():
    speech = build_model({"kind": "convnet", "conv_groups": [{"channels": [8], "first_kernel": [3, 3], "pool": True}],
                          "fc_units": [32], "dropout": 0.0}, 5, [1, 6, 8])
    flops = cost.train_step_flops(speech, [1, 6, 8], 4)
    head_and_fc = 4 * (2 * 8 * 3 * 4 * 32 + 2 * 32 * 5)  # forward of FC and head, 2 per multiply-add
    assert flops.matmul == 3 * head_and_fc  # forward, then the gradients of the weights and of the inputs
    assert flops.convolution > 0 and flops.total == flops.convolution + flops.matmul


def _metrics(path, kind, seconds, rate, mfu=None, with_cost=True, arch="a"):
    entry = {"experiment": "images", "arch": arch, "kind": kind}
    if with_cost:
        entry["cost"] = {"device_name": "NVIDIA H200", "train_seconds": seconds, "examples_per_s": rate, "mfu": mfu,
                         "peak_memory_mb": 100.0}
    path.write_text(json.dumps(entry))
    return path


def test_cost_table_adds_up_device_hours_per_job_type_and_in_all(tmp_path):
    files = [_metrics(tmp_path / "p.json", "primary", 7200, 1000.0, 0.1),
             _metrics(tmp_path / "t1.json", "transfer", 1800, 2000.0, 0.2),
             _metrics(tmp_path / "t2.json", "transfer", 1800, 4000.0, 0.4),
             _metrics(tmp_path / "old.json", "transfer", 0, 0, with_cost=False)]
    table = cost_table(files)
    rows = {(r.kind, r.device_name): r for r in table.itertuples()}
    assert rows[("primary", "NVIDIA H200")].device_hours == 2.0
    transfers = rows[("transfer", "NVIDIA H200")]
    assert transfers.jobs == 2 and transfers.device_hours == 1.0 and transfers.mean_examples_per_s == 3000.0
    assert transfers.mean_mfu == pytest.approx(0.3)
    assert rows[("transfer", "unknown")].jobs_without_cost == 1
    total = rows[("all", "all")]
    assert total.jobs == 4 and total.device_hours == 3.0 and total.jobs_without_cost == 1


def test_every_job_of_the_tiny_run_reports_its_cost(tiny_results):
    out, _, _ = tiny_results
    for path in (out / "models").rglob("metrics.json"):  # every training job, the aligner too
        if path.parent.name == "decode":
            continue
        c = json.loads(path.read_text())["cost"]
        assert c["device"] == "cpu" and c["examples_per_s"] > 0 and c["step_flops"] > 0, path
        assert c["achieved_tflops"] > 0 and c["train_seconds"] > 0 and c["peak_memory_mb"] > 0
        settings = c["settings"]  # on a CPU: no GPU knob is in force, whatever runtime.cuda says
        assert not (settings["amp_bf16"] or settings["cuda_graphs"] or settings["data_on_device"]), path
        assert settings["frozen_prefix_cached"] == ((json.loads(path.read_text()).get("lc") or 0) > 0), path
    table = pd.read_csv(out / "tables" / "cost.tsv", sep="\t")
    total = table[table["kind"] == "all"].iloc[0]
    assert total["jobs"] == len(list((out / "models").rglob("model.pt")))
    assert table[table["kind"] == "aligner"]["jobs"].sum() == 1  # the realignment's model counts in the cost
    assert total["device_hours"] > 0 and total["jobs_without_cost"] == 0


def test_the_step_count_is_remembered_per_network_shape_and_groups(tmp_path, monkeypatch):
    model = build_model(DENSENET40, 10, [3, 32, 32]).freeze(5)
    first = cost.cached_train_step_flops(model, DENSENET40, [3, 32, 32], 64, 5, tmp_path)
    assert first == cost.train_step_flops(model, [3, 32, 32], 64, 5)
    monkeypatch.setattr(cost, "train_step_flops", lambda *args: pytest.fail("counted again"))
    assert cost.cached_train_step_flops(model, DENSENET40, [3, 32, 32], 64, 5, tmp_path) == first
    monkeypatch.undo()
    other = cost.cached_train_step_flops(model, DENSENET40, [3, 32, 32], 32, 5, tmp_path)  # another batch size
    assert other.total == pytest.approx(first.total / 2, rel=0.01)
    assert len(list((tmp_path / "step_flops").glob("*.json"))) == 2


def test_the_grid_cost_benchmark_runs_through_fit(tmp_path):
    import subprocess
    import sys

    from conftest import REPO

    result = subprocess.run([sys.executable, str(REPO / "benchmarks" / "grid_cost.py"), "--quick", "--device", "cpu",
                             "--variants", "before", "after", "--json", str(tmp_path / "cost.json")],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    estimate = json.loads((tmp_path / "cost.json").read_text())
    assert estimate["variants"] == ["before", "after"]
    for variant in ("before", "after"):
        rates = estimate["examples_per_s"][variant]
        assert set(rates) == {f"densenet40 lc{lc}" for lc in (0, 1, 3, 5, 7)} | {
            f"model_a lc{lc}" for lc in range(6)} | {f"model_b lc{lc}" for lc in range(7)}
        assert all(rate > 0 for rate in rates.values())
        total = estimate["total_hours"][variant]
        assert total == pytest.approx(sum(estimate["hours"][variant].values())) and total > 0
    assert "| all | | 259 |" in result.stdout and "| before: cpu-hours | after: cpu-hours |" in result.stdout
