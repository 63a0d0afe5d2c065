"""The ASR side of the speech experiment (its task of the ``asr`` role, as the grid finds it): the
realignment passes that make its frame targets, the HMM of each pass, and what every decode reads
and tunes. A config without the speech experiment plans none of it."""

from __future__ import annotations

from gradual_transfer.grid import SPEECH_EXPERIMENT, aligner_jobs, realign_passes, speech_tasks
from gradual_transfer.params import canonical
from gradual_transfer.plan.paths import Paths


class Asr:
    def __init__(self, config: dict, paths: Paths) -> None:
        self.config, self.paths = config, paths
        has_task = SPEECH_EXPERIMENT in config["experiments"]
        self.task = config["tasks"][speech_tasks(config)[0]] if has_task else None
        self.dataset = self.task["dataset"] if has_task else None
        self.final_pass = realign_passes(config)  # 0: the extracted targets are the final ones

    def features(self, targets_pass: int | None = None) -> dict[str, str]:
        """The corpus's splits with the targets of a pass (None: the final targets, which every
        model trained on it reads)."""
        return self.paths.phone_features(self.dataset, self.final_pass if targets_pass is None else targets_pass)

    def hmm(self, targets_pass: int | None = None) -> str:
        """The HMM estimated on the training targets of a pass (None: the final targets)."""
        return self.paths.hmm(self.dataset, self.final_pass if targets_pass is None else targets_pass)

    def realigned(self, targets_pass: int | str = "{targets_pass}") -> dict[str, str]:
        """What a realignment pass writes (by default the rule's wildcard)."""
        return self.paths.realignment_outputs(self.dataset, targets_pass)

    def aligner_model(self, targets_pass: int | str) -> str:
        """The model whose alignments make the targets of a pass."""
        job = next(job for job in aligner_jobs(self.config) if job.aligner_pass == int(targets_pass))
        return self.paths.model(job.folder)

    def alignment_inputs(self, targets_pass: int | str) -> dict[str, str]:
        """A pass's aligner, the targets it trained on (the pass before) with their HMM, and
        the labelled targets the alignment follows (its reference phones)."""
        previous = int(targets_pass) - 1
        current, labelled = self.features(previous), self.features(0)
        return {
            "model": self.aligner_model(targets_pass),
            "train": current["train"],
            "dev": current["dev"],
            "labelled_train": labelled["train"],
            "labelled_dev": labelled["dev"],
            "stats": current["stats"],
            "hmm": self.hmm(previous),
        }

    def realign_params(self) -> dict:
        """What an alignment depends on besides its inputs: the scales and beam of its Viterbi
        pass, and the model's input window."""
        if self.task is None:
            return {}
        return canonical({
            "acoustic_scale": self.task["realign_acoustic_scale"],
            "self_loop_scale": self.task["realign_self_loop_scale"],
            "transition_scale": self.task["realign_transition_scale"],
            "window": self.task["realign_window"],
            "context": self.config["features"]["context"],
        })

    def decode_settings(self) -> dict:
        """The decoder's grids and transition weighting (``tasks.<asr>.decode``)."""
        return canonical(self.task["decode"]) if self.task else {}

    def decode_inputs(self, folder: str) -> dict[str, str]:
        """A model's posteriors, the final HMM and the references (the labelled dev and test)."""
        labelled = self.features(0)
        return {"hmm": self.hmm(), "dev_ref": labelled["dev"], "test_ref": labelled["test"],
                **self.paths.posteriors(folder)}
