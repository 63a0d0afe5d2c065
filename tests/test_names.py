"""Every name a user chooses (datasets, tasks, architectures, experiments) and every id read from
a corpus matches one pattern (gradual_transfer.names), so that no path the workflow builds from
names leaves `outdir` (issue 34: a dataset named `../../../../esc_ds` wrote four levels above it)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import yaml

from gradual_transfer import names
from gradual_transfer.data.errors import check_id
from conftest import own_study_base, run_snakemake, unshared
from test_cli import cli

# names that could leave a folder, split a shell word or a Kaldi line, or hide as a file
HOSTILE = {
    "parent": "..",
    "climbs": "../../../../esc",
    "slash": "a/b",
    "absolute": "/abs",
    "newline": "a\nb",
    "tab": "a\tb",
    "space": "a b",
    "300 characters": "x" * 150 + "y" * 150,
    "65 characters": "n" + "0123456789" * 6 + "abcd",
    "hidden": ".hidden",
    "option": "-rf",
    "empty": "",
    "shell": "a$(touch x)",
    "periodic": "run" + "x" * 20,
}


def _named(config: dict, section: str, name: str) -> dict:
    """The paper's config with one entry of `section` renamed to `name`, references included."""
    old = {"datasets": "cifar10", "tasks": "cifar10", "architectures": "densenet40", "experiments": "images"}[section]
    if section == "experiments":  # a study of one's own: the paper's own two keep their names
        config["experiments"][name] = dict(config["experiments"]["images"], enabled=False)
        return config
    config[section][name] = config[section].pop(old)
    if section == "datasets":
        config["tasks"]["cifar10"]["dataset"] = name
    if section == "tasks":
        config["experiments"]["images"]["tasks"][0] = name
    if section == "architectures":
        config["experiments"]["images"]["architectures"] = [name]
    return config


@pytest.mark.parametrize("section", ["datasets", "tasks", "architectures", "experiments"])
@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_name_outside_the_pattern_is_one_sentence_naming_its_key(paper_config, section, case):
    from gradual_transfer.config import ConfigError, validate_config

    name = HOSTILE[case]
    with pytest.raises(ConfigError) as refused:
        validate_config(_named(paper_config, section, name), check_data=False)
    message = str(refused.value)
    assert message.startswith("invalid configuration (1 problem(s)):\n"), message
    assert f"  - {section}: the name {names.shown(name)} " in message and "Rename it." in message
    assert "\n" not in message.split("\n  - ", 1)[1]  # one line, whatever the name holds


def test_names_at_the_edges_of_the_pattern_pass(paper_config):
    from gradual_transfer.config import validate_config

    for name in ("a..b", "_", "9", "x.", "a-to-b", "n" + "0123456789" * 6 + "abc", "run" + "x" * 19):
        assert names.problem(name) is None, name
        validate_config(_named(unshared(paper_config), "tasks", name), check_data=False)


def test_ids_follow_the_same_pattern(tmp_path):
    from gradual_transfer.data.errors import DataError

    assert check_id("spkA-00", "utterance id", "utt2spk") == "spkA-00"
    assert check_id("u" + "x" * 30, "utterance id", "utt2spk")  # a repeated tail is only the config's concern
    for bad, why in ((".spk", "starts with '.'"), ("u" * 65, "is 65 characters long"), ("a;b", "(';')")):
        with pytest.raises(DataError, match=re.escape(why)):
            check_id(bad, "speaker id", tmp_path / "utt2spk")


def test_check_config_and_snakemake_refuse_a_hostile_name_before_anything_is_written(tmp_path):
    config = own_study_base("results/out")
    config["experiments"]["x" * 300] = dict(config["experiments"]["images"], enabled=False)
    config["datasets"]["../../../../esc_ds"] = {"kind": "kaldi", "root": "data/k"}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    result = cli("check-config", "--configfile", str(tmp_path / "config.yaml"), cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert "datasets: the name '../../../../esc_ds' holds characters a name cannot hold ('/')" in result.stderr
    assert "experiments: the name 'xxxxxxxxx" in result.stderr and "is 300 characters long" in result.stderr
    result = run_snakemake(tmp_path, "-n", config=config)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "datasets: the name '../../../../esc_ds' holds characters" in result.stdout + result.stderr
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == ["config.yaml"]


# names at the edges of the pattern: dots inside and at the end, a leading '_' or digit, 64
# characters, '-to-' in a task name; every rule that builds a path from them is planned
AWKWARD = {
    "image_datasets": ["a..b", "_" + ("0123456789" * 7)[:63]],
    "kaldi_datasets": ["k..d", "k2."],
    "image_tasks": ["t..1", ("Long.name-" * 7)[:64]],
    "speech_tasks": ["s..-to-", "9"],
    "image_arch": "A..r" + "abcdefghij" * 6,
    "speech_arch": "m.",
    "image_study": "e..x" + "ABCDEFGHIJ" * 6,
    "speech_study": "_.",
}


def awkward_study(workdir: Path) -> dict:
    from gradual_transfer.data.imagefolder import write_placeholders

    config = own_study_base("results/out")
    image, speech = config["tasks"]["cifar10"], config["tasks"]["ser"]
    for dataset, task in zip(AWKWARD["image_datasets"], AWKWARD["image_tasks"]):
        write_placeholders(workdir / "data" / dataset, classes=2)
        config["datasets"][dataset] = {"kind": "imagefolder", "root": f"data/{dataset}", "image_size": 16,
                                       "validation": 2}
        config["tasks"][task] = {"dataset": dataset, "classes": 2, "metric": "accuracy",
                                 "training": image["training"], "finetune": image["finetune"]}
    for dataset, task in zip(AWKWARD["kaldi_datasets"], AWKWARD["speech_tasks"]):
        root = workdir / "data" / dataset
        root.mkdir(parents=True)
        (root / "wav.scp").write_text("s1-u s1-u.wav\ns2-u s2-u.wav\ns3-u s3-u.wav\n")
        (root / "utt2spk").write_text("s1-u s1\ns2-u s2\ns3-u s3\n")
        (root / "utt2label").write_text("s1-u a\ns2-u b\ns3-u a\n")
        config["datasets"][dataset] = {"kind": "kaldi", "root": f"data/{dataset}"}
        config["tasks"][task] = {"dataset": dataset, "classes": 3, "metric": "ue", "validation_speakers": ["s1"],
                                 "folds": [1, 2], "silence_threshold_db": -30.0, "training": speech["training"],
                                 "finetune": speech["finetune"]}
    config["architectures"][AWKWARD["image_arch"]] = config["architectures"]["densenet40"]
    config["architectures"][AWKWARD["speech_arch"]] = config["architectures"]["model_a"]
    config["experiments"][AWKWARD["image_study"]] = {
        "enabled": True, "tasks": AWKWARD["image_tasks"], "architectures": [AWKWARD["image_arch"]],
        "self_transfer": True, "upper_groups": ["copy", "reinit"], "seeds": [0, 1]}
    config["experiments"][AWKWARD["speech_study"]] = {"enabled": True, "tasks": AWKWARD["speech_tasks"],
                                                      "architectures": [AWKWARD["speech_arch"]]}
    return config


def test_every_path_planned_from_awkward_names_stays_under_outdir(tmp_path):
    config = awkward_study(tmp_path)
    result = run_snakemake(tmp_path, "-n", config=config)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    written = [path for line in result.stdout.splitlines()
               for key, _, paths in [line.strip().partition(": ")] if key in ("output", "log", "benchmark")
               for path in paths.split(", ")]
    assert len(written) > 300
    outdir = os.path.realpath(tmp_path / config["outdir"])
    for path in written:
        assert ".." not in Path(path).parts and not os.path.isabs(path), path
        assert os.path.commonpath([os.path.realpath(tmp_path / path), outdir]) == outdir, path
    joined = "\n".join(written)
    for name in [*AWKWARD["image_datasets"], *AWKWARD["kaldi_datasets"], *AWKWARD["image_tasks"],
                 *AWKWARD["speech_tasks"], AWKWARD["image_arch"], AWKWARD["speech_arch"], AWKWARD["image_study"],
                 AWKWARD["speech_study"]]:
        assert name in joined, name  # every name made paths, and every one of them was checked
