"""Architectures: parameter counts, layer groups, shapes and freezing."""

from __future__ import annotations

import pytest
import torch

from gradual_transfer.architectures import num_groups
from gradual_transfer.models import DenseNet, build_model


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_densenet40_has_the_published_parameter_counts(paper_config):
    arch = paper_config["architectures"]["densenet40"]
    assert n_params(build_model(arch, 10, (3, 32, 32))) == 1_059_298
    assert n_params(build_model(arch, 100, (3, 32, 32))) == 1_100_428


def test_densenet40_groups_follow_the_paper():
    model = DenseNet(10)
    assert model.group_names == ["conv0", "denseblock1", "transition1", "denseblock2", "transition2",
                                 "denseblock3", "final"]
    assert n_params(model.body.final) == 912  # block 7: BN of 456 channels
    assert n_params(model.body.conv0) == 3 * 24 * 9
    assert len(model.body.denseblock1) == 12
    assert model.head.in_features == 456
    # channel growth 24 → 168 → 312 → 456, spatial 32 → 16 → 8 → 1
    x = torch.randn(2, 3, 32, 32)
    shapes = []
    for group in model.eval().body:
        x = group(x)
        shapes.append(tuple(x.shape[1:]))
    assert shapes == [(24, 32, 32), (168, 32, 32), (168, 16, 16), (312, 16, 16), (312, 8, 8), (456, 8, 8), (456,)]


def test_speech_models_groups_and_shapes(paper_config):
    a = build_model(paper_config["architectures"]["model_a"], 144, (1, 21, 40))
    b = build_model(paper_config["architectures"]["model_b"], 144, (1, 21, 40))
    assert a.group_names == ["conv1", "conv2", "fc1", "fc2", "fc3"]
    assert b.group_names == ["conv1", "conv2", "conv3", "conv4", "fc1", "fc2"]
    assert a.body.conv1.conv1.kernel_size == (5, 4) and b.body.conv1.conv1.kernel_size == (6, 5)
    assert a.body.fc1.fc.in_features == 128 * 5 * 10  # two 2×2 pools: 21×40 → 5×10
    assert b.body.fc1.fc.in_features == 256 * 5 * 10
    assert [len(b.body[i]) for i in range(4)] == [9, 8, 12, 13]  # (pad, conv, BN, ReLU) × n + pool
    for model in (a, b):
        assert model.eval()(torch.randn(3, 1, 21, 40)).shape == (3, 144)
        assert model.head.out_features == 144
    ser = build_model(paper_config["architectures"]["model_a"], 5, (1, 21, 40))
    assert n_params(a) - n_params(ser) == (144 - 5) * (1024 + 1)


def test_even_kernels_keep_the_map_size():
    from gradual_transfer.models.convnet import conv_group

    group = conv_group(1, [4, 4], (6, 5), pool=False).eval()
    assert group(torch.randn(1, 1, 21, 40)).shape == (1, 4, 21, 40)


def test_config_group_count_matches_the_models(paper_config, demo_config):
    for config in (paper_config, demo_config):
        for name, arch in config["architectures"].items():
            shape = (3, 32, 32) if arch["kind"] == "densenet" else (1, 21, 40)
            assert build_model(arch, 10, shape).num_groups == num_groups(arch), name


def test_too_small_input_is_refused(paper_config):
    with pytest.raises(ValueError, match="too small"):
        build_model(paper_config["architectures"]["model_b"], 5, (1, 1, 40))


def test_freeze_sets_requires_grad_and_keeps_frozen_groups_in_eval():
    model = DenseNet(10, depth=7, growth_rate=4, init_features=8)
    model.freeze(3)
    for index, group in enumerate(model.body):
        assert all(p.requires_grad == (index >= 3) for p in group.parameters())
    assert all(p.requires_grad for p in model.head.parameters())
    model.train()
    assert [g.training for g in model.body] == [False] * 3 + [True] * 4
    assert all(not m.training for g in model.body[:3] for m in g.modules())
    model.eval()
    assert not any(g.training for g in model.body)
    model.freeze(0).train()
    assert all(g.training for g in model.body)
    with pytest.raises(ValueError, match="outside 0..7"):
        model.freeze(8)


def test_forward_groups_equals_forward():
    model = DenseNet(10, depth=10, growth_rate=4, init_features=8).eval()
    x = torch.randn(2, 3, 16, 16)
    prefix = model.forward_groups(x, 0, 3)
    assert torch.equal(model.head(model.forward_groups(prefix, 3)), model(x))
