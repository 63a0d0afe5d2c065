"""Any ``torchvision.models`` network as a :class:`GroupedNet`, cut into the layer groups its
architecture entry declares (``kind: torchvision``, README "Your own network from torchvision").

The entry names the network's modules, group by group, input first; their union must tile the
network. The cut is proved, not assumed: the torchvision network is run once on a small random
input with hooks on every module, which gives the order in which its modules run and the shapes
between them, and then

- every parameter of a module that runs belongs to exactly one group or to the classifier (the
  network's last ``nn.Linear``, replaced by a fresh head of the task's classes); a module that
  never runs in eval mode (GoogLeNet's auxiliary classifiers) is left out of the cut network;
- the listed modules run in the listed order, each once, none inside another listed one;
- the modules left between the last group and the classifier hold no parameters (pooling,
  dropout): they run, in the network's order, at the end of the last group, as DenseNet's
  ``final`` group ends with its pooling;
- where the network flattens a tensor functionally between two modules (``torch.flatten(x, 1)``
  before the classifier of ResNet, VGG, MobileNet), an ``nn.Flatten`` is inserted there;
- the groups, the rest and the classifier composed give the network's own output (eval mode,
  ``torch.allclose``).

A cut that fails any of these is refused with one sentence per problem, naming the module:
:func:`verify_groups` returns them for the config check, and building the model raises them.

Longer than the library's ~350-line rule of thumb because the proof lives beside the cut it
proves: the two read the same hooks, and one cannot change without the other.
"""

from __future__ import annotations

import difflib
import math
import urllib.error
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Sequence

import torch
from torch import nn

from gradual_transfer.architectures import GroupsError, group_names, module_key
from gradual_transfer.models.base import GroupedNet

# composing the groups runs the same modules on the same input as the network: any difference
# is float reassociation at most (a copied or reordered computation differs by far more)
FORWARD_RTOL, FORWARD_ATOL = 1e-4, 1e-5
CHECK_BATCH = 2  # examples in the check's random input: a batch of one would hide a squeeze among flattens


@dataclass
class _Call:
    """What the check's forward saw of one module: when it ran (event counter) and its first
    input's and output's shapes."""

    start: int
    end: int = -1
    calls: int = 0
    in_shape: tuple[int, ...] | None = None
    out_shape: tuple[int, ...] | None = None


@dataclass
class _Cut:
    """The groups as modules, in order, with what runs between the last group and the classifier."""

    groups: list[list[tuple[str, nn.Module]]] = field(default_factory=list)
    rest: list[tuple[str, nn.Module]] = field(default_factory=list)
    classifier: nn.Linear | None = None
    reference: torch.Tensor | None = None  # the network's own output on the check's input
    check_input: torch.Tensor | None = None


def model_problem(model_name: str, where: str) -> str | None:
    """One sentence if `model_name` is not a builder of ``torchvision.models``, with close names."""
    from torchvision import models

    names = models.list_models(module=models)
    if model_name in names:
        return None
    close = difflib.get_close_matches(str(model_name), names, n=4, cutoff=0.5)
    hint = f" (close: {', '.join(close)})" if close else ""
    return (f"{where}.model: {model_name!r} is not a torchvision model{hint}; "
            f"torchvision.models.list_models() lists them.")


def weights_of(arch: dict, where: str):
    """The torchvision weights enum value that `arch`'s ``weights`` names, or None; one sentence
    if it names none, or weights of another network."""
    name = arch.get("weights")
    if name is None:
        return None
    from torchvision import models

    try:
        weights = models.get_weight(str(name))
    except (ValueError, KeyError, AttributeError):
        weights = None
    expected = models.get_model_weights(arch["model"])
    if weights is None or not isinstance(weights, expected):
        known = ", ".join(f"{expected.__name__}.{w.name}" for w in expected)
        raise GroupsError(f"{where}.weights: {name!r} is not a weights name of {arch['model']} "
                          f"(known: {known or 'none'}).")
    return weights


def load_pretrained(network: nn.Module, arch: dict, where: str) -> None:
    """Load `arch`'s pretrained ``weights`` into `network` from torch's cache, downloading them
    once if they are not there (``$TORCH_HOME/hub/checkpoints``)."""
    weights = weights_of(arch, where)
    if weights is None:
        return
    try:
        state = torch.hub.load_state_dict_from_url(weights.url, progress=False, check_hash=True)
    except (urllib.error.URLError, OSError) as error:
        file = weights.url.rsplit("/", 1)[-1]
        raise GroupsError(
            f"{where}.weights: {arch['weights']} are not in torch's cache and cannot be downloaded ({error}); "
            f"run once on a machine with internet, or copy {file} from {weights.url} into "
            f"$TORCH_HOME/hub/checkpoints (default ~/.cache/torch/hub/checkpoints).") from None
    network.load_state_dict(state)


def _trace(network: nn.Module, x: torch.Tensor) -> tuple[dict[str, _Call], torch.Tensor]:
    """Run `network` on `x` (eval, no grad) with hooks on every module: when each ran, and shapes."""
    calls: dict[str, _Call] = {}
    clock = iter(range(1 << 62))
    handles = []

    def shape(value) -> tuple[int, ...] | None:
        return tuple(value.shape) if isinstance(value, torch.Tensor) else None

    def before(name):
        def hook(module, args):
            call = calls.setdefault(name, _Call(start=next(clock)))
            if call.calls == 0:
                call.in_shape = shape(args[0]) if args else None
        return hook

    def after(name):
        def hook(module, args, output):
            call = calls[name]
            call.calls += 1
            call.end = next(clock)
            if call.calls == 1:
                call.out_shape = shape(output)
        return hook

    for name, module in network.named_modules():
        if name:
            handles.append(module.register_forward_pre_hook(before(name)))
            handles.append(module.register_forward_hook(after(name)))
    try:
        with torch.no_grad():
            output = network.eval()(x)
    finally:
        for handle in handles:
            handle.remove()
    return calls, output


def _inside(name: str, ancestor: str) -> bool:
    return name.startswith(ancestor + ".")


def _cut(network: nn.Module, arch: dict, input_shape: Sequence[int], where: str) -> tuple[list[str], _Cut]:
    """Problems with `arch`'s groups for `network` (sentences), and the cut when there are none."""
    modules = dict(network.named_modules())
    model_name = arch["model"]
    listed = [str(name) for group in arch["groups"] for name in group]
    problems: list[str] = []
    for name in dict.fromkeys(listed):
        if not name or name not in modules:
            close = difflib.get_close_matches(name, [m for m in modules if m], n=3, cutoff=0.6)
            problems.append(f"{where}.groups: {name!r} is not a module of {model_name}"
                            + (f" (close: {', '.join(close)})" if close else "") + ".")
        elif listed.count(name) > 1:
            problems.append(f"{where}.groups: {name} is named {listed.count(name)} times; name each module once.")
    for name in dict.fromkeys(listed):
        for other in dict.fromkeys(listed):
            if _inside(name, other):
                problems.append(f"{where}.groups: {name} is inside {other}, which is also named; name each "
                                f"module once.")
    derived = group_names(arch)
    for name in dict.fromkeys(derived):
        if derived.count(name) > 1 and not problems:
            problems.append(f"{where}.groups: two groups are both named {name!r}; make their module lists differ.")
    classifier_name = arch.get("classifier")
    if classifier_name is None:
        linears = [name for name, module in modules.items() if isinstance(module, nn.Linear)]
        if not linears:
            problems.append(f"{where}.classifier: {model_name} has no nn.Linear to replace by the head; "
                            f"name its classifier.")
        classifier_name = linears[-1] if linears else None
    elif not isinstance(modules.get(classifier_name), nn.Linear):
        problems.append(f"{where}.classifier: {classifier_name!r} is not an nn.Linear module of {model_name}.")
    if classifier_name is not None and any(classifier_name == n or _inside(classifier_name, n) for n in listed):
        problems.append(f"{where}.groups: the classifier {classifier_name} is in a group; the head replaces it.")
    if problems:
        return problems, _Cut()

    check_input = torch.randn(CHECK_BATCH, *input_shape, generator=torch.Generator().manual_seed(0))
    try:
        calls, reference = _trace(network, check_input)
    except Exception as error:  # any failure of the network's own forward on this input is the config's
        return [f"{where}: {model_name} cannot run on inputs of shape {tuple(input_shape)} ({error})."], _Cut()

    covered = listed + [classifier_name]
    for name in covered:
        if name == classifier_name and name not in calls:
            problems.append(f"{where}.classifier: {name} never runs in {model_name}'s forward; name the nn.Linear "
                            f"that gives its output (or leave classifier out).")
        elif name not in calls:
            problems.append(f"{where}.groups: {name} never runs in {model_name}'s forward (in eval mode: an "
                            f"auxiliary head that runs only in training, such as GoogLeNet's aux1 and aux2); leave it out: a module "
                            f"that never runs is not part of the cut network.")

    def topmost_uncovered(name: str) -> str:
        parts = name.split(".")
        for depth in range(1, len(parts) + 1):
            prefix = ".".join(parts[:depth])
            if not any(_inside(c, prefix) for c in covered):
                return prefix
        return name

    holding = {}
    for parameter_name, _ in network.named_parameters():
        owner = parameter_name.rsplit(".", 1)[0] if "." in parameter_name else ""
        if owner and owner not in calls:
            continue  # never runs (an auxiliary head of training mode): not part of the cut network
        if not any(owner == c or _inside(owner, c) for c in covered):
            holding.setdefault(topmost_uncovered(owner), None)
    for name in holding:
        if name in calls and classifier_name in calls and calls[name].start > calls[classifier_name].start:
            problems.append(_after_classifier(name, classifier_name, modules, calls, model_name, where))
        else:
            problems.append(f"{where}.groups: {name} holds parameters but is in no group; add it to a group.")
    if problems:
        return problems, _Cut()

    for before, after in zip(covered, covered[1:]):
        if calls[after].start < calls[before].end:
            if after == classifier_name and calls[before].start > calls[after].start:
                problems.append(_after_classifier(before, classifier_name, modules, calls, model_name, where))
                continue
            which = "the classifier " + after if after == classifier_name else after
            problems.append(f"{where}.groups: {which} is listed after {before} but runs before it ends in "
                            f"{model_name}'s forward; list the modules in the order the network runs them.")
    if problems:
        return problems, _Cut()

    # modules in no group: the topmost of them that ran (their insides ran with them)
    last_group_end = calls[listed[-1]].end
    classifier_start = calls[classifier_name].start
    rest = []
    for name in calls:
        if any(name == c or _inside(name, c) or _inside(c, name) for c in covered):
            continue
        if "." in name and name.rsplit(".", 1)[0] in calls and not any(_inside(c, name.rsplit(".", 1)[0])
                                                                         for c in covered):
            continue  # its parent is in no group either and is judged as a whole
        if calls[name].start < last_group_end:
            problems.append(f"{where}.groups: {name} runs among the grouped modules of {model_name}'s forward but is "
                            f"in no group; add it to a group.")
        elif calls[name].start > classifier_start:
            problems.append(f"{where}.groups: {name} runs after the classifier {classifier_name}, which the head "
                            f"replaces; it cannot be kept.")
        else:
            rest.append(name)
    if problems:
        return problems, _Cut()
    rest.sort(key=lambda name: calls[name].start)

    # the units in forward order, with an nn.Flatten where the network flattens between two of them
    sequence = listed + rest + [classifier_name]
    flatten_after = set()
    for before, after in zip(sequence, sequence[1:]):
        out_shape, in_shape = calls[before].out_shape, calls[after].in_shape
        if out_shape and in_shape and out_shape != in_shape and len(out_shape) > 2 \
                and in_shape == (out_shape[0], math.prod(out_shape[1:])):
            flatten_after.add(before)

    def with_flatten(names: list[str]) -> list[tuple[str, nn.Module]]:
        units: list[tuple[str, nn.Module]] = []
        for name in names:
            units.append((module_key(name), modules[name]))
            if name in flatten_after:
                units.append((f"flatten_after_{module_key(name)}", nn.Flatten(1)))
        return units

    cut = _Cut(groups=[with_flatten([str(n) for n in group]) for group in arch["groups"]],
               rest=with_flatten(rest), classifier=modules[classifier_name], reference=reference,
               check_input=check_input)
    return [], cut


def _after_classifier(name: str, classifier_name: str, modules: dict[str, nn.Module], calls: dict[str, _Call],
                      model_name: str, where: str) -> str:
    """The sentence for a module with parameters that runs after the declared classifier: the
    head replaces the network's last layer, so the classifier to name is its last nn.Linear."""
    linears = [n for n, m in modules.items() if isinstance(m, nn.Linear) and n in calls]
    last = max(linears, key=lambda n: calls[n].start)
    holds = "holds parameters and " if any(True for _ in modules[name].parameters()) else ""
    if last != classifier_name:
        return (f"{where}.classifier: {classifier_name} is not {model_name}'s last layer: {name} {holds}runs after "
                f"it; the head replaces the last nn.Linear, so set classifier: {last} (or leave classifier "
                f"out) and put {classifier_name} in the last group, with what runs before it.")
    return (f"{where}.groups: {name} holds parameters but runs after the classifier {classifier_name}, which the head "
            f"replaces; it cannot be kept.")


def _body(arch: dict, cut: _Cut) -> nn.Sequential:
    """The groups as an ``nn.Sequential`` of named ``nn.Sequential`` groups; the parameter-free rest
    ends the last group."""
    groups = []
    for index, (name, units) in enumerate(zip(group_names(arch), cut.groups)):
        if index == len(cut.groups) - 1:
            units = units + cut.rest
        children: OrderedDict[str, nn.Module] = OrderedDict()
        for key, module in units:
            while key in children:  # two dotted names that read alike once their dots are gone
                key += "_"
            children[key] = module
        groups.append((name, nn.Sequential(children)))
    return nn.Sequential(OrderedDict(groups))


def _forward_problem(body: nn.Sequential, cut: _Cut, model_name: str, where: str) -> str | None:
    try:
        with torch.no_grad():
            composed = cut.classifier(body.eval()(cut.check_input))
    except Exception as error:  # composed in another order, a module meets a tensor it cannot take
        return (f"{where}.groups: the groups do not reproduce {model_name}'s forward (composed, they fail: "
                f"{error}): a module is in the wrong order or missing, or the network computes something "
                f"between its modules (a functional operation) that no group holds.")
    if composed.shape == cut.reference.shape and torch.allclose(composed, cut.reference, rtol=FORWARD_RTOL,
                                                                atol=FORWARD_ATOL):
        return None
    difference = ((composed - cut.reference).abs().max().item() if composed.shape == cut.reference.shape
                  else f"shape {tuple(composed.shape)} for {tuple(cut.reference.shape)}")
    return (f"{where}.groups: the groups do not reproduce {model_name}'s forward (difference {difference}): a "
            f"module is in the wrong order or missing, or the network computes something between its modules "
            f"(a functional operation) that no group holds.")


def _cut_body(network: nn.Module, arch: dict, input_shape: Sequence[int],
              where: str) -> tuple[list[str], nn.Sequential | None, nn.Linear | None]:
    """Problems with the cut of `network` (sentences), else none with its body and classifier."""
    problems, cut = _cut(network, arch, input_shape, where)
    if problems:
        return problems, None, None
    body = _body(arch, cut)
    problem = _forward_problem(body, cut, arch["model"], where)
    return ([problem] if problem else []), body, cut.classifier


def verify_groups(arch: dict, input_shape: Sequence[int], name: str) -> list[str]:
    """The problems (sentences naming ``architectures.<name>``) with a ``kind: torchvision`` entry
    for inputs of `input_shape`: an unknown model or weights name, or groups that do not tile the
    network. Builds it with random weights (never downloads); fast for small inputs."""
    where = f"architectures.{name}"
    problem = model_problem(arch["model"], where)
    if problem:
        return [problem]
    try:
        weights_of(arch, where)
    except GroupsError as error:
        return [str(error)]
    from torchvision import models

    with torch.random.fork_rng(devices=[]):  # the check draws no numbers from the caller's stream
        network = models.get_model(arch["model"], weights=None)
        problems, _, _ = _cut_body(network, arch, input_shape, where)
    return problems


class TorchvisionNet(GroupedNet):
    """A ``torchvision.models`` network cut into the entry's groups, with a fresh head.

    The network is built by name with random weights drawn from torch's generator (so a model
    built twice after the same ``torch.manual_seed`` is the same), then, with `load_weights`,
    the entry's pretrained ``weights`` are loaded. Its modules move into ``body`` group by group;
    the head is a fresh ``nn.Linear`` (PyTorch's default initialisation) from the classifier's
    input features to `num_classes`.
    """

    def __init__(self, arch: dict, num_classes: int, input_shape: Sequence[int], name: str | None = None,
                 load_weights: bool = False) -> None:
        super().__init__()
        where = f"architectures.{name if name is not None else '<' + str(arch.get('model')) + '>'}"
        problem = model_problem(arch["model"], where)
        if problem:
            raise GroupsError(problem)
        weights_of(arch, where)
        from torchvision import models

        network = models.get_model(arch["model"], weights=None)
        if load_weights:
            load_pretrained(network, arch, where)
        problems, body, classifier = _cut_body(network, arch, input_shape, where)
        if problems:
            raise GroupsError(" ".join(problems))
        self.body = body
        self.head = nn.Linear(classifier.in_features, num_classes)
        self.train()  # the check ran the network in eval mode; a fresh model trains, as the others
