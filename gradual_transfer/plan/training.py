"""The grid's training jobs as files (:mod:`gradual_transfer.grid` says what each job is): the
folder each writes under ``models/``, the data it reads by the kind of its target's dataset, the
model a transfer starts from, and the file that holds each result's scores. Rules match
``{job}`` against these folders only and look the job up: nothing is parsed from a path."""

from __future__ import annotations

from gradual_transfer.data.kinds import DatasetKind, is_utterance_classification, task_kind
from gradual_transfer.grid import Job, aligner_jobs, training_jobs, training_params
from gradual_transfer.plan.asr import Asr
from gradual_transfer.plan.datasets import one_of
from gradual_transfer.plan.paths import Paths


class Training:
    def __init__(self, config: dict, paths: Paths, asr: Asr) -> None:
        self.config, self.paths, self.asr = config, paths, asr
        self.jobs = {job.folder: job for job in training_jobs(config) + aligner_jobs(config)}

    def target_kind(self, job: Job) -> DatasetKind:
        return task_kind(self.config, job.target)

    def is_decoded(self, job: Job) -> bool:
        """A phone-recognition target's model is scored by its decode, not by its own metrics."""
        return self.target_kind(job).metric == "per"

    def jobs_of(self, experiments: list[str], kind: str | None = None, role: str | None = None) -> str:
        """A constraint for ``{job}``: the folders of the jobs of these experiments, of one kind
        (``primary``, ``transfer``, ``control``, ``aligner``; None: all) and into the task of one
        speech role (``asr``, ``ser``; None: any target)."""
        return one_of(folder for folder, job in self.jobs.items()
                      if job.experiment in experiments and kind in (None, job.kind)
                      and role in (None, self.target_kind(job).speech_role))

    def params(self, folder: str) -> dict:
        """Exactly what the job's model depends on, with its identity and the training stage's
        version (:func:`gradual_transfer.grid.training_params`)."""
        return training_params(self.config, self.jobs[folder])

    def data_files(self, job: Job) -> dict[str, str]:
        """The prepared data of a job's target task, by role, as the kind of its dataset has them.
        An aligner trains on the targets of the pass before its own; every other model on the
        final ones."""
        dataset = self.config["tasks"][job.target]["dataset"]
        kind = self.target_kind(job)
        if kind.is_image:
            return self.paths.image_data(dataset)
        if is_utterance_classification(kind):
            return self.paths.utterance_features(dataset, job.fold)
        targets_pass = job.aligner_pass - 1 if job.aligner_pass else self.asr.final_pass
        return self.paths.phone_features(dataset, targets_pass)

    def inputs(self, folder: str) -> dict[str, str]:
        """The target's data, and for a transfer the primary model it starts from."""
        job = self.jobs[folder]
        inputs = self.data_files(job)
        if job.is_transfer:
            inputs["source"] = self.paths.model(job.source_job.folder)
        return inputs

    def outputs(self, posteriors: bool = False) -> dict[str, str]:
        """A training rule's outputs, by the ``{job}`` wildcard."""
        return self.paths.training_outputs("{job}", posteriors)

    def scored_metrics(self, job: Job) -> str:
        """The file holding a job's final scores: its decode for ASR targets, else its metrics."""
        if self.is_decoded(job):
            return f"{self.paths.decoded(job.folder)}/metrics.json"
        return self.paths.metrics(job.folder)

    def results(self) -> list[str]:
        """The scores of every result (aligners are a means, not a result)."""
        return [self.scored_metrics(job) for job in self.jobs.values() if job.kind != "aligner"]

    def own_metrics(self) -> list[str]:
        """Every training job's own metrics.json (its training history and cost; aligners too)."""
        return [self.paths.metrics(folder) for folder in self.jobs]

    def primary_decodes(self) -> list[tuple[str, dict]]:
        """(per-speaker PER file, label) of the dev and test decodes of every ASR primary model."""
        return [(f"{self.paths.decoded(job.folder)}/{split}/per_speaker.tsv",
                 {"arch": job.arch, "seed": job.seed, "split": split})
                for job in self.jobs.values() if job.kind == "primary" and self.is_decoded(job)
                for split in ("dev", "test")]
