"""The corpora of a run: where each is read from, what a job that reads it depends on, and which
rule reads which dataset (wildcard constraints by the registry's kinds and speech roles, never by
a dataset's name)."""

from __future__ import annotations

import functools
import re

from gradual_transfer.config import demo_datasets
from gradual_transfer.data.kinds import (DatasetKind, dataset_classes, is_utterance_classification, kind_of,
                                         reader, task_reading)
from gradual_transfer.data.layouts import content_fingerprint, corpus_files
from gradual_transfer.params import canonical
from gradual_transfer.plan.paths import Paths


def one_of(names) -> str:
    """A wildcard constraint matching exactly these names (none: a pattern that matches nothing)."""
    names = sorted(names)
    return "|".join(map(re.escape, names)) if names else "(?!)"


class Datasets:
    def __init__(self, config: dict, paths: Paths) -> None:
        self.config, self.paths = config, paths
        self.generated = demo_datasets(config)  # the demo generates their roots

    def kind(self, dataset: str) -> DatasetKind:
        return kind_of(self.config, dataset)

    def task_reading(self, dataset: str) -> dict:
        """The config entry of the task that reads `dataset` (:func:`~gradual_transfer.data.kinds.task_reading`)."""
        task = task_reading(self.config, dataset)
        if task is None:
            raise KeyError(f"no task under tasks reads {dataset}")
        return task

    # --- which rule reads which dataset: wildcard constraints -------------------------------

    def where(self, wanted) -> str:
        """A constraint for ``{dataset}``: the configured datasets whose kind passes `wanted`."""
        return one_of(name for name in self.config["datasets"] if wanted(self.kind(name)))

    def of_kind(self, *kinds: str) -> str:
        return self.where(lambda kind: kind.name in kinds)

    def of_role(self, *roles: str) -> str:
        """Datasets of the kinds that play these roles in the speech experiment (``asr``, ``ser``)."""
        return self.where(lambda kind: kind.speech_role in roles)

    def torchvision(self) -> str:
        """Datasets torchvision reads (and can download): prepared from their official splits."""
        return self.where(lambda kind: kind.downloadable)

    def classifying_utterances(self) -> str:
        """Speech datasets whose tasks classify utterances: folds of speakers, statistics per fold."""
        return self.where(is_utterance_classification)

    # --- where a dataset is read from, and what a job reading it depends on -------------------

    def root(self, dataset: str) -> str:
        """The generated demo corpus, or the configured root."""
        if dataset in self.generated:
            return self.paths.corpus(dataset)
        return self.config["datasets"][dataset]["root"]

    def root_input(self, dataset: str) -> str | list:
        """The root as a job's input (none when torchvision downloads the dataset into it)."""
        if self.config["datasets"][dataset].get("download") and dataset not in self.generated:
            return []
        return self.root(dataset)

    def content(self, dataset: str, split: str | None = None) -> str:
        """The names, sizes and times of the corpus files a job reads, as a param: replacing,
        adding or removing one re-runs exactly the jobs that read it. (A generated demo corpus is
        tracked by its rule's output; a downloaded one appears only when its job runs.)"""
        entry = self.config["datasets"][dataset]
        if dataset in self.generated or entry.get("download"):
            return "generated" if dataset in self.generated else "downloaded"
        root = self.root(dataset)
        return content_fingerprint(root, corpus_files(entry["kind"], root, split, entry))

    def alignment_files(self, dataset: str) -> list[str]:
        """A phone-labelled corpus's Kaldi alignment (its script file and the archives it names),
        checked before planning: inputs of its extraction, when its task reads one."""
        task = self.task_reading(dataset)
        if task["frame_targets"] != "alignment":
            return []
        return [str(path) for path in reader(self.kind(dataset)).alignment_files(task["alignment"])]

    def phone_corpus_content(self, dataset: str, split: str) -> str:
        """What a phone-labelled split's extraction reads, as a param: the split's corpus files
        and the alignment's, so that replacing one re-extracts even when the copy keeps an older
        time (cp -p, rsync -a)."""
        content = self.content(dataset, split)
        alignment = self.alignment_files(dataset)
        if alignment:
            content += f"; alignment {content_fingerprint('.', alignment)}"
        return content

    # --- what a preparation or extraction depends on besides its files -----------------------

    def image_preparation(self, dataset: str) -> dict:
        """What torchvision's prepared splits depend on (not the root, md5 check or download)."""
        entry = self.config["datasets"][dataset]
        return canonical({k: entry[k] for k in ("validation", "use_extra", "train_limit") if k in entry})

    def imagefolder_preparation(self, dataset: str) -> dict:
        """What an image folder's prepared splits depend on: its preparation keys, and the
        classes the tasks reading it expect (checked against its class folders)."""
        entry = self.config["datasets"][dataset]
        return canonical({
            "image_size": entry["image_size"],
            "validation": entry.get("validation"),  # None: the folder's val/
            "bad_images": entry["bad_images"],
            "classes": dataset_classes(self.config, dataset),
        })

    def extraction(self) -> dict:
        """The feature settings that change extracted features. The context window is a model
        input setting: changing it re-trains, it does not re-extract."""
        return canonical({k: v for k, v in self.config["features"].items() if k != "context"})

    def kaldi_dir(self, dataset: str) -> dict:
        """What a Kaldi data directory's features depend on besides its files (whose content is
        the ``corpus`` param): where its labels are and what to do with a bad utterance. Not
        allow_commands: a directory with commands is refused without it, so it changes no result."""
        entry = self.config["datasets"][dataset]
        return canonical({k: entry[k] for k in ("labels", "bad_utterances")})

    def fold_training_speakers(self, dataset: str, fold: int | str) -> list[str]:
        """The training speakers of a fold (1-based) of an utterance-classification corpus, from
        its reader's fold layout: the statistics that normalise the fold's models."""
        layout = reader(self.kind(dataset)).fold_layout(self.speakers(dataset),
                                                        self.task_reading(dataset)["validation_speakers"], int(fold))
        return layout["train"]

    @functools.lru_cache
    def speakers(self, dataset: str) -> list[str]:
        """The speakers of an utterance-classification corpus as its reader knows them when
        planning (a Kaldi data directory's utt2spk, checked before planning)."""
        return reader(self.kind(dataset)).planned_speakers(self.root(dataset), self.config["datasets"][dataset],
                                                           dataset)

    def demo_settings(self, dataset: str) -> dict:
        """Exactly what a demo corpus depends on, as plain sorted builtins."""
        return canonical(self.config["demo"][dataset])

    def demo_seed(self) -> int:
        return self.config.get("demo", {}).get("seed", 0)
