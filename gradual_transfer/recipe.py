"""How a model is trained, as the config says (``tasks.<task>.training`` / ``finetune``): the
recipe, the runtime knobs that change speed only, and the learning-rate schedule."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import torch

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Recipe:
    """One task's `training` or `finetune` entry of the config."""

    batch_size: int
    epochs: int
    lr: float
    momentum: float
    nesterov: bool
    weight_decay: float
    schedule: dict
    early_stopping_patience: int
    seed: int
    head_warmup_iterations: int = 0

    @classmethod
    def from_config(cls, entry: dict) -> "Recipe":
        optimizer = entry["optimizer"]
        return cls(batch_size=entry["batch_size"], epochs=entry["epochs"], lr=optimizer["lr"],
                   momentum=optimizer["momentum"], nesterov=optimizer["nesterov"],
                   weight_decay=optimizer["weight_decay"], schedule=dict(entry["schedule"]),
                   early_stopping_patience=entry["early_stopping_patience"], seed=entry["seed"],
                   # a training recipe has no warm-up: the schema gives it to finetune recipes only
                   head_warmup_iterations=entry.get("head_warmup_iterations", 0))

    def optimizer(self, parameters, device: torch.device | None = None) -> torch.optim.SGD:
        """SGD of this recipe; given a `device`, the fused implementation with the learning rate as
        a tensor there (what a step captured as a CUDA graph needs: :class:`StepRunner`). The same
        update either way, up to rounding."""
        if device is None:
            return torch.optim.SGD(parameters, lr=self.lr, momentum=self.momentum, nesterov=self.nesterov,
                                   weight_decay=self.weight_decay)
        return torch.optim.SGD(parameters, lr=torch.tensor(self.lr, device=device), momentum=self.momentum,
                               nesterov=self.nesterov, weight_decay=self.weight_decay, fused=True)


@dataclass(frozen=True)
class RuntimeOptions:
    """Knobs that change speed, not what is learnt: not part of any fingerprint. (bf16 autocast
    changes the rounding on CUDA, as cuDNN's kernel choice does; it is a hardware setting.)"""

    amp_bf16: bool = False  # bf16 autocast (CUDA only)
    channels_last: bool = True
    prefetch: bool = False  # gather and pin batches on a background thread (CUDA only)
    frozen_cache_mb: int = 0  # cache the frozen groups' output of the training set up to this size
    resident_data_mb: int = 0  # copy the training and validation data to the GPU up to this size
    cuda_graphs: bool = False  # replay the training step as one CUDA graph (CUDA only; see StepRunner)
    progress_interval_s: float = 30.0

    @classmethod
    def from_config(cls, runtime: dict, arch_name: str, device: torch.device) -> "RuntimeOptions":
        """The config's ``runtime`` knobs for `device`: ``cpu``, or ``cuda`` with the entry for
        `arch_name` in ``cuda_by_architecture`` over it (the best settings differ by model:
        benchmarks/README.md)."""
        if device.type != "cuda":
            cpu = runtime["cpu"]
            return cls(channels_last=cpu["channels_last"], frozen_cache_mb=cpu["frozen_cache_mb"])
        knobs = {**runtime["cuda"], **runtime["cuda_by_architecture"].get(arch_name, {})}  # none: runtime.cuda
        return cls(amp_bf16=knobs["amp_bf16"], channels_last=knobs["channels_last"], prefetch=knobs["prefetch"],
                   frozen_cache_mb=knobs["frozen_cache_mb"], resident_data_mb=knobs["resident_data_mb"],
                   cuda_graphs=knobs["cuda_graphs"])



class LearningRate:
    """The learning rate of each epoch: steps at fractions of training, or a factor on plateau."""

    def __init__(self, recipe: Recipe) -> None:
        self.recipe = recipe
        self.plateau_lr = recipe.lr
        self.plateau_best = -math.inf
        self.plateau_bad_epochs = 0

    def for_epoch(self, epoch: int) -> float:
        schedule = self.recipe.schedule
        if schedule["kind"] == "step":
            passed = sum(epoch > round(m * self.recipe.epochs) for m in schedule["milestones"])
            return self.recipe.lr * schedule["gamma"] ** passed
        return self.plateau_lr

    def observe(self, score: float) -> None:
        """Validation score (higher is better) after an epoch; only the plateau schedule listens."""
        if self.recipe.schedule["kind"] != "plateau":
            return
        if score > self.plateau_best:
            self.plateau_best, self.plateau_bad_epochs = score, 0
        else:
            self.plateau_bad_epochs += 1
            if self.plateau_bad_epochs > self.recipe.schedule["patience"]:
                self.plateau_lr *= self.recipe.schedule["factor"]
                self.plateau_bad_epochs = 0
                log.info("validation stopped improving: learning rate → %.3g", self.plateau_lr)

    def state_dict(self) -> dict:
        return {"lr": self.plateau_lr, "best": self.plateau_best, "bad_epochs": self.plateau_bad_epochs}

    def load_state_dict(self, state: dict) -> None:
        self.plateau_lr, self.plateau_best, self.plateau_bad_epochs = state["lr"], state["best"], state["bad_epochs"]



def set_learning_rate(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Every group's learning rate; a tensor one (a graphed step reads it) is changed in place."""
    for group in optimizer.param_groups:
        if isinstance(group["lr"], torch.Tensor):
            group["lr"].fill_(lr)
        else:
            group["lr"] = lr
