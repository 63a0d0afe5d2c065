"""The training loop: :func:`fit`, a short loop over named steps, as in icefall's recipes.

    start_or_resume   a fresh start (with the head warm-up of a transfer), or the saved state
    train_one_epoch   SGD over the epoch's batches (gradual_transfer.steps)
    keep_if_best      best-on-validation selection; early stopping reads it

and a checkpoint after every step to resume from (gradual_transfer.resume). The pieces live by
concept: the recipe and schedule in :mod:`~gradual_transfer.recipe`, batch sources in
:mod:`~gradual_transfer.batches`, the step runner in :mod:`~gradual_transfer.steps`, the
frozen-prefix cache in :mod:`~gradual_transfer.frozen_prefix`.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable

import torch

from gradual_transfer.batches import BatchSource, endless_batches, epoch_generator, is_resident
from gradual_transfer.frozen_prefix import frozen_output
from gradual_transfer.models import GroupedNet
from gradual_transfer.recipe import LearningRate, Recipe, RuntimeOptions, set_learning_rate
from gradual_transfer.resume import FitResult, checkpoint_path, discard_checkpoint, resume, save_checkpoint
from gradual_transfer.steps import StepRunner, TrainingDiverged, diverged, lay_out, train_steps

log = logging.getLogger(__name__)


def fit(model: GroupedNet, train: BatchSource, evaluate: Callable[[GroupedNet], dict], recipe: Recipe, *,
        checkpoint_dir: str | Path, fingerprint: dict, device: torch.device | None = None,
        options: RuntimeOptions = RuntimeOptions(), stop_after_epoch: int | None = None,
        on_epoch: Callable[[list[dict]], None] | None = None) -> FitResult:
    """Train `model` (its frozen groups already set) by `recipe`, selecting the best epoch on
    validation. `evaluate(model)` returns a dict with ``score`` (higher is better). `on_epoch`
    is given the whole history after the head warm-up and after every epoch (training curves).

    A checkpoint is written to `checkpoint_dir` after the head warm-up and after every epoch;
    a later call with the same `fingerprint` resumes from it. A run that diverges
    (:class:`TrainingDiverged`) keeps nothing: its checkpoint is discarded. `device` is the job's
    (chosen once, by :func:`gradual_transfer.devices.select_device`, when not given).
    `stop_after_epoch` ends the call early (as an interruption would) and exists for tests.
    """
    try:
        return _fit(model, train, evaluate, recipe, checkpoint_dir, fingerprint, device, options, stop_after_epoch,
                    on_epoch)
    except TrainingDiverged:
        discard_checkpoint(checkpoint_dir)
        raise


def _fit(model: GroupedNet, train: BatchSource, evaluate: Callable[[GroupedNet], dict], recipe: Recipe,
         checkpoint_dir: str | Path, fingerprint: dict, device: torch.device | None, options: RuntimeOptions,
         stop_after_epoch: int | None, on_epoch: Callable[[list[dict]], None] | None) -> FitResult:
    if device is None:
        from gradual_transfer.devices import select_device

        device = select_device()
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed input shapes: let cuDNN pick its fastest kernels
    path = checkpoint_path(checkpoint_dir)
    lay_out(model, device, options)
    schedule = LearningRate(recipe)
    result, optimizer, start_epoch = start_or_resume(model, train, recipe, schedule, path, fingerprint, device,
                                                     options, on_epoch)

    cached = frozen_output(model, train, max(recipe.batch_size, 256), device, options)
    source, result.start_group = (cached, model.frozen_groups) if cached is not None else (train, 0)
    runner = StepRunner(model, optimizer, device, replace(options, prefetch=options.prefetch and not is_resident(source)),
                        recipe.batch_size, result.start_group)
    for epoch in range(start_epoch, recipe.epochs + 1):
        if stop_after_epoch is not None and epoch > stop_after_epoch:
            return result
        if recipe.early_stopping_patience and epoch - result.best_epoch > recipe.early_stopping_patience:
            result.stopped_early = True
            break
        lr = schedule.for_epoch(epoch)
        set_learning_rate(optimizer, lr)
        loss, seconds = train_one_epoch(runner, source, recipe, epoch, len(train))
        model.eval()
        with torch.no_grad():
            metrics = evaluate(model)
        schedule.observe(metrics["score"])
        keep_if_best(result, model, epoch, metrics["score"])
        result.history.append({"epoch": epoch, "lr": lr, "train_loss": loss, "seconds": seconds,
                               "examples_per_s": len(train) / seconds, **metrics})
        if on_epoch is not None:
            on_epoch(result.history)
        log.info("epoch %d/%d lr %.3g train loss %.4f validation %s%s", epoch, recipe.epochs, lr, loss,
                 {k: round(v, 5) for k, v in metrics.items()}, " (best)" if result.best_epoch == epoch else "")
        save_checkpoint(path, fingerprint, model, optimizer, schedule, result, epoch)
    if result.stopped_early:
        log.info("early stop: no better validation score for %d epochs", recipe.early_stopping_patience)
    log.info("best epoch %d, validation score %.5f", result.best_epoch, result.best_score)
    return result


def start_or_resume(model: GroupedNet, train: BatchSource, recipe: Recipe, schedule: LearningRate, path: Path,
                    fingerprint: dict, device: torch.device, options: RuntimeOptions,
                    on_epoch: Callable[[list[dict]], None] | None) -> tuple[FitResult, torch.optim.Optimizer, int]:
    """The run's state before its first epoch still to train: saved at `path` by an interrupted
    run with this `fingerprint`, or a fresh start (the head warm-up done and saved as epoch 0)."""
    # a graphed step needs the fused optimizer with its learning rate on the device (StepRunner)
    optimizer_device = device if options.cuda_graphs else None
    resumed = resume(path, fingerprint, model, schedule,
                     lambda: recipe.optimizer(model.trainable_parameters(), optimizer_device), optimizer_device)
    if resumed is not None:
        return resumed
    torch.manual_seed(recipe.seed)
    result = FitResult(best_state=copy.deepcopy(model.state_dict()), best_epoch=0, best_score=-math.inf)
    if recipe.head_warmup_iterations and model.frozen_groups < model.num_groups:
        warm_up_head(model, train, recipe, device, options, result)
        if on_epoch is not None:
            on_epoch(result.history)
    optimizer = recipe.optimizer(model.trainable_parameters(), optimizer_device)
    save_checkpoint(path, fingerprint, model, optimizer, schedule, result, epoch=0)
    return result, optimizer, 1


def warm_up_head(model: GroupedNet, train: BatchSource, recipe: Recipe, device: torch.device,
                 options: RuntimeOptions, result: FitResult) -> None:
    """Train the new head alone for ``recipe.head_warmup_iterations`` steps, every group held,
    before the unfrozen groups join (a transfer's random head would otherwise push large
    gradients into them). Eager steps: a graph is not worth capturing for a few hundred."""
    lc, iterations = model.frozen_groups, recipe.head_warmup_iterations
    log.info("head warm-up: %d iterations with groups 1..%d held", iterations, model.num_groups)
    model.freeze(model.num_groups)
    head_optimizer = recipe.optimizer(model.trainable_parameters())
    batches = endless_batches(train, recipe.batch_size, recipe.seed)
    limited = (next(batches) for _ in range(iterations))
    started = time.perf_counter()
    eager = replace(options, cuda_graphs=False, prefetch=options.prefetch and not is_resident(train))
    try:
        loss = train_steps(StepRunner(model, head_optimizer, device, eager, recipe.batch_size), limited,
                           desc="the head warm-up", total=iterations)
    except TrainingDiverged as error:
        raise diverged(error, recipe) from None
    model.freeze(lc)
    result.history.append({"epoch": 0, "phase": "head warm-up", "train_loss": loss,
                           "seconds": time.perf_counter() - started})


def train_one_epoch(runner: StepRunner, source: BatchSource, recipe: Recipe, epoch: int,
                    examples: int) -> tuple[float, float]:
    """One pass over `source` in the epoch's order: the mean training loss and the seconds it took."""
    started = time.perf_counter()
    try:
        loss = train_steps(runner, source.batches(recipe.batch_size, epoch_generator(recipe.seed, epoch)),
                           desc=f"epoch {epoch}/{recipe.epochs}", total=math.ceil(examples / recipe.batch_size))
    except TrainingDiverged as error:
        raise diverged(error, recipe) from None
    return loss, time.perf_counter() - started  # the loss's .item() waited for the device: the epoch is done


def keep_if_best(result: FitResult, model: GroupedNet, epoch: int, score: float) -> None:
    """Keep the model of `epoch` (on the host) if its validation `score` beats every earlier one."""
    if score > result.best_score:
        result.best_score, result.best_epoch = score, epoch
        result.best_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
