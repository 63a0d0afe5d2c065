"""Nothing wrong is saved as right: damaged inputs and diverged training end in one sentence
naming the file, key or setting, and leave no output behind."""

from __future__ import annotations

import json
import math
import re
import shutil

import pytest
import torch

from gradual_transfer.io import read_json, write_json
from gradual_transfer.data.kinds import KINDS
from gradual_transfer.steps import TrainingDiverged
from gradual_transfer.train import fit
from test_engine import CPU, OPTIONS, evaluator, recipe, toy_data


# --- diverged training ----------------------------------------------------------------------

def test_a_diverging_fit_stops_and_names_the_epoch_and_learning_rate(tmp_path):
    from gradual_transfer.models import build_model
    from test_engine import ARCH

    torch.manual_seed(0)
    model = build_model(ARCH, 4, (3, 8, 8))
    with pytest.raises(TrainingDiverged) as caught:
        fit(model, toy_data(4, 64, 1), evaluator(toy_data(4, 16, 2)), recipe(lr=1.0e6), checkpoint_dir=tmp_path,
            fingerprint={}, device=CPU, options=OPTIONS)
    message = str(caught.value)
    assert re.match(r"training diverged in epoch \d/3: ", message), message
    assert "optimizer.lr is 1e+06; try 100000" in message and "No model is written" in message


def test_a_nan_loss_names_its_epoch_and_step(tmp_path):
    from gradual_transfer.models import build_model
    from gradual_transfer.batches import TensorSource
    from test_engine import ARCH

    torch.manual_seed(0)
    model = build_model(ARCH, 4, (3, 8, 8))
    good = toy_data(4, 64, 1)
    poisoned = TensorSource(torch.full_like(good.inputs, math.nan), good.targets)
    with pytest.raises(TrainingDiverged, match=r"in epoch 1/3: the training loss became NaN or infinite at step 1\."):
        fit(model, poisoned, evaluator(toy_data(4, 16, 2)), recipe(), checkpoint_dir=tmp_path, fingerprint={},
            device=CPU, options=OPTIONS)
    model = build_model(ARCH, 4, (3, 8, 8))
    with pytest.raises(TrainingDiverged, match=r"in the head warm-up: the training loss became NaN"):
        fit(model.freeze(3), poisoned, evaluator(toy_data(4, 16, 2)), recipe(head_warmup_iterations=2),
            checkpoint_dir=tmp_path / "w", fingerprint={}, device=CPU, options=OPTIONS)


def test_a_diverged_job_writes_no_model_and_no_metrics(tmp_path):
    from gradual_transfer.data.cifar_svhn import prepare as prepare_images
    from gradual_transfer.demo import generate_corpus
    from gradual_transfer.experiment import run_job
    from gradual_transfer.grid import Job
    from conftest import TINY_DEMO
    from test_speech_experiment import RUNTIME

    generate_corpus("cifar10", tmp_path / "c10", TINY_DEMO["cifar10"], 0)
    prepare_images("cifar10", tmp_path / "c10", tmp_path / "data", validation=10, verify_md5=False)
    network = {"kind": "densenet", "depth": 7, "growth_rate": 4, "init_features": 8, "dropout": 0.2}
    training = {"batch_size": 16, "epochs": 3, "optimizer": {"lr": 1.0e6, "momentum": 0.9, "nesterov": True,
                                                             "weight_decay": 0.0},
                "schedule": {"kind": "step", "milestones": [0.5], "gamma": 0.1}, "early_stopping_patience": 0,
                "seed": 0}
    params = {"job": Job("images", "d", "cifar10", "cifar10").to_dict(), "version": 1,
              "settings": {"dataset": "cifar10", "network": network, "classes": 10, "recipe": training, "lc": None,
                           "seed": 0}}
    data = tmp_path / "data"
    inputs = {**{s: str(data / f"{s}.arrow") for s in ("train", "validation", "test")}, "stats": str(data / "stats.json")}
    out = tmp_path / "model"
    with pytest.raises(TrainingDiverged, match="No model is written"):
        run_job(params, inputs, {"model": str(out / "model.pt"), "metrics": str(out / "metrics.json")}, RUNTIME,
                kind=KINDS["cifar10"])
    assert not (out / "model.pt").exists() and not (out / "metrics.json").exists()
    assert not out.exists()  # nor a resume/ folder (resumed, it would diverge again), nor the folder made for it


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_json_files_never_hold_nan_or_infinity(tmp_path, value):
    with pytest.raises(ValueError, match="m.json: not written, it would hold a NaN"):
        write_json(tmp_path / "m.json", {"validation": {"score": value}})
    assert not list(tmp_path.iterdir())
    write_json(tmp_path / "ok.json", {"score": 1.5})
    assert read_json(tmp_path / "ok.json") == {"score": 1.5}
    json.loads((tmp_path / "ok.json").read_text())  # strict JSON


# --- damaged image datasets -----------------------------------------------------------------

def _pickle_edit(path, change):
    import pickle

    with open(path, "rb") as f:
        entry = pickle.load(f, encoding="latin1")
    change(entry)
    with open(path, "wb") as f:
        pickle.dump(entry, f)


def _mat_edit(path, change):
    import scipy.io

    mat = {k: v for k, v in scipy.io.loadmat(path).items() if not k.startswith("__")}
    change(mat)
    scipy.io.savemat(path, mat)


def _drop_one_image(entry):
    entry["data"] = entry["data"][:-1]


def _set_label(key, index, value):
    def change(entry):
        entry[key][index] = value
    return change


def _truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


IMAGE_DAMAGES = {
    # dataset, file, damage, what the message says
    "cifar10 batch one image short": ("cifar10", "cifar-10-batches-py/data_batch_2", lambda p: _pickle_edit(p, _drop_one_image),
                                      "data_batch_2: 9 images but 10 labels"),
    "cifar10 label 10": ("cifar10", "cifar-10-batches-py/data_batch_3", lambda p: _pickle_edit(p, _set_label("labels", 4, 10)),
                         "data_batch_3: label 10 at index 4 is outside 0..9"),
    "cifar10 label -1 in test": ("cifar10", "cifar-10-batches-py/test_batch",
                                 lambda p: _pickle_edit(p, _set_label("labels", 7, -1)),
                                 "test_batch: label -1 at index 7 is outside 0..9"),
    "cifar100 label 100": ("cifar100", "cifar-100-python/train", lambda p: _pickle_edit(p, _set_label("fine_labels", 0, 100)),
                           "cifar-100-python/train: label 100 at index 0 is outside 0..99"),
    "cifar10 truncated pickle": ("cifar10", "cifar-10-batches-py/data_batch_1", _truncate,
                                 "data_batch_1: not a readable cifar10 batch"),
    "cifar10 wrong row length": ("cifar10", "cifar-10-batches-py/data_batch_1",
                                 lambda p: _pickle_edit(p, lambda e: e.update(data=e["data"][:, :3000])),
                                 "data_batch_1: images of shape (10, 3000)"),
    "svhn .mat without y": ("svhn", "train_32x32.mat", lambda p: _mat_edit(p, lambda m: m.pop("y")),
                            "train_32x32.mat: not a readable svhn train split"),
    "svhn label 11": ("svhn", "test_32x32.mat", lambda p: _mat_edit(p, lambda m: m["y"].__setitem__((3, 0), 11)),
                      "test_32x32.mat: label 11 at index 3 is outside 0..9"),
    "svhn one label short": ("svhn", "extra_32x32.mat", lambda p: _mat_edit(p, lambda m: m.update(y=m["y"][:-1])),
                             "extra_32x32.mat: 10 images but 9 labels"),
}


@pytest.mark.parametrize("case", sorted(IMAGE_DAMAGES))
def test_damaged_image_data_is_refused_before_anything_is_written(tmp_path, case):
    from gradual_transfer.data.errors import DataError
    from gradual_transfer.data.cifar_svhn import prepare as prepare_images
    from gradual_transfer.demo import generate_corpus
    from conftest import TINY_DEMO

    dataset, name, damage, message = IMAGE_DAMAGES[case]
    settings = {"cifar10": {"train": 50, "test": 20}, "cifar100": {"train": 20, "test": 10},
                "svhn": TINY_DEMO["svhn"]}[dataset]
    generate_corpus(dataset, tmp_path / "root", settings, 0)
    damage(tmp_path / "root" / name)
    with pytest.raises(DataError) as caught:
        prepare_images(dataset, tmp_path / "root", tmp_path / "out", validation=5, verify_md5=False,
                       use_extra=dataset == "svhn")
    assert message in str(caught.value)
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


# --- the command line resumes like the workflow ---------------------------------------------

def test_train_image_from_the_command_line_resumes_after_a_kill(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    import yaml

    from conftest import REPO, tiny_config
    from test_cli import cli

    config = tiny_config()
    config["demo"]["cifar10"]["train"] = 600  # epochs long enough to kill one mid-run
    config["tasks"]["cifar10"]["training"].update(epochs=3)
    config_file = tmp_path / "tiny.yaml"
    config_file.write_text(yaml.safe_dump(config))
    c = ["--configfile", str(config_file)]
    assert cli("demo-corpus", "cifar10", str(tmp_path / "c10"), *c).returncode == 0
    assert cli("prepare-images", "cifar10", str(tmp_path / "c10"), str(tmp_path / "data"), *c).returncode == 0

    def train(out: str) -> list[str]:
        return [sys.executable, "-m", "gradual_transfer", "--log", str(tmp_path / f"{out}.log"), "train-image",
                "--arch", "densenet_demo", "--task", "cifar10", "--data-dir", str(tmp_path / "data"),
                "--out-dir", str(tmp_path / out), *c]

    run = subprocess.Popen(train("killed"), cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = tmp_path / "killed.log"
    deadline = time.monotonic() + 300
    # epoch 2's progress line is written after epoch 1's checkpoint (epoch 1's own log line comes
    # just before it: a kill between the two would resume from the start of epoch 1)
    while not (log.exists() and "epoch 2/3:" in log.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(run.pid, signal.SIGKILL)
    run.wait()
    assert "epoch 3/3 lr" not in log.read_text(), "finished before it was killed: lengthen it"
    assert (tmp_path / "killed" / "resume" / "last.pt").exists() and not (tmp_path / "killed" / "model.pt").exists()

    resumed = subprocess.run(train("killed"), cwd=REPO, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming from" in log.read_text() and "epoch 1/3 lr" not in log.read_text()
    straight = subprocess.run(train("straight"), cwd=REPO, capture_output=True, text=True, timeout=600)
    assert straight.returncode == 0, straight.stderr[-3000:]
    from conftest import without_timing

    assert without_timing((tmp_path / "killed" / "metrics.json").read_text()) == without_timing(
        (tmp_path / "straight" / "metrics.json").read_text())
    a = torch.load(tmp_path / "killed" / "model.pt", weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "straight" / "model.pt", weights_only=True)["state_dict"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# --- damaged speech corpora -----------------------------------------------------------------

def _phn(text):
    def damage(root):
        from test_speech_data import utt_file

        utt_file(root, suffix="PHN").write_text(text)
    return damage


def _phn_bytes(data):
    def damage(root):
        from test_speech_data import utt_file

        utt_file(root, suffix="PHN").write_bytes(data)
    return damage


def _sphere_header(old, new):
    def damage(root):
        from test_speech_data import utt_file

        wav = utt_file(root)
        data = wav.read_bytes()
        assert old.encode() in data[:1024] and len(old) == len(new)
        wav.write_bytes(data.replace(old.encode(), new.encode(), 1))
    return damage


def _short_utterance(root):
    from gradual_transfer.demo.formats import write_sphere
    from test_speech_data import tone, utt_file

    write_sphere(utt_file(root), tone(0.01), 16000, "fcjf0_si1027")  # 160 samples: under one 400-sample frame
    utt_file(root, suffix="PHN").write_text("0 160 h#\n")


def _speaker_in_two_regions(root):
    shutil.copytree(root / "TRAIN" / "DR1" / "FCJF0", root / "TRAIN" / "DR2" / "FCJF0")


# the test utterance holds 8000 samples and "0 2000 h#\n2000 4000 sh\n4000 5200 q\n5200 6400 iy\n6400 8000 h#\n"
TIMIT_DAMAGES = {
    "first line missing": (_phn("2000 4000 sh\n4000 5200 q\n5200 6400 iy\n6400 8000 h#\n"),
                           r"SI1027.PHN line 1: the first segment begins at sample 2000, not 0: is the first line missing\?"),
    "last lines missing": (_phn("0 2000 h#\n2000 4000 sh\n4000 5200 q\n"),
                           r"SI1027.PHN: the last segment ends at sample 5200, 2800 samples before the end of the audio"),
    "middle line missing": (_phn("0 2000 h#\n2000 4000 sh\n5200 6400 iy\n6400 8000 h#\n"),
                            r"SI1027.PHN line 3: segment begins at sample 5200, after the previous one ends \(4000\): a gap"),
    "non-ASCII byte": (_phn_bytes(b"0 2000 h#\n2000 4000 s\xe9\n4000 8000 h#\n"),
                       r"SI1027.PHN line 2: byte 0xe9 is not ASCII text"),
    "sample_count below the data": (_sphere_header("sample_count -i 8000", "sample_count -i 7000"),
                                    r"SI1027.WAV: truncated or padded"),
    "non-numeric header field": (_sphere_header("sample_n_bytes -i 2", "sample_n_bytes -i x"),
                                 r"SI1027.WAV: (SPHERE header field sample_n_bytes is 'x', not a number|unreadable audio)"),
    "shorter than one frame": (_short_utterance, r"SI1027.WAV: shorter than one frame \(160 samples\)"),
}


@pytest.mark.parametrize("case", sorted(TIMIT_DAMAGES))
def test_damaged_timit_is_refused_and_skip_leaves_the_utterance_out(tmp_path, case):
    from gradual_transfer.data.errors import DataError
    from gradual_transfer.data.timit import extract as extract_timit
    from test_speech_data import SETTINGS, make_timit

    damage, message = TIMIT_DAMAGES[case]
    root = make_timit(tmp_path / "t")
    damage(root)
    out = tmp_path / "out.arrow"
    with pytest.raises(DataError, match=message):
        extract_timit(root, "train", out, SETTINGS)
    assert not out.exists()
    assert extract_timit(root, "train", out, SETTINGS, bad_utterances="skip") == 2  # of 3


def test_a_speaker_in_two_dialect_regions_is_refused_naming_both(tmp_path):
    from gradual_transfer.data.errors import DataError
    from gradual_transfer.data.timit import extract as extract_timit
    from test_speech_data import SETTINGS, make_timit

    root = make_timit(tmp_path / "t")
    _speaker_in_two_regions(root)
    with pytest.raises(DataError, match=r"DR2/FCJF0/SI1027.WAV: duplicate utterance id fcjf0_si1027, also .*DR1/FCJF0/SI1027.WAV"):
        extract_timit(root, "train", tmp_path / "out.arrow", SETTINGS, bad_utterances="skip")


def test_an_iemocap_label_block_listed_twice_is_refused(tmp_path):
    from gradual_transfer.data.errors import DataError
    from gradual_transfer.data.iemocap import extract as extract_iemocap
    from test_speech_data import SETTINGS, make_iemocap

    root = make_iemocap(tmp_path / "i")
    path = root / "Session2" / "dialog" / "EmoEvaluation" / "Ses02F_impro01.txt"
    blocks = path.read_text().split("\n\n")
    path.write_text("\n\n".join(blocks + [blocks[1]]))
    with pytest.raises(DataError, match=r"Ses02F_impro01.txt: utterance Ses02F_impro01_\w+ is labelled twice in it"):
        extract_iemocap(root, tmp_path / "out.arrow", SETTINGS, -30.0, bad_utterances="skip")


# --- SER folds without anything to score ----------------------------------------------------

@pytest.fixture
def iemocap_without_ses03m(tmp_path):
    """An IEMOCAP root where speaker Ses03M (the test speaker of fold 6) has no usable audio."""
    from gradual_transfer.data import iemocap
    from test_speech_data import make_iemocap

    root = make_iemocap(tmp_path / "data" / "IEMOCAP_full_release")
    gone = [u for u in iemocap.list_utterances(root)[0] if u.speaker == "Ses03M"]
    assert gone
    for utt in gone:
        utt.wav.unlink()
    return root


def test_a_fold_without_its_test_speaker_is_refused_when_the_config_is_checked(paper_config, tmp_path,
                                                                               iemocap_without_ses03m):
    from gradual_transfer.config import ConfigError, validate_config
    from gradual_transfer.data.layouts import write_placeholders

    for dataset, entry in paper_config["datasets"].items():
        if dataset != "iemocap":
            write_placeholders(dataset, tmp_path / entry["root"], entry)
    with pytest.raises(ConfigError, match=r"tasks.ser.folds: fold 6 tests on Ses03M, who has no usable 4-class "
                                          r"utterance in .*Ses03M 0.*remove fold 6"):
        validate_config(paper_config, base=tmp_path)
    paper_config["tasks"]["ser"]["folds"] = paper_config["experiments"]["speech"]["ser_source_folds"] = [1, 2, 7, 8]
    validate_config(paper_config, base=tmp_path)


def test_a_fold_without_its_test_speaker_is_refused_before_training(tmp_path, iemocap_without_ses03m):
    from gradual_transfer.tasks import speech
    from gradual_transfer.data.errors import DataError
    from gradual_transfer.data.frontend import write_stats
    from gradual_transfer.data.iemocap import extract as extract_iemocap
    from test_speech_data import SETTINGS

    features = tmp_path / "all.arrow"
    extract_iemocap(iemocap_without_ses03m, features, SETTINGS, -30.0, bad_utterances="skip")
    write_stats(features, tmp_path / "stats.json")
    settings = {"dataset": "iemocap", "context": 2, "validation_speakers": ["Ses05F", "Ses05M"]}
    inputs = {"features": str(features), "stats": str(tmp_path / "stats.json")}
    assert len(speech.sources(KINDS["iemocap"], settings, inputs, 5)["test"]) > 0
    with pytest.raises(DataError, match=r"all.arrow: fold 6 has no utterance of its test speakers \(Ses03M;"):
        speech.sources(KINDS["iemocap"], settings, inputs, 6)


# --- full disks and killed writers ----------------------------------------------------------

@pytest.fixture
def full_disk(tmp_path):
    """A 64 KiB file system (tmpfs): writes of more fail with ENOSPC, as on a full disk."""
    import subprocess

    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def _no_leftovers(directory):
    return [p.name for p in directory.rglob("*") if p.is_file()]


def test_a_full_disk_is_one_sentence_for_json(full_disk):
    from gradual_transfer.io import WriteError

    with pytest.raises(WriteError, match=r"big.json: not written, the disk is full \(.* free on the device of"):
        write_json(full_disk / "big.json", {"x": list(range(100_000))})
    assert _no_leftovers(full_disk) == []


def test_a_full_disk_during_training_names_the_checkpoint(full_disk):
    from gradual_transfer.io import WriteError
    from gradual_transfer.models import build_model
    from test_engine import ARCH

    model = build_model({**ARCH, "growth_rate": 12, "init_features": 24}, 4, (3, 8, 8))
    with pytest.raises(WriteError, match=r"last.pt: not written, the disk is full"):
        fit(model, toy_data(4, 32, 1), evaluator(toy_data(4, 16, 2)), recipe(), checkpoint_dir=full_disk / "resume",
            fingerprint={}, device=CPU, options=OPTIONS)
    assert _no_leftovers(full_disk) == []


def test_a_full_disk_during_extraction_and_kaldi_export_leaves_nothing(full_disk, tmp_path):
    from gradual_transfer.data.frontend import export_kaldi
    from gradual_transfer.data.timit import extract as extract_timit
    from gradual_transfer.io import WriteError
    from test_speech_data import SETTINGS, make_timit

    root = make_timit(tmp_path / "t")
    filler = full_disk / "filler"  # leaves 8 KiB: less than the features (~16 KiB)
    filler.write_bytes(b"\0" * (shutil.disk_usage(full_disk).free - 8192))
    with pytest.raises(WriteError, match=r"train.arrow: not written, the disk is full"):
        extract_timit(root, "train", full_disk / "train.arrow", SETTINGS)
    assert _no_leftovers(full_disk) == ["filler"]
    extract_timit(root, "train", tmp_path / "train.arrow", SETTINGS)
    with pytest.raises(WriteError, match=r"feats.(ark|scp): not written, the disk is full"):
        export_kaldi(tmp_path / "train.arrow", full_disk / "kaldi")
    assert _no_leftovers(full_disk) == ["filler"]


def test_a_failed_write_leaves_no_folder_it_made(tmp_path):
    from gradual_transfer.io import all_or_none, atomic_path, write_text

    (tmp_path / "kept").mkdir()
    with pytest.raises(RuntimeError, match="the writer failed"):
        with atomic_path(tmp_path / "kept" / "new" / "deeper" / "out.json") as tmp:
            tmp.write_text("half")
            raise RuntimeError("the writer failed")
    assert [p.name for p in tmp_path.rglob("*")] == ["kept"]
    with pytest.raises(RuntimeError, match="the third output failed"):
        with all_or_none():
            write_text(tmp_path / "split" / "train.txt", "first")
            write_text(tmp_path / "split" / "more" / "test.txt", "second")
            raise RuntimeError("the third output failed")
    assert [p.name for p in tmp_path.rglob("*")] == ["kept"]
    write_text(tmp_path / "kept" / "new" / "out.txt", "whole")  # a write that succeeds keeps its folders
    assert (tmp_path / "kept" / "new" / "out.txt").read_text() == "whole"


def test_a_killed_writers_leftovers_are_removed_by_the_next_write(tmp_path):
    (tmp_path / ".metrics.json.k2j3h.partial").write_text("half a fi")
    (tmp_path / ".other.json.x.partial").write_text("another output's")
    write_json(tmp_path / "metrics.json", {"score": 1.0})
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.json.x.partial", "metrics.json"]


# --- config files that are not YAML mappings ------------------------------------------------

CONFIG_DAMAGES = {
    "syntax error": ("outdir: results\ndatasets: [unclosed\n", r"config.yaml line 3, column 1: not valid YAML"),
    "tab indentation": ("outdir: results\ndatasets:\n\tcifar10: {}\n", r"config.yaml line 3, column 1: not valid YAML"),
    "top-level list": ("- outdir\n- results\n", r"config.yaml: the top level is a list; a config file is a mapping"),
}


@pytest.mark.parametrize("case", sorted(CONFIG_DAMAGES))
def test_a_broken_config_file_is_named_with_its_line_by_the_workflow_and_the_cli(tmp_path, case):
    from conftest import run_snakemake
    from test_cli import cli

    text, message = CONFIG_DAMAGES[case]
    (tmp_path / "config.yaml").write_text(text)
    result = run_snakemake(tmp_path, "-n")
    assert result.returncode != 0 and re.search(message, result.stdout + result.stderr), result.stdout[-2000:]
    result = cli("check-config", "--configfile", str(tmp_path / "config.yaml"), cwd=tmp_path)
    assert result.returncode == 2 and re.search(message, result.stderr) and "Traceback" not in result.stderr


# --- two working directories, one outdir ----------------------------------------------------

def test_a_second_working_directory_writing_the_same_outdir_is_refused(tmp_path):
    import subprocess
    import sys

    from conftest import run_snakemake, tiny_config

    shared = tmp_path / "shared-results"
    config = tiny_config()
    config["outdir"] = str(shared)
    target = str(shared / "corpora" / "cifar10")
    other = subprocess.Popen(  # the run of another working directory, holding the outdir
        [sys.executable, "-c", "import sys; from gradual_transfer.io import hold_outdir; "
         f"hold_outdir({str(shared)!r}, 'the Snakemake run in /elsewhere'); print('held', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout.readline().strip() == "held"
        assert run_snakemake(tmp_path / "a", "-n", target, config=config).returncode == 0  # a dry run writes nothing
        result = run_snakemake(tmp_path / "a", "--cores", "1", target, config=config)
        assert result.returncode != 0
        assert re.search(rf"{shared}: another run is writing this outdir \(the Snakemake run in /elsewhere, pid \d+",
                         result.stdout + result.stderr), result.stdout[-2000:]
        assert not (shared / "corpora").exists()
    finally:
        other.kill()
        other.wait()
    result = run_snakemake(tmp_path / "a", "--cores", "1", target, config=config)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"the Snakemake run in {tmp_path / 'a'}, pid" in (shared / ".gradual-transfer.lock").read_text()
