"""One training job of the study, primary or transfer: build the model, train it with
:func:`gradual_transfer.train.fit`, evaluate the selected model on validation and test (the
test split is touched once, here), then write the model and its metrics atomically.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Callable

import torch

from gradual_transfer.checkpoints import load_model_file, save_model
from gradual_transfer.data.images import ImageArrays, ImageSource
from gradual_transfer.io import read_json, write_json
from gradual_transfer.models import GroupedNet, build_model
from gradual_transfer.train import (BatchSource, Recipe, RuntimeOptions, accuracy, clear_checkpoints, fit, predict,
                                    select_device)
from gradual_transfer.transfer import transfer_model

log = logging.getLogger(__name__)

IMAGE_INPUT_SHAPE = [3, 32, 32]  # channels, height, width: what the DenseNet sees


def input_stamps(paths: list[str | Path]) -> dict:
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


def primary_model(arch: dict, num_classes: int, input_shape: list[int], seed: int) -> GroupedNet:
    torch.manual_seed(seed)
    return build_model(arch, num_classes, input_shape)


def secondary_model(source_path: str | Path, arch_name: str, arch: dict, num_classes: int, lc: int,
                    seed: int) -> GroupedNet:
    source = load_model_file(source_path, arch_name, arch)
    return transfer_model(source, arch_name, arch, num_classes, lc, seed)


def train_and_save(model: GroupedNet, *, train: BatchSource, validation: BatchSource, test: BatchSource,
                   evaluate: Callable[[GroupedNet, BatchSource], dict], recipe: Recipe, arch_name: str, arch: dict,
                   num_classes: int, input_shape: list[int], out_model: str | Path, out_metrics: str | Path,
                   fingerprint: dict, options: RuntimeOptions, meta: dict) -> dict:
    """Fit, select the best epoch on validation, score validation and test, write both files.
    `evaluate(model, source)` returns metrics with ``score`` (higher is better)."""
    device = select_device()
    log.info("training on %s: %s, l_c = %d of %d groups", device, arch_name, model.frozen_groups, model.num_groups)
    result = fit(model, train, lambda m: evaluate(m, validation), recipe, checkpoint_dir=resume_dir(out_model),
                 fingerprint=fingerprint, device=device, options=options)
    model.load_state_dict(result.best_state)
    metrics = {
        **meta, "lc": model.frozen_groups, "num_groups": model.num_groups,
        "best_epoch": result.best_epoch, "stopped_early": result.stopped_early, "history": result.history,
        "validation": evaluate(model, validation), "test": evaluate(model, test),
    }
    model.to("cpu").to(memory_format=torch.contiguous_format)
    save_model(out_model, model, arch_name=arch_name, arch=arch, num_classes=num_classes, input_shape=input_shape,
               meta={k: v for k, v in meta.items() if isinstance(v, (str, int, float))})
    write_json(out_metrics, metrics)
    clear_checkpoints(resume_dir(out_model))
    log.info("validation %s, test %s", metrics["validation"], metrics["test"])
    return metrics


# --- images ----------------------------------------------------------------------------------

def image_sources(data_dir: str | Path) -> dict[str, ImageSource]:
    data_dir = Path(data_dir)
    stats = read_json(data_dir / "stats.json")
    return {split: ImageSource(ImageArrays(data_dir / f"{split}.arrow"), stats["mean"], stats["std"])
            for split in ("train", "validation", "test")}


def image_evaluator(batch_size: int, options: RuntimeOptions) -> Callable[[GroupedNet, BatchSource], dict]:
    def evaluate(model: GroupedNet, source: BatchSource) -> dict:
        log_posteriors, targets = predict(model, source, batch_size, select_device(), options)
        value = 100.0 * accuracy(log_posteriors, targets)
        return {"score": value, "accuracy": value}
    return evaluate


def run_image_job(*, data_dir: str | Path, arch_name: str, arch: dict, num_classes: int, recipe_entry: dict,
                  out_model: str | Path, out_metrics: str | Path, fingerprint: dict, runtime: dict,
                  source_model: str | Path | None = None, lc: int = 0, meta: dict | None = None) -> dict:
    """A primary image model (no `source_model`) or a transfer from `source_model` at l_c = `lc`."""
    recipe = Recipe.from_config(recipe_entry)
    options = RuntimeOptions.from_config(runtime, arch_name, select_device())
    sources = image_sources(data_dir)
    if source_model is None:
        model = primary_model(arch, num_classes, IMAGE_INPUT_SHAPE, recipe.seed)
    else:
        model = secondary_model(source_model, arch_name, arch, num_classes, lc, recipe.seed)
    return train_and_save(model, train=sources["train"], validation=sources["validation"], test=sources["test"],
                          evaluate=image_evaluator(max(recipe.batch_size, 256), options), recipe=recipe,
                          arch_name=arch_name, arch=arch, num_classes=num_classes, input_shape=IMAGE_INPUT_SHAPE,
                          out_model=out_model, out_metrics=out_metrics, fingerprint=fingerprint, options=options,
                          meta=meta or {})
