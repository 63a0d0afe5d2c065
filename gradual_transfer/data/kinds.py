"""Every kind of dataset the workflow reads, in one registry.

A dataset entry (``datasets.<name>``) names its kind: the paper's five are read as themselves
(``kind`` defaults to the name, so configs written before kinds existed keep working), any
other name is a dataset of the user's own (``kind: imagefolder`` or ``kind: kaldi``). A kind says

- whether its tasks are image or speech tasks (``modality``), which decides the experiment
  that can use them and the training code that reads them;
- the metric its tasks are scored with (``metric``: what their metrics files hold; the tables'
  trivial errors and the figures' axes are read from ``tasks.<t>.metric``, which must name it).
  A speech kind scored by ``ue`` is utterance classification (frame posteriors averaged over an
  utterance's speech frames, leave-one-speaker-out folds); ``per`` is TIMIT's phone recognition;
- its class count when the corpus fixes it (``classes``; None: the task's ``classes`` is checked
  against the data when it is prepared);
- what a task reading it must set (``task_schema``: a ``$defs`` entry of the config schema,
  applied to the task with its defaults);
- the module that reads it (``reader``): its layout, the files a split reads and the placeholders
  a dry run plans on (asked through :mod:`gradual_transfer.data.layouts`), its checks
  (``data_errors``, ``task_errors``), its preparation (images) or extraction (speech: ``extract``);

Every place that lists datasets asks this registry. No torch here: the workflow reads it when
it plans.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DatasetKind:
    name: str
    modality: str  # "image" or "speech"
    metric: str  # "accuracy" (top-1), "per" (phone error rate) or "ue" (unweighted error)
    reader: str  # the module that reads the corpus
    classes: int | None = None  # fixed by the corpus; None: as many as the data has
    image_size: int | None = None  # the side of its square images, fixed by the corpus; None: datasets.<name>.image_size
    task_schema: str | None = None  # $defs entry of the config schema a task reading it must satisfy
    downloadable: bool = False  # torchvision can fetch it (datasets.<name>.download)
    data_checks: bool = False  # its reader checks the data before planning (`data_errors`: classes, folds, tables)
    speech_role: str | None = None  # its role in the paper's speech experiment: "asr" or "ser"

    @property
    def is_image(self) -> bool:
        return self.modality == "image"


KINDS = {kind.name: kind for kind in (
    DatasetKind("cifar10", "image", "accuracy", "gradual_transfer.data.cifar_svhn", classes=10, image_size=32,
                downloadable=True),
    DatasetKind("cifar100", "image", "accuracy", "gradual_transfer.data.cifar_svhn", classes=100, image_size=32,
                downloadable=True),
    DatasetKind("svhn", "image", "accuracy", "gradual_transfer.data.cifar_svhn", classes=10, image_size=32,
                downloadable=True),
    DatasetKind("imagefolder", "image", "accuracy", "gradual_transfer.data.imagefolder", data_checks=True),
    DatasetKind("timit", "speech", "per", "gradual_transfer.data.timit", task_schema="timit_task", speech_role="asr"),
    DatasetKind("iemocap", "speech", "ue", "gradual_transfer.data.iemocap", task_schema="iemocap_task",
                data_checks=True, speech_role="ser"),
    DatasetKind("kaldi", "speech", "ue", "gradual_transfer.data.kaldi", task_schema="kaldi_task", data_checks=True),
)}


def kind_of(config: dict, dataset: str) -> DatasetKind:
    """The kind of ``datasets.<dataset>`` (its ``kind``, or its name for the paper's five)."""
    entry = config["datasets"][dataset]
    return KINDS[entry.get("kind", dataset)]


def is_utterance_classification(kind: DatasetKind) -> bool:
    """A speech kind whose tasks classify whole utterances (IEMOCAP, a Kaldi data directory)."""
    return kind.modality == "speech" and kind.metric == "ue"


def reader(kind: DatasetKind):
    """The module that reads a kind (imported when asked: the image readers need torch)."""
    import importlib

    return importlib.import_module(kind.reader)


def task_kind(config: dict, task: str) -> DatasetKind:
    """The kind of the dataset a task reads."""
    return kind_of(config, config["tasks"][task]["dataset"])


def image_datasets(config: dict) -> list[str]:
    """The configured datasets that are image datasets, in config order."""
    return [name for name in config["datasets"] if kind_of(config, name).is_image]


def task_reading(config: dict, dataset: str) -> dict | None:
    """The task reading a dataset (the first in config order), or None: the one answer the
    rules, the readers' steps and the command line ask for. The config check makes the tasks
    reading one dataset agree on what its preparation depends on (classes, a silence threshold,
    folds), so the first one answers for all."""
    return next((task for task in config["tasks"].values() if task["dataset"] == dataset), None)


def dataset_classes(config: dict, dataset: str) -> int | None:
    """The classes of a dataset: the ``classes`` of the tasks reading it, or None when no task reads it."""
    task = task_reading(config, dataset)
    return None if task is None else task["classes"]
