"""A study of one's own from config alone: two ImageFolder datasets and a torchvision ResNet-18
cut into its stem and four stages, run end to end through Snakemake; and the refusals that keep
such a study consistent (an image task with a speech network, images of two sizes, one model
claimed by two experiments)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import REPO, load_yaml, own_study_base, run_snakemake, unshared

RESNET18_GROUPS = [["conv1", "bn1", "relu", "maxpool"], ["layer1"], ["layer2"], ["layer3"], ["layer4"]]


def write_image_folder(root, classes: list[str], counts: dict[str, int], seed: int, size: int = 40) -> None:
    """`root/<split>/<class>/<i>.png`: each class a colour of its own, with noise, so that it is learnable."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for split, count in counts.items():
        for label, name in enumerate(classes):
            folder = root / split / name
            folder.mkdir(parents=True)
            colour = np.array([(label * 97) % 256, (label * 57 + 80) % 256, (label * 151 + 30) % 256])
            for i in range(count):
                pixels = np.clip(colour + rng.normal(0, 40, (size, size + 8, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(folder / f"{i}.png")


def recipe(epochs: int, **extra) -> dict:
    return {"batch_size": 8, "epochs": epochs, "seed": 0, "early_stopping_patience": 0,
            "optimizer": {"lr": 0.01, "momentum": 0.9, "nesterov": False, "weight_decay": 0.0},
            "schedule": {"kind": "step", "milestones": [0.5], "gamma": 0.1}, **extra}


def own_study_config(data) -> dict:
    """config.yaml of the workdir: the paper's, its experiments off, a study named `mine` on."""
    config = own_study_base("results/own")
    config["datasets"]["shapes"] = {"kind": "imagefolder", "root": str(data / "shapes"), "image_size": 32,
                                    "validation": 6}
    config["datasets"]["textures"] = {"kind": "imagefolder", "root": str(data / "textures"), "image_size": 32}
    config["architectures"]["resnet18_study"] = {"kind": "torchvision", "model": "resnet18",
                                                 "groups": RESNET18_GROUPS, "lc": [0, 5]}
    for name, classes in (("shapes", 3), ("textures", 2)):
        config["tasks"][name] = {"dataset": name, "classes": classes, "metric": "accuracy",
                                 "training": recipe(2), "finetune": recipe(1, head_warmup_iterations=2)}
    config["experiments"]["mine"] = {"enabled": True, "tasks": ["shapes", "textures"],
                                     "architectures": ["resnet18_study"]}
    return config


@pytest.fixture(scope="module")
def own_data(tmp_path_factory):
    data = tmp_path_factory.mktemp("own_data")
    write_image_folder(data / "shapes", ["circle", "square", "star"], {"train": 10, "test": 4}, seed=1)
    write_image_folder(data / "textures", ["dots", "stripes"], {"train": 8, "val": 3, "test": 4}, seed=2)
    return data


def test_a_study_of_ones_own_runs_from_config_alone(own_data, tmp_path):
    config = own_study_config(own_data)
    workdir = tmp_path / "work"
    result = run_snakemake(workdir, "--cores", "2", "--max-threads", "1", config=config, timeout=1200)
    assert result.returncode == 0, result.stderr[-5000:]
    out = workdir / "results" / "own"

    classes = json.loads((out / "data" / "shapes" / "classes.json").read_text())
    assert classes == ["circle", "square", "star"]  # torchvision's rule: the sorted folder names
    stats = json.loads((out / "data" / "textures" / "stats.json").read_text())
    assert (stats["train"], stats["validation"], stats["test"]) == (16, 6, 8)  # textures' val/ is its validation

    import pandas as pd

    table = pd.read_parquet(out / "tables" / "results.parquet")
    assert set(table["experiment"]) == {"mine"}
    transfers = table[(table["kind"] == "transfer") & (table["split"] == "test")]
    assert {(s, t) for s, t in zip(transfers["source"], transfers["target"])} == {("shapes", "textures"),
                                                                                  ("textures", "shapes")}
    assert sorted(set(transfers["lc"])) == [0, 5]
    assert (out / "figures" / "study_mine.png").stat().st_size > 0
    metrics = json.loads((out / "models" / "resnet18_study" / "primary" / "shapes" / "fold0" / "metrics.json")
                         .read_text())
    assert metrics["cost"]["step_flops"] > 0  # counted for the torchvision network as for the paper's

    again = run_snakemake(workdir, "-n")  # a finished study plans nothing
    assert again.returncode == 0, again.stderr[-3000:]
    assert "Nothing to be done" in again.stdout + again.stderr, again.stdout[-3000:]


def _problems(config: dict) -> str:
    from gradual_transfer.config import ConfigError, validate_config

    with pytest.raises(ConfigError) as refused:
        validate_config(config, check_data=False)
    return str(refused.value)


def test_an_image_study_refuses_a_speech_network(own_data):
    config = own_study_config(own_data)
    config["experiments"]["mine"]["architectures"] = ["model_a"]
    assert "experiments.mine.architectures: 'model_a' is a speech ConvNet" in _problems(config)


def test_an_image_study_refuses_images_of_two_sizes(own_data):
    config = own_study_config(own_data)
    config["datasets"]["textures"]["image_size"] = 64
    assert "experiments.mine.tasks: images of different sizes (shapes 32 × 32, textures 64 × 64)" in _problems(config)


def test_an_image_study_refuses_a_speech_task_and_a_foreign_pair(own_data):
    config = own_study_config(own_data)
    config["experiments"]["mine"]["tasks"] = ["shapes", "textures", "ser"]
    assert ("task 'ser' reads iemocap, a speech dataset, but 'shapes' reads image; a study is between image tasks "
            "or between speech tasks, not both") in _problems(config)
    config = own_study_config(own_data)
    config["experiments"]["mine"]["pairs"] = [["shapes", "cifar10"]]
    assert "experiments.mine.pairs: ['shapes', 'cifar10'] names 'cifar10'" in _problems(config)


def test_two_experiments_may_not_train_the_same_model(own_data):
    config = own_study_config(own_data)
    config["experiments"]["again"] = dict(config["experiments"]["mine"])
    assert "experiments.again: trains resnet18_study on shapes, as experiments.mine does" in _problems(config)


def test_pairs_choose_the_transfers(own_data):
    from gradual_transfer.config import validate_config
    from gradual_transfer.grid import training_jobs

    config = own_study_config(own_data)
    config["experiments"]["mine"]["pairs"] = [["shapes", "textures"]]
    jobs = training_jobs(validate_config(config, check_data=False))
    assert {(j.source, j.target, j.lc) for j in jobs if j.is_transfer} == {("shapes", "textures", 0),
                                                                          ("shapes", "textures", 5)}
    assert {j.target for j in jobs if not j.is_transfer} == {"shapes", "textures"}


def test_the_class_folders_are_checked_before_planning(own_data):
    from gradual_transfer.config import ConfigError, validate_config

    config = own_study_config(own_data)
    config["tasks"]["shapes"]["classes"] = 4
    with pytest.raises(ConfigError) as refused:
        validate_config(config)
    assert "tasks.shapes.classes: 4, but" in str(refused.value) and "holds 3 class folders" in str(refused.value)
    config = own_study_config(own_data)
    config["datasets"]["textures"]["validation"] = 2
    with pytest.raises(ConfigError) as refused:
        validate_config(config)
    assert "datasets.textures.validation:" in str(refused.value) and "val is the validation split" in str(refused.value)


def test_the_readmes_study_is_a_valid_config(own_data, tmp_path):
    """README's `my_study.yaml`, word for word, passes every check but the data's (its folders are
    the reader's own): the schema, the cross-references and the proof of its groups."""
    import re

    import yaml

    from gradual_transfer.config import merge, validate_config

    readme = (REPO / "README.md").read_text()
    block = re.search(r"```yaml\n(# my_study\.yaml.*?)```", readme, re.S).group(1)
    config = validate_config(merge(unshared(load_yaml(REPO / "config.yaml")), yaml.safe_load(block)),
                             check_data=False)
    from gradual_transfer.grid import training_jobs

    jobs = training_jobs(config)
    assert {j.experiment for j in jobs} == {"photos_vs_sketches"}
    assert len([j for j in jobs if j.is_transfer]) == 2 * 6  # both directions, l_c 0..5


def test_the_cli_prepares_an_image_folder_and_refuses_an_unknown_dataset(own_data, tmp_path):
    import subprocess
    import sys

    import yaml

    own = tmp_path / "own.yaml"
    config = own_study_config(own_data)
    own.write_text(yaml.safe_dump({key: config[key] for key in ("datasets", "architectures", "tasks", "experiments")}))

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "gradual_transfer", *args, "--configfile", str(own)],
                              capture_output=True, text=True, cwd=REPO, timeout=300)

    done = cli("prepare-images", "shapes", str(own_data / "shapes"), str(tmp_path / "shapes"))
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "shapes" / "classes.json").read_text()) == ["circle", "square", "star"]
    refused = cli("prepare-images", "timit", str(own_data / "shapes"), str(tmp_path / "timit"))
    assert refused.returncode != 0 and "prepare-images timit: not an image dataset under datasets" in refused.stderr
