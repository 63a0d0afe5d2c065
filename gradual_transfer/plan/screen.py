"""The screen as files (:mod:`gradual_transfer.screen` computes it): which estimates and
similarity jobs a grid has, what each depends on (params), reads (inputs) and writes, and the
tables and figure made from them.

- an **estimates** job per (experiment, architecture, source, target, seed) with transfers, over
  the units they have (the target's folds, or the SER source folds) and their swept l_c ≥ 1
  (l_c = 0 transfers no frozen representation): it reads the source and the target primaries;
- a **similarity** job per (experiment, architecture, family, source, target, seed): it reads
  the source primary and every transfer of the curve.

Both are jobs of their own, so adding them re-runs no training. No torch here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

from gradual_transfer.data.kinds import is_utterance_classification, task_kind
from gradual_transfer.grid import Job, job_settings, task_folds, training_jobs
from gradual_transfer.params import canonical
from gradual_transfer.plan.datasets import one_of
from gradual_transfer.plan.paths import Paths
from gradual_transfer.plan.training import Training
from gradual_transfer.screen_inputs import unit_key
from gradual_transfer.stages import STAGE_VERSIONS

SAMPLE_SEED = 0  # the sample of the target's data every model of a screen job is read on


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


def example_kind(config: dict, target: str) -> str:
    """What one example of a target's sample is: an ``image``, a ``frame`` (phone recognition:
    an HMM state) or an ``utterance`` (utterance classification)."""
    kind = task_kind(config, target)
    if kind.is_image:
        return "image"
    return "utterance" if is_utterance_classification(kind) else "frame"


def sample(config: dict, target: str) -> dict:
    """The sample a screen job reads of its target: the kind of example, at most how many of each
    split (``screen.sample_size`` of that kind only) and the seed that draws them."""
    example = example_kind(config, target)
    return {"example": example, "size": config["screen"]["sample_size"][example], "seed": SAMPLE_SEED}


def estimate_params(config: dict, screen: ScreenJob) -> dict:
    """Exactly what an estimates job's result depends on besides its input files."""
    return canonical({
        "screen": {"experiment": screen.experiment, "arch": screen.arch, "source": screen.source,
                   "target": screen.target, "seed": screen.seed, "units": [list(u) for u in screen.units],
                   "lcs": screen.lcs},
        "settings": _target_settings(config, screen),
        "sample": sample(config, screen.target),
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


class Screen:
    """The screen's jobs of a run as files."""

    def __init__(self, config: dict, paths: Paths, training: Training) -> None:
        self.config, self.paths, self.training = config, paths, training
        self.estimates = {job.folder: job for job in estimate_jobs(config)}
        self.similarities = {job.folder: job for job in similarity_jobs(config)}

    @property
    def enabled(self) -> bool:
        """Whether the default target computes the screen beside the grid (``screen.enabled``)."""
        return self.config["screen"]["enabled"] and bool(self.estimates)

    def folders(self, kind: str) -> str:
        """A constraint for ``{screen}``: the folders of the estimates or similarity jobs."""
        return one_of(self.estimates if kind == "estimates" else self.similarities)

    def file(self, kind: str, folder: str) -> str:
        """``<outdir>/estimates/<folder>/estimates.json`` or ``…/similarity/<folder>/similarity.json``."""
        return f"{self.paths.out}/{kind}/{folder}/{kind}.json"

    def files(self, kind: str) -> list[str]:
        return [self.file(kind, folder) for folder in (self.estimates if kind == "estimates" else self.similarities)]

    def inputs(self, kind: str, folder: str) -> dict[str, str]:
        """A job's input files by role: per unit the target's data and the models it reads."""
        model = lambda job: self.paths.model(job.folder)  # noqa: E731
        if kind == "estimates":
            return estimate_inputs(self.estimates[folder], self.training.data_files, model)
        return similarity_inputs(self.similarities[folder], self.training.data_files, model)

    def params(self, kind: str, folder: str) -> dict:
        if kind == "estimates":
            return estimate_params(self.config, self.estimates[folder])
        return similarity_params(self.config, self.similarities[folder])

    def screen_targets(self) -> list[str]:
        """``snakemake screen``: the estimates and the primaries' similarity, so the primaries
        and nothing of the grid beyond them."""
        return [self.paths.table("estimates.tsv"), self.paths.table("similarity_primaries.tsv")]

    def targets(self) -> list[str]:
        """Beside a grid that ran: the estimates, their agreement with the measured curves and
        its figure, and every transfer's similarity to its start."""
        if not self.enabled:
            return []
        return [self.paths.table("estimates.tsv"), self.paths.table("estimate_agreement.tsv"),
                self.paths.table("similarity.tsv"), self.paths.figure("estimates")]
