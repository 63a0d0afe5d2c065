"""Exact re-runs: after each kind of change, the dry run plans exactly the jobs whose result the
change alters, by rule and count, on a finished tiny run (and on the paper grid, completed by
`--touch` on a fake data tree). The policy is in README.md, "Re-running after a change"."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import REPO, run_snakemake, unshared
from test_workflow import ASR_PRIMARIES, REALIGNED, SCREENED, TABLES, TRAINED, _plan_with, planned_jobs


def test_adding_an_lc_value_plans_only_the_new_transfers(tiny_run):
    workdir, config = tiny_run

    def change(c):
        c["architectures"]["densenet_demo"]["lc"] = [0, 3, 5, 7]
        c["architectures"]["model_a_demo"]["lc"] = [0, 2, 5]

    # 6 image pairs and 3 controls; model_a: ASR → SER on 2 folds, SER → ASR from 1 fold, the
    # controls ASR → ASR and SER → SER on 2 folds (and the decodes of those into ASR)
    assert _plan_with(workdir, config, change) == {"image_transfer": 6, "image_control": 3, "asr_to_ser": 2,
                                                   "ser_to_asr": 1, "asr_control": 1, "ser_control": 2,
                                                   "decode_asr": 2, **TRAINED}


def test_removing_an_lc_value_trains_nothing(tiny_run):
    workdir, config = tiny_run

    def change(c):
        c["architectures"]["densenet_demo"]["lc"] = [0, 7]
        c["architectures"]["model_b_demo"]["lc"] = [6]

    assert _plan_with(workdir, config, change) == TRAINED


def test_adding_an_ser_fold_plans_that_folds_models_and_statistics(tiny_run):
    workdir, config = tiny_run
    planned = _plan_with(workdir, config, lambda c: c["tasks"]["ser"]["folds"].append(3))
    # per architecture: the fold's SER primary, its ASR → SER transfers and its SER → SER controls
    # at 2 l_c values
    assert planned == {"fold_stats": 1, "ser_primary": 2, "asr_to_ser": 4, "ser_control": 4, **TRAINED}


def test_one_image_tasks_finetuning_replans_only_transfers_into_it(tiny_run):
    workdir, config = tiny_run
    planned = _plan_with(workdir, config, lambda c: c["tasks"]["cifar10"]["finetune"]["optimizer"].update(lr=0.02))
    # from 2 sources and from itself (the control), at 3 l_c values
    assert planned == {"image_transfer": 2 * 3, "image_control": 3, **TRAINED}


def test_the_decoding_grid_replans_decodes_only(tiny_run):
    workdir, config = tiny_run
    planned = _plan_with(workdir, config, lambda c: c["tasks"]["asr"]["decode"].update(acoustic_scales=[0.5, 1.0]))
    # per architecture: the primary, 2 transfers and 2 controls
    assert planned == {"decode_asr": 2 * (1 + 2 + 2), **ASR_PRIMARIES, **TABLES}


def test_a_figure_setting_redraws_figures_only(tiny_run):
    workdir, config = tiny_run
    planned = _plan_with(workdir, config, lambda c: c.setdefault("figures", {}).update(dpi=100))
    assert planned == {"figure_images": 1, "figure_speech": 1, "figure_transferability": 1, "figure_curves": 1,
                       "all": 1}


def test_a_network_setting_retrains_that_architecture_only(tiny_run):
    workdir, config = tiny_run
    planned = _plan_with(workdir, config, lambda c: c["architectures"]["densenet_demo"].update(growth_rate=6))
    assert planned == {"image_primary": 3, "image_transfer": 18, "image_control": 9, **TRAINED}


def test_a_second_image_architecture_plans_only_its_jobs(tiny_run):
    workdir, config = tiny_run

    def change(c):
        c["architectures"]["densenet_wide"] = {**c["architectures"]["densenet_demo"], "growth_rate": 6}
        c["experiments"]["images"]["architectures"].append("densenet_wide")

    assert _plan_with(workdir, config, change) == {"image_primary": 3, "image_transfer": 18, "image_control": 9,
                                                   **TRAINED}


def test_a_validation_split_replans_everything_on_that_dataset_and_nothing_else(tiny_run):
    workdir, config = tiny_run
    planned = _plan_with(workdir, config, lambda c: c["datasets"]["cifar10"].update(validation=12))
    # its primary, the 2 × 3 transfers into CIFAR-10, the 2 × 3 out of it and its 3 controls;
    # SVHN ↔ CIFAR-100 stay
    assert planned == {"prepare_images": 1, "image_primary": 1, "image_transfer": 12, "image_control": 3, **TRAINED}


def test_adding_a_seed_plans_only_that_seeds_jobs(tiny_run):
    workdir, config = tiny_run
    planned = _plan_with(workdir, config, lambda c: c["experiments"]["images"].update(seeds=[0, 4]))
    # seed 4's primaries, transfers (from seed 4's primaries) and controls; seed 0 stays
    assert planned == {"image_primary": 3, "image_transfer": 18, "image_control": 9, **TRAINED}
    planned = _plan_with(workdir, config, lambda c: c["experiments"]["speech"].update(seeds=[0, 1]))
    # the realignment is shared by all seeds (its aligner has seed 0): it stays
    assert planned == {"asr_primary": 2, "ser_primary": 4, "asr_to_ser": 8, "ser_to_asr": 4, "asr_control": 4,
                       "ser_control": 8, "decode_asr": 10, **ASR_PRIMARIES, **TRAINED}


# Everything trained on TIMIT, or from a model trained on it, and nothing else: no SER primary or
# SER → SER control, no image job.
TIMIT_MODELS = {"asr_primary": 2, "asr_to_ser": 8, "ser_to_asr": 4, "asr_control": 4, "decode_asr": 10,
                **ASR_PRIMARIES, **TRAINED}


def test_another_realignment_pass_plans_it_and_every_model_trained_on_timit(tiny_run):
    workdir, config = tiny_run
    planned = _plan_with(workdir, config, lambda c: c["tasks"]["asr"].update(realign_passes=2))
    assert planned == {**REALIGNED, **TIMIT_MODELS}  # the aligner, alignment and HMM of pass 2


def test_a_realignment_setting_realigns_and_retrains_timit_models_but_not_the_first_aligner(tiny_run):
    workdir, config = tiny_run
    planned = _plan_with(workdir, config, lambda c: c["tasks"]["asr"].update(realign_window=5))
    assert planned == {"realign_asr": 1, "hmm_realigned": 1, **TIMIT_MODELS}  # the aligner trained on thirds stays


def test_speed_settings_plan_nothing(tiny_run):
    """runtime: changes speed, not what is learnt: no job's params hold it."""
    workdir, config = tiny_run

    def change(c):
        c["runtime"]["cpu"].update(channels_last=not c["runtime"]["cpu"]["channels_last"], frozen_cache_mb=0)
        c["runtime"]["cuda"].update(amp_bf16=True, prefetch=False, resident_data_mb=0, cuda_graphs=True, jobs_per_gpu=2,
                                    busy_gpus="share")
        c["runtime"].setdefault("cuda_by_architecture", {})["model_a_demo"] = {"cuda_graphs": False}

    assert _plan_with(workdir, config, change) == {}


def test_switching_the_controls_off_trains_nothing(tiny_run):
    workdir, config = tiny_run

    def change(c):
        for experiment in ("images", "speech"):
            c["experiments"][experiment]["self_transfer"] = False

    assert _plan_with(workdir, config, change) == TRAINED


# --- edits of the code ----------------------------------------------------------------------

def tree_copy(destination: Path) -> Path:
    """The repository's files (tracked, and new ones git does not ignore) copied afresh: every
    file rewritten with the same content, as a `git stash && git stash pop` or a checkout does."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source, target = REPO / name, destination / name
        if not os.path.lexists(source):
            continue  # deleted in the work tree, not yet committed
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():
            target.symlink_to(os.readlink(source))
        else:
            shutil.copyfile(source, target)
    return destination


@pytest.fixture
def fresh_tree(tmp_path):
    if not (REPO / ".git").exists():
        pytest.skip("needs a git checkout of the repository")
    return tree_copy(tmp_path / "tree")


def test_rewriting_the_tree_and_touching_the_adapters_plans_nothing(tiny_run, fresh_tree):
    workdir, config = tiny_run
    snakefile = fresh_tree / "Snakefile"
    result = run_snakemake(workdir, "-n", config=config, snakefile=snakefile)
    assert result.returncode == 0, result.stderr[-3000:]
    assert planned_jobs(result.stdout) == {}, result.stdout[-3000:]
    for script in (fresh_tree / "scripts").glob("*.py"):
        script.write_text(script.read_text())  # rewritten, same content
        script.touch()
    result = run_snakemake(workdir, "-n", config=config, snakefile=snakefile)
    assert planned_jobs(result.stdout) == {} and "Nothing to be done" in result.stdout + result.stderr


def test_bumping_the_training_version_reruns_every_model_and_nothing_before(tiny_run, fresh_tree):
    workdir, config = tiny_run
    stages = fresh_tree / "gradual_transfer" / "stages.py"
    text = stages.read_text()
    assert '"training": 1,' in text
    stages.write_text(text.replace('"training": 1,', '"training": 2,'))
    result = run_snakemake(workdir, "-n", config=config, snakefile=fresh_tree / "Snakefile")
    assert result.returncode == 0, result.stderr[-3000:]
    assert planned_jobs(result.stdout) == {
        "image_primary": 3, "image_transfer": 18, "image_control": 9, "asr_primary": 2, "ser_primary": 4,
        "asr_to_ser": 8, "ser_to_asr": 4, "asr_control": 4, "ser_control": 8, "decode_asr": 10, **REALIGNED,
        **ASR_PRIMARIES, **TRAINED}


# --- the paper grid --------------------------------------------------------------------------

def complete_by_touch(workdir: Path, config: dict) -> None:
    """Mark the whole grid as run without running it: `--touch` records every job's params
    (it creates no files), then every output appears with one modification time, later than
    the data's."""
    for path in (workdir / "data").rglob("*"):  # first: the corpus files' times are in the params
        os.utime(path, (1.6e9, 1.6e9), follow_symlinks=False)
    os.utime(workdir / "data", (1.6e9, 1.6e9))
    summary = run_snakemake(workdir, "--summary", config=config)
    assert summary.returncode == 0, summary.stderr[-2000:]
    outputs = [line.split("\t")[0] for line in summary.stdout.splitlines()[1:] if "\t" in line]
    assert run_snakemake(workdir, "--touch", "--cores", "1", config=config).returncode == 0
    for name in outputs:
        path = workdir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
        os.utime(path, (1.8e9, 1.8e9))


def test_adding_an_lc_value_to_the_paper_grid_plans_only_the_new_transfers(paper_config, tmp_path):
    from gradual_transfer.data.layouts import write_placeholders

    for dataset, entry in paper_config["datasets"].items():
        write_placeholders(dataset, tmp_path / entry["root"], entry)
    before = unshared(paper_config)
    before["architectures"]["densenet40"]["lc"] = [0, 1, 5, 7]
    before["architectures"]["model_a"]["lc"] = [0, 1, 2, 3, 5]
    complete_by_touch(tmp_path, before)
    assert planned_jobs(run_snakemake(tmp_path, "-n", config=before).stdout) == {}
    result = run_snakemake(tmp_path, "-n", config=paper_config)  # l_c 3 for DenseNet-40, 4 for Model A
    assert result.returncode == 0, result.stderr[-2000:]
    # 6 image pairs; Model A: ASR → SER on 8 folds, SER → ASR from 8 folds, each decoded. The
    # screen's jobs of those curves (6 image pairs, Model A's 2) re-run too: an estimates job
    # scores every swept l_c of its pair, a similarity job every transfer of its curve.
    assert planned_jobs(result.stdout) == {"image_transfer": 6, "asr_to_ser": 8, "ser_to_asr": 8, "decode_asr": 8,
                                           "estimates": 6 + 2, "similarity": 6 + 2, **SCREENED, **TRAINED}


# --- edits of the corpora -------------------------------------------------------------------

FEATURE_TARGETS = ["results/demo/features/timit/train.arrow", "results/demo/features/timit/dev.arrow",
                   "results/demo/features/timit/test.arrow", "results/demo/features/iemocap/all.arrow",
                   "results/demo/data/cifar10/stats.json", "results/demo/data/svhn/stats.json"]


@pytest.fixture(scope="module")
def own_corpora(tmp_path_factory):
    """Corpora at configured roots (not generated by the workflow), with features and prepared
    images made from them."""
    from gradual_transfer.demo import generate_corpus
    from conftest import TINY_DEMO, tiny_config

    workdir = tmp_path_factory.mktemp("corpora")
    config = tiny_config()
    for dataset in ("timit", "iemocap", "cifar10", "svhn"):
        generate_corpus(dataset, workdir / "data" / dataset, TINY_DEMO[dataset], 0)
        config["datasets"][dataset]["root"] = f"data/{dataset}"
        del config["demo"][dataset]
    result = run_snakemake(workdir, "--cores", "2", *FEATURE_TARGETS, config=config, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    return workdir, config


@contextlib.contextmanager
def replaced(path: Path):
    """`path` replaced by a copy of itself (same content, a later time), then put back."""
    before = path.stat()
    path.write_bytes(path.read_bytes())
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns + 10**9))
    try:
        yield
    finally:
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


def _plan_targets(workdir, config):
    result = run_snakemake(workdir, "-n", *FEATURE_TARGETS, config=config)
    assert result.returncode == 0, result.stderr[-3000:]
    return planned_jobs(result.stdout)


def test_an_untouched_corpus_plans_nothing(own_corpora):
    assert _plan_targets(*own_corpora) == {}


def test_replacing_a_timit_file_re_extracts_only_its_split(own_corpora):
    from gradual_transfer.data.timit import listed_speakers

    workdir, config = own_corpora
    dev = set(listed_speakers("dev"))
    phn = next(p for p in sorted((workdir / "data/timit/TEST").glob("DR*/*/*.PHN")) if p.parent.name.lower() in dev)
    with replaced(phn):
        assert _plan_targets(workdir, config) == {"asr_features": 1}
        assert "results/demo/features/timit/dev.arrow" in run_snakemake(workdir, "-n", *FEATURE_TARGETS).stdout


def test_adding_and_removing_corpus_files_re_extracts_what_reads_them(own_corpora, tmp_path):
    workdir, config = own_corpora
    wav = sorted((workdir / "data/iemocap").glob("Session2/sentences/wav/*/*.wav"))[0]
    shutil.move(wav, tmp_path / wav.name)
    try:
        assert _plan_targets(workdir, config) == {"ser_features": 1}
    finally:
        shutil.move(tmp_path / wav.name, wav)
    speaker = sorted((workdir / "data/timit/TRAIN").glob("DR*/*"))[0]
    extra = [speaker / "SI9999.WAV", speaker / "SI9999.PHN"]
    for source, target in zip(sorted(speaker.glob("SI*.WAV"))[:1] + sorted(speaker.glob("SI*.PHN"))[:1], extra):
        shutil.copyfile(source, target)
    try:
        assert _plan_targets(workdir, config) == {"asr_features": 1}  # train only
    finally:
        for path in extra:
            path.unlink()


def test_replacing_an_image_batch_re_prepares_only_that_dataset(own_corpora):
    workdir, config = own_corpora
    with replaced(workdir / "data/cifar10/cifar-10-batches-py/data_batch_3"):
        assert _plan_targets(workdir, config) == {"prepare_images": 1}
