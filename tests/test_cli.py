"""Every step as a command: the CLI runs outside Snakemake and reports bad input cleanly."""

from __future__ import annotations

import subprocess
import sys

import yaml

from gradual_transfer.data.arrow import SpeechFeatures
from conftest import REPO, tiny_config


def cli(*args: str, cwd=REPO) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gradual_transfer", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=600)


def test_speech_steps_from_the_command_line(tmp_path):
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(tiny_config()))
    assert cli("demo-corpus", "timit", str(tmp_path / "timit"), "--configfile", str(config)).returncode == 0
    result = cli("speech-features", "timit", str(tmp_path / "dev.arrow"), "--split", "dev", "--root",
                 str(tmp_path / "timit"), "--configfile", str(config))
    assert result.returncode == 0, result.stderr
    assert len(SpeechFeatures(tmp_path / "dev.arrow")) == 2
    result = cli("export-kaldi", str(tmp_path / "dev.arrow"), str(tmp_path / "kaldi"))
    assert result.returncode == 0 and (tmp_path / "kaldi" / "feats.scp").read_text().count("\n") == 2
    assert not (tmp_path / "kaldi" / "wav.scp").exists()
    result = cli("export-kaldi", str(tmp_path / "dev.arrow"), str(tmp_path / "kaldi-wav"), "--dataset", "timit",
                 "--root", str(tmp_path / "timit"), "--configfile", str(config))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "kaldi-wav" / "wav.scp").read_text().count("\n") == 2
    # the step asks the kind for its splits: TIMIT's are extracted apart, so a split is needed
    result = cli("speech-features", "timit", str(tmp_path / "x.arrow"), "--configfile", str(config))
    assert result.returncode == 2 and "--split: timit is extracted one split at a time; give --split train or dev " \
                                      "or test." in result.stderr
    result = cli("speech-features", "cifar10", str(tmp_path / "x.arrow"), "--configfile", str(config))
    assert result.returncode == 2 and "speech-features cifar10: not a speech dataset under datasets" in result.stderr


def test_image_steps_from_the_command_line(tmp_path):
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(tiny_config()))
    c = ["--configfile", str(config)]
    assert cli("demo-corpus", "cifar10", str(tmp_path / "c10"), *c).returncode == 0
    assert cli("prepare-images", "cifar10", str(tmp_path / "c10"), str(tmp_path / "data"), *c).returncode == 0
    result = cli("train-image", "--arch", "densenet_demo", "--task", "cifar10", "--data-dir", str(tmp_path / "data"),
                 "--out-dir", str(tmp_path / "primary"), *c)
    assert result.returncode == 0, result.stderr
    result = cli("train-image", "--arch", "densenet_demo", "--task", "cifar10", "--target", "cifar10",
                 "--data-dir", str(tmp_path / "data"), "--source-model", str(tmp_path / "primary" / "model.pt"),
                 "--lc", "3", "--out-dir", str(tmp_path / "transfer"), *c)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "transfer" / "metrics.json").is_file()
    result = cli("train-image", "--arch", "densenet_demo", "--task", "cifar10", "--target", "cifar10",
                 "--data-dir", str(tmp_path / "data"), "--source-model", str(tmp_path / "primary" / "model.pt"),
                 "--lc", "3", "--upper-groups", "reinit", "--out-dir", str(tmp_path / "reinit"), *c)
    assert result.returncode == 0, result.stderr
    assert '"upper_groups": "reinit"' in (tmp_path / "reinit" / "metrics.json").read_text()


def test_check_config_says_what_each_experiment_can_claim():
    result = cli("check-config", "--no-data")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[1].startswith("What this design can claim (exact two-sided signed-rank tests")
    claims = [line for line in lines if line.startswith("  - ")]
    assert len(claims) == 3  # images; speech asr → ser and ser → asr
    assert "no onset can be declared; 6 seeds would allow an onset" in claims[0]
    assert all("an onset of the gap can be declared" in line for line in claims[1:])


def test_bad_input_is_one_clear_line_not_a_traceback(tmp_path):
    result = cli("speech-features", "timit", str(tmp_path / "x.arrow"), "--split", "train", "--root",
                 str(tmp_path / "missing"))
    assert result.returncode == 2
    assert "no TRAIN folder" in result.stderr and "Traceback" not in result.stderr
    result = cli("check-config", cwd=tmp_path)
    assert result.returncode == 2 and "config.yaml: no such config file" in result.stderr
    assert "Traceback" not in result.stderr


def test_train_image_refuses_an_lc_beyond_the_network_in_one_line(tmp_path):
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(tiny_config()))
    result = cli("train-image", "--arch", "densenet_demo", "--task", "cifar10", "--data-dir", str(tmp_path),
                 "--source-model", str(tmp_path / "m.pt"), "--lc", "9", "--out-dir", str(tmp_path / "o"),
                 "--configfile", str(config))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "--lc 9: densenet_demo has 7 layer groups; use 0..7." in result.stderr


def test_train_image_refuses_a_reinit_that_copies_nothing_in_one_line(tmp_path):
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(tiny_config()))
    for extra in (["--source-model", str(tmp_path / "m.pt"), "--lc", "0"], []):
        result = cli("train-image", "--arch", "densenet_demo", "--task", "cifar10", "--data-dir", str(tmp_path),
                     "--upper-groups", "reinit", "--out-dir", str(tmp_path / "o"), "--configfile", str(config), *extra)
        assert result.returncode == 2 and "Traceback" not in result.stderr
        assert "--upper-groups reinit:" in result.stderr and "l_c = 0 would copy nothing" in result.stderr
