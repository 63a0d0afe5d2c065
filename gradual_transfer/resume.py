"""Resume state of a training run, in one place: where it lives (:func:`resume_dir`), when it
may be resumed (the job's fingerprint, which holds its settings and :func:`input_stamps`), what is
saved after every epoch (model, optimizer, schedule, RNG states and the run's :class:`FitResult`
so far), and how a saved run is restored into this one (:func:`resume`, which re-lays an
optimizer saved by another run for this one). The checkpoint's keys are written and read here
only.

So on CPU an interrupted run that resumes ends bit-identical to an uninterrupted one: the global
torch RNG (dropout) is saved and restored, the schedule is a few plain numbers, and the batch order
of an epoch depends on (seed, epoch) only. (On CUDA the CUDA RNG is saved too, but cuDNN's
autotuned kernels are not deterministic.)
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from gradual_transfer.checkpoints import load_file
from gradual_transfer.io import atomic_path
from gradual_transfer.models import GroupedNet
from gradual_transfer.recipe import LearningRate

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "gradual-transfer/training-checkpoint/1"


@dataclass
class FitResult:
    """A training run so far: the best epoch on validation (its weights, on the host, and score)
    and the history of every epoch; saved in every checkpoint, returned by ``train.fit``."""

    best_state: dict
    best_epoch: int
    best_score: float
    history: list[dict] = field(default_factory=list)
    stopped_early: bool = False
    start_group: int = 0  # the first group a training step ran (l_c when the frozen prefix was cached)


def input_stamps(paths) -> dict:
    """Size and modification time of each input: a resumable checkpoint is only resumed when
    the inputs it was trained on are unchanged."""
    stamps = {}
    for p in paths:
        st = os.stat(p)
        stamps[str(p)] = [st.st_size, st.st_mtime_ns]
    return stamps


def resume_dir(model_path: str | Path) -> Path:
    """Where resumable state lives: beside the declared outputs, never one of them (Snakemake
    deletes declared outputs before a job runs)."""
    return Path(model_path).parent / "resume"


def checkpoint_path(checkpoint_dir: str | Path) -> Path:
    return Path(checkpoint_dir) / "last.pt"


def load_checkpoint(path: Path, fingerprint: dict) -> dict | None:
    """The state saved at `path` by a run with this `fingerprint`; None when there is none."""
    if not path.exists():
        return None
    state = load_file(path, what="training checkpoint", format=CHECKPOINT_FORMAT)
    if state["fingerprint"] != fingerprint:
        log.info("checkpoint %s is from other settings; starting afresh", path)
        return None
    return state


def resume(path: Path, fingerprint: dict, model: GroupedNet, schedule: LearningRate,
           make_optimizer: Callable[[], torch.optim.Optimizer],
           optimizer_device: torch.device | None) -> tuple[FitResult, torch.optim.Optimizer, int] | None:
    """The run saved at `path` by an interrupted run with this `fingerprint`, restored into
    `model`, `schedule`, a fresh optimizer (`make_optimizer()`, laid out for this run) and the RNG
    states: (its result so far, the optimizer, the first epoch still to train). None when there
    is no such run."""
    state = load_checkpoint(path, fingerprint)
    if state is None:
        return None
    model.load_state_dict(state["model"])
    optimizer = make_optimizer()
    restore_optimizer(optimizer, state, optimizer_device)
    schedule.load_state_dict(state["schedule"])
    restore_random_state(state)
    result = FitResult(best_state=state["best_state"], best_epoch=state["best_epoch"],
                       best_score=state["best_score"], history=state["history"])
    log.info("resuming from %s after epoch %d", path, state["epoch"])
    return result, optimizer, state["epoch"] + 1


def restore_optimizer(optimizer: torch.optim.Optimizer, state: dict, optimizer_device: torch.device | None) -> None:
    """`optimizer` as saved in `state`, laid out for this run."""
    optimizer.load_state_dict(state["optimizer"])
    relay_state(optimizer)
    # the checkpoint's groups carry the implementation of the run that wrote it (maybe on
    # another machine, with other runtime settings): this run uses its own
    for group in optimizer.param_groups:
        lr = float(group["lr"])
        group.update(lr=lr if optimizer_device is None else torch.tensor(lr, device=optimizer_device),
                     fused=None if optimizer_device is None else True, foreach=None)


def restore_random_state(state: dict) -> None:
    torch.set_rng_state(state["torch_rng"])
    if state.get("cuda_rng") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])


def relay_state(optimizer: torch.optim.Optimizer) -> None:
    """Each parameter's state (momentum) in its parameter's layout. A checkpoint keeps the strides
    of the run that wrote it, which may have had the other ``channels_last``: CUDA's fused SGD
    refuses mismatched strides, and the CPU's silently pairs the wrong elements."""
    for group in optimizer.param_groups:
        for p in group["params"]:
            for key, value in optimizer.state.get(p, {}).items():
                if isinstance(value, torch.Tensor) and value.shape == p.shape and value.stride() != p.stride():
                    optimizer.state[p][key] = torch.empty_like(p, dtype=value.dtype).copy_(value)


def save_checkpoint(path: Path, fingerprint: dict, model: GroupedNet, optimizer, schedule: LearningRate,
                     result: FitResult, epoch: int) -> None:
    with atomic_path(path) as tmp:
        torch.save({
            "format": CHECKPOINT_FORMAT, "fingerprint": fingerprint, "epoch": epoch,
            "model": model.state_dict(), "optimizer": optimizer.state_dict(), "schedule": schedule.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "best_state": result.best_state, "best_epoch": result.best_epoch,
            "best_score": result.best_score, "history": result.history,
        }, tmp)


def discard_checkpoint(checkpoint_dir: str | Path) -> None:
    """Remove the resume state of a run that diverged (resumed, it would diverge again; with
    other settings it would not be resumed), and its folder when that is left empty."""
    checkpoint_path(checkpoint_dir).unlink(missing_ok=True)
    try:
        Path(checkpoint_dir).rmdir()
    except OSError:  # absent, or holding something else
        pass


def clear_checkpoints(checkpoint_dir: str | Path) -> None:
    """Remove the resume state once the final outputs are written (it can be hundreds of MB)."""
    shutil.rmtree(checkpoint_dir, ignore_errors=True)
