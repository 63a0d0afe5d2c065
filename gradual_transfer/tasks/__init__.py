"""The task-specific parts of a training job, one module per modality: its batch sources, how a
model is scored, and what it writes after training (:mod:`~gradual_transfer.tasks.images`,
:mod:`~gradual_transfer.tasks.speech`). :func:`gradual_transfer.experiment.run_job` picks one by
the kind of the target's dataset (:func:`for_kind`); the datasets' readers live in
:mod:`gradual_transfer.data`."""

from __future__ import annotations

from types import ModuleType

from gradual_transfer.data.kinds import DatasetKind


def for_kind(kind: DatasetKind) -> ModuleType:
    """The task module of a kind's modality (imported when asked: each needs torch)."""
    if kind.is_image:
        from gradual_transfer.tasks import images

        return images
    from gradual_transfer.tasks import speech

    return speech
