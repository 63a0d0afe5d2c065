"""Architectures of the study, built from their config entries (``architectures.<name>``)."""

from __future__ import annotations

from typing import Sequence

from gradual_transfer.architectures import group_names
from gradual_transfer.models.base import GroupedNet
from gradual_transfer.models.convnet import SpeechConvNet
from gradual_transfer.models.densenet import DenseNet
from gradual_transfer.models.torchvision_net import TorchvisionNet

__all__ = ["GroupedNet", "DenseNet", "SpeechConvNet", "TorchvisionNet", "build_model", "group_names"]


def build_model(arch: dict, num_classes: int, input_shape: Sequence[int], *, name: str | None = None,
                pretrained: bool = False) -> GroupedNet:
    """A fresh model for `arch` (a config entry) with `num_classes` outputs.

    `input_shape` is (channels, height, width) of one example: (3, 32, 32) for images,
    (1, 2 * context + 1, num_mel_bins) for speech. `name` (the entry's key) names it in
    refusals. With `pretrained`, a ``torchvision`` entry's ``weights`` are loaded (a primary's
    start only: a transfer or a saved model loads its own state over them, so nothing else
    should fetch them).
    """
    if arch["kind"] == "densenet":
        model: GroupedNet = DenseNet(num_classes, depth=arch["depth"], growth_rate=arch["growth_rate"],
                                     init_features=arch["init_features"], dropout=arch["dropout"],
                                     in_channels=input_shape[0])
    elif arch["kind"] == "convnet":
        model = SpeechConvNet(num_classes, arch["conv_groups"], arch["fc_units"], arch["dropout"], input_shape)
    elif arch["kind"] == "torchvision":
        model = TorchvisionNet(arch, num_classes, input_shape, name=name, load_weights=pretrained)
    else:
        raise ValueError(f"unknown architecture kind {arch['kind']!r}")
    if model.group_names != group_names(arch):  # L_H is read from the description; the classes must agree
        raise AssertionError(f"{type(model).__name__} builds groups {model.group_names}, not {group_names(arch)}")
    return model
