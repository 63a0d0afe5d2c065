"""``kind: torchvision`` architectures: any torchvision.models network cut into declared groups.

The reference for "the groups tile the network" is the torchvision network itself: its own
parameters and its own forward. The groups used here:

- resnet18: the stem ``[conv1, bn1, relu, maxpool]``, then ``layer1`` … ``layer4`` (the issue's);
- vgg11_bn: its five convolutional stages, each ending with its max-pool (``features.0-3``,
  ``4-7``, ``8-14``, ``15-21``, ``22-28``), then the two hidden fully connected layers with their
  ReLU and dropout (``avgpool`` + ``classifier.0-2``, ``classifier.3-5``); head: ``classifier.6``;
- mobilenet_v3_small: the stem ``features.0``, the inverted-residual blocks by output resolution
  (``features.1`` at /4, ``2-3`` at /8, ``4-8`` at /16, ``9-11`` at /32), the last 1×1 conv
  ``features.12``, then the hidden fully connected layer (``avgpool`` + ``classifier.0-2``);
  head: ``classifier.3``.
"""

from __future__ import annotations

import urllib.error

import pytest
import torch
from torchvision import models

from gradual_transfer.architectures import group_names, network, num_groups
from gradual_transfer.cost import train_step_flops
from gradual_transfer.models import build_model
from gradual_transfer.models.torchvision_net import GroupsError, verify_groups
from gradual_transfer.transfer import transfer_model

INPUT = (3, 32, 32)


def entry(model: str, groups: list[list[str]], **more) -> dict:
    return {"kind": "torchvision", "model": model, "groups": groups, "lc": [0, 1], **more}


def seq(prefix: str, first: int, last: int) -> list[str]:
    return [f"{prefix}.{i}" for i in range(first, last + 1)]


RESNET18 = entry("resnet18", [["conv1", "bn1", "relu", "maxpool"], ["layer1"], ["layer2"], ["layer3"], ["layer4"]],
                 classifier="fc", weights=None)
VGG11_BN = entry("vgg11_bn", [seq("features", 0, 3), seq("features", 4, 7), seq("features", 8, 14),
                              seq("features", 15, 21), seq("features", 22, 28),
                              ["avgpool", *seq("classifier", 0, 2)], seq("classifier", 3, 5)])
MOBILENET_V3_SMALL = entry("mobilenet_v3_small", [["features.0"], ["features.1"], seq("features", 2, 3),
                                                  seq("features", 4, 8), seq("features", 9, 11), ["features.12"],
                                                  ["avgpool", *seq("classifier", 0, 2)]])


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.fixture(scope="module")
def resnet() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(RESNET18, 10, INPUT, name="study")


def test_group_names_are_derived_from_the_module_names_without_torch():
    assert group_names(RESNET18) == ["conv1+bn1+relu+maxpool", "layer1", "layer2", "layer3", "layer4"]
    assert num_groups(RESNET18) == 5
    assert group_names(MOBILENET_V3_SMALL)[2] == "features_2+features_3"
    assert group_names(MOBILENET_V3_SMALL)[-1] == "avgpool+classifier_0+classifier_1+classifier_2"


def test_vgg11_bn_groups_tile_it():  # 133 M parameters: the proof alone (a few seconds)
    assert verify_groups(VGG11_BN, INPUT, "study") == []


@pytest.mark.parametrize("arch", [RESNET18, MOBILENET_V3_SMALL], ids=lambda a: a["model"])
def test_declared_groups_tile_the_network(arch):
    assert verify_groups(arch, INPUT, "study") == []
    model = build_model(arch, 7, INPUT, name="study")
    reference = models.get_model(arch["model"], weights=None)
    classifier = dict(reference.named_modules())[arch.get("classifier") or [
        n for n, m in reference.named_modules() if isinstance(m, torch.nn.Linear)][-1]]
    # every parameter of the network is in a group or replaced by the head: counts match
    assert n_params(model.body) == n_params(reference) - n_params(classifier)
    assert model.group_names == group_names(arch)
    assert model.head.in_features == classifier.in_features and model.head.out_features == 7
    assert model.eval()(torch.randn(2, *INPUT)).shape == (2, 7)


def test_resnet18_composes_with_pooling_and_flatten_at_the_end_of_the_last_group(resnet):
    last = resnet.body[-1]
    assert list(last._modules)[-2:] == ["avgpool", "flatten_after_avgpool"]
    assert isinstance(resnet.body[0].relu, torch.nn.ReLU)


def sentence(arch: dict) -> str:
    problems = verify_groups(arch, INPUT, "study")
    assert len(problems) == 1, problems
    return problems[0]


def with_groups(groups: list[list[str]]) -> dict:
    return dict(RESNET18, groups=groups)


STEM = ["conv1", "bn1", "relu", "maxpool"]


@pytest.mark.parametrize("arch, expected", [
    (with_groups([STEM, ["layer1"], ["layer2"], ["layer4"]]),
     "architectures.study.groups: layer3 holds parameters but is in no group; add it to a group."),
    (with_groups([["conv1", "bn1", "maxpool"], ["layer1"], ["layer2"], ["layer3"], ["layer4"]]),
     "architectures.study.groups: relu runs among the grouped modules"),
    (with_groups([STEM, ["layer1"], ["layer2"], ["layer2"], ["layer3"], ["layer4"]]),
     "architectures.study.groups: layer2 is named 2 times; name each module once."),
    (with_groups([STEM, ["layer1", "layer1.1"], ["layer2"], ["layer3"], ["layer4"]]),
     "architectures.study.groups: layer1.1 is inside layer1"),
    (with_groups([STEM, ["layer1"], ["layer3"], ["layer2"], ["layer4"]]),
     "architectures.study.groups: layer2 is listed after layer3 but runs before it"),
    (with_groups([["conv1", "bn1", "relu", "maxpol"], ["layer1"], ["layer2"], ["layer3"], ["layer4"]]),
     "architectures.study.groups: 'maxpol' is not a module of resnet18 (close: maxpool"),
    (with_groups([STEM, ["layer1"], ["layer2"], ["layer3"], ["layer4", "fc"]]),
     "architectures.study.groups: the classifier fc is in a group"),
    (dict(RESNET18, model="resnet81"), "architectures.study.model: 'resnet81' is not a torchvision model (close: "),
    (dict(MOBILENET_V3_SMALL, groups=MOBILENET_V3_SMALL["groups"][:-1]),  # classifier.0 left between
     "architectures.study.groups: classifier.0 holds parameters but is in no group; add it to a group."),
    (dict(RESNET18, weights="ResNet18_Weights.NO_SUCH"),
     "architectures.study.weights: 'ResNet18_Weights.NO_SUCH' is not a weights name of resnet18 (known: "
     "ResNet18_Weights.IMAGENET1K_V1)."),
    (dict(MOBILENET_V3_SMALL, groups=MOBILENET_V3_SMALL["groups"][:-1], classifier="classifier.0"),
     "architectures.study.classifier: classifier.0 is not mobilenet_v3_small's last layer: classifier.3 holds "
     "parameters and runs after it; the head replaces the last nn.Linear, so set classifier: classifier.3"),
    (dict(MOBILENET_V3_SMALL, groups=[*MOBILENET_V3_SMALL["groups"][:-1], ["avgpool", *seq("classifier", 1, 3)]],
          classifier="classifier.0"),  # the head's layers listed in a group: the same advice
     "architectures.study.classifier: classifier.0 is not mobilenet_v3_small's last layer: classifier.3 holds "
     "parameters and runs after it"),
], ids=["missing-with-parameters", "missing-parameter-free", "duplicate", "nested", "order", "not-a-module",
        "classifier-in-group", "unknown-model", "parameters-outside-groups", "unknown-weights",
        "classifier-not-last", "classifier-not-last-listed"])
def test_a_wrong_cut_is_one_sentence_naming_the_module(arch, expected):
    assert sentence(arch).startswith(expected)


GOOGLENET = entry("googlenet", [["conv1", "maxpool1", "conv2", "conv3", "maxpool2"],
                                 ["inception3a", "inception3b", "maxpool3"],
                                 [f"inception4{b}" for b in "abcde"] + ["maxpool4"],
                                 ["inception5a", "inception5b"]])


@pytest.mark.filterwarnings("ignore:The default weight initialization of GoogleNet")
def test_modules_that_never_run_are_left_out_of_the_cut():
    """GoogLeNet's auxiliary classifiers hold parameters but run only in training mode: the cut
    leaves them out (it used to ask for them in a group, then refuse them there)."""
    assert verify_groups(GOOGLENET, INPUT, "study") == []
    model = build_model(GOOGLENET, 10, INPUT, name="study")
    reference = models.get_model("googlenet", weights=None)
    assert n_params(model.body) == n_params(reference) - n_params(reference.fc) - n_params(reference.aux1) - \
        n_params(reference.aux2)
    with_aux = dict(GOOGLENET, groups=[*GOOGLENET["groups"], ["aux1"]])
    assert sentence(with_aux).startswith("architectures.study.groups: aux1 never runs in googlenet's forward (in "
                                         "eval mode: an auxiliary head that runs only in training")
    assert "leave it out: a module that never runs is not part of the cut network." in sentence(with_aux)


def test_a_functional_step_that_no_group_holds_fails_the_forward_proof():
    # torchvision's DenseNet applies F.relu after its features: listing every module is not enough
    blocks = [[f"features.denseblock{b}", f"features.transition{b}"] for b in (1, 2, 3)]
    stem = ["features.conv0", "features.norm0", "features.relu0", "features.pool0"]
    densenet = entry("densenet121", [stem, *blocks, ["features.denseblock4", "features.norm5"]])
    assert sentence(densenet).startswith(
        "architectures.study.groups: the groups do not reproduce densenet121's forward")


def test_building_a_wrong_cut_refuses_with_the_same_sentence():
    arch = with_groups([STEM, ["layer1"], ["layer2"], ["layer4"]])
    with pytest.raises(GroupsError, match=r"^architectures\.study\.groups: layer3 holds parameters"):
        build_model(arch, 10, INPUT, name="study")


def test_frozen_groups_keep_their_batchnorm_statistics(resnet):
    model = resnet.freeze(2).train()
    frozen_bn, trained_bn = model.body.layer1.layer1[0].bn1, model.body.layer2.layer2[0].bn1
    before = frozen_bn.running_mean.clone(), trained_bn.running_mean.clone()
    model(torch.randn(4, *INPUT) * 3 + 1)
    assert torch.equal(frozen_bn.running_mean, before[0])
    assert not torch.equal(trained_bn.running_mean, before[1])
    assert not any(p.requires_grad for p in model.body[:2].parameters())
    assert all(p.requires_grad for p in model.body[2:].parameters()) and model.head.weight.requires_grad
    model.freeze(0)


def test_forward_from_a_cached_prefix_equals_the_full_forward(resnet):
    model = resnet.eval()
    x = torch.randn(2, *INPUT)
    with torch.no_grad():
        full = model(x)
        for k in range(model.num_groups + 1):
            assert torch.allclose(model(model.forward_groups(x, 0, k), start_group=k), full, atol=1e-5)


def test_flops_are_counted_and_a_frozen_prefix_saves_them(resnet):
    everything = train_step_flops(resnet.freeze(0), list(INPUT), 4)
    frozen = train_step_flops(resnet.freeze(3), list(INPUT), 4)
    cached = train_step_flops(resnet.freeze(3), list(INPUT), 4, start_group=3)
    resnet.freeze(0)
    assert everything.convolution > 0 and everything.matmul > 0
    assert cached.total < frozen.total < everything.total  # no backward through the frozen groups


def test_the_same_seed_builds_the_same_model():
    def built(seed: int) -> dict:
        torch.manual_seed(seed)
        return build_model(MOBILENET_V3_SMALL, 10, INPUT).state_dict()

    a, b, c = built(5), built(5), built(6)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["head.weight"], c["head.weight"])
    assert not torch.equal(a["body.features_0.features_0.0.weight"], c["body.features_0.features_0.0.weight"])


@pytest.mark.parametrize("family", ["copy", "reinit"])
def test_transfer_between_networks_of_10_and_5_classes(resnet, family):
    source = {"arch_name": "study", "arch": network(RESNET18), "state_dict": resnet.state_dict(),
              "input_shape": list(INPUT)}
    model = transfer_model(source, "study", network(RESNET18), 5, lc=2, seed=1, upper_groups=family)
    assert model.head.out_features == 5 and model.frozen_groups == 2
    copied = model.group_names if family == "copy" else model.group_names[:2]
    for name, value in model.state_dict().items():
        group = name.split(".")[1] if name.startswith("body.") else None
        if group in copied:
            assert torch.equal(value, resnet.state_dict()[name]), name
        elif name.endswith("weight") and value.dim() > 1:  # fresh: a drawn weight differs from the source's
            assert not torch.equal(value, resnet.state_dict().get(name, torch.empty(0))), name


def test_pretrained_weights_start_the_model_when_torch_has_them(monkeypatch):
    torch.manual_seed(11)
    pretrained = models.resnet18().state_dict()
    fetched = []

    def from_cache(url, **kwargs):
        fetched.append(url)
        return pretrained

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", from_cache)
    arch = dict(RESNET18, weights="ResNet18_Weights.IMAGENET1K_V1")
    model = build_model(arch, 10, INPUT, name="study", pretrained=True)
    assert fetched == [models.ResNet18_Weights.IMAGENET1K_V1.url]
    assert torch.equal(model.body[0].conv1.weight, pretrained["conv1.weight"])
    assert torch.equal(model.body.layer4.layer4[1].bn2.running_var, pretrained["layer4.1.bn2.running_var"])
    build_model(arch, 10, INPUT, name="study")  # not for a primary: a saved or source state replaces them
    assert len(fetched) == 1


def test_pretrained_weights_without_internet_or_cache_are_one_sentence(monkeypatch):
    def offline(url, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    arch = dict(RESNET18, weights="ResNet18_Weights.IMAGENET1K_V1")
    with pytest.raises(GroupsError) as refused:
        build_model(arch, 10, INPUT, name="study", pretrained=True)
    assert refused.value.__cause__ is None and refused.value.__suppress_context__  # no chained traceback
    message = str(refused.value)
    assert message.startswith("architectures.study.weights: ResNet18_Weights.IMAGENET1K_V1 are not in torch's cache")
    assert "$TORCH_HOME/hub/checkpoints" in message and "resnet18-f37072fd.pth" in message
    assert verify_groups(arch, INPUT, "study") == []  # the config check never downloads


def test_pretrained_weights_offline_are_one_sentence_from_the_command_line(tmp_path):
    """train-image of a primary with `weights`, on a machine that cannot download them: the
    sentence alone, no traceback (GroupsError was not caught: three chained tracebacks)."""
    import os
    import subprocess
    import sys

    import yaml

    from conftest import REPO, own_study_base
    from gradual_transfer.data import imagefolder
    from test_imagefolder import make_tree

    root = make_tree(tmp_path / "pics", classes=("a", "b"), per_class=2)
    entry = {"kind": "imagefolder", "root": str(root), "image_size": 32, "validation": 1, "bad_images": "fail"}
    imagefolder.prepare(root, tmp_path / "data", entry, classes=2)
    config = own_study_base(str(tmp_path / "results"))
    config["datasets"]["pics"] = entry
    config["tasks"]["pics"] = {**config["tasks"]["cifar10"], "dataset": "pics", "classes": 2}
    config["architectures"]["pre"] = dict(RESNET18, weights="ResNet18_Weights.IMAGENET1K_V1")
    config["experiments"]["pretrained"] = {"enabled": False, "tasks": ["pics", "cifar10"], "architectures": ["pre"]}
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(config))
    # no cache, and a proxy that refuses every connection: offline, even where there is internet
    offline = {**os.environ, "TORCH_HOME": str(tmp_path / "torch"), "https_proxy": "http://127.0.0.1:9",
               "HTTPS_PROXY": "http://127.0.0.1:9", "no_proxy": "", "NO_PROXY": ""}
    result = subprocess.run([sys.executable, "-m", "gradual_transfer", "train-image", "--arch", "pre", "--task", "pics",
                             "--data-dir", str(tmp_path / "data"), "--out-dir", str(tmp_path / "model"),
                             "--configfile", str(tmp_path / "study.yaml")], cwd=REPO, env=offline,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert "architectures.pre.weights: ResNet18_Weights.IMAGENET1K_V1 are not in torch's cache and cannot be " \
           "downloaded" in result.stderr
    assert not (tmp_path / "model" / "model.pt").exists()


def test_the_schema_takes_a_torchvision_entry_and_refuses_an_empty_group(paper_config):
    from gradual_transfer.config import schema_errors

    paper_config["architectures"]["study"] = RESNET18
    assert schema_errors(paper_config) == []
    paper_config["architectures"]["study"] = dict(RESNET18, groups=[["conv1"], []])
    assert schema_errors(paper_config) == ["architectures.study.groups.1: [] should be non-empty."]
