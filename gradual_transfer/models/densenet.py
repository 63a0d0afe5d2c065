"""DenseNet for 32×32 images (Huang et al., CVPR 2017), the DenseNet-40 variant of the study.

Basic dense layers (BN-ReLU-conv3×3-dropout, no bottleneck), transitions without compression
(BN-ReLU-conv1×1 of the same width-dropout-avgpool 2×2), bias-free convolutions with He
initialisation, as in the authors' Torch code (liuzhuang13/DenseNet). DenseNet-40 with k = 12
has 1,059,298 parameters for 10 classes.

Layer groups (l_c counts them): conv0, denseblock1, transition1, denseblock2, transition2,
denseblock3, final (BN-ReLU-global average pool); the head is ``Linear(456, K)``.
"""

from __future__ import annotations

import math
from collections import OrderedDict

import torch
from torch import nn

from gradual_transfer.models.base import GroupedNet


class DenseLayer(nn.Module):
    def __init__(self, in_channels: int, growth_rate: int, dropout: float) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(in_channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv = nn.Conv2d(in_channels, growth_rate, kernel_size=3, padding=1, bias=False)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        new_features = self.dropout(self.conv(self.relu(self.norm(x))))
        return torch.cat([x, new_features], dim=1)


class DenseBlock(nn.Sequential):
    def __init__(self, num_layers: int, in_channels: int, growth_rate: int, dropout: float) -> None:
        super().__init__(OrderedDict(
            (f"denselayer{i + 1}", DenseLayer(in_channels + i * growth_rate, growth_rate, dropout))
            for i in range(num_layers)
        ))


class Transition(nn.Sequential):
    def __init__(self, channels: int, dropout: float) -> None:
        super().__init__(OrderedDict([
            ("norm", nn.BatchNorm2d(channels)),
            ("relu", nn.ReLU(inplace=True)),
            ("conv", nn.Conv2d(channels, channels, kernel_size=1, bias=False)),
            ("dropout", nn.Dropout(dropout)),
            ("pool", nn.AvgPool2d(kernel_size=2, stride=2)),
        ]))


class DenseNet(GroupedNet):
    def __init__(self, num_classes: int, depth: int = 40, growth_rate: int = 12, init_features: int = 24,
                 dropout: float = 0.2, in_channels: int = 3) -> None:
        super().__init__()
        if (depth - 4) % 3:
            raise ValueError(f"DenseNet depth must be 3n + 4, got {depth}")
        layers_per_block = (depth - 4) // 3
        channels = init_features
        groups: list[tuple[str, nn.Module]] = [
            ("conv0", nn.Conv2d(in_channels, channels, kernel_size=3, padding=1, bias=False)),
        ]
        for b in range(1, 4):
            groups.append((f"denseblock{b}", DenseBlock(layers_per_block, channels, growth_rate, dropout)))
            channels += layers_per_block * growth_rate
            if b < 3:
                groups.append((f"transition{b}", Transition(channels, dropout)))
        groups.append(("final", nn.Sequential(OrderedDict([
            ("norm", nn.BatchNorm2d(channels)),
            ("relu", nn.ReLU(inplace=True)),
            ("pool", nn.AdaptiveAvgPool2d(1)),
            ("flatten", nn.Flatten()),
        ]))))
        self.body = nn.Sequential(OrderedDict(groups))
        self.head = nn.Linear(channels, num_classes)
        self.num_features = channels
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                # He initialisation, n = k_h * k_w * out_channels, as in the authors' code
                n = module.kernel_size[0] * module.kernel_size[1] * module.out_channels
                nn.init.normal_(module.weight, 0.0, math.sqrt(2.0 / n))
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Linear):
                nn.init.zeros_(module.bias)
