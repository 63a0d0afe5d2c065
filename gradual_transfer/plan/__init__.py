"""The workflow's plan as plain Python of the config: every path, input, output, param and target
of the rules in ``workflow/rules/*.smk``. The rules keep their directives, wildcard constraints
and one-line calls to a :class:`Plan`; what they compute is here, tested without Snakemake
(``tests/test_plan.py``).

    paths.py     where each file of the output folder lives
    datasets.py  the corpora: roots, what a job reading one depends on, which rule reads which
                 dataset (by the registry's kinds and speech roles, never by a dataset's name)
    asr.py       the speech experiment's ASR task: realignment passes, HMM, decoding
    training.py  the grid's jobs as files: inputs, outputs, params, the scores of each result
    report.py    what the tables and figures depend on: titles, l_c values, captions
    screen.py    the screen's estimates and similarity jobs, and the screen target

No Snakemake and no torch here: the workflow builds a plan when it parses the rules.
"""

from __future__ import annotations

from gradual_transfer.grid import SPEECH_EXPERIMENT, speech_tasks, task_folds
from gradual_transfer.plan.asr import Asr
from gradual_transfer.plan.datasets import Datasets
from gradual_transfer.plan.paths import Paths
from gradual_transfer.plan.report import Report
from gradual_transfer.plan.screen import Screen
from gradual_transfer.plan.training import Training


class Plan:
    """What one run of the workflow plans, from its validated config (with the schema's defaults)."""

    def __init__(self, config: dict) -> None:
        self.config = config
        self.paths = Paths(config["outdir"])
        self.data = Datasets(config, self.paths)
        self.asr = Asr(config, self.paths)
        self.training = Training(config, self.paths, self.asr)
        self.report = Report(config, self.training, demo=bool(self.data.generated))
        self.screen = Screen(config, self.paths, self.training)

    def speech_features(self) -> list[str]:
        """The speech experiment's features and statistics (targets of their own: a first look
        at the data before any model trains)."""
        speech = self.config["experiments"].get(SPEECH_EXPERIMENT, {})
        if not speech.get("enabled"):
            return []
        asr, ser = speech_tasks(self.config)
        phones = self.paths.phone_features(self.config["tasks"][asr]["dataset"])
        ser_dataset = self.config["tasks"][ser]["dataset"]
        return [phones["train"], phones["dev"], phones["test"], phones["stats"],
                self.paths.utterance_features(ser_dataset, 0)["features"],
                *(self.paths.utterance_features(ser_dataset, fold)["stats"] for fold in task_folds(self.config, ser))]

    def targets(self) -> list[str]:
        """What ``snakemake`` with no target makes: the demo's corpora, the speech features, and
        for the experiments with jobs their figures, the tables and the training curves, and
        (``screen.enabled``) the screen's estimates, their agreement and the similarities."""
        targets = [self.paths.corpus(dataset) for dataset in self.data.generated] + self.speech_features()
        trained = self.report.trained
        if "images" in trained:
            targets.append(self.paths.figure("figure1_images"))
        if SPEECH_EXPERIMENT in trained:
            targets.append(self.paths.figure("figure2_speech"))
        targets += [self.paths.figure(f"study_{name}") for name in self.report.own_experiments if name in trained]
        if trained:
            targets += [self.paths.table("results.parquet"), self.paths.table("cost.tsv"),
                        self.paths.figure("figure3_transferability"), self.paths.figure("training_curves")]
        if self.training.primary_decodes():
            targets.append(self.paths.table("per_speaker.tsv"))
        return targets + self.screen.targets()


__all__ = ["Plan", "Paths"]
