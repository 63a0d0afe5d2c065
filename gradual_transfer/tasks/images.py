"""The image tasks (CIFAR-10, CIFAR-100, SVHN): batches from the prepared Arrow splits,
normalised with the training statistics, scored by top-1 accuracy."""

from __future__ import annotations

from typing import Callable, Mapping

import torch

from gradual_transfer.data.images import ImageArrays, ImageSource
from gradual_transfer.data.kinds import DatasetKind
from gradual_transfer.io import read_json
from gradual_transfer.models import GroupedNet
from gradual_transfer.batches import BatchSource
from gradual_transfer.recipe import Recipe, RuntimeOptions
from gradual_transfer.steps import accuracy, predict

SPLITS = ("train", "validation", "test")


def sources(kind: DatasetKind, settings: dict, inputs: Mapping[str, str], fold: int = 0) -> dict[str, ImageSource]:
    """The prepared splits (`inputs`: ``train``, ``validation``, ``test``, ``stats``)."""
    stats = read_json(inputs["stats"])
    return {split: ImageSource(ImageArrays(inputs[split]), stats["mean"], stats["std"]) for split in SPLITS}


def evaluation_batch_size(recipe: Recipe) -> int:
    return max(recipe.batch_size, 256)


def evaluator(kind: DatasetKind, settings: dict, batch_size: int, device: torch.device,
              options: RuntimeOptions) -> Callable[[GroupedNet, BatchSource], dict]:
    def evaluate(model: GroupedNet, source: BatchSource) -> dict:
        log_posteriors, targets = predict(model, source, batch_size, device, options)
        value = 100.0 * accuracy(log_posteriors, targets)
        return {"score": value, "accuracy": value}
    return evaluate


def after_training(model: GroupedNet, sources: dict, outputs: Mapping[str, str], batch_size: int,
                   device: torch.device, options: RuntimeOptions) -> None:
    """Nothing beyond the model and its metrics."""
