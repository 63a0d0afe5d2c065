"""The speech ConvNets of the study (Model A, Model B): conv groups, then FC groups, then a head.

Input: a window of log mel filter-bank frames, shape (batch, 1, time, frequency). Each conv
group is one or more [zero-pad, conv, BatchNorm, ReLU] with an optional 2×2 max-pool at its end; each FC
group is [Linear, BatchNorm, ReLU, dropout]. Convolutions use "same" padding (the first kernel
may be even-sized, e.g. 5×4) so the pooled map sizes depend only on the pools.

- Model A (seed Table 2): conv 64 5×4 + pool | conv 128 3×3 + pool | FC 1024 × 3.  L_H = 5.
- Model B (VGG-style, reconstructed; see docs/method.md): [conv 64 6×5, conv 64 3×3, pool] |
  [conv 128 ×2] | [conv 256 ×3] | [conv 256 ×3, pool] | FC 1024 × 2.  L_H = 6.

Layers before BatchNorm carry no bias (BatchNorm's shift replaces it).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Sequence

import torch
from torch import nn

from gradual_transfer.models.base import GroupedNet


def same_padding(kernel: Sequence[int]) -> nn.ZeroPad2d:
    """Zero padding that keeps the map size, for odd and even kernels alike (an even kernel
    gets the extra row/column after the map, as cuDNN-free 'same' padding does)."""
    (kh, kw) = kernel
    return nn.ZeroPad2d(((kw - 1) // 2, kw // 2, (kh - 1) // 2, kh // 2))


def conv_group(in_channels: int, channels: Sequence[int], first_kernel: Sequence[int], pool: bool) -> nn.Sequential:
    layers: list[tuple[str, nn.Module]] = []
    for i, out_channels in enumerate(channels):
        kernel = tuple(first_kernel) if i == 0 else (3, 3)
        layers += [
            (f"pad{i + 1}", same_padding(kernel)),
            (f"conv{i + 1}", nn.Conv2d(in_channels, out_channels, kernel, bias=False)),
            (f"norm{i + 1}", nn.BatchNorm2d(out_channels)),
            (f"relu{i + 1}", nn.ReLU(inplace=True)),
        ]
        in_channels = out_channels
    if pool:
        layers.append(("pool", nn.MaxPool2d(kernel_size=2, stride=2)))
    return nn.Sequential(OrderedDict(layers))


def fc_group(in_features: int, units: int, dropout: float, flatten: bool) -> nn.Sequential:
    layers: list[tuple[str, nn.Module]] = [("flatten", nn.Flatten())] if flatten else []
    layers += [
        ("fc", nn.Linear(in_features, units, bias=False)),
        ("norm", nn.BatchNorm1d(units)),
        ("relu", nn.ReLU(inplace=True)),
        ("dropout", nn.Dropout(dropout)),
    ]
    return nn.Sequential(OrderedDict(layers))


class SpeechConvNet(GroupedNet):
    def __init__(self, num_classes: int, conv_groups: Sequence[dict], fc_units: Sequence[int], dropout: float,
                 input_shape: Sequence[int] = (1, 21, 40)) -> None:
        super().__init__()
        in_channels, height, width = input_shape
        groups: list[tuple[str, nn.Module]] = []
        for g, spec in enumerate(conv_groups, start=1):
            groups.append((f"conv{g}", conv_group(in_channels, spec["channels"], spec.get("first_kernel", (3, 3)), spec["pool"])))
            in_channels = spec["channels"][-1]
            if spec["pool"]:
                height, width = height // 2, width // 2
            if height < 1 or width < 1:
                raise ValueError(f"input {tuple(input_shape)} is too small for the pools of conv group {g}")
        features = in_channels * height * width
        for f, units in enumerate(fc_units, start=1):
            groups.append((f"fc{f}", fc_group(features, units, dropout, flatten=f == 1)))
            features = units
        self.body = nn.Sequential(OrderedDict(groups))
        self.head = nn.Linear(features, num_classes)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        nn.init.xavier_uniform_(self.head.weight)  # the output layer feeds a softmax, not a ReLU
