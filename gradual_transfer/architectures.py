"""What an architecture entry (``architectures.<name>``) describes, for each model kind, without
torch: the network it builds (:func:`network`) and the names of its layer groups below the head
(:func:`group_names`), whose count is L_H (:func:`num_groups`).

The config checks and the grid read L_H here; :func:`gradual_transfer.models.build_model` checks
that the model it builds has exactly these groups, so the count cannot drift from the classes.
"""

from __future__ import annotations

from gradual_transfer.params import canonical

SWEEP_KEYS = ("lc",)  # keys of an architecture entry that choose jobs, not the network


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
    raise ValueError(f"unknown architecture kind {arch['kind']!r}")


def num_groups(arch: dict) -> int:
    """L_H: the number of layer groups below the head."""
    return len(group_names(arch))
