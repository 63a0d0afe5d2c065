"""The two families of transfer (experiments.<exp>.upper_groups): ``copy`` (the paper) and
``reinit`` (Yosinski et al. 2014). The results table pairs each transfer with the control of its
own family, Figures 1 and 2 draw both families apart, and adding or removing a family re-runs
exactly its own jobs (on the tiny run, end to end, and on the paper grid)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from gradual_transfer import figures as figures_module
from gradual_transfer.figures import figure_transfer
from gradual_transfer.tables import results_table
from conftest import run_snakemake, unshared
from test_reruns import complete_by_touch
from test_workflow import TRAINED, _plan_with, planned_jobs


def write_metrics(folder: Path, name: str, **fields) -> Path:
    path = folder / f"{name}.json"
    path.write_text(json.dumps(fields))
    return path


def family_runs(tmp_path: Path) -> list[Path]:
    """SVHN as the target, seed 0: its primary, and at l_c 3 a copy and a reinit transfer from
    CIFAR-10 with the control of each family. The copy files say nothing of their family, as
    files written before families existed."""
    common = {"experiment": "images", "arch": "d", "target": "svhn", "fold": 0, "seed": 0}
    accuracies = {  # kind, source, family → test accuracy
        ("primary", "svhn", None): 90.0,
        ("transfer", "cifar10", "copy"): 80.0, ("control", "svhn", "copy"): 88.0,
        ("transfer", "cifar10", "reinit"): 70.0, ("control", "svhn", "reinit"): 85.0,
    }
    files = []
    for (kind, source, family), value in accuracies.items():
        fields = {**common, "kind": kind, "source": source, "lc": 0 if kind == "primary" else 3,
                  "validation": {"accuracy": value + 1}, "test": {"accuracy": value}}
        if family == "reinit":
            fields["upper_groups"] = "reinit"
        files.append(write_metrics(tmp_path, f"{kind}-{family}", **fields))
    return files


def test_each_transfer_is_paired_with_the_control_of_its_family(tmp_path):
    table = results_table(family_runs(tmp_path))
    assert list(table.columns[:5]) == ["experiment", "arch", "kind", "upper_groups", "source"]
    test = table[table["split"] == "test"]
    assert test["upper_groups"].isna().tolist() == (test["kind"] == "primary").tolist()  # primaries: no family
    rows = test[test["kind"] == "transfer"].set_index("upper_groups")
    assert rows.loc["copy", "control_value"] == 88.0 and rows.loc["reinit", "control_value"] == 85.0
    assert (rows["primary_value"] == 90.0).all()
    assert list(zip(test["kind"], test["upper_groups"].fillna("-"))) == [
        ("primary", "-"), ("transfer", "copy"), ("transfer", "reinit"), ("control", "copy"), ("control", "reinit")]
    assert test["decode_at_grid_edge"].isna().all()  # no decoded model here
    written = tmp_path / "results.tsv"
    table.to_csv(written, sep="\t", index=False)
    assert pd.read_csv(written, sep="\t")["upper_groups"].isna().sum() == 2  # the primary's two splits: empty


def drawn(monkeypatch, table: pd.DataFrame, tmp_path: Path, comparable=None):
    """Figure 1 as figure_transfer draws it: per panel title, its mean lines (gid, style, marker)."""
    figures = []
    monkeypatch.setattr(figures_module, "_save", lambda fig, png, pdf, dpi: figures.append(fig))
    figure_transfer(table, "images", {"d": [0, 3]}, "Figure 1", tmp_path / "f.png", tmp_path / "f.pdf",
                    comparable=comparable)
    [fig] = figures
    return {ax.get_title().split("\n")[0]: {line.get_gid(): (line.get_linestyle(), line.get_color())
                                           for line in ax.get_lines() if (line.get_gid() or "").endswith("mean")}
            for ax in fig.axes if ax.get_visible()}


def test_figure_draws_the_families_apart_and_one_family_as_before(monkeypatch, tmp_path):
    table = results_table(family_runs(tmp_path))
    # budgets that differ (the default: nothing says they match): a panel per family
    panels = drawn(monkeypatch, table, tmp_path)
    assert set(panels) == {"cifar10 → svhn (copy)", "cifar10 → svhn (reinit)"}
    assert set(panels["cifar10 → svhn (copy)"]) == {"copy transfer mean", "copy control mean", "primary mean"}
    assert set(panels["cifar10 → svhn (reinit)"]) == {"reinit transfer mean", "reinit control mean", "primary mean"}
    # budgets that match: one panel, the families told apart by line style, what was trained by colour
    [panel] = drawn(monkeypatch, table, tmp_path, comparable={"svhn": True}).values()
    curves = {gid: style for gid, style in panel.items() if gid != "primary mean"}
    assert len(curves) == 4 and len(set(curves.values())) == 4
    assert curves["copy transfer mean"][0] != curves["reinit transfer mean"][0]  # style: the family
    assert curves["copy transfer mean"][1] == curves["reinit transfer mean"][1]  # colour: what was trained
    copy_only = table[table["upper_groups"].fillna("copy") == "copy"].drop(columns="upper_groups")
    [panel] = drawn(monkeypatch, copy_only, tmp_path).values()  # a table from before families, as copy
    assert set(panel) == {"copy transfer mean", "copy control mean", "primary mean"}


# --- re-runs ---------------------------------------------------------------------------------

def test_adding_the_reinit_family_plans_only_its_jobs(tiny_run):
    workdir, config = tiny_run
    assert _plan_with(workdir, config, lambda c: c["experiments"]["images"].update(upper_groups=["copy"])) == {}
    # images: 6 pairs and 3 controls at l_c 3 and 7 (l_c 0 copies nothing)
    planned = _plan_with(workdir, config, lambda c: c["experiments"]["images"].update(upper_groups=["reinit", "copy"]))
    assert planned == {"image_transfer": 12, "image_control": 6, **TRAINED}
    # speech, per architecture at its one l_c > 0: ASR → SER on 2 folds, SER → ASR from fold 1, the
    # controls on TIMIT and on 2 SER folds; every model into ASR decoded
    planned = _plan_with(workdir, config, lambda c: c["experiments"]["speech"].update(upper_groups=["copy", "reinit"]))
    assert planned == {"asr_to_ser": 4, "ser_to_asr": 2, "asr_control": 2, "ser_control": 4, "decode_asr": 4,
                       **TRAINED}


def test_the_reinit_family_end_to_end_and_removing_it_trains_nothing(tiny_run, tmp_path):
    """The tiny run copied, the image reinit family added and run: only its jobs train; the
    table holds both families, each transfer with the control of its own family, and the frozen
    groups of a reinit transfer are its source's; switching the family off trains nothing."""
    import torch

    workdir, config = tiny_run
    copy = tmp_path / "run"
    shutil.copytree(workdir, copy, symlinks=True)
    both = unshared(config)
    both["experiments"]["images"]["upper_groups"] = ["copy", "reinit"]
    result = run_snakemake(copy, "--cores", "2", "--max-threads", "1", config=both, timeout=1800)
    assert result.returncode == 0, result.stderr[-5000:]
    assert planned_jobs(result.stderr + result.stdout) == {"image_transfer": 12, "image_control": 6, **TRAINED}

    out = copy / config["outdir"]
    table = pd.read_parquet(out / "tables" / "results.parquet")
    images = table[(table["experiment"] == "images") & (table["kind"] != "primary")]
    assert sorted(set(zip(images["upper_groups"], images["lc"]))) == [("copy", 0), ("copy", 3), ("copy", 7),
                                                                      ("reinit", 3), ("reinit", 7)]
    controls = images[images["kind"] == "control"].set_index(["upper_groups", "target", "lc", "split", "metric"])
    for _, row in images[images["kind"] == "transfer"].iterrows():
        own = controls.loc[(row["upper_groups"], row["target"], row["lc"], row["split"], row["metric"]), "value"]
        assert row["control_value"] == own
    model = out / "models" / "densenet_demo" / "transfer-reinit" / "svhn-to-cifar10" / "fold0" / "lc3"
    metrics = json.loads((model / "metrics.json").read_text())
    assert metrics["upper_groups"] == "reinit" and metrics["kind"] == "transfer"
    assert [h.get("phase", "train") for h in metrics["history"]] == ["train"] * config["tasks"]["cifar10"][
        "training"]["epochs"]  # the target's training recipe, no head warm-up
    state = torch.load(model / "model.pt", weights_only=True)["state_dict"]
    source = torch.load(out / "models" / "densenet_demo" / "primary" / "svhn" / "fold0" / "model.pt",
                        weights_only=True)["state_dict"]
    first_three = [k for k in source if k.startswith(("body.conv0.", "body.denseblock1.", "body.transition1."))]
    assert first_three and all(torch.equal(state[k], source[k]) for k in first_three)
    later = [k for k in source if k.startswith("body.denseblock2.") and k.endswith("weight")]
    assert later and not any(torch.equal(state[k], source[k]) for k in later)

    result = run_snakemake(copy, "-n", config=config)  # back to [copy]: the tables and figures only
    assert result.returncode == 0, result.stderr[-3000:]
    assert planned_jobs(result.stdout) == TRAINED


def test_the_reinit_family_on_the_paper_grid_plans_only_its_jobs(paper_config, tmp_path):
    from gradual_transfer.data.layouts import write_placeholders

    for dataset, entry in paper_config["datasets"].items():
        write_placeholders(dataset, tmp_path / entry["root"], entry)
    before = unshared(paper_config)
    for experiment in ("images", "speech"):
        before["experiments"][experiment].pop("upper_groups")  # a config from before families
    complete_by_touch(tmp_path, before)
    assert planned_jobs(run_snakemake(tmp_path, "-n", config=paper_config).stdout) == {}  # [copy] written out
    both = unshared(paper_config)
    for experiment in ("images", "speech"):
        both["experiments"][experiment]["upper_groups"] = ["copy", "reinit"]
    result = run_snakemake(tmp_path, "-n", config=both)
    assert result.returncode == 0, result.stderr[-2000:]
    # images: 6 pairs at l_c 1, 3, 5, 7; speech: l_c 1..5 (Model A) and 1..6 (Model B), ASR → SER
    # on 8 folds and SER → ASR from 8 folds, each of those decoded; the screen: the similarity of
    # each new curve (6 image pairs, 2 speech pairs per architecture), its table and the agreement
    # (the estimates read only the primaries: none re-runs)
    assert planned_jobs(result.stdout) == {"image_transfer": 6 * 4, "asr_to_ser": 8 * 11, "ser_to_asr": 8 * 11,
                                           "decode_asr": 8 * 11, "similarity": 6 + 2 * 2, "similarity_table": 1,
                                           "estimate_agreement": 1, **TRAINED}
