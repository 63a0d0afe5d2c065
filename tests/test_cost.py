"""Cost is a result: FLOPs of a training step (known answers), throughput and MFU arithmetic,
device peaks, the cost table, and every job of the tiny run reporting its cost."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from gradual_transfer import cost
from gradual_transfer.analysis import cost_table
from gradual_transfer.models import build_model

DENSENET40 = {"kind": "densenet", "depth": 40, "growth_rate": 12, "init_features": 24, "dropout": 0.2}


def test_a_head_only_step_is_its_matrix_products():
    """Cached input of the head, only the head trains: forward 2·B·F·C, weight gradient
    2·B·F·C (no gradient flows into the cached features)."""
    model = build_model(DENSENET40, 10, [3, 32, 32]).freeze(7)
    features = model.head.in_features
    assert cost.train_step_flops(model, [3, 32, 32], 64, start_group=7) == 4 * 64 * features * 10


def test_densenet40_step_flops_at_the_papers_batch():
    # 108.6 GFLOP per step, as measured independently on an H200 (issue of the grid's cost)
    model = build_model(DENSENET40, 10, [3, 32, 32])
    assert cost.train_step_flops(model, [3, 32, 32], 64) == 108_555_319_296
    frozen = build_model(DENSENET40, 10, [3, 32, 32]).freeze(3)
    assert cost.train_step_flops(frozen, [3, 32, 32], 64) < 108_555_319_296  # no backward through 3 groups


def test_summary_rates_exclude_the_warm_up_and_cpus_have_no_mfu():
    history = [{"epoch": 0, "phase": "head warm-up", "seconds": 5.0},
               {"epoch": 1, "seconds": 10.0, "examples_per_s": 100.0},
               {"epoch": 2, "seconds": 30.0, "examples_per_s": 100.0 / 3}]
    summary = cost.summary(history, step_flops=64 * 10**9, batch_size=64, device=torch.device("cpu"), bf16=False)
    assert summary["train_seconds"] == 45.0 and summary["seconds_per_epoch"] == 20.0
    assert summary["examples_per_s"] == pytest.approx(2000 / 40)
    assert summary["achieved_tflops"] == pytest.approx(1e9 * 50 / 1e12)
    assert summary["mfu"] is None and summary["peak"] is None and summary["peak_memory"] == "host rss"
    assert summary["settings"] == {}
    json.dumps(summary, allow_nan=False)


@pytest.mark.parametrize("name, bf16, peak", [("NVIDIA H200", True, 989.4), ("NVIDIA H100 80GB HBM3", False, 494.7),
                                              ("NVIDIA H100 PCIe", True, 756.0), ("NVIDIA A100-SXM4-80GB", False, 156.0),
                                              ("Some Future GPU", True, None)])
def test_device_peaks_by_name_and_precision(monkeypatch, name, bf16, peak):
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: name)
    value, source = cost.device_peak(torch.device("cuda"), bf16)
    assert value == peak
    if peak is not None:
        assert name in source and ("bf16" if bf16 else "tf32") in source


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
    assert other == pytest.approx(first / 2, rel=0.01)
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
