"""Architectures of the study, built from their config entries (``architectures.<name>``)."""

from __future__ import annotations

from typing import Sequence

from gradual_transfer.models.base import GroupedNet
from gradual_transfer.models.convnet import SpeechConvNet
from gradual_transfer.models.densenet import DenseNet

__all__ = ["GroupedNet", "DenseNet", "SpeechConvNet", "build_model", "group_names"]


def build_model(arch: dict, num_classes: int, input_shape: Sequence[int]) -> GroupedNet:
    """A fresh model for `arch` (a config entry) with `num_classes` outputs.

    `input_shape` is (channels, height, width) of one example: (3, 32, 32) for images,
    (1, 2 * context + 1, num_mel_bins) for speech.
    """
    if arch["kind"] == "densenet":
        return DenseNet(num_classes, depth=arch["depth"], growth_rate=arch["growth_rate"],
                        init_features=arch["init_features"], dropout=arch["dropout"], in_channels=input_shape[0])
    if arch["kind"] == "convnet":
        return SpeechConvNet(num_classes, arch["conv_groups"], arch["fc_units"], arch["dropout"], input_shape)
    raise ValueError(f"unknown architecture kind {arch['kind']!r}")


def group_names(arch: dict) -> list[str]:
    """The names of an architecture's layer groups, in order (``conv0, denseblock1, ...``;
    ``conv1, ..., fc1, ...``), as its model class names them: built on the meta device (no
    memory, no weights), on an input just large enough for its pools, since names depend on
    neither the number of classes nor the input size."""
    import torch

    side = 2 ** len(arch.get("conv_groups", []))
    with torch.device("meta"):
        return build_model(arch, num_classes=2, input_shape=(3 if arch["kind"] == "densenet" else 1, side, side)).group_names
