"""What an architecture entry (``architectures.<name>``) describes, for each model kind, without
torch: the network it builds (:func:`network`) and the names of its layer groups below the head
(:func:`group_names`), whose count is L_H (:func:`num_groups`).

The config checks and the grid read L_H here; :func:`gradual_transfer.models.build_model` checks
that the model it builds has exactly these groups, so the count cannot drift from the classes.
"""

from __future__ import annotations

from gradual_transfer.params import canonical

SWEEP_KEYS = ("lc",)  # keys of an architecture entry that choose jobs, not the network


class GroupsError(ValueError):
    """An architecture entry of kind ``torchvision`` whose network cannot be built or cut as
    declared, or whose pretrained weights cannot be had: one sentence naming the key. (Here, not
    beside the torchvision network, so that the command line catches it without importing torch.)"""


def network(arch_entry: dict) -> dict:
    """What builds the network: the architecture entry without the sweep. Model files store
    this, and jobs depend on this, so editing ``lc`` changes no network."""
    return canonical({k: v for k, v in arch_entry.items() if k not in SWEEP_KEYS})


def group_names(arch: dict) -> list[str]:
    """The layer groups below the head, input first: the units that l_c counts."""
    if arch["kind"] == "densenet":  # Huang et al.: a stem, three dense blocks with two transitions, BN-ReLU-pool
        return ["conv0", "denseblock1", "transition1", "denseblock2", "transition2", "denseblock3", "final"]
    if arch["kind"] == "convnet":  # Model A/B: the conv groups, then the fully connected layers
        return ([f"conv{g}" for g in range(1, len(arch["conv_groups"]) + 1)]
                + [f"fc{f}" for f in range(1, len(arch["fc_units"]) + 1)])
    if arch["kind"] == "torchvision":  # the declared groups, each named after its modules
        return ["+".join(module_key(name) for name in group) for group in arch["groups"]]
    raise ValueError(f"unknown architecture kind {arch['kind']!r}")


def module_key(module_name: str) -> str:
    """A module's dotted name (``features.0``) as a child name of an ``nn.Sequential``, which may
    not contain dots: ``features_0``. A group of a ``torchvision`` entry is named by joining its
    modules' keys with "+": ``[conv1, bn1, relu, maxpool]`` is ``conv1+bn1+relu+maxpool``,
    ``[features.0, features.1]`` is ``features_0+features_1``."""
    return str(module_name).replace(".", "_")


def num_groups(arch: dict) -> int:
    """L_H: the number of layer groups below the head."""
    return len(group_names(arch))
