"""What a training job of the study is, in one place.

A :class:`Job` is the identity of one trained model: experiment, architecture, source and target
task, fold, l_c (``None`` for a primary model), seed and, for a transfer, how the groups above
l_c start (``upper_groups``, the transfer's *family*):

- ``copy`` (the paper): every group comes from the source model, the head is new, the groups
  above l_c are fine-tuned with the target's ``finetune`` recipe after a head warm-up;
- ``reinit`` (Yosinski et al., NIPS 2014): the first l_c groups come from the source model, the
  groups above them and the head are initialised at random, and they train with the target's
  ``training`` recipe, as a primary model trains (no head warm-up: a head warmed on random
  features learns nothing worth keeping). l_c = 0 would copy nothing, so it is not a job.

A transfer whose source is its own target is the self-transfer control of its family: in the
``reinit`` family Yosinski's "BnB", which splits co-adapted layers; in the ``copy`` family a
re-headed model fine-tuned further. Everything else is derived from the job:

- its output folder under ``<outdir>/models`` (:attr:`Job.folder`), the only place a job's
  identity is written as a path; the workflow looks folders up in :func:`training_jobs`, it never
  parses them back;
- the primary model a transfer starts from (:attr:`Job.source_job`);
- its ``params`` (:func:`job_settings`): exactly the settings its result depends on, so that
  Snakemake re-runs a job when, and only when, one of them changes;
- the metadata written into its ``metrics.json`` (:meth:`Job.meta`).

The sweep of l_c values (``architectures.<arch>.lc``) decides *which* transfers exist; it is not
part of the network (:func:`gradual_transfer.architectures.network`), so adding an l_c value adds jobs and changes none.

No Snakemake and no torch here: the workflow imports this module to plan the grid.

Longer than the library's ~350-line rule of thumb because the job's identity and what decides
each job's params are kept in one file: a finished run's params must not move, and they are read
here together.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from gradual_transfer.architectures import network, num_groups
from gradual_transfer.data.kinds import task_kind
from gradual_transfer.families import FAMILIES, family_problem
from gradual_transfer.metrics import trivial_error
from gradual_transfer.params import canonical
from gradual_transfer.stages import STAGE_VERSIONS

SPEECH_EXPERIMENT = "speech"  # the paper's speech tasks (ASR and SER); every other experiment is between images


@dataclass(frozen=True)
class Job:
    """One training job: a primary model (``lc is None``) or a transfer with l_c frozen groups.

    ``fold`` is the run's fold (the SER fold, on whichever side SER is; 0 for tasks without
    folds); ``source_fold`` is the fold of the primary model a transfer starts from.
    """

    experiment: str
    arch: str
    source: str
    target: str
    fold: int = 0
    lc: int | None = None
    seed: int = 0
    source_fold: int = 0
    aligner_pass: int = 0  # p > 0: the ASR model whose alignments make the targets of pass p
    upper_groups: str = "copy"  # a transfer's family: how the groups above l_c start (FAMILIES)

    def __post_init__(self) -> None:
        if self.lc is None and (self.source != self.target or self.source_fold != self.fold):
            raise ValueError(f"a primary model trains on one task and fold: {self}")
        if self.aligner_pass and (self.is_transfer or self.seed):
            raise ValueError(f"an aligner is a primary model of seed 0: {self}")
        problem = family_problem(self.upper_groups, self.lc if self.is_transfer else 0)
        if problem:
            raise ValueError(f"{problem}: {self}")

    @property
    def is_transfer(self) -> bool:
        return self.lc is not None

    @property
    def is_control(self) -> bool:
        """A self-transfer: the target's own primary model, transferred exactly like another's."""
        return self.is_transfer and self.source == self.target

    @property
    def kind(self) -> str:
        """``primary``, ``transfer``, ``control`` (a transfer from the target task itself) or
        ``aligner`` (an ASR model trained to realign TIMIT's targets, not a result)."""
        if self.aligner_pass:
            return "aligner"
        if not self.is_transfer:
            return "primary"
        return "control" if self.is_control else "transfer"

    @property
    def recipe(self) -> str:
        """The target task's recipe the job trains with: ``finetune`` for a ``copy`` transfer,
        ``training`` for a primary and for a ``reinit`` transfer (its upper groups start at random)."""
        return "finetune" if self.is_transfer and self.upper_groups == "copy" else "training"

    @property
    def folder(self) -> str:
        """Where the job writes, relative to ``<outdir>/models``. Seed 0 (the paper's single
        run) has no seed level, so adding seeds later leaves existing results where they are;
        ``reinit`` transfers sit beside the ``copy`` ones under ``transfer-reinit``."""
        if self.aligner_pass:
            return f"{self.arch}/realign/pass{self.aligner_pass}"
        if self.is_transfer:
            family = "transfer" if self.upper_groups == "copy" else f"transfer-{self.upper_groups}"
            folder = f"{self.arch}/{family}/{self.source}-to-{self.target}/fold{self.fold}/lc{self.lc}"
        else:
            folder = f"{self.arch}/primary/{self.target}/fold{self.fold}"
        return folder if self.seed == 0 else f"{folder}/seed{self.seed}"

    @property
    def source_job(self) -> "Job | None":
        """The primary model a transfer copies its layer groups from (same seed)."""
        if not self.is_transfer:
            return None
        return Job(self.experiment, self.arch, self.source, self.source, fold=self.source_fold,
                   seed=self.seed, source_fold=self.source_fold)

    def meta(self) -> dict[str, Any]:
        """The identity as written into ``metrics.json`` and the model file (l_c 0 for a primary).
        ``upper_groups`` only for a ``reinit`` transfer: files without it are ``copy`` (as every
        file written before the families existed), and a decode's params (which hold this) stay
        as they were for ``copy`` jobs."""
        meta = {"experiment": self.experiment, "arch": self.arch, "kind": self.kind, "source": self.source,
                "target": self.target, "fold": self.fold, "lc": self.lc if self.is_transfer else 0,
                "seed": self.seed}
        if self.upper_groups != "copy":
            meta["upper_groups"] = self.upper_groups
        return meta

    def to_dict(self) -> dict[str, Any]:
        """The fields, without ``aligner_pass`` when 0 and ``upper_groups`` when ``copy``: the
        params of every other job stay as they were before aligners and families existed."""
        entry = asdict(self)
        if not self.aligner_pass:
            del entry["aligner_pass"]
        if self.upper_groups == "copy":
            del entry["upper_groups"]
        return entry

    @classmethod
    def from_dict(cls, entry: dict[str, Any]) -> "Job":
        return cls(**entry)


def sweep(config: dict, arch: str) -> list[int]:
    """The l_c values swept for an architecture, in increasing order."""
    return sorted(set(config["architectures"][arch]["lc"]))


def task_folds(config: dict, task: str) -> list[int]:
    """The folds of a task (IEMOCAP's leave-one-speaker-out folds), or [0] for one fixed split."""
    return list(config["tasks"][task].get("folds", [0]))


def speech_tasks(config: dict) -> tuple[str, str]:
    """(ASR task, SER task) of the speech experiment: the tasks of those roles (TIMIT and IEMOCAP)."""
    tasks = config["experiments"][SPEECH_EXPERIMENT]["tasks"]
    by_role = {task_kind(config, t).speech_role: t for t in tasks}
    return by_role["asr"], by_role["ser"]


def studies(config: dict) -> list[str]:
    """The enabled experiments other than the paper's speech experiment: ``images`` (the
    paper's) and the user's own, in config order. Each is between image tasks or between
    utterance-classification speech tasks (:func:`modality`), every ordered pair or its ``pairs``."""
    return [name for name, entry in config["experiments"].items() if name != SPEECH_EXPERIMENT and entry["enabled"]]


def modality(config: dict, experiment: str) -> str:
    """``image`` or ``speech``: what an experiment's tasks read (the config check makes them agree)."""
    if experiment == SPEECH_EXPERIMENT:
        return "speech"
    first = config["experiments"][experiment]["tasks"][0]
    return task_kind(config, first).modality


def image_experiments(config: dict) -> list[str]:
    """The enabled studies between image tasks: ``images`` and any of the user's own."""
    return [name for name in studies(config) if modality(config, name) == "image"]


def speech_studies(config: dict) -> list[str]:
    """The enabled studies of the user's own between utterance-classification speech tasks."""
    return [name for name in studies(config) if modality(config, name) == "speech"]


def transfer_pairs(config: dict, experiment: str) -> list[tuple[str, str]]:
    """The (source, target) pairs of a study: its ``pairs``, or every ordered pair
    of distinct tasks."""
    entry = config["experiments"][experiment]
    if "pairs" in entry:
        return [(source, target) for source, target in entry["pairs"]]
    return [(s, t) for s in entry["tasks"] for t in entry["tasks"] if s != t]


def seeds(config: dict, experiment: str) -> list[int]:
    """The seeds of an experiment (``experiments.<exp>.seeds``; the paper's single run is [0])."""
    return sorted(set(config["experiments"][experiment]["seeds"]))


def self_transfer(config: dict, experiment: str) -> bool:
    """Whether the experiment trains the self-transfer controls (``experiments.<exp>.self_transfer``)."""
    return config["experiments"][experiment]["self_transfer"]


def upper_groups(config: dict, experiment: str) -> list[str]:
    """The transfer families of an experiment (``experiments.<exp>.upper_groups``; the paper's
    ``[copy]`` by default), in the order of :data:`FAMILIES`."""
    chosen = set(config["experiments"][experiment]["upper_groups"])
    return [family for family in FAMILIES if family in chosen]


def family_sweep(config: dict, arch: str, family: str) -> list[int]:
    """The l_c values a family sweeps: all of the architecture's, but l_c = 0 for ``reinit``
    (it would copy nothing: the target's primary model trained again)."""
    return [lc for lc in sweep(config, arch) if lc > 0 or family == "copy"]


def training_jobs(config: dict) -> list[Job]:
    """Every training job of the enabled experiments, per seed: primaries first, then per family
    (``copy``, then ``reinit``) the transfers and (where switched on) the self-transfer controls.
    A job of seed s starts from the primary model of seed s."""
    jobs: list[Job] = []
    experiments = config["experiments"]
    for name in studies(config):
        entry = experiments[name]
        tasks = entry["tasks"]
        pairs = transfer_pairs(config, name)
        if self_transfer(config, name):
            pairs += [(t, t) for t in tasks]
        for seed in seeds(config, name):
            for arch in entry["architectures"]:
                jobs += [Job(name, arch, task, task, fold=f, seed=seed, source_fold=f)
                         for task in tasks for f in task_folds(config, task)]
                for family in upper_groups(config, name):
                    jobs += [Job(name, arch, source, target, fold=f, lc=lc, seed=seed,
                                 source_fold=_source_fold(config, source, target, f), upper_groups=family)
                             for source, target in pairs for f in task_folds(config, target)
                             for lc in family_sweep(config, arch, family)]
    speech = experiments.get(SPEECH_EXPERIMENT, {})
    if speech.get("enabled"):
        asr, ser = speech_tasks(config)
        ser_folds = task_folds(config, ser)
        control = self_transfer(config, SPEECH_EXPERIMENT)
        for seed in seeds(config, SPEECH_EXPERIMENT):
            for arch in speech["architectures"]:
                jobs.append(Job(SPEECH_EXPERIMENT, arch, asr, asr, seed=seed))
                jobs += [Job(SPEECH_EXPERIMENT, arch, ser, ser, fold=f, seed=seed, source_fold=f) for f in ser_folds]
                for family in upper_groups(config, SPEECH_EXPERIMENT):
                    lcs = family_sweep(config, arch, family)
                    jobs += [Job(SPEECH_EXPERIMENT, arch, asr, ser, fold=f, lc=lc, seed=seed, source_fold=0,
                                 upper_groups=family) for f in ser_folds for lc in lcs]
                    jobs += [Job(SPEECH_EXPERIMENT, arch, ser, asr, fold=f, lc=lc, seed=seed, source_fold=f,
                                 upper_groups=family) for f in speech["ser_source_folds"] for lc in lcs]
                    if control:  # per fold for SER: each fold's primary transferred to its own fold
                        jobs += [Job(SPEECH_EXPERIMENT, arch, asr, asr, lc=lc, seed=seed, upper_groups=family) for lc in lcs]
                        jobs += [Job(SPEECH_EXPERIMENT, arch, ser, ser, fold=f, lc=lc, seed=seed, source_fold=f,
                                     upper_groups=family) for f in ser_folds for lc in lcs]
    return jobs


def _source_fold(config: dict, source: str, target: str, fold: int) -> int:
    """The fold of the primary model a study's transfer to `fold` of `target` starts from: its
    own fold for a self-transfer, else the source task's first fold (one source model for every
    target fold; 0 for a task without folds)."""
    return fold if source == target else task_folds(config, source)[0]


def realign_passes(config: dict) -> int:
    """How many realignment passes make TIMIT's targets (0 unless ``frame_targets: realigned``)."""
    speech = config["experiments"].get(SPEECH_EXPERIMENT, {})
    if not speech.get("enabled"):
        return 0
    asr, _ = speech_tasks(config)
    task = config["tasks"][asr]
    return task["realign_passes"] if task["frame_targets"] == "realigned" else 0


def aligner_architecture(config: dict) -> str:
    """The architecture that realigns (``tasks.<asr>.realign_with``; the first speech one)."""
    asr, _ = speech_tasks(config)
    return config["tasks"][asr]["realign_with"] or config["experiments"][SPEECH_EXPERIMENT]["architectures"][0]


def aligner_jobs(config: dict) -> list[Job]:
    """The ASR models of the realignment passes: the one of pass p trains on the targets of
    pass p − 1 (pass 0: the labelled thirds) and aligns the training and dev sets."""
    passes = realign_passes(config)
    if not passes:
        return []
    asr, _ = speech_tasks(config)
    return [Job(SPEECH_EXPERIMENT, aligner_architecture(config), asr, asr, aligner_pass=p) for p in range(1, passes + 1)]


def job_settings(config: dict, job: Job) -> dict:
    """Exactly the settings a job's result depends on besides its input files: the network, the
    target's classes and recipe (:attr:`Job.recipe`: ``finetune`` for a ``copy`` transfer,
    ``training`` otherwise), l_c, the seed, and for speech the model's input window (and SER's
    validation speakers, which choose its training data). The family is in the job's identity.
    Hardware knobs (``runtime``) are not here: they change speed only."""
    task = config["tasks"][job.target]
    settings = {
        "dataset": task["dataset"],
        "network": network(config["architectures"][job.arch]),
        "classes": task["classes"],
        "recipe": canonical(task[job.recipe]),
        "lc": job.lc,
        "seed": job.seed,
    }
    kind = task_kind(config, job.target)
    if kind.modality == "speech":
        settings["context"] = config["features"]["context"]
        if "validation_speakers" in task:
            settings["validation_speakers"] = canonical(task["validation_speakers"])
        if kind.name != task["dataset"]:  # a corpus of one's own: how it is read (the paper's are their kind)
            settings["kind"] = kind.name
    return canonical(settings)


def training_params(config: dict, job: Job) -> dict:
    """A training job's whole ``params``: identity, settings and the training stage's version."""
    return {"job": job.to_dict(), "settings": job_settings(config, job), "version": STAGE_VERSIONS["training"]}


def family_budget(config: dict, target: str, family: str) -> dict:
    """What a transfer (or control) of `family` into `target` trains with: the target's recipe
    that :attr:`Job.recipe` picks (``finetune`` for ``copy``, ``training`` for ``reinit``), its
    epochs, batch size and head warm-up (0 for ``reinit``: its head starts with random layers)."""
    name = Job("", "", target, target, lc=1, upper_groups=family).recipe
    recipe = config["tasks"][target][name]
    return {"recipe": name, "epochs": recipe["epochs"], "batch_size": recipe["batch_size"],
            "head_warmup_iterations": recipe.get("head_warmup_iterations", 0) if family == "copy" else 0}


def budgets_match(config: dict, target: str) -> bool:
    """Whether the two families train for the same budget into `target` (epochs and batch size;
    ``copy``'s head warm-up, a few hundred steps, is not counted): only then does a contrast
    between the families measure initialisation alone."""
    copy, reinit = (family_budget(config, target, family) for family in FAMILIES)
    return (copy["epochs"], copy["batch_size"]) == (reinit["epochs"], reinit["batch_size"])


def transferability_settings(config: dict) -> dict:
    """What the transferability table depends on besides the results table: the error of a
    trivial predictor on each task of the enabled experiments (the floor of the headroom that
    normalises gaps, :func:`gradual_transfer.metrics.trivial_error`), the number of layer
    groups L_H of each of their architectures (l_c / L_H is the relative depth), and each
    family's budget into each target (:func:`family_budget`)."""
    enabled = [entry for entry in config["experiments"].values() if entry.get("enabled")]
    tasks = sorted({task for entry in enabled for task in entry["tasks"]})
    archs = sorted({arch for entry in enabled for arch in entry["architectures"]})
    families = {task: sorted({family for entry in enabled if task in entry["tasks"] for family in entry["upper_groups"]})
                for task in tasks}
    return canonical({
        "trivial_errors": {t: trivial_error(config["tasks"][t]["metric"], config["tasks"][t]["classes"]) for t in tasks},
        "layer_groups": {a: num_groups(config["architectures"][a]) for a in archs},
        "budgets": {t: {family: family_budget(config, t, family) for family in families[t]} for t in tasks},
    })
