"""The screen: what the primaries alone predict about a study before its transfers are paid for,
and what fine-tuning changed once they are.

Two kinds of job, each of its own, so adding them re-runs no training:

- **estimates** (:func:`estimate_jobs`, :func:`run_estimates`), one per (experiment,
  architecture, source, target, seed) over the units its transfers have (the target's folds, or
  the SER source folds): from the source primary's groups on a bounded sample of the target's
  training data (:mod:`gradual_transfer.representations`), at every swept l_c ≥ 1, LogME, the
  shrinkage H-score and a linear probe's validation error, and LEEP at l_c = L_H
  (:mod:`gradual_transfer.estimates`); and per group the linear CKA between the source and the
  target primaries (:mod:`gradual_transfer.similarity`). It needs only primaries: ``snakemake
  screen`` runs them before the grid.
- **similarity** (:func:`similarity_jobs`, :func:`run_similarity`), one per (experiment,
  architecture, family, source, target, seed): per unit and l_c, the CKA per group between each
  transfer and the model it started from (``copy``: the source primary; ``reinit``: the source's
  first l_c groups and the random layers it drew, rebuilt from the job's seed).

l_c = 0 transfers no frozen representation (every group fine-tunes): no estimate there.
Planning here imports no torch; the jobs import it when they run.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

from gradual_transfer.grid import Job, job_settings, task_folds, training_jobs
from gradual_transfer.params import canonical
from gradual_transfer.representations import SAMPLE_SEED
from gradual_transfer.stages import STAGE_VERSIONS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScreenJob:
    """The transfers of one (experiment, arch, source, target, seed), and for a similarity job
    one family: ``transfers`` are its training jobs (every unit, every l_c ≥ 1)."""

    experiment: str
    arch: str
    source: str
    target: str
    seed: int
    family: str | None
    transfers: tuple[Job, ...]
    target_has_folds: bool

    @property
    def folder(self) -> str:
        """Where it writes, relative to ``<outdir>/estimates`` or ``<outdir>/similarity``."""
        family = "" if self.family is None else ("transfer/" if self.family == "copy" else f"transfer-{self.family}/")
        folder = f"{self.arch}/{family}{self.source}-to-{self.target}"
        return folder if self.seed == 0 else f"{folder}/seed{self.seed}"

    @property
    def units(self) -> list[tuple[int, int]]:
        """(fold, source fold) of every unit, in order."""
        return sorted({(job.fold, job.source_fold) for job in self.transfers})

    @property
    def lcs(self) -> list[int]:
        return sorted({job.lc for job in self.transfers})

    def transfer(self, unit: tuple[int, int], lc: int) -> Job:
        return next(job for job in self.transfers if (job.fold, job.source_fold) == unit and job.lc == lc)

    def source_primary(self, unit: tuple[int, int]) -> Job:
        return self.transfer(unit, self.lcs[0]).source_job

    def target_primary(self, unit: tuple[int, int]) -> Job:
        """The target's own primary of the unit (fold 0 for a target without folds: SER → ASR
        transfers carry their SER source fold, and TIMIT has one primary)."""
        fold = self.transfer(unit, self.lcs[0]).fold if self.target_has_folds else 0
        return Job(self.experiment, self.arch, self.target, self.target, fold=fold, seed=self.seed, source_fold=fold)


def _curves(config: dict, by_family: bool) -> list[ScreenJob]:
    curves: dict[tuple, list[Job]] = {}
    for job in training_jobs(config):
        if job.kind == "transfer" and job.lc:
            key = (job.experiment, job.arch, job.source, job.target, job.seed, job.upper_groups if by_family else None)
            curves.setdefault(key, []).append(job)
    return [ScreenJob(*key, tuple(jobs), task_folds(config, key[3]) != [0]) for key, jobs in curves.items()]


def estimate_jobs(config: dict) -> list[ScreenJob]:
    """One estimates job per (experiment, arch, source, target, seed) with transfers (its l_c:
    the union of its families' sweeps, l_c = 0 left out)."""
    return _curves(config, by_family=False)


def similarity_jobs(config: dict) -> list[ScreenJob]:
    """One similarity job per (experiment, arch, family, source, target, seed) with transfers."""
    return _curves(config, by_family=True)


def _target_settings(config: dict, screen: ScreenJob) -> dict:
    """What reading the target's data depends on: the transfer's settings without what only
    training uses (its recipe, l_c, seed)."""
    settings = dict(job_settings(config, screen.transfers[0]))
    for key in ("recipe", "lc", "seed"):
        settings.pop(key)
    return settings


def estimate_params(config: dict, screen: ScreenJob) -> dict:
    """Exactly what an estimates job's result depends on besides its input files."""
    return canonical({
        "screen": {"experiment": screen.experiment, "arch": screen.arch, "source": screen.source,
                   "target": screen.target, "seed": screen.seed, "units": [list(u) for u in screen.units],
                   "lcs": screen.lcs},
        "settings": _target_settings(config, screen),
        "sample": {"size": config["screen"]["sample_size"], "seed": SAMPLE_SEED},
        "version": STAGE_VERSIONS["estimates"],
    })


def similarity_params(config: dict, screen: ScreenJob) -> dict:
    """Exactly what a similarity job's result depends on besides its input files: with the seed
    a ``reinit`` transfer drew its random layers from (its recipe's seed shifted by the job's)."""
    recipe = job_settings(config, screen.transfers[0])["recipe"]
    params = estimate_params(config, screen)
    params["screen"]["family"] = screen.family
    params["init_seed"] = recipe["seed"] + screen.seed
    params["version"] = STAGE_VERSIONS["similarity"]
    return canonical(params)


def unit_key(role: str, index: int, lc: int | None = None) -> str:
    """The name of a unit's input file among a screen job's inputs: ``source_0``, ``train_1``,
    ``transfer_0_lc3``."""
    return f"{role}_{index}" if lc is None else f"{role}_{index}_lc{lc}"


def estimate_inputs(screen: ScreenJob, data_files: Callable[[Job], dict[str, str]],
                    model_file: Callable[[Job], str]) -> dict[str, str]:
    """An estimates job's input files by role (:func:`unit_key`): per unit, the target's data as a
    transfer of that unit reads it (`data_files`), the source primary and the target primary
    (`model_file`)."""
    inputs = {}
    for index, unit in enumerate(screen.units):
        transfer = screen.transfer(unit, screen.lcs[0])
        inputs.update({unit_key(role, index): path for role, path in data_files(transfer).items()})
        inputs[unit_key("source", index)] = model_file(screen.source_primary(unit))
        inputs[unit_key("primary", index)] = model_file(screen.target_primary(unit))
    return inputs


def similarity_inputs(screen: ScreenJob, data_files: Callable[[Job], dict[str, str]],
                      model_file: Callable[[Job], str]) -> dict[str, str]:
    """A similarity job's input files by role: per unit the target's data, the source primary
    and the transfer at every l_c."""
    inputs = {}
    for index, unit in enumerate(screen.units):
        first = screen.transfer(unit, screen.lcs[0])
        inputs.update({unit_key(role, index): path for role, path in data_files(first).items()})
        inputs[unit_key("source", index)] = model_file(screen.source_primary(unit))
        for lc in screen.lcs:
            inputs[unit_key("transfer", index, lc)] = model_file(screen.transfer(unit, lc))
    return inputs


def _unit_inputs(inputs: Mapping[str, str], index: int) -> dict[str, str]:
    suffix = f"_{index}"
    return {key[: -len(suffix)]: path for key, path in inputs.items() if key.endswith(suffix)}


# --- running ---------------------------------------------------------------------------------

def _examples(settings: dict, sources: dict, sizes: Mapping[str, int]):
    """The train and validation samples of the target: images, frames (phone recognition: HMM
    states) or utterances (utterance classification, silence the last class), and which."""
    from gradual_transfer import representations

    splits = ("train", "validation")
    if "context" not in settings:
        return {s: representations.image_examples(sources[s], sizes["image"]) for s in splits}, "image"
    if not _is_utterance_task(settings):
        return {s: representations.frame_examples(sources[s], sizes["frame"]) for s in splits}, "frame"
    silence = settings["classes"] - 1
    return ({s: representations.utterance_examples(sources[s], silence, sizes["utterance"]) for s in splits},
            "utterance")


def _task(settings: dict):
    if "context" in settings:
        from gradual_transfer.tasks import speech as task
    else:
        from gradual_transfer.tasks import images as task
    return task


def _load(path: str, arch: str, network: dict):
    from gradual_transfer.checkpoints import load_model_file, model_from_file

    return model_from_file(load_model_file(path, arch, network))


def run_estimates(params: Mapping, inputs: Mapping[str, str], output: str | Path) -> dict:
    """Compute an estimates job (:func:`estimate_params`) and write it as JSON."""
    from gradual_transfer import estimates, representations, similarity
    from gradual_transfer.io import write_json

    started = time.perf_counter()
    screen, settings = params["screen"], params["settings"]
    unweighted = "context" in settings and _is_utterance_task(settings)
    units = []
    for index, (fold, source_fold) in enumerate(screen["units"]):
        data = _unit_inputs(inputs, index)
        sources = _task(settings).sources(settings, data, fold)
        examples, unit = _examples(settings, sources, params["sample"]["size"])
        source = _load(data["source"], screen["arch"], settings["network"])
        primary = _load(data["primary"], screen["arch"], settings["network"])
        train = representations.group_outputs(source, examples["train"])
        validation = representations.group_outputs(source, examples["validation"])
        own = representations.group_outputs(primary, examples["train"])
        y, y_val = examples["train"].labels, examples["validation"].labels
        per_lc = {}
        for lc in screen["lcs"]:
            f = train[lc - 1]
            per_lc[str(lc)] = {
                "logme": estimates.logme(f, y, settings["classes"]),
                "h_score_shrinkage": estimates.shrinkage_h_score(f, y),
                "probe_error": estimates.linear_probe_error(f, y, validation[lc - 1], y_val, settings["classes"],
                                                            unweighted=unweighted),
                "leep": (estimates.leep(representations.class_probabilities(source, examples["train"]), y,
                                        settings["classes"]) if lc == source.num_groups else None),
            }
        units.append({"fold": fold, "source_fold": source_fold, "example": unit, "n_train": len(y),
                      "n_validation": len(y_val), "lc": per_lc, "features": [f.shape[1] for f in train],
                      "cka_primaries": [similarity.debiased_cka(a, b) for a, b in zip(train, own)],
                      "cka_primaries_plugin": [similarity.linear_cka(a, b) for a, b in zip(train, own)]})
        log.info("fold %d: %d training and %d validation %ss; estimates at l_c %s", fold, len(y), len(y_val), unit,
                 screen["lcs"])
    result = {"screen": dict(screen), "groups": source.group_names, "probe_metric": _probe_metric(settings),
              "units": units, "cost": {"seconds": time.perf_counter() - started, "device": "cpu"}}
    write_json(output, result)
    return result


def _is_utterance_task(settings: dict) -> bool:
    from gradual_transfer.data.kinds import KINDS
    from gradual_transfer.tasks.speech import reads

    return KINDS[reads(settings)].metric == "ue"


def _probe_metric(settings: dict) -> str:
    """What the probe's error counts: top-1 error of images, frame error over HMM states, or the
    unweighted error of utterance decisions."""
    if "context" not in settings:
        return "top-1 error (%)"
    return "unweighted error (%)" if _is_utterance_task(settings) else "HMM-state frame error (%)"


def run_similarity(params: Mapping, inputs: Mapping[str, str], output: str | Path) -> dict:
    """Compute a similarity job (:func:`similarity_params`) and write it as JSON."""
    from gradual_transfer import representations, similarity
    from gradual_transfer.checkpoints import load_model_file
    from gradual_transfer.io import write_json
    from gradual_transfer.transfer import transfer_model

    started = time.perf_counter()
    screen, settings = params["screen"], params["settings"]
    units = []
    for index, (fold, source_fold) in enumerate(screen["units"]):
        data = _unit_inputs(inputs, index)
        sources = _task(settings).sources(settings, data, fold)
        examples, _ = _examples(settings, sources, params["sample"]["size"])
        source_file = load_model_file(data["source"], screen["arch"], settings["network"])
        source = _load(data["source"], screen["arch"], settings["network"])
        start_copy = representations.group_outputs(source, examples["train"])
        per_lc = {}
        for lc in screen["lcs"]:
            if screen["family"] == "copy":
                start = start_copy
            else:  # the model the reinit transfer started from: drawn again from its seed
                start = representations.group_outputs(
                    transfer_model(source_file, screen["arch"], settings["network"], settings["classes"], lc,
                                   params["init_seed"], "reinit"), examples["train"])
            trained = representations.group_outputs(_load(inputs[unit_key("transfer", index, lc)], screen["arch"],
                                                          settings["network"]), examples["train"])
            per_lc[str(lc)] = [similarity.debiased_cka(a, b) for a, b in zip(start, trained)]
        units.append({"fold": fold, "source_fold": source_fold, "n": len(examples["train"]), "lc": per_lc})
    result = {"screen": dict(screen), "groups": source.group_names, "units": units,
              "cost": {"seconds": time.perf_counter() - started, "device": "cpu"}}
    write_json(output, result)
    return result
