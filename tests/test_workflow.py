"""The workflow as users drive it: lint, formatting, dry runs and a run of the demo rules."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from browser import needs_browser
from conftest import REPO, SNAKEMAKE, TINY_DEMO, run_snakemake


# A change of results redraws the tables and the three figures (one results table feeds them)
# and `all`; a change of training jobs also re-adds the grid's cost.
TABLES = {"aggregate_results": 1, "transferability": 1, "figure_images": 1, "figure_speech": 1,
          "figure_transferability": 1, "all": 1}
TRAINED = {**TABLES, "cost_table": 1, "figure_curves": 1}  # the cost and the curves of every training job
# The realignment of TIMIT's targets (one pass with model_a_demo in the demo) and the per-speaker
# PER of the ASR primaries.
REALIGNED = {"asr_aligner": 1, "realign_asr": 1, "hmm_realigned": 1}
ASR_PRIMARIES = {"per_speaker_table": 1}
# The screen's tables and agreement: redrawn when estimates, similarities or results change.
SCREENED = {"estimates_table": 1, "similarity_table": 1, "estimate_agreement": 1}


def planned_jobs(output: str) -> dict[str, int]:
    """Rule → job count from the "Job stats" table that a dry run prints."""
    table = output.split("Job stats:", 1)[1] if "Job stats:" in output else ""
    counts = {}
    for line in table.splitlines()[3:]:
        match = re.match(r"^(\w+)\s+(\d+)$", line.strip())
        if not match:
            break
        counts[match.group(1)] = int(match.group(2))
    counts.pop("total", None)
    return counts


def test_lint_is_clean():
    result = subprocess.run([str(SNAKEMAKE), "--lint"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_rule_files_are_snakefmt_formatted():
    snakefmt = Path(sys.executable).with_name("snakefmt")
    result = subprocess.run([str(snakefmt), "--check", "Snakefile", "workflow/"], cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_demo_dry_run_plans_corpora_and_features(demo_config, tmp_path):
    result = run_snakemake(tmp_path, "-n", config=demo_config)
    assert result.returncode == 0, result.stderr
    assert planned_jobs(result.stdout) == {
        "demo_corpus": 5, "asr_features": 3, "train_stats": 1, "ser_features": 1,
        "fold_stats": len(demo_config["tasks"]["ser"]["folds"]),
        # images: copy transfers and controls at l_c 0, 3, 5, 7, reinit ones at 3, 5, 7
        "prepare_images": 3, "image_primary": 3, "image_transfer": 6 * (4 + 3), "image_control": 3 * (4 + 3),
        "hmm_model": 1,
        # speech: two architectures at 3 l_c each, 6 SER folds, SER → ASR from fold 1, no controls;
        # the ASR primaries and the SER → ASR transfers decoded
        "asr_primary": 2, "ser_primary": 2 * 6, "asr_to_ser": 2 * 3 * 6, "ser_to_asr": 2 * 3, "decode_asr": 2 + 2 * 3,
        # the screen: estimates per (architecture, pair), similarity per curve (images: two families)
        **SCREENED, "estimates": 6 + 2 * 2, "similarity": 6 * 2 + 2 * 2,
        **REALIGNED, **ASR_PRIMARIES, **TRAINED}


@pytest.fixture
def tiny_demo_run(tiny_run):
    return tiny_run


def test_demo_run_writes_every_corpus_and_log(tiny_demo_run):
    workdir, _ = tiny_demo_run
    corpora = workdir / "results" / "demo" / "corpora"
    assert sorted(p.name for p in corpora.iterdir()) == ["cifar10", "cifar100", "iemocap", "svhn", "timit"]
    assert (corpora / "timit" / "TRAIN").is_dir() and (corpora / "svhn" / "test_32x32.mat").is_file()
    log = (workdir / "results" / "demo" / "logs" / "demo_corpus" / "timit.log").read_text()
    assert "wrote 20 items of demo timit" in log
    assert not list(corpora.glob("*.partial"))
    features = workdir / "results" / "demo" / "features"
    assert sorted(p.name for p in (features / "timit").glob("*.arrow")) == ["dev.arrow", "test.arrow", "train.arrow"]
    assert (features / "iemocap" / "all.arrow").is_file() and (features / "iemocap" / "stats" / "fold2.json").is_file()


def test_features_of_the_demo_read_back(tiny_demo_run):
    from gradual_transfer.data.arrow import SpeechFeatures
    from gradual_transfer.io import read_json

    workdir, _ = tiny_demo_run
    features = workdir / "results" / "demo" / "features"
    train = SpeechFeatures(features / "timit" / "train.arrow")
    assert len(train) == 4 and train.num_bins == 40  # 2 speakers × (1 SI + 1 SX), SA left out
    assert all(u.split("_")[1][:2] in ("si", "sx") for u in train.utt_ids)
    assert len(SpeechFeatures(features / "timit" / "dev.arrow")) == 2
    stats = read_json(features / "iemocap" / "stats" / "fold1.json")
    assert len(stats["speakers"]) == 7 and "Ses05F" not in stats["speakers"] and len(stats["mean"]) == 40


def test_second_run_plans_nothing(tiny_demo_run):
    workdir, config = tiny_demo_run
    result = run_snakemake(workdir, "-n", config=config)
    assert result.returncode == 0
    assert planned_jobs(result.stdout) == {}
    assert "Nothing to be done" in result.stdout + result.stderr


def test_changing_one_demo_setting_replans_only_that_corpus(tiny_demo_run):
    workdir, config = tiny_demo_run
    changed = {**config, "demo": {**config["demo"], "svhn": {**config["demo"]["svhn"], "test": 25}}}
    result = run_snakemake(workdir, "-n", config=changed)
    assert planned_jobs(result.stdout) == {
        "demo_corpus": 1, "prepare_images": 1, "image_primary": 1, "image_transfer": 12, "image_control": 3,
        **TRAINED}
    assert "results/demo/corpora/svhn" in result.stdout
    # re-ordering keys changes nothing
    reordered = {**config, "demo": {k: dict(reversed(list(v.items()))) if isinstance(v, dict) else v
                                    for k, v in reversed(list(config["demo"].items()))}}
    result = run_snakemake(workdir, "-n", config=reordered)
    assert "Nothing to be done" in result.stdout + result.stderr
    run_snakemake(workdir, "-n", config=config)  # leave the config as the fixture wrote it


def _plan_with(workdir, config, change):
    from conftest import unshared

    changed = unshared(config)
    change(changed)
    result = run_snakemake(workdir, "-n", config=changed)
    run_snakemake(workdir, "-n", config=config)
    assert result.returncode == 0, result.stderr
    return planned_jobs(result.stdout)


# The tiny run's speech models: per architecture 1 ASR and 2 SER primaries, 2 l_c values for ASR → SER
# on 2 folds and SER → ASR from 1 fold, and the controls (ASR → ASR, SER → SER on each fold).
SPEECH_MODELS = {"asr_primary": 2, "ser_primary": 4, "asr_to_ser": 8, "ser_to_asr": 4, "asr_control": 4,
                 "ser_control": 8, "decode_asr": 2 + 4 + 4, **REALIGNED, **ASR_PRIMARIES, **TRAINED}


def test_a_feature_setting_replans_speech_but_no_image_job(tiny_demo_run):
    workdir, config = tiny_demo_run
    planned = _plan_with(workdir, config, lambda c: c["features"].update(num_mel_bins=24))
    assert planned == {"asr_features": 3, "train_stats": 1, "ser_features": 1, "fold_stats": 2,
                       "hmm_model": 1, **SPEECH_MODELS}


def test_the_silence_threshold_replans_only_iemocap_and_its_descendants(tiny_demo_run):
    workdir, config = tiny_demo_run
    planned = _plan_with(workdir, config, lambda c: c["tasks"]["ser"].update(silence_threshold_db=-25.0))
    # SER models change, so do the SER → ASR transfers and their decodes; ASR primaries do not
    assert planned == {"ser_features": 1, "fold_stats": 2, "ser_primary": 4, "asr_to_ser": 8,
                       "ser_to_asr": 4, "ser_control": 8, "decode_asr": 4, **TRAINED}


def test_the_context_window_reruns_speech_models_but_no_extraction(tiny_demo_run):
    workdir, config = tiny_demo_run
    planned = _plan_with(workdir, config, lambda c: c["features"].update(context=5))
    assert planned == SPEECH_MODELS


def test_an_asr_to_ser_finetuning_change_replans_only_those_transfers(tiny_demo_run):
    workdir, config = tiny_demo_run
    planned = _plan_with(workdir, config, lambda c: c["tasks"]["ser"]["finetune"]["optimizer"].update(lr=0.02))
    assert planned == {"asr_to_ser": 8, "ser_control": 8, **TRAINED}  # SER → SER is fine-tuned on SER too


def test_a_densenet_primary_change_replans_no_speech_job(tiny_demo_run):
    workdir, config = tiny_demo_run
    planned = _plan_with(workdir, config, lambda c: c["tasks"]["cifar10"]["training"]["optimizer"].update(lr=0.05))
    assert planned == {"image_primary": 1, "image_transfer": 6, "image_control": 3, **TRAINED}


def test_a_hardware_knob_replans_nothing(tiny_demo_run):
    workdir, config = tiny_demo_run
    assert _plan_with(workdir, config, lambda c: c["runtime"]["cuda"].update(amp_bf16=True, channels_last=True)) == {}


def _reordered(value):
    """The same settings with every mapping's keys in reverse order."""
    if isinstance(value, dict):
        return {k: _reordered(v) for k, v in reversed(list(value.items()))}
    return [_reordered(v) for v in value] if isinstance(value, list) else value


def test_reordered_keys_and_an_unused_architecture_replan_nothing(tiny_demo_run):
    workdir, config = tiny_demo_run

    def change(c):
        reordered = _reordered(c)  # dict.update would keep the old key order: rebuild instead
        c.clear()
        c.update(reordered)
        c["architectures"]["densenet_wide"] = {**c["architectures"]["densenet_demo"], "growth_rate": 24}

    assert _plan_with(workdir, config, change) == {}


def test_profiles_plan_the_tiny_run_as_complete(tiny_demo_run):
    workdir, config = tiny_demo_run
    for profile in ("local", "slurm"):  # both profiles parse, and neither changes what a job is
        result = run_snakemake(workdir, "-n", "--profile", str(REPO / "profiles" / profile), config=config)
        assert result.returncode == 0, result.stderr[-3000:]
        assert planned_jobs(result.stdout) == {}, profile


def test_paper_grid_dry_run_on_a_fake_data_tree(paper_config, tmp_path):
    """Images: 3 primaries, 6 pairs × 5 l_c = 30 transfers. Speech: 2 ASR and 16 SER primaries,
    2 directions × 8 folds × (6 + 7) l_c = 208 transfers, one decode per ASR-target model."""
    from gradual_transfer.data.layouts import write_placeholders

    for dataset, entry in paper_config["datasets"].items():
        write_placeholders(dataset, tmp_path / entry["root"], entry)
    result = run_snakemake(tmp_path, "-n", config=paper_config)
    assert result.returncode == 0, result.stderr[-2000:]
    planned = planned_jobs(result.stdout)
    assert planned["image_primary"] == 3 and planned["image_transfer"] == 30 and planned["prepare_images"] == 3
    assert planned["asr_primary"] == 2 and planned["ser_primary"] == 16
    assert planned["asr_to_ser"] + planned["ser_to_asr"] == 208 and planned["asr_to_ser"] == 104
    assert planned["decode_asr"] == 2 + 104
    # before planning, Snakemake warns that the images' one seed can declare no onset (and only that)
    warnings = [line for line in result.stderr.splitlines() if line.startswith("Warning: ")]
    assert len(warnings) == 1 and warnings[0].startswith("Warning: images (copy), cifar10 → cifar100")
    assert "6 seeds would allow an onset" in warnings[0]


FIGURES = ["figure1_images.png", "figure1_images_validation.png", "figure2_speech.png",
           "figure2_speech_validation.png", "figure3_transferability.png", "training_curves.png"]
TABLE_NAMES = ["results", "summary", "transferability", "per_speaker", "cost"]


def report_entries(html: str) -> dict:
    results = html.split('<script id="results">', 1)[1].split("</script>", 1)[0]
    return json.loads(results[results.index("{"):results.rindex("}") + 1])


def test_report_is_one_self_contained_page_with_figures_tables_and_captions(tiny_demo_run):
    from gradual_transfer.columns import DESCRIPTIONS, TABLE_COLUMNS
    from gradual_transfer.report import landing_text

    workdir, config = tiny_demo_run
    result = run_snakemake(workdir, "--report", "results/report.html", config=config)
    assert result.returncode == 0, result.stderr
    html = (workdir / "results" / "report.html").read_text()
    entries = report_entries(html)
    names = {Path(path).name: entry for path, entry in entries.items()}
    for name in FIGURES + [f"{t}.{suffix}" for t in TABLE_NAMES for suffix in ("tsv", "html")]:
        assert name in names, name
    # the navigation names items by what they are, not by their files
    assert names["transferability.html"]["labels"] == {"table": "transferability"}
    assert names["figure1_images.png"]["labels"] == {"figure": "Figure 1: images, test split"}
    # captions and landing text say what this run trained, not fixed text
    captions = {name: entry["caption"] for name, entry in names.items()}
    depth = config["architectures"]["densenet_demo"]["depth"]
    assert f"(DenseNet, depth {depth}), l_c = 0, 3, 7" in captions["figure1_images.png"]
    assert "0: none; 3: conv0–transition1; 7: conv0–final" in captions["figure1_images.png"]  # the groups of each tick
    assert "model_b_demo" in captions["figure2_speech.png"] and "DenseNet-40" not in html
    assert all("This run:" in captions[f] for f in FIGURES)
    landing = landing_text(config, demo=True)
    assert " ".join(landing.split()[:8]).replace("&", "&amp;") in html
    landing_html = html.split('<script id="workflow-desc">', 1)[1].split("</script>", 1)[0]
    assert f"(DenseNet, depth {depth}), l_c = 0, 3, 7" in landing_html
    # the tiny run trains the copy family only: its control's parts, never reinit's
    assert "rehead_and_finetune" in landing_html and "co_adaptation" not in landing_html
    for caption in ("figure1_images", "figure_validation", "figure2_speech", "figure3_transferability",
                    "training_curves", "results_table", "summary_table", "transferability_table",
                    "per_speaker_table", "cost_table"):
        first_words = " ".join((REPO / "workflow" / "report" / f"{caption}.rst").read_text().split()[:6])
        assert first_words.replace("&", "&amp;") in html, caption
    # every column of every table the run wrote is described, in one place
    tables = workdir / config["outdir"] / "tables"
    for name in TABLE_NAMES:
        columns = list(pd.read_csv(tables / f"{name}.tsv", sep="\t", nrows=0).columns)
        assert set(columns) <= set(TABLE_COLUMNS[name]) and set(columns) <= set(DESCRIPTIONS), name
    # self-contained: the figures are embedded, nothing is fetched from elsewhere
    assert html.count("data:image/png") >= len(FIGURES)
    assert not re.search(r"<(script|img|link)[^>]+(src|href)=\"https?:", html)


def test_site_settings_from_the_environment_reach_the_slurm_jobs(tmp_path):
    """profiles/slurm takes the partition, account and GPU model from the environment: a dry
    run shows them on every job (training jobs: the GPU partition; others: the CPU one)."""
    from conftest import tiny_config

    (tmp_path / "config.yaml").write_text(yaml.safe_dump(tiny_config(), sort_keys=False))
    site = {"GRADUAL_TRANSFER_SLURM_ACCOUNT": "acct-z", "GRADUAL_TRANSFER_CPU_PARTITION": "cpu-y",
            "GRADUAL_TRANSFER_GPU_PARTITION": "gpu-x", "GRADUAL_TRANSFER_GPU_MODEL": "h200"}

    def plan(environment):
        result = subprocess.run([str(SNAKEMAKE), "-s", str(REPO / "Snakefile"), "-d", str(tmp_path), "-n",
                                 "--profile", str(REPO / "profiles" / "slurm")], capture_output=True, text=True,
                                cwd=tmp_path, timeout=300, env=environment)
        assert result.returncode == 0, result.stderr[-3000:]
        resources = re.findall(r"^(?:local)?rule (\w+):\n(?:.*\n)*?\s+resources: (.*)$", result.stdout, re.M)
        assert resources
        return {rule: dict(item.split("=", 1) for item in line.split(", ")) for rule, line in resources}

    with_site = plan({**os.environ, **site})
    assert with_site["image_control"]["slurm_partition"] == with_site["asr_primary"]["slurm_partition"] == "gpu-x"
    assert with_site["asr_primary"]["gpu_model"] == "h200" and with_site["asr_primary"]["cpus_per_gpu"] == "4"
    assert with_site["asr_features"]["slurm_partition"] == "cpu-y" and "gpu_model" not in with_site["asr_features"]
    assert {r["slurm_account"] for r in with_site.values() if "slurm_partition" in r} == {"acct-z"}
    without = plan({k: v for k, v in os.environ.items() if not k.startswith("GRADUAL_TRANSFER_")})
    assert not any("slurm_partition" in r or "slurm_account" in r for r in without.values())


def assert_every_item_opens(report: Path, tables: Path) -> None:
    """The report opened in headless Chromium 1,400 px wide, every item as a reader opens it
    (the landing page, its category, its row in the navigation, the eye, the (i)), its scripts
    run: each table page shows the TSV's header and every row, its key columns in view beside the
    navigation without scrolling, every column described, and its identifiers frozen when it
    scrolls to the far right with every column shown; each figure is shown decoded; each TSV is
    offered as itself; each item's caption shows; the navigation names every item by its labels.
    (Also for a report of one's own: python -c "from test_workflow import *; assert_every_item_opens(...)".)"""
    import base64

    from browser import report_items
    from gradual_transfer.report import key_columns

    entries = report_entries(report.read_text())
    seen = report_items(report, width=1400, height=900)
    assert sorted(seen) == sorted(entries)  # every item opened
    for path, item in seen.items():
        name, entry = Path(path).name, entries[path]
        assert item["navigation"]["header"] == list(entry["labels"]) and item["navigation"]["row"] == list(
            entry["labels"].values()), name
        caption = re.sub(r"<[^>]+>", " ", entry["caption"])
        assert " ".join(caption.split()[:5]) in " ".join(item["caption"].split()), name
        if name.endswith(".html"):
            tsv = pd.read_csv(tables / name.replace(".html", ".tsv"), sep="\t", keep_default_na=False,
                              na_values=[""])
            first, scrolled = item["table"]["first"], item["table"]["all_scrolled"]
            assert [h["name"] for h in first["headers"]] == list(tsv.columns) and first["rows"] == len(tsv), name
            assert all(h["description"] for h in first["headers"]), name
            shown = [h for h in first["headers"] if h["shown"]]
            assert [h["name"] for h in shown] == key_columns(tsv, Path(name).stem), name
            assert all(0 <= h["left"] and h["right"] <= first["viewport"] for h in shown), (name, first["viewport"])
            frozen = [h for h in scrolled["headers"] if h["identifier"]]
            assert frozen and all(h["frozen"] and 0 <= h["left"] < scrolled["viewport"] for h in frozen), name
            assert all(h["shown"] for h in scrolled["headers"]), name
        elif name.endswith(".png"):
            assert item["image"]["width"] > 500, name
        else:
            assert item["download"]["download"] == name
            data = base64.b64decode(item["download"]["href"].split(",", 1)[1])
            assert data == (tables / name).read_bytes(), name


@needs_browser
def test_a_browser_opens_every_report_item_inside_the_report(tiny_demo_run):
    workdir, config = tiny_demo_run
    report = workdir / "results" / "browser_report.html"
    result = run_snakemake(workdir, "--report", str(report), config=config)
    assert result.returncode == 0, result.stderr
    assert_every_item_opens(report, workdir / config["outdir"] / "tables")
