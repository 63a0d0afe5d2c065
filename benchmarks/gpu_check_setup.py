"""What the GPU check's parts (benchmarks/gpu_check_parts.py) train and time, shared with its test
(tests/test_gpu_check.py): a :class:`Run` (the device, how much data, the report), the paper's
models, synthetic batch sources in the real formats, recipes, and the rates and trainings the
parts compare. It needs torch, numpy, pyarrow and PyYAML only (the GPU machine has no more).
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import yaml

import gpu_check_runner as runner
from gradual_transfer.data.arrow import SpeechFeatures, SpeechWriter, speech_schema
from gradual_transfer.data.images import ImageArrays, ImageSource, write_images
from gradual_transfer.models import build_model
from gradual_transfer.recipe import Recipe, RuntimeOptions
from gradual_transfer.tasks.speech import FrameSource
from gradual_transfer.train import fit

REPO = Path(__file__).resolve().parents[1]

CASES = {
    "densenet40": dict(input_shape=(3, 32, 32), classes=10, batch=64),
    "model_a": dict(input_shape=(1, 21, 40), classes=144, batch=256),
    "model_b": dict(input_shape=(1, 21, 40), classes=144, batch=256),
}

# How much data each part trains on: what an H100 runs in the time benchmarks/README.md gives.
# short: what --budget runs by default, the whole check in one call of under 5 minutes (estimated
# from the H100 rates there, not yet run); quick: enough to run every path on a CPU in about a
# minute. None: the configured precision (and layout) of each model only.
SIZES = {
    "full": dict(feeding_images=64 * 300, feeding_utterances=400, resident_images=700, resident_utterances=30,
                 graph_images=64 * 60, graph_utterances=200, graph_frames=300, ragged_images=1000,
                 ragged_utterances=20, ragged_frames=301, steps=60, warmup_steps=15, batch_divisor=1,
                 precisions=(False, True), graph_precisions=(False, True),
                 layouts=((False, False), (True, False), (True, True)), lease_hold=3.0),
    "short": dict(feeding_images=64 * 100, feeding_utterances=150, resident_images=700, resident_utterances=30,
                  graph_images=64 * 30, graph_utterances=100, graph_frames=300, ragged_images=500,
                  ragged_utterances=10, ragged_frames=301, steps=30, warmup_steps=10, batch_divisor=1,
                  precisions=(False, True), graph_precisions=None, layouts=None, lease_hold=1.5),
    "quick": dict(feeding_images=24, feeding_utterances=1, resident_images=24, resident_utterances=2,
                  graph_images=12, graph_utterances=1, graph_frames=48, ragged_images=14, ragged_utterances=1,
                  ragged_frames=37, steps=2, warmup_steps=1, batch_divisor=16, precisions=(False,),
                  graph_precisions=(False,), layouts=((False, False),), lease_hold=0.5),
}


@dataclass
class Run:
    """One run of the check: the device it checks (``cpu`` runs the logic without a GPU), how much
    data each part trains on (:data:`SIZES`), narrow models (``quick``) and the report."""

    device: torch.device
    size: dict
    quick: bool = False
    report: runner.Report = field(default_factory=lambda: runner.Report(None))

    def batch_size(self, name: str) -> int:
        return CASES[name]["batch"] // self.size["batch_divisor"]

    def synchronize(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()


def paper_config() -> dict:
    with open(REPO / "config.yaml") as f:  # plain YAML: the check needs no jsonschema on the GPU machine
        return yaml.safe_load(f)


def architectures(quick: bool) -> dict:
    archs = paper_config()["architectures"]
    if quick:
        from grid_cost import quick as narrow  # the same groups at a fraction of the width

        archs = {name: narrow(arch) for name, arch in archs.items()}
    return archs


def configured(run: Run, name: str) -> RuntimeOptions:
    """The config's ``runtime`` settings of a model on the run's device."""
    return RuntimeOptions.from_config(paper_config()["runtime"], name, run.device)


def fresh_model(run: Run, name: str, channels_last: bool, dropout: float | None = None):
    torch.manual_seed(0)
    case = CASES[name]
    arch = architectures(run.quick)[name]
    arch = arch if dropout is None else {**arch, "dropout": dropout}
    model = build_model(arch, case["classes"], case["input_shape"]).to(run.device)
    return model.to(memory_format=torch.channels_last) if channels_last else model


def from_state(run: Run, name: str, state: dict, channels_last: bool):
    model = fresh_model(run, name, channels_last, dropout=0.0)
    model.load_state_dict(state)
    return model


def image_source(tmp: Path, n: int) -> ImageSource:
    rng = np.random.default_rng(0)
    write_images(tmp / "images.arrow", rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8),
                 rng.integers(0, 10, n).astype(np.int16))
    return ImageSource(ImageArrays(tmp / "images.arrow"), [0.49, 0.48, 0.45], [0.25, 0.24, 0.26])


def frame_source(tmp: Path, utterances: int, frames: int) -> FrameSource:
    rng = np.random.default_rng(0)
    with SpeechWriter(tmp / "speech.arrow", speech_schema(40)) as writer:
        for u in range(utterances):
            writer.add(dict(utt_id=f"u{u:05d}", speaker=f"s{u % 50}", num_frames=frames,
                            feats=rng.standard_normal((frames, 40), dtype=np.float32),
                            targets=rng.integers(0, 144, frames).astype(np.int16)))
    stats = {"mean": [0.0] * 40, "std": [1.0] * 40}
    return FrameSource(SpeechFeatures(tmp / "speech.arrow"), np.arange(utterances), stats, context=10)


def recipe_for(run: Run, name: str, epochs: int, milestones=(), warmup: int = 0) -> Recipe:
    return Recipe(batch_size=run.batch_size(name), epochs=epochs, lr=0.01, momentum=0.9, nesterov=True,
                  weight_decay=1e-4, schedule={"kind": "step", "milestones": list(milestones), "gamma": 0.1},
                  early_stopping_patience=0, seed=0, head_warmup_iterations=warmup)


def resident_steps_per_s(run: Run, model, batch, classes, input_shape, bf16, channels_last, steps=None,
                         warmup=None) -> float:
    """Forward, loss, backward, SGD step on one batch already on the device."""
    steps = run.size["steps"] if steps is None else steps
    warmup = run.size["warmup_steps"] if warmup is None else warmup
    x = torch.randn(batch, *input_shape, device=run.device)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, classes, (batch,), device=run.device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
    model.train()
    for i in range(warmup + steps):
        if i == warmup:
            run.synchronize()
            start = time.perf_counter()
        with torch.autocast(run.device.type, dtype=torch.bfloat16, enabled=bf16 and run.device.type == "cuda"):
            loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    run.synchronize()
    return steps / (time.perf_counter() - start)


def fit_rate(run: Run, name: str, source, options: RuntimeOptions) -> float:
    """Examples per second of the second epoch of ``fit`` (the first warms cuDNN up)."""
    recipe = recipe_for(run, name, epochs=2)
    model = fresh_model(run, name, options.channels_last)
    with tempfile.TemporaryDirectory() as checkpoints:
        fit(model, source, lambda m: {"score": 0.0}, recipe, checkpoint_dir=checkpoints, fingerprint={},
            device=run.device, options=options, stop_after_epoch=1)
        run.synchronize()
        start = time.perf_counter()
        fit(model, source, lambda m: {"score": 0.0}, recipe, checkpoint_dir=checkpoints, fingerprint={},
            device=run.device, options=options)  # resumes: exactly epoch 2
        run.synchronize()
        return len(source) / (time.perf_counter() - start)


def briefly_trained(run: Run, name: str, source) -> dict:
    """The state of a model of the seed of :func:`fresh_model` (dropout off) after one epoch of
    plain training on `source`. Comparisons start from it, not from a fresh model: a fresh
    DenseNet-40's BatchNorm statistics are the initial ones, so its head warm-up (the body in
    eval mode) starts at a loss of ~8e3, which ``fit`` refuses as diverged."""
    model = fresh_model(run, name, False, dropout=0.0)
    with tempfile.TemporaryDirectory() as checkpoints:
        fit(model, source, lambda m: {"score": 0.0}, recipe_for(run, name, epochs=1), checkpoint_dir=checkpoints,
            fingerprint={}, device=run.device, options=RuntimeOptions(channels_last=False))
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def flat(model) -> torch.Tensor:
    return torch.cat([p.detach().float().flatten() for p in model.parameters()])


def trained(run: Run, name: str, source, options: RuntimeOptions, start: dict,
            milestones=(0.67,)) -> tuple[list[float], torch.Tensor]:
    """(training loss per epoch, all parameters flattened) after a head warm-up and three epochs
    of ``fit`` of a dropout-free model (dropout draws may be consumed differently by a graph) from
    `start`; the learning rate drops ×0.1 after two epochs."""
    model = from_state(run, name, start, options.channels_last)
    with tempfile.TemporaryDirectory() as checkpoints:
        result = fit(model, source, lambda m: {"score": 0.0}, recipe_for(run, name, 3, milestones, warmup=5),
                     checkpoint_dir=checkpoints, fingerprint={}, device=run.device, options=options)
    return [h["train_loss"] for h in result.history], flat(model)


def same_training(run: Run, name: str, source, options: RuntimeOptions, start: dict) -> dict:
    """How far the graphed run's weights end from the eager run's, against how far a second eager
    run lands (the device's own non-determinism: the baseline), how far training moved them, and
    how far a wrong learning rate (no drop after epoch 2) would take them."""
    begin = flat(from_state(run, name, start, False))
    eager_options = dataclasses.replace(options, cuda_graphs=False)
    eager_losses, eager = trained(run, name, source, eager_options, start)
    again_losses, again = trained(run, name, source, eager_options, start)
    graphed_losses, graphed = trained(run, name, source, dataclasses.replace(options, cuda_graphs=True), start)
    _, wrong = trained(run, name, source, eager_options, start, milestones=())
    moved = (eager - begin).abs().max().item()
    return dict(model=name, bf16=options.amp_bf16, examples=len(source), eager_losses=eager_losses,
                eager_again_losses=again_losses, graphed_losses=graphed_losses, weights_moved=moved,
                eager_again_off_eager=(again - eager).abs().max().item() / moved,
                graphed_off_eager=(graphed - eager).abs().max().item() / moved,
                wrong_lr_off_eager=(wrong - eager).abs().max().item() / moved)
