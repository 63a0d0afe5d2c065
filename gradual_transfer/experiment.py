"""One training job of the study, primary or transfer (decided once, by its :class:`Job`):
build the model, train it with :func:`gradual_transfer.train.fit`, evaluate the selected model on
validation and test (the test split is touched once, here), then write the model and its
metrics atomically.

What differs between the experiments (where the data come from, how a model is scored, what is
written after training) lives in :mod:`gradual_transfer.tasks`;
this module holds what every job shares.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Callable, Mapping

import torch

from gradual_transfer import cost, device_memory
from gradual_transfer.curves import EpochLog
from gradual_transfer.checkpoints import load_model_file, require_primary_of, save_model
from gradual_transfer.data.errors import DataError
from gradual_transfer.data.kinds import DatasetKind
from gradual_transfer.grid import Job
from gradual_transfer.io import all_or_none, make_folder, remove_empty_folders, write_json
from gradual_transfer.models import GroupedNet, build_model
from gradual_transfer.batches import BatchSource, is_resident, place_on_device
from gradual_transfer.devices import select_device
from gradual_transfer.recipe import Recipe, RuntimeOptions
from gradual_transfer.resume import clear_checkpoints, input_stamps, resume_dir
from gradual_transfer.tasks import for_kind
from gradual_transfer.train import fit
from gradual_transfer.transfer import transfer_model

log = logging.getLogger(__name__)


def check_labels(sources: Mapping[str, BatchSource], classes: int, task: str) -> None:
    """Every label of the data has an output of the network: a label beyond ``classes`` would
    stop training with an IndexError after minutes, or hours."""
    for source in sources.values():
        path, labels = source.labels()
        if len(labels) and (labels.min() < 0 or labels.max() >= classes):
            bad = int(labels.max()) if labels.max() >= classes else int(labels.min())
            raise DataError(f"{path}: holds label {bad}, but tasks.{task}.classes is {classes} (labels "
                            f"0..{classes - 1}). Set tasks.{task}.classes to the number of classes of its dataset"
                            f"{f' (at least {bad + 1})' if bad >= classes else ''}.")


def initial_model(job: Job, network: dict, num_classes: int, input_shape: list[int], seed: int,
                  source_model: str | Path | None) -> GroupedNet:
    """A fresh network for a primary (started from the entry's pretrained ``weights`` where it
    names them); for a transfer, the source's body (``copy``) or its first l_c groups
    (``reinit``), fresh layers above, a fresh head, and the first l_c groups frozen."""
    if not job.is_transfer:
        torch.manual_seed(seed)
        return build_model(network, num_classes, input_shape, name=job.arch, pretrained=True)
    if source_model is None:
        raise ValueError(f"{job.folder}: a transfer needs its source model ({job.source_job.folder})")
    source = load_model_file(source_model, job.arch, network)
    require_primary_of(source, source_model, job.source)
    return transfer_model(source, job.arch, network, num_classes, job.lc, seed, job.upper_groups)


def train_and_save(model: GroupedNet, *, job: Job, train: BatchSource, validation: BatchSource, test: BatchSource,
                   evaluate: Callable[[GroupedNet, BatchSource], dict], recipe: Recipe, network: dict,
                   num_classes: int, input_shape: list[int], out_model: str | Path, out_metrics: str | Path,
                   fingerprint: dict, device: torch.device, options: RuntimeOptions, cache_dir: str | Path | None = None,
                   curves: EpochLog | None = None) -> dict:
    """Fit, select the best epoch on validation, score validation and test, write both files.
    `evaluate(model, source)` returns metrics with ``score`` (higher is better); `curves`
    records the history as training goes."""
    log.info("training on %s: %s, l_c = %d of %d groups%s", device, job.arch, model.frozen_groups, model.num_groups,
             ", the groups above re-initialised" if job.upper_groups == "reinit" else "")
    made = make_folder(Path(out_model).parent)
    try:
        result = fit(model, train, lambda m: evaluate(m, validation), recipe, checkpoint_dir=resume_dir(out_model),
                     fingerprint=fingerprint, device=device, options=options, on_epoch=curves)
    except BaseException:
        remove_empty_folders(made)  # a refused or diverged job leaves no empty folder (a checkpoint keeps it)
        raise
    model.load_state_dict(result.best_state)
    step_flops = cost.cached_train_step_flops(model, network, input_shape, recipe.batch_size, result.start_group,
                                              cache_dir)
    metrics = {
        **job.meta(), "num_groups": model.num_groups,
        "best_epoch": result.best_epoch, "stopped_early": result.stopped_early, "history": result.history,
        "validation": evaluate(model, validation), "test": evaluate(model, test),
        "cost": cost.summary(result.history, step_flops, recipe.batch_size, device, options.amp_bf16, settings={
            "amp_bf16": options.amp_bf16 and device.type == "cuda", "channels_last": options.channels_last,
            "cuda_graphs": options.cuda_graphs and device.type == "cuda",
            "data_on_device": is_resident(train), "frozen_prefix_cached": result.start_group > 0}),
    }
    model.to("cpu").to(memory_format=torch.contiguous_format)
    with all_or_none():  # a model without its metrics (or the reverse) is never left behind
        save_model(out_model, model, arch_name=job.arch, arch=network, num_classes=num_classes,
                   input_shape=input_shape, meta=job.meta())
        write_json(out_metrics, metrics)
    clear_checkpoints(resume_dir(out_model))
    log.info("validation %s, test %s", metrics["validation"], metrics["test"])
    rate, mfu = metrics["cost"]["examples_per_s"], metrics["cost"]["mfu"]
    log.info("cost: %.0f examples/s, %.3g GFLOP per step, MFU %s", rate or 0, step_flops.total / 1e9,
             f"{mfu:.1%}" if mfu is not None else "n/a (no peak known for this device)")
    return metrics


def run_job(params: Mapping, inputs: Mapping[str, str], outputs: Mapping[str, str], runtime: dict, *,
            kind: DatasetKind, cache_dir: str | Path | None = None, history: str | Path | None = None,
            tensorboard_dir: str | Path | None = None) -> dict:
    """Train one model of the study.

    `params` are the job's params as :func:`gradual_transfer.grid.training_params` makes them
    (identity, settings, stage version); `kind` is the registry's kind of the target's dataset,
    which decides the task's data and scoring (:func:`gradual_transfer.tasks.for_kind`);
    `inputs` and `outputs` name its files by role (the
    data files of the target task, ``source`` for a transfer; ``model``, ``metrics`` and, for
    ASR, the posterior archives). A checkpoint is resumed only if it was written under the
    same params and inputs. `cache_dir` keeps what is worth computing once per grid (the FLOP
    count of a training step). The training curves go to `history` (CSV) and, when tensorboard
    is installed, to event files in `tensorboard_dir`."""
    job = Job.from_dict(params["job"])
    settings = params["settings"]
    task = for_kind(kind)
    recipe = Recipe.from_config(settings["recipe"])
    recipe = replace(recipe, seed=recipe.seed + job.seed)  # a seed of the study shifts every draw
    device = select_device()  # once for the job: everything below is given it
    options = RuntimeOptions.from_config(runtime, job.arch, device)
    with device_memory.out_of_memory_named(device, job.arch):
        host_sources = task.sources(kind, settings, inputs, job.fold)
        check_labels(host_sources, settings["classes"], job.target)
        sources = place_on_device(host_sources, device, options.resident_data_mb)
        input_shape = sources["train"].input_shape
        model = initial_model(job, settings["network"], settings["classes"], input_shape, recipe.seed,
                              inputs.get("source"))
        batch = task.evaluation_batch_size(recipe)
        evaluate = task.evaluator(kind, settings, batch, device, options)
        fingerprint = {"params": dict(params), "inputs": input_stamps(inputs.values())}
        curves = EpochLog(history, tensorboard_dir)
        metrics = train_and_save(model, job=job, train=sources["train"], validation=sources["validation"],
                                 test=sources["test"], evaluate=evaluate, recipe=recipe, network=settings["network"],
                                 num_classes=settings["classes"], input_shape=input_shape, out_model=outputs["model"],
                                 out_metrics=outputs["metrics"], fingerprint=fingerprint, device=device,
                                 options=options, cache_dir=cache_dir, curves=curves)
        curves.close()
        task.after_training(model, sources, outputs, batch, device, options)
    return metrics
