"""The screen: which estimates and similarity jobs a grid has, what their params hold, the
representations they read (frozen groups identical, one pass), and their tables on hand-made
files with known answers."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from gradual_transfer.agreement import agreement_table, estimates_table, similarity_table
from gradual_transfer.config import validate_config
from gradual_transfer.plan.screen import estimate_jobs, estimate_params, similarity_jobs, similarity_params


def test_the_paper_grid_has_one_estimates_job_per_pair_and_seed(paper_config):
    config = validate_config(paper_config, check_data=False)
    jobs = {job.folder: job for job in estimate_jobs(config)}
    assert len(jobs) == 6 + 2 * 2  # 6 image pairs; ASR ↔ SER for Model A and Model B
    speech = jobs["model_b/asr-to-ser"]
    assert [u[0] for u in speech.units] == list(range(1, 9)) and speech.lcs == [1, 2, 3, 4, 5, 6]  # no l_c 0
    assert speech.source_primary(speech.units[0]).folder == "model_b/primary/asr/fold0"
    assert speech.target_primary((3, 0)).folder == "model_b/primary/ser/fold3"
    back = jobs["model_b/ser-to-asr"]
    assert back.units[2] == (3, 3) and back.target_primary((3, 3)).folder == "model_b/primary/asr/fold0"
    assert back.source_primary((3, 3)).folder == "model_b/primary/ser/fold3"
    assert len(similarity_jobs(config)) == 10  # the paper's one family


def test_estimates_params_hold_what_reading_the_target_needs_and_no_recipe(paper_config):
    config = validate_config(paper_config, check_data=False)
    job = next(j for j in estimate_jobs(config) if j.folder == "densenet40/svhn-to-cifar10")
    params = estimate_params(config, job)
    assert set(params) == {"screen", "settings", "sample", "version"}
    assert "recipe" not in params["settings"] and "lc" not in params["settings"]
    assert params["sample"] == {"example": "image", "size": 2000, "seed": 0}  # the images' size only
    # a fine-tuning recipe changes no estimate; the sample does
    paper_config["tasks"]["cifar10"]["finetune"]["epochs"] = 3
    assert estimate_params(validate_config(paper_config, check_data=False), job) == params
    paper_config["experiments"]["images"]["upper_groups"] = ["copy", "reinit"]
    reinit = next(j for j in similarity_jobs(validate_config(paper_config, check_data=False))
                  if j.family == "reinit" and j.source == "svhn" and j.target == "cifar10")
    assert reinit.folder == "densenet40/transfer-reinit/svhn-to-cifar10"
    assert similarity_params(validate_config(paper_config, check_data=False), reinit)["init_seed"] == 0


def test_planning_the_screen_imports_no_torch():
    code = ("import sys; from gradual_transfer.plan import screen; from gradual_transfer import agreement, representations; "
            "print(sorted(m for m in ('torch', 'torchvision') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_group_outputs_in_one_pass_and_frozen_groups_identical():
    import torch

    from gradual_transfer.models import build_model
    from gradual_transfer.representations import Examples, group_outputs, pooled
    from gradual_transfer.similarity import debiased_cka
    from gradual_transfer.transfer import transfer_model

    arch = {"kind": "densenet", "depth": 7, "growth_rate": 4, "init_features": 8, "dropout": 0.2}
    torch.manual_seed(0)
    model = build_model(arch, 10, [3, 16, 16])
    x = torch.randn(40, 3, 16, 16)
    examples = Examples(np.arange(40) % 10, 40, lambda a, b: x[a:b])
    outputs = group_outputs(model, examples)
    assert len(outputs) == model.num_groups and outputs[0].shape == (40, 8)
    with torch.no_grad():
        model.eval()
        assert np.allclose(outputs[2], pooled(model.forward_groups(x, 0, 3)).double().numpy(), atol=1e-6)
        *same, probabilities = group_outputs(model, examples, probabilities=True)  # LEEP's softmax, same pass
        assert all(np.array_equal(a, b) for a, b in zip(same, outputs))
        assert np.allclose(probabilities, torch.softmax(model(x), dim=1).double().numpy(), atol=1e-6)
    source = {"arch_name": "d", "arch": arch, "input_shape": [3, 16, 16], "state_dict": model.state_dict()}
    reinit = transfer_model(source, "d", arch, 5, 3, seed=1, upper_groups="reinit")
    moved = group_outputs(reinit, examples)
    assert [debiased_cka(a, b) for a, b in zip(outputs[:3], moved[:3])] == pytest.approx([1.0] * 3)
    assert debiased_cka(outputs[4], moved[4]) < 0.99  # re-initialised above l_c


def test_utterance_examples_pool_the_speech_frames_of_each_utterance():
    import torch

    from gradual_transfer.representations import Examples, _per_example

    values = np.array([[1.0], [3.0], [100.0], [5.0], [7.0]])
    examples = Examples(np.array([0, 1]), 5, lambda a, b: torch.zeros(b - a, 1),
                        utterance=np.array([0, 0, 0, 1, 1]), speech=np.array([True, True, False, True, True]))
    assert _per_example(values, examples).ravel().tolist() == [2.0, 6.0]  # silence (100) left out


def write(path, data):
    path.write_text(json.dumps(data))
    return path


def screen_files(tmp_path):
    """Estimates of a → b and c → b over l_c 1..3 (one unit each), and one similarity file."""
    files = []
    for source, logme in (("a", [0.9, 0.5, 0.1]), ("c", [0.8, 0.7, 0.6])):
        units = [{"fold": 0, "source_fold": 0, "example": "image", "n_train": 50, "n_validation": 20,
                  "features": [8, 16, 64], "cka_primaries": [0.9, 0.5, 0.2], "cka_primaries_plugin": [0.91, 0.6, 0.3],
                  "lc": {str(lc): {"logme": v, "h_score_shrinkage": 2 * v, "probe_error": 10 / v,
                                   "leep": -1.0 if lc == 3 else None} for lc, v in zip((1, 2, 3), logme)}}]
        files.append(write(tmp_path / f"{source}.json", {
            "screen": {"experiment": "s", "arch": "m", "source": source, "target": "b", "seed": 0},
            "groups": ["g1", "g2", "g3"], "probe_metric": "top-1 error (%)", "units": units, "cost": {"seconds": 1.0}}))
    similarity = write(tmp_path / "sim.json", {
        "screen": {"experiment": "s", "arch": "m", "source": "a", "target": "b", "seed": 0, "family": "copy"},
        "groups": ["g1", "g2", "g3"], "units": [{"fold": 0, "source_fold": 0, "n": 50,
                                                  "lc": {"1": [1.0, 0.8, 0.4], "2": [1.0, 1.0, 0.7]}}]})
    return files, similarity


def test_estimates_table_and_its_notes(tmp_path):
    files, _ = screen_files(tmp_path)
    table = estimates_table(files, {"m": 3})
    assert len(table) == 6 and table["relative_depth"].tolist()[:3] == pytest.approx([1 / 3, 2 / 3, 1.0])
    assert table.loc[table["lc"] < 3, "leep"].isna().all() and (table.loc[table["lc"] == 3, "leep"] == -1.0).all()
    assert table.loc[table["lc"] == 3, "sample_note"].str.startswith("50 examples ≤ 64 features").all()
    assert (table.loc[table["lc"] < 3, "sample_note"] == "").all()


def test_agreement_orients_every_estimate_as_the_measured_gap(tmp_path):
    files, _ = screen_files(tmp_path)
    estimates = estimates_table(files, {"m": 3})
    # measured: a → b loses more the deeper it is frozen (as its LogME falls); c → b less so
    rows = [{"experiment": "s", "arch": "m", "kind": "transfer", "split": "test", "upper_groups": "copy",
             "source": source, "target": "b", "lc": lc, "gap": 50 * gap, "normalised_gap": gap}
            for source, gaps in (("a", [0.1, 0.3, 0.9]), ("c", [0.2, 0.25, 0.35])) for lc, gap in zip((1, 2, 3), gaps)]
    table = agreement_table(estimates, pd.DataFrame(rows)).set_index(["scope", "source", "estimate"]).sort_index()
    curve = table.loc[("curve", "a")]
    # LogME and H-score fall, the probe's error rises: all three agree perfectly with the gap
    assert curve.loc["logme", "tau"] == curve.loc["h_score_shrinkage", "tau"] == curve.loc["probe_error", "tau"] == 1.0
    assert curve.loc["logme", "n_points"] == 3 and curve.loc["logme", "p_method"] == "exact"
    assert np.isnan(curve.loc["leep", "tau"])  # one point (l_c = L_H)
    overall = table.loc[("all", "")]
    assert overall.loc["logme", "n_points"] == 6
    assert -1 <= overall.loc["logme", "tau"] <= 1 and np.isfinite(overall.loc["logme", "p_value"])


def test_similarity_table(tmp_path):
    files, similarity = screen_files(tmp_path)
    table = similarity_table(files, [similarity])
    primaries = table[table["comparison"] == "source vs target primary"]
    assert len(primaries) == 6 and primaries["group"].tolist()[:3] == ["g1", "g2", "g3"]
    transfers = table[table["comparison"] == "transfer vs its start"]
    assert transfers["frozen"].tolist() == [True, False, False, True, True, False]
    assert (transfers.loc[transfers["frozen"], "cka_debiased"] == 1.0).all()


def test_the_cost_table_sets_the_screen_beside_what_it_predicts(tmp_path):
    from gradual_transfer.cost import cost_table

    files = [write(tmp_path / f"m{i}.json", {"experiment": "e", "arch": "a", "kind": kind, "cost": {
        "device_name": "cpu", "train_seconds": seconds, "examples_per_s": 10.0, "mfu": None, "peak_memory_mb": 5.0}})
        for i, (kind, seconds) in enumerate((("primary", 100), ("transfer", 50), ("transfer", 70)))]
    screen = write(tmp_path / "s.json", {"screen": {"experiment": "e", "arch": "a"}, "cost": {"seconds": 8.0,
                                                                                           "device": "cpu"}})
    table = cost_table(files, [screen]).set_index("kind")
    assert table.loc["estimates", "device_hours"] * 3600 == pytest.approx(8.0)
    assert table.loc["screen: primaries and estimates", "device_hours"] * 3600 == pytest.approx(108.0)
    assert table.loc["what it predicts: transfers", "device_hours"] * 3600 == pytest.approx(120.0)
    assert "screen: primaries and estimates" not in set(cost_table(files)["kind"])


def test_the_estimates_figure_is_drawn(tmp_path):
    from gradual_transfer.screen_figures import figure_estimates

    files, _ = screen_files(tmp_path)
    estimates = estimates_table(files, {"m": 3})
    rows = [{"experiment": "s", "arch": "m", "kind": "transfer", "split": "test", "upper_groups": "copy",
             "source": source, "target": "b", "lc": lc, "gap": lc, "normalised_gap": 0.1 * lc + (source == "c")}
            for source in ("a", "c") for lc in (1, 2, 3)]
    transferability = pd.DataFrame(rows)
    figure_estimates(estimates, transferability, agreement_table(estimates, transferability), "Estimates",
                     tmp_path / "e.png", tmp_path / "e.pdf", dpi=50)
    assert (tmp_path / "e.png").stat().st_size > 5_000 and (tmp_path / "e.pdf").is_file()


# --- the workflow (the tiny run of tests/conftest.py, which leaves the screen out) --------------

SCREEN_JOBS = {"estimates": 10, "similarity": 10}  # 6 image pairs; ASR ↔ SER for 2 architectures
SCREEN_TABLES = {"estimates_table": 1, "similarity_table": 1, "estimate_agreement": 1}


def screened(config: dict) -> dict:
    from conftest import unshared

    config = unshared(config)
    config["screen"]["enabled"] = True
    return config


def test_the_screen_target_plans_the_primaries_and_the_estimates_only(tmp_path):
    from conftest import tiny_config, run_snakemake
    from test_workflow import planned_jobs

    result = run_snakemake(tmp_path, "screen", "-n", config=tiny_config())
    assert result.returncode == 0, result.stderr[-3000:]
    planned = planned_jobs(result.stdout)
    assert planned["estimates"] == 10 and planned["estimates_table"] == 1 and planned["screen"] == 1
    assert {"image_primary", "asr_primary", "ser_primary"} <= set(planned)
    trained_beyond = {rule for rule in planned if rule.endswith(("transfer", "control", "_to_ser", "_to_asr"))}
    assert not trained_beyond and "decode_asr" not in planned and "similarity" not in planned


def test_adding_the_screen_to_a_finished_run_trains_nothing(tiny_run):
    from conftest import run_snakemake
    from test_workflow import planned_jobs

    workdir, config = tiny_run
    result = run_snakemake(workdir, "-n", config=screened(config))
    run_snakemake(workdir, "-n", config=config)  # the config file back as it was
    assert result.returncode == 0, result.stderr[-3000:]
    # the screen's jobs, their tables and the cost table that counts them: no training
    assert planned_jobs(result.stdout) == {**SCREEN_JOBS, **SCREEN_TABLES, "cost_table": 1, "all": 1}


def test_the_screen_end_to_end(tiny_run, tmp_path):
    """The tiny run copied: `snakemake screen` computes the estimates from its primaries, then the
    default target the similarities and the agreement; every table says what it measured."""
    import shutil

    from conftest import run_snakemake
    from test_workflow import planned_jobs

    workdir, config = tiny_run
    copy = tmp_path / "run"
    shutil.copytree(workdir, copy, symlinks=True)
    config = screened(config)
    result = run_snakemake(copy, "screen", "--cores", "2", "--max-threads", "1", config=config, timeout=1200)
    assert result.returncode == 0, result.stderr[-5000:]
    assert planned_jobs(result.stderr + result.stdout) == {"estimates": 10, "estimates_table": 1, "screen": 1}
    tables = copy / config["outdir"] / "tables"
    estimates = pd.read_csv(tables / "estimates.tsv", sep="\t")
    swept = {("densenet_demo", 3), ("densenet_demo", 7), ("model_a_demo", 5), ("model_b_demo", 6)}
    assert set(zip(estimates["arch"], estimates["lc"])) == swept  # every swept l_c ≥ 1 of every pair
    assert estimates[["logme", "h_score_shrinkage", "probe_error"]].notna().all().all()
    full = {"densenet_demo": 7, "model_a_demo": 5, "model_b_demo": 6}
    at_full = estimates["lc"] == estimates["arch"].map(full)
    assert estimates.loc[at_full, "leep"].notna().all() and estimates.loc[at_full, "leep"].le(0).all()
    assert set(estimates["example"]) == {"image", "frame", "utterance"}
    assert (estimates.loc[estimates["target"] == "ser", "fold"].unique() == [1, 2]).all()
    primaries = pd.read_csv(tables / "similarity_primaries.tsv", sep="\t")
    assert (primaries["comparison"] == "source vs target primary").all() and primaries["cka_debiased"].notna().all()

    result = run_snakemake(copy, "--cores", "2", "--max-threads", "1", config=config, timeout=1200)
    assert result.returncode == 0, result.stderr[-5000:]
    assert planned_jobs(result.stderr + result.stdout) == {"similarity": 10, "similarity_table": 1,
                                                           "estimate_agreement": 1, "cost_table": 1, "all": 1}
    similarity = pd.read_csv(tables / "similarity.tsv", sep="\t")
    moved = similarity[similarity["comparison"] == "transfer vs its start"]
    assert moved.loc[moved["frozen"], "cka_debiased"].to_numpy() == pytest.approx(1.0)  # frozen groups: identical
    agreement = pd.read_csv(tables / "estimate_agreement.tsv", sep="\t")
    assert set(agreement["scope"]) == {"curve", "lc", "all"} and set(agreement["estimate"]) == {
        "logme", "h_score_shrinkage", "probe_error", "leep"}
    curves = agreement[(agreement["scope"] == "curve") & (agreement["arch"] == "densenet_demo")]
    assert len(curves) == 6 * 4 and set(curves["n_points"]) == {1, 2}  # l_c 3 and 7 (LEEP: 7 only); no τ from 2
    assert curves["tau"].isna().all()
    assert (copy / config["outdir"] / "figures" / "estimates.png").stat().st_size > 10_000
    cost = pd.read_csv(tables / "cost.tsv", sep="\t").set_index("kind")
    assert {"estimates", "similarity", "screen: primaries and estimates", "what it predicts: transfers"} <= set(cost.index)
    assert planned_jobs(run_snakemake(copy, "-n", config=config).stdout) == {}
    # a sample of images of another size: the screen's jobs into image targets and the tables again
    resized = screened(config)
    resized["screen"]["sample_size"]["image"] = 20
    assert planned_jobs(run_snakemake(copy, "-n", config=resized).stdout) == {
        "estimates": 6, "similarity": 6, **SCREEN_TABLES, "cost_table": 1, "all": 1}
