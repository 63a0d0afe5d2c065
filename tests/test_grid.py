"""The job identity: folders, sources, metadata, the grid of the paper, and params that hold
exactly what a model depends on (the l_c sweep and hardware knobs are not among them)."""

from __future__ import annotations

import pytest
import torch

from gradual_transfer.checkpoints import load_model_file, save_model
from gradual_transfer.architectures import network
from gradual_transfer.config import with_defaults
from gradual_transfer.grid import Job, job_settings, training_jobs
from gradual_transfer.models import build_model
from conftest import unshared


def planned_jobs(config: dict) -> list[Job]:
    """The jobs the workflow plans: from the config with the schema's defaults, as it reads it."""
    return training_jobs(with_defaults(config))


def test_folders_are_the_layout_under_models():
    assert Job("images", "d", "svhn", "svhn").folder == "d/primary/svhn/fold0"
    assert Job("images", "d", "cifar10", "svhn", lc=3).folder == "d/transfer/cifar10-to-svhn/fold0/lc3"
    assert Job("speech", "a", "ser", "asr", fold=4, lc=0, source_fold=4).folder == "a/transfer/ser-to-asr/fold4/lc0"
    assert Job("images", "d", "svhn", "svhn", seed=2).folder == "d/primary/svhn/fold0/seed2"


def test_a_transfer_starts_from_its_sources_primary_of_the_same_seed():
    asr_to_ser = Job("speech", "a", "asr", "ser", fold=3, lc=2, seed=1, source_fold=0)
    assert asr_to_ser.source_job == Job("speech", "a", "asr", "asr", fold=0, seed=1)
    ser_to_asr = Job("speech", "a", "ser", "asr", fold=3, lc=2, source_fold=3)
    assert ser_to_asr.source_job.folder == "a/primary/ser/fold3"
    assert Job("images", "d", "svhn", "svhn").source_job is None


def test_a_primary_is_one_task_and_one_fold():
    with pytest.raises(ValueError, match="primary"):
        Job("images", "d", "cifar10", "svhn")
    with pytest.raises(ValueError, match="primary"):
        Job("speech", "a", "ser", "ser", fold=2, source_fold=0)


def test_meta_and_round_trip():
    job = Job("images", "d", "cifar10", "svhn", lc=3)
    assert job.meta() == {"experiment": "images", "arch": "d", "kind": "transfer", "source": "cifar10",
                          "target": "svhn", "fold": 0, "lc": 3, "seed": 0}
    assert Job("images", "d", "svhn", "svhn").meta()["lc"] == 0
    assert Job.from_dict(job.to_dict()) == job


def test_the_paper_grid(paper_config):
    jobs = planned_jobs(paper_config)
    assert len(jobs) == len({j.folder for j in jobs}) == 259  # 33 image, 226 speech
    images = [j for j in jobs if j.experiment == "images"]
    assert len(images) == 33 and sum(j.is_transfer for j in images) == 30
    speech = [j for j in jobs if j.experiment == "speech"]
    assert sum(not j.is_transfer for j in speech) == 2 + 16
    assert sum(j.is_transfer for j in speech) == 2 * 8 * (6 + 7)
    # every transfer's source is a primary of the grid
    folders = {j.folder for j in jobs}
    assert all(j.source_job.folder in folders for j in jobs if j.is_transfer)


def test_self_transfer_controls_and_seeds_extend_the_paper_grid(paper_config):
    config = unshared(paper_config)
    for experiment in ("images", "speech"):
        config["experiments"][experiment]["self_transfer"] = True
    jobs = planned_jobs(config)
    controls = [j for j in jobs if j.kind == "control"]
    # images: 3 tasks × 5 l_c; speech per l_c (6 for Model A, 7 for Model B): TIMIT and 8 SER folds
    assert len(controls) == 3 * 5 + (1 + 8) * (6 + 7) and len(jobs) == 259 + len(controls)
    ser = Job("speech", "model_a", "ser", "ser", fold=3, lc=2, source_fold=3)
    assert ser in controls and ser.is_transfer and ser.is_control
    assert ser.source_job == Job("speech", "model_a", "ser", "ser", fold=3, source_fold=3)  # its own fold
    assert ser.folder == "model_a/transfer/ser-to-ser/fold3/lc2" and ser.meta()["kind"] == "control"
    assert Job("speech", "model_a", "asr", "asr", lc=2) in controls

    config["experiments"]["images"]["seeds"] = [0, 2]
    with_seed = planned_jobs(config)
    added = set(with_seed) - set(jobs)
    assert len(added) == 3 + 30 + 15 and {j.seed for j in added} == {2} and set(jobs) <= set(with_seed)
    assert all(j.source_job.seed == 2 for j in added if j.is_transfer)
    assert len({j.folder for j in with_seed}) == len(with_seed)


def test_settings_hold_the_network_not_the_sweep_nor_the_hardware(paper_config):
    job = Job("images", "densenet40", "cifar10", "svhn", lc=3)
    before = job_settings(paper_config, job)
    assert "lc" not in before["network"] and before["lc"] == 3 and before["classes"] == 10
    assert before["recipe"]["head_warmup_iterations"] == 500  # the target's finetune recipe
    changed = unshared(paper_config)
    changed["architectures"]["densenet40"]["lc"] = [0, 2]
    changed["runtime"]["cuda"]["channels_last"] = True
    changed["tasks"]["cifar10"]["training"]["epochs"] = 1  # the source's recipe: reaches it through its model
    assert job_settings(changed, job) == before
    changed["tasks"]["svhn"]["finetune"]["epochs"] = 1
    assert job_settings(changed, job) != before


def test_speech_settings_hold_the_input_window_and_ser_validation_speakers(paper_config):
    ser = job_settings(paper_config, Job("speech", "model_a", "ser", "ser", fold=1, source_fold=1))
    asr = job_settings(paper_config, Job("speech", "model_a", "asr", "asr"))
    assert ser["context"] == asr["context"] == 10
    assert ser["validation_speakers"] == ["Ses05F", "Ses05M"] and "validation_speakers" not in asr
    assert (ser["dataset"], asr["dataset"]) == ("iemocap", "timit")


def test_model_files_hold_the_network_and_old_files_with_a_sweep_still_load(tmp_path):
    arch = {"kind": "densenet", "depth": 7, "growth_rate": 4, "init_features": 8, "dropout": 0.2}
    model = build_model(arch, 10, [3, 32, 32])
    save_model(tmp_path / "new.pt", model, arch_name="d", arch={**arch, "lc": [0, 3]}, num_classes=10,
               input_shape=[3, 32, 32])
    assert torch.load(tmp_path / "new.pt", weights_only=True)["arch"] == network(arch)
    old = torch.load(tmp_path / "new.pt", weights_only=True)
    old["arch"] = {**arch, "lc": [0, 1, 3, 7]}  # as written before the sweep left the network
    torch.save(old, tmp_path / "old.pt")
    assert load_model_file(tmp_path / "old.pt", "d", {**arch, "lc": [0, 5]})["arch"] == network(arch)


# --- families: how the groups above l_c start ------------------------------------------------

def test_reinit_jobs_have_their_own_folders_identity_and_recipe(paper_config):
    reinit = Job("images", "d", "cifar10", "svhn", lc=3, upper_groups="reinit")
    copy = Job("images", "d", "cifar10", "svhn", lc=3)
    assert reinit.folder == "d/transfer-reinit/cifar10-to-svhn/fold0/lc3" and reinit != copy
    assert reinit.source_job == copy.source_job and reinit.kind == "transfer"
    assert reinit.meta()["upper_groups"] == "reinit" and "upper_groups" not in copy.meta()
    assert Job.from_dict(reinit.to_dict()) == reinit and reinit.to_dict()["upper_groups"] == "reinit"
    control = Job("speech", "a", "ser", "ser", fold=2, lc=1, source_fold=2, upper_groups="reinit")
    assert control.kind == "control" and control.folder == "a/transfer-reinit/ser-to-ser/fold2/lc1"
    # Yosinski's AnB trains like the base network: the target's training recipe, no head warm-up
    settings = job_settings(paper_config, Job("images", "densenet40", "cifar10", "svhn", lc=3, upper_groups="reinit"))
    assert settings["recipe"] == paper_config["tasks"]["svhn"]["training"]
    assert "head_warmup_iterations" not in settings["recipe"]
    assert job_settings(paper_config, Job("images", "densenet40", "cifar10", "svhn", lc=3))["recipe"][
        "head_warmup_iterations"] == 500
    for wrong in (dict(lc=0, upper_groups="reinit"), dict(lc=None, upper_groups="reinit"),
                  dict(lc=2, upper_groups="x")):
        with pytest.raises(ValueError, match="upper_groups|reinit"):
            Job("images", "d", "svhn", "svhn", **wrong)


def test_copy_jobs_keep_the_identity_they_had_before_families(paper_config):
    """What a finished run recorded for a copy transfer (params, metadata, folder) is unchanged:
    the job's dict and metadata are exactly the fields they had before upper_groups existed."""
    job = Job("speech", "model_a", "ser", "asr", fold=3, lc=2, source_fold=3)
    assert job.to_dict() == {"experiment": "speech", "arch": "model_a", "source": "ser", "target": "asr", "fold": 3,
                             "lc": 2, "seed": 0, "source_fold": 3}
    assert job.meta() == {"experiment": "speech", "arch": "model_a", "kind": "transfer", "source": "ser",
                          "target": "asr", "fold": 3, "lc": 2, "seed": 0}
    config = unshared(paper_config)
    config["experiments"]["speech"]["upper_groups"] = ["copy"]
    config["experiments"]["images"].pop("upper_groups", None)  # absent: the paper's [copy]
    assert planned_jobs(config) == planned_jobs(paper_config)


def test_both_families_on_the_paper_grid(paper_config):
    config = unshared(paper_config)
    for experiment in ("images", "speech"):
        config["experiments"][experiment].update(upper_groups=["reinit", "copy"], self_transfer=True)
    jobs = planned_jobs(config)
    assert len(jobs) == len({j.folder for j in jobs})
    reinit = [j for j in jobs if j.upper_groups == "reinit"]
    assert all(j.lc > 0 for j in reinit)  # l_c = 0 would copy nothing
    # images: 6 pairs + 3 controls at l_c 1, 3, 5, 7; speech: Model A l_c 1..5, Model B 1..6, each
    # ASR → SER on 8 folds, SER → ASR from 8 folds, and the controls (TIMIT, 8 SER folds)
    images = [j for j in reinit if j.experiment == "images"]
    assert len(images) == (6 + 3) * 4 and sum(j.kind == "control" for j in images) == 3 * 4
    speech = [j for j in reinit if j.experiment == "speech"]
    assert len(speech) == (2 * 8 + 1 + 8) * (5 + 6)
    assert Job("speech", "model_b", "asr", "ser", fold=4, lc=6, source_fold=0, upper_groups="reinit") in speech
    assert Job("speech", "model_a", "asr", "asr", lc=5, upper_groups="reinit") in speech
    # every reinit job has its copy twin where l_c > 0, and the same sources
    copies = {j for j in jobs if j.upper_groups == "copy"}
    from dataclasses import replace
    assert all(replace(j, upper_groups="copy") in copies for j in reinit)
    config["experiments"]["images"]["upper_groups"] = ["reinit"]
    only = [j for j in planned_jobs(config) if j.experiment == "images"]
    assert {j.upper_groups for j in only if j.is_transfer} == {"reinit"} and sum(not j.is_transfer for j in only) == 3


def test_the_families_are_named_once_and_checked_by_one_rule():
    """The schema's enumeration (the config contract) is the families' one list; a family that
    enters otherwise (a job, the engine, a command-line flag) meets one rule, worded once."""
    from gradual_transfer.config.schema import load_schema
    from gradual_transfer.families import FAMILIES, family_problem

    assert tuple(load_schema()["$defs"]["upper_groups"]["items"]["enum"]) == FAMILIES
    assert family_problem("copy", 0) is None and family_problem("reinit", 3) is None
    for family, lc in (("random", 3), ("reinit", 0)):
        with pytest.raises(ValueError) as refused:
            Job("images", "d", "svhn", "cifar10", lc=lc, upper_groups=family)
        assert str(refused.value).startswith(family_problem(family, lc))
