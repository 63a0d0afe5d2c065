"""The workflow's plan (gradual_transfer.plan) without Snakemake: every input of a training job is
some rule's output, the rules' constraints come from the registry's kinds and roles, and the
paths, inputs and targets of the paper and demo grids are those recorded when the plan moved out
of the rule files (tests/data/plan_paths.json; a change that means to move files re-records it:
``python tests/test_plan.py``, and says why)."""

from __future__ import annotations

import hashlib
import json
import re
import sys
from pathlib import Path

import pytest

from conftest import REPO, load_yaml, unshared

FROZEN = Path(__file__).with_name("data") / "plan_paths.json"


def plan_of(config: dict):
    from gradual_transfer.config import validate_config
    from gradual_transfer.plan import Plan

    return Plan(validate_config(config, check_data=False))  # what the workflow plans from


def configs() -> dict:
    from gradual_transfer.config import merge

    paper = unshared(load_yaml(REPO / "config.yaml"))
    return {"paper": paper, "demo": merge(paper, load_yaml(REPO / "config.demo.yaml"))}


def digest(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]


def recorded(plan) -> dict:
    """What the rules read from the plan, without the disk: targets, each training job's files,
    the ASR side's files and params, the preparation params and constraints of the datasets."""
    data, asr, training = plan.data, plan.asr, plan.training
    jobs = {folder: {"inputs": training.inputs(folder), "scored": training.scored_metrics(job),
                     "params": digest(training.params(folder))} for folder, job in training.jobs.items()}
    passes = range(1, asr.final_pass + 1)
    return {
        "targets": digest(plan.targets()),
        "jobs": digest(jobs),
        "training_outputs": digest([training.outputs(), training.outputs(posteriors=True)]),
        "asr": digest({"features": [asr.features(p) for p in range(asr.final_pass + 1)], "hmm": asr.hmm(),
                       "alignments": [asr.alignment_inputs(p) for p in passes], "realign": asr.realign_params(),
                       "decode": [asr.decode_settings(), asr.decode_inputs("{job}")],
                       "outputs": [asr.realigned(), plan.paths.decode_outputs("{job}")]}),
        "datasets": digest({name: {"root": data.root(name), "input": data.root_input(name)}
                            for name in plan.config["datasets"]}),
        "constraints": digest([data.of_role("asr"), data.of_role("ser"), data.torchvision(),
                               data.classifying_utterances(), data.of_kind("imagefolder"), data.of_kind("kaldi")]),
        "preparation": digest([data.extraction()] + [data.image_preparation(name) for name in ("cifar10", "svhn")]
                              + [data.fold_training_speakers("iemocap", fold) for fold in (1, 2, 8)]),
        "report": digest([plan.report.experiments, plan.report.settings(plan.report.experiments),
                          plan.report.task_metrics(),
                          [plan.report.figure_title(name) for name in ("images", "speech", "curves", "mine")]]),
        "decodes": digest(training.primary_decodes()),
    }


def test_the_plans_paths_inputs_and_targets_are_as_recorded():
    frozen = json.loads(FROZEN.read_text())
    for name, config in configs().items():
        now = recorded(plan_of(config))
        changed = sorted(key for key in now if now[key] != frozen[name][key])
        assert not changed, f"{name}: {changed} changed"


@pytest.mark.parametrize("name", ["paper", "demo"])
def test_every_training_input_is_a_prepared_file_or_a_primary_model_of_the_grid(name):
    plan = plan_of(configs()[name])
    paths, training = plan.paths, plan.training
    prepared = set()
    for dataset in plan.config["datasets"]:
        prepared.update(paths.image_data(dataset).values())
        for targets_pass in range(plan.asr.final_pass + 1):
            prepared.update(paths.phone_features(dataset, targets_pass).values())
        for fold in range(1, 11):
            prepared.update(paths.utterance_features(dataset, fold).values())
    for folder, job in training.jobs.items():
        inputs = training.inputs(folder)
        source = inputs.pop("source", None)
        assert set(inputs.values()) <= prepared, folder
        assert (source is None) == (not job.is_transfer), folder
        if source is not None:
            assert source == paths.model(job.source_job.folder)
            assert training.jobs[job.source_job.folder].kind == "primary"


def test_the_rules_read_datasets_by_kind_and_role(paper_config):
    plan = plan_of(paper_config)
    assert plan.data.of_role("asr") == "timit" and plan.data.of_role("ser") == "iemocap"
    assert plan.data.torchvision() == "cifar10|cifar100|svhn"
    assert plan.data.classifying_utterances() == "iemocap"
    assert plan.data.of_kind("kaldi") == "(?!)"  # matches no dataset: the rule is never chosen
    assert re.fullmatch(plan.data.of_kind("kaldi"), "kaldi") is None


def test_the_speech_experiments_files_follow_its_roles(paper_config):
    plan = plan_of(paper_config)
    out = plan.paths.out
    assert plan.asr.dataset == "timit" and plan.asr.final_pass == 1
    assert plan.asr.hmm() == f"{out}/features/timit/realigned/pass1/hmm.json"
    assert plan.asr.hmm(0) == f"{out}/features/timit/hmm.json"
    aligner, = (job for job in plan.training.jobs.values() if job.kind == "aligner")
    primary = next(job for job in plan.training.jobs.values() if job.kind == "primary" and job.target == "asr")
    # the aligner of pass 1 trains on the extracted targets, every other ASR model on the realigned ones
    assert plan.training.inputs(aligner.folder)["train"] == f"{out}/features/timit/train.arrow"
    assert plan.training.inputs(primary.folder)["train"] == f"{out}/features/timit/realigned/pass1/train.arrow"
    assert plan.training.inputs(primary.folder)["test"] == f"{out}/features/timit/test.arrow"
    assert plan.training.scored_metrics(primary) == f"{out}/models/{primary.folder}/decode/metrics.json"
    ser = next(job for job in plan.training.jobs.values() if job.kind == "primary" and job.target == "ser")
    assert plan.training.inputs(ser.folder) == {"features": f"{out}/features/iemocap/all.arrow",
                                                "stats": f"{out}/features/iemocap/stats/fold{ser.fold}.json"}
    assert plan.training.scored_metrics(ser) == f"{out}/models/{ser.folder}/metrics.json"


def test_fold_statistics_use_the_folds_training_speakers(paper_config):
    from gradual_transfer.data import iemocap

    plan = plan_of(paper_config)
    validation = paper_config["tasks"]["ser"]["validation_speakers"]
    for fold in (1, 8):
        assert plan.data.fold_training_speakers("iemocap", str(fold)) == iemocap.folds(validation)[fold]["train"]


def test_the_targets_follow_the_enabled_experiments(paper_config, demo_config):
    demo = plan_of(demo_config)
    out = demo.paths.out
    targets = demo.targets()
    assert targets[:5] == [f"{out}/corpora/{name}" for name in ("timit", "iemocap", "cifar10", "cifar100", "svhn")]
    assert f"{out}/features/iemocap/stats/fold2.json" in targets and f"{out}/tables/per_speaker.tsv" in targets
    config = unshared(paper_config)
    config["experiments"]["speech"]["enabled"] = False
    plan = plan_of(config)
    assert not [t for t in plan.targets() if "/features/" in t or "speech" in t or "per_speaker" in t]
    assert plan.targets()[0] == f"{plan.paths.out}/figures/figure1_images.png"


def test_planning_imports_neither_snakemake_nor_torch():
    import subprocess

    code = ("import sys\nimport gradual_transfer.plan\n"
            "print(sorted(m for m in ('snakemake', 'torch', 'torchaudio', 'soundfile') if m in sys.modules))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


if __name__ == "__main__":
    FROZEN.write_text(json.dumps({name: recorded(plan_of(c)) for name, c in configs().items()}, indent=1,
                                 sort_keys=True) + "\n")
