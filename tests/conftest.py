"""Shared fixtures: the repository, small demo settings, and a Snakemake runner on a scratch
working directory (so tests never touch the repository's results/)."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).with_name("snakemake")

# Tiny corpora: seconds to generate, still exercising every rule of the layout.
TINY_DEMO = {
    "seed": 0,
    "timit": {"train_speakers": 2, "dev_speakers": 1, "core_test_speakers": 1,
              "other_test_speakers": 1, "si_sentences": 1, "sx_sentences": 1},
    "iemocap": {"dialogs_per_session": 1, "turns_per_dialog": 6},
    "cifar10": {"train": 50, "test": 20},
    "cifar100": {"train": 100, "test": 20},
    "svhn": {"train": 30, "test": 20, "extra": 10},
}


def tiny_config() -> dict:
    """The demo config shrunk further: tiny corpora, 2 epochs, l_c ∈ {0, 3, 7}, copy transfers only."""
    from gradual_transfer.config import merge

    config = unshared(merge(load_yaml(REPO / "config.yaml"), load_yaml(REPO / "config.demo.yaml")))
    config["demo"] = copy.deepcopy(TINY_DEMO)
    for dataset in ("cifar10", "cifar100", "svhn"):
        config["datasets"][dataset]["validation"] = 10
    config["architectures"]["densenet_demo"].update(depth=7, growth_rate=4, init_features=8, lc=[0, 3, 7])
    for task in ("cifar10", "cifar100", "svhn"):
        config["tasks"][task]["training"].update(epochs=2, batch_size=16)
        config["tasks"][task]["finetune"].update(epochs=1, batch_size=16, head_warmup_iterations=3)
    config["features"]["context"] = 3
    config["architectures"]["model_a_demo"]["lc"] = [0, 5]
    config["architectures"]["model_b_demo"]["lc"] = [0, 6]
    for task in ("asr", "ser"):
        config["tasks"][task]["training"].update(epochs=2)
        config["tasks"][task]["finetune"].update(epochs=1, head_warmup_iterations=5)
    config["tasks"]["asr"]["decode"] = {"acoustic_scales": [0.3, 1.0], "insertion_penalties": [-1.0, 0.0]}
    # two SER folds, with the speech controls the demo leaves out (its time buys folds instead)
    config["tasks"]["ser"]["folds"] = [1, 2]
    config["experiments"]["speech"]["self_transfer"] = True
    # the paper's family only: the reinit family is added to a copy of the finished run (test_families)
    config["experiments"]["images"]["upper_groups"] = ["copy"]
    # no screen: it is added to the finished run (test_screen), tiny samples then
    config["screen"] = {"enabled": False, "sample_size": {"image": 30, "frame": 300, "utterance": 40}}
    return config


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """The whole workflow on the tiny config, run once for every test that reads its results."""
    config = tiny_config()
    workdir = tmp_path_factory.mktemp("workflow")
    result = run_snakemake(workdir, "--cores", "2", "--max-threads", "1", config=config, timeout=1800)
    assert result.returncode == 0, result.stderr[-5000:]
    return workdir, config


@pytest.fixture(scope="session")
def tiny_results(tiny_run):
    """(output folder, config, results table) of the tiny run."""
    import pandas as pd

    workdir, config = tiny_run
    out = workdir / config["outdir"]
    return out, config, pd.read_parquet(out / "tables" / "results.parquet")


def without_timing(metrics_text: str) -> dict:
    """A metrics.json as results only: the cost and the per-epoch times differ between runs."""
    metrics = json.loads(metrics_text)
    metrics.pop("cost", None)
    for entry in metrics.get("history", []):
        entry.pop("seconds", None)
        entry.pop("examples_per_s", None)
    return metrics


def unshared(config: dict) -> dict:
    """A copy without shared sub-objects. YAML anchors (`<<: *recipe`) make every task's
    `optimizer` the same dict; editing one in Python would edit all (deepcopy keeps aliasing)."""
    return json.loads(json.dumps(config))


def own_study_base(outdir: str) -> dict:
    """The paper's config.yaml with its two experiments off and `outdir` set: the base of a
    study of one's own (tests/test_own_study.py, tests/test_kaldi_study.py)."""
    config = unshared(load_yaml(REPO / "config.yaml"))
    config["outdir"] = outdir
    config["experiments"]["images"]["enabled"] = False
    config["experiments"]["speech"]["enabled"] = False
    return config


def load_yaml(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


@pytest.fixture
def paper_config() -> dict:
    return unshared(load_yaml(REPO / "config.yaml"))


@pytest.fixture
def demo_config(paper_config) -> dict:
    from gradual_transfer.config import merge

    return merge(paper_config, load_yaml(REPO / "config.demo.yaml"))


def run_snakemake(workdir: Path, *args: str, config: dict | None = None, timeout: int = 600,
                  snakefile: Path = REPO / "Snakefile") -> subprocess.CompletedProcess:
    """Run the repository's Snakefile (or another copy of it) in `workdir`; `config` (if given)
    is written there as config.yaml, the file the Snakefile's `configfile:` reads."""
    workdir.mkdir(parents=True, exist_ok=True)
    if config is not None:
        (workdir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return subprocess.run(
        [str(SNAKEMAKE), "-s", str(snakefile), "-d", str(workdir), *args],
        capture_output=True, text=True, timeout=timeout, cwd=workdir,
    )
