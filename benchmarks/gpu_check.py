"""The CUDA paths, checked on a GPU machine in one short run (no Snakemake needed there).

1. Device lease: two jobs ask for the machine's GPU(s) at once; each must get a device of its
   own, and when there are more jobs than devices the extra one waits until a device is freed.
2. Training-step throughput of DenseNet-40 (batch 64, 32×32×3) and Model A / Model B (batch
   256, 21×40 frames) with the data already on the GPU: fp32 / bf16 autocast × channels_last.
3. Feeding: ``fit`` over the real batch sources (memory-mapped Arrow, gathered on the host),
   with the config's ``runtime`` settings for the model, with and without the prefetch thread,
   against the same steps on resident data. A ratio near 1 means the host keeps the GPU busy.
4. Data on the device (``runtime.cuda.resident_data_mb``) against streamed data: the same
   batches, scores and per-utterance posteriors through the real evaluators, and a fine-tuning
   with the frozen prefix cached from resident data, eager and graphed.
5. Graphs and data on the device (``runtime.cuda.cuda_graphs``, ``resident_data_mb``): per model,
   first whether a run whose step is a CUDA graph trains as the eager run (three epochs, a
   learning-rate drop after the first two, a ragged last batch), next to how far a second eager
   run lands from the first (cuDNN's autotuned kernels and TF32 make two eager runs differ); then
   ``fit`` on resident data, eager and graphed, in fp32, bf16 and bf16 + channels_last: what
   ``runtime.cuda_by_architecture`` should say.
6. Optional ``torch.compile`` of DenseNet-40 (compile time and steady throughput).

    python benchmarks/gpu_check.py --budget 270 --out gpu_check.json   # the whole check, shortened, in 270 s
    python benchmarks/gpu_check.py [--size full] [--only lease resident graphs ...] [--compile]
    python benchmarks/gpu_check.py --device cpu --quick --only resident graphs   # the logic, on a CPU

It always reports (benchmarks/gpu_check_runner.py): each part, check and row runs guarded and
``--out`` is rewritten after each, with the seconds each part took; CUDA that does not start is
recorded with the driver and PyTorch versions and the reason; ``--budget`` ends the run by then,
whatever runs. It needs torch, numpy, pyarrow, torchvision and PyYAML only (no Snakemake,
kaldiio, soundfile, jsonschema, kaldialign or tensorboard: the GPU machine has none of them; the
per-utterance posteriors are compared as the archive writer receives them).
benchmarks/README.md quotes the latest run and says what ``--size short`` leaves out.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))  # (gpu_check_runner; grid_cost, for --quick)

import gpu_check_runner as runner  # noqa: E402
from gradual_transfer.data.arrow import SpeechFeatures, SpeechWriter, speech_schema  # noqa: E402
from gradual_transfer.data.images import ImageArrays, ImageSource, write_images  # noqa: E402
from gradual_transfer.data.kinds import KINDS  # noqa: E402
from gradual_transfer.models import build_model  # noqa: E402
from gradual_transfer.tasks.speech import FrameSource  # noqa: E402
from gradual_transfer.recipe import Recipe, RuntimeOptions  # noqa: E402
from gradual_transfer.train import fit  # noqa: E402

LEASE_CHILD = """
import json, os, sys, time
sys.path.insert(0, {repo!r})
from gradual_transfer.devices import lease_gpu
asked = time.time()
try:
    lease = lease_gpu(lock_dir={lock_dir!r}, poll_seconds=0.1, busy_gpus={busy!r}, timeout={timeout})
except TimeoutError as error:
    print(json.dumps(dict(pid=os.getpid(), error=str(error))), flush=True)
    sys.exit()
import torch
print(json.dumps(dict(pid=os.getpid(), asked=asked, leased=time.time(), device=lease.device, reason=lease.reason,
                      cuda_visible=os.environ.get("CUDA_VISIBLE_DEVICES"), cuda_available=torch.cuda.is_available(),
                      device_count=torch.cuda.device_count())), flush=True)
x = torch.ones(1024, device="cuda").sum().item()  # really use the device
time.sleep({hold})
"""


def lease_children(lock_dir: str, jobs: int, hold: float, busy: str, timeout: float) -> list[dict]:
    """`jobs` child jobs asking for a lease at once (each waits at most `timeout` s for it, and is
    killed, with anything it started, if it has not ended `hold` + 60 s later)."""
    env = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    code = LEASE_CHILD.format(repo=str(REPO), lock_dir=lock_dir, hold=hold, busy=busy, timeout=timeout)
    return runner.run_children(code, jobs, max(1.0, min(timeout + hold + 60, REPORT.left_s())), env)


def check_lease() -> None:
    """Concurrent jobs get distinct GPUs and an extra one waits for a release (``share``: another
    container's process on the GPU must not make them wait); the lease counts the GPUs CUDA sees
    and reads nvidia-smi; a GPU this (parent) process uses counts as busy for a job
    (``busy_gpus: avoid``) and is leased with ``share``."""
    from gradual_transfer.devices import query_gpus, visible_devices

    gpus, hold = torch.cuda.device_count(), SIZE["lease_hold"]  # (no CUDA context yet)
    if gpus == 0:
        raise RuntimeError("no CUDA device: nothing to lease")
    environ = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    REPORT.check("lease", "counted", lambda: {
        "gpus": gpus, "counted_by_the_lease": len(visible_devices(environ)),
        "nvidia_smi": {k: dataclasses.asdict(g) for k, g in (query_gpus(environ) or {}).items() if k.isdigit()}})

    def concurrent() -> dict:
        with tempfile.TemporaryDirectory() as lock_dir:  # one more job than devices: it must wait for a release
            jobs = lease_children(lock_dir, gpus + 1, hold, "share", timeout=2 * hold + 30)
        if any("leased" not in job for job in jobs):
            return {"jobs": jobs, "error": "a child job got no lease"}
        jobs.sort(key=lambda job: job["leased"])
        waited = jobs[-1]["leased"] - jobs[-1]["asked"]
        return {"jobs": jobs, "distinct_devices_for_concurrent_jobs": len({j["device"] for j in jobs[:gpus]}) == gpus,
                "each_job_sees_one_device": all(j["device_count"] == 1 and j["cuda_available"] for j in jobs),
                "extra_job_waited_s": round(waited, 2), "extra_job_waited_for_a_release": waited > hold * 0.8}
    REPORT.check("lease", "concurrent_jobs", concurrent)

    def busy() -> dict:
        in_use = [torch.ones(1, device=f"cuda:{i}") for i in range(gpus)]  # this process now runs on every GPU
        with tempfile.TemporaryDirectory() as lock_dir:
            avoided = lease_children(lock_dir, 1, 0, "avoid", timeout=1.0)[0]
            shared = lease_children(lock_dir, 1, 0, "share", timeout=1.0)[0]
        del in_use
        return {"avoid": avoided, "share": shared,
                "a_gpu_another_program_uses_is_avoided": f"pid {os.getpid()}" in avoided.get("error", ""),
                "and_shared_with_share": shared.get("device") is not None}
    REPORT.check("lease", "busy_gpus", busy)


DEVICE = torch.device("cuda")  # --device cpu runs the script's logic on a CPU

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
SIZE = SIZES["full"]
QUICK = False
ORDER = ["lease", "resident", "graphs", "throughput", "feeding"]  # what matters most first, for a budget


def batch_size(name: str) -> int:
    return CASES[name]["batch"] // SIZE["batch_divisor"]


def paper_config() -> dict:
    with open(REPO / "config.yaml") as f:  # plain YAML: the check needs no jsonschema on the GPU machine
        return yaml.safe_load(f)


def architectures() -> dict:
    archs = paper_config()["architectures"]
    if QUICK:
        from grid_cost import quick  # the same groups at a fraction of the width

        archs = {name: quick(arch) for name, arch in archs.items()}
    return archs


def runtime_config() -> dict:
    return paper_config()["runtime"]


def fresh_model(name: str, channels_last: bool, dropout: float | None = None):
    torch.manual_seed(0)
    case = CASES[name]
    arch = architectures()[name] if dropout is None else {**architectures()[name], "dropout": dropout}
    model = build_model(arch, case["classes"], case["input_shape"]).to(DEVICE)
    return model.to(memory_format=torch.channels_last) if channels_last else model


def synchronize() -> None:
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()


def resident_steps_per_s(model, batch, classes, input_shape, bf16, channels_last, steps=None, warmup=None) -> float:
    """Forward, loss, backward, SGD step on one batch already on the device."""
    steps = SIZE["steps"] if steps is None else steps
    warmup = SIZE["warmup_steps"] if warmup is None else warmup
    x = torch.randn(batch, *input_shape, device=DEVICE)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, classes, (batch,), device=DEVICE)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
    model.train()
    for i in range(warmup + steps):
        if i == warmup:
            synchronize()
            start = time.perf_counter()
        with torch.autocast(DEVICE.type, dtype=torch.bfloat16, enabled=bf16 and DEVICE.type == "cuda"):
            loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    synchronize()
    return steps / (time.perf_counter() - start)


def configured(name: str) -> RuntimeOptions:
    return RuntimeOptions.from_config(runtime_config(), name, DEVICE)


def throughput() -> None:
    torch.backends.cudnn.benchmark = True
    for name, case in CASES.items():
        for bf16 in SIZE["precisions"]:
            for channels_last in (False, True):
                def rate(bf16=bf16, channels_last=channels_last) -> dict:
                    steps = resident_steps_per_s(fresh_model(name, channels_last), batch_size(name), case["classes"],
                                                 case["input_shape"], bf16, channels_last)
                    return {"examples_per_s": round(steps * batch_size(name))}
                REPORT.row("throughput", "rows", dict(model=name, bf16=bf16, channels_last=channels_last), rate)


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


def recipe_for(name: str, epochs: int, milestones=(), warmup: int = 0) -> Recipe:
    return Recipe(batch_size=batch_size(name), epochs=epochs, lr=0.01, momentum=0.9, nesterov=True, weight_decay=1e-4,
                  schedule={"kind": "step", "milestones": list(milestones), "gamma": 0.1}, early_stopping_patience=0,
                  seed=0, head_warmup_iterations=warmup)


def fit_rate(name: str, source, options: RuntimeOptions) -> float:
    """Examples per second of the second epoch of ``fit`` (the first warms cuDNN up)."""
    recipe = recipe_for(name, epochs=2)
    model = fresh_model(name, options.channels_last)
    with tempfile.TemporaryDirectory() as checkpoints:
        fit(model, source, lambda m: {"score": 0.0}, recipe, checkpoint_dir=checkpoints, fingerprint={},
            device=DEVICE, options=options, stop_after_epoch=1)
        synchronize()
        start = time.perf_counter()
        fit(model, source, lambda m: {"score": 0.0}, recipe, checkpoint_dir=checkpoints, fingerprint={},
            device=DEVICE, options=options)  # resumes: exactly epoch 2
        synchronize()
        return len(source) / (time.perf_counter() - start)


def feeding() -> None:
    """One epoch of ``fit`` over host-gathered batches vs. the same number of resident steps."""
    torch.backends.cudnn.benchmark = True
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        frames = frame_source(tmp, SIZE["feeding_utterances"], 300)
        sources = {"densenet40": image_source(tmp, SIZE["feeding_images"]), "model_a": frames, "model_b": frames}
        for name, source in sources.items():
            def rates(name=name, source=source) -> dict:
                case, options = CASES[name], configured(name)
                # the host side alone: how fast batches are gathered, normalised and pinned
                start = time.perf_counter()
                gathered = sum(len(y) for x, y in source.batches(batch_size(name), torch.Generator().manual_seed(0)))
                gather_rate = gathered / (time.perf_counter() - start)
                plain = fit_rate(name, source, dataclasses.replace(options, prefetch=False))
                prefetched = fit_rate(name, source, dataclasses.replace(options, prefetch=True))
                resident = resident_steps_per_s(fresh_model(name, options.channels_last), batch_size(name),
                                                case["classes"], case["input_shape"], options.amp_bf16,
                                                options.channels_last) * batch_size(name)
                return dict(amp_bf16=options.amp_bf16, channels_last=options.channels_last,
                            configured_prefetch=options.prefetch, host_gather_per_s=round(gather_rate),
                            fit_per_s=round(plain), fit_prefetched_per_s=round(prefetched),
                            resident_per_s=round(resident), fit_over_resident=round(plain / resident, 3),
                            prefetched_over_resident=round(prefetched / resident, 3))
            REPORT.row("feeding", "rows", {"model": name, "examples": len(source)}, rates)


def briefly_trained(name: str, source) -> dict:
    """The state of a model of the seed of :func:`fresh_model` (dropout off) after one epoch of
    plain training on `source`. Comparisons start from it, not from a fresh model: a fresh
    DenseNet-40's BatchNorm statistics are the initial ones, so its head warm-up (the body in
    eval mode) starts at a loss of ~8e3, which ``fit`` refuses as diverged."""
    model = fresh_model(name, False, dropout=0.0)
    with tempfile.TemporaryDirectory() as checkpoints:
        fit(model, source, lambda m: {"score": 0.0}, recipe_for(name, epochs=1), checkpoint_dir=checkpoints,
            fingerprint={}, device=DEVICE, options=RuntimeOptions(channels_last=False))
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def from_state(name: str, state: dict, channels_last: bool):
    model = fresh_model(name, channels_last, dropout=0.0)
    model.load_state_dict(state)
    return model


def resident() -> None:
    """Data held on the device against the same data streamed from the host: the same batches,
    the same scores from the real evaluators (images; SER's per-utterance decisions), the same
    per-utterance posteriors (what the ASR archive would hold), and a fine-tuning with the frozen
    prefix cached from resident data (its targets then live on the device too), eager and
    graphed from one briefly trained model. Each check is saved as it is done."""
    from gradual_transfer.tasks import images as image_task
    from gradual_transfer.tasks import speech as speech_task

    def same(a, b) -> bool:
        return all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        images = image_source(tmp, SIZE["resident_images"])
        frames = frame_source(tmp, SIZE["resident_utterances"], 50)
        options = configured("model_a")
        for name, streamed, batch in (("images", images, 64), ("frames", frames, 256)):
            REPORT.check("resident", f"{name}_same_batches", lambda streamed=streamed, batch=batch: all(
                torch.equal(x.to(DEVICE), rx) and torch.equal(y.to(DEVICE), ry)
                for (x, y), (rx, ry) in zip(streamed.batches(batch, torch.Generator().manual_seed(3)),
                                            streamed.to_device(DEVICE).batches(batch, torch.Generator().manual_seed(3)),
                                            strict=True)))

        def images_same_accuracy() -> bool:
            evaluate = image_task.evaluator(KINDS["cifar10"], {}, 256, DEVICE, options)
            model = fresh_model("densenet40", False)
            return evaluate(model, images) == evaluate(model, images.to_device(DEVICE))
        REPORT.check("resident", "images_same_accuracy", images_same_accuracy)
        model = fresh_model("model_a", False)

        def frames_same_scores() -> bool:
            evaluate = speech_task.evaluator(KINDS["timit"], {}, 1024, DEVICE, options)
            return evaluate(model, frames) == evaluate(model, frames.to_device(DEVICE))
        REPORT.check("resident", "frames_same_scores", frames_same_scores)

        def same_posteriors() -> bool:
            streamed, held = (speech_task.utterance_posteriors(model, source, 1024, DEVICE, options)
                              for source in (frames, frames.to_device(DEVICE)))
            return [u for u, _ in streamed] == [u for u, _ in held] and same([p for _, p in streamed],
                                                                            [p for _, p in held])
        REPORT.check("resident", "same_posteriors", same_posteriors)
        recipe = recipe_for("densenet40", epochs=2, warmup=3)
        cached = dataclasses.replace(configured("densenet40"), frozen_cache_mb=4096)
        resident_images = images.to_device(DEVICE)
        start = {}
        for graphed in (False, True):
            def cached_prefix_fit(graphed=graphed) -> dict:
                if not start:
                    start.update(briefly_trained("densenet40", resident_images))
                model = from_state("densenet40", start, False).freeze(5)
                evaluate = image_task.evaluator(KINDS["cifar10"], {}, 256, DEVICE, cached)
                with tempfile.TemporaryDirectory() as checkpoints:
                    result = fit(model, resident_images, lambda m: evaluate(m, images), recipe,
                                 checkpoint_dir=checkpoints, fingerprint={}, device=DEVICE,
                                 options=dataclasses.replace(cached, cuda_graphs=graphed))
                return dict(start_group=result.start_group, losses=[h["train_loss"] for h in result.history])
            REPORT.check("resident", f"cached_prefix_fit{'_graphed' if graphed else ''}", cached_prefix_fit)


def trained(name: str, source, options: RuntimeOptions, start: dict,
            milestones=(0.67,)) -> tuple[list[float], torch.Tensor]:
    """(training loss per epoch, all parameters flattened) after a head warm-up and three epochs
    of ``fit`` of a dropout-free model (dropout draws may be consumed differently by a graph) from
    `start`; the learning rate drops ×0.1 after two epochs."""
    model = from_state(name, start, options.channels_last)
    with tempfile.TemporaryDirectory() as checkpoints:
        result = fit(model, source, lambda m: {"score": 0.0}, recipe_for(name, 3, milestones, warmup=5),
                     checkpoint_dir=checkpoints, fingerprint={}, device=DEVICE, options=options)
    return [h["train_loss"] for h in result.history], flat(model)


def flat(model) -> torch.Tensor:
    return torch.cat([p.detach().float().flatten() for p in model.parameters()])


def same_training(name: str, source, options: RuntimeOptions, start: dict) -> dict:
    """How far the graphed run's weights end from the eager run's, against how far a second eager
    run lands (the device's own non-determinism: the baseline), how far training moved them, and
    how far a wrong learning rate (no drop after epoch 2) would take them."""
    begin = flat(from_state(name, start, False))
    eager_options = dataclasses.replace(options, cuda_graphs=False)
    eager_losses, eager = trained(name, source, eager_options, start)
    again_losses, again = trained(name, source, eager_options, start)
    graphed_losses, graphed = trained(name, source, dataclasses.replace(options, cuda_graphs=True), start)
    _, wrong = trained(name, source, eager_options, start, milestones=())
    moved = (eager - begin).abs().max().item()
    return dict(model=name, bf16=options.amp_bf16, examples=len(source), eager_losses=eager_losses,
                eager_again_losses=again_losses, graphed_losses=graphed_losses, weights_moved=moved,
                eager_again_off_eager=(again - eager).abs().max().item() / moved,
                graphed_off_eager=(graphed - eager).abs().max().item() / moved,
                wrong_lr_off_eager=(wrong - eager).abs().max().item() / moved)


def graphs() -> None:
    """Graphed against eager ``fit`` on resident data: the same training, and how much faster.
    Each row is saved as it comes; a failing one is recorded with its error and the others go on."""
    torch.backends.cudnn.benchmark = True
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        frames = frame_source(tmp, SIZE["graph_utterances"], SIZE["graph_frames"]).to_device(DEVICE)
        images = image_source(tmp, SIZE["graph_images"]).to_device(DEVICE)
        (tmp / "ragged").mkdir()
        # not a whole number of batches: 6,020 frames are 23 batches of 256 and 132; 1,000 images 15 of 64 and 40
        ragged_frames = frame_source(tmp / "ragged", SIZE["ragged_utterances"], SIZE["ragged_frames"]).to_device(DEVICE)
        ragged_images = image_source(tmp / "ragged", SIZE["ragged_images"]).to_device(DEVICE)
        sources = {"densenet40": (images, ragged_images), "model_a": (frames, ragged_frames),
                   "model_b": (frames, ragged_frames)}
        for name, (source, ragged) in sources.items():
            base = dataclasses.replace(configured(name), prefetch=False)
            start = {}
            for bf16 in SIZE["graph_precisions"] or (base.amp_bf16,):
                options = dataclasses.replace(base, amp_bf16=bf16, channels_last=False, frozen_cache_mb=0)

                def compared(options=options) -> dict:
                    if not start:
                        start.update(briefly_trained(name, ragged))
                    return same_training(name, ragged, options, start)
                REPORT.row("graphs", "same_training", {"model": name, "bf16": bf16}, compared)
            for bf16, channels_last in SIZE["layouts"] or ((base.amp_bf16, base.channels_last),):
                def rates(bf16=bf16, channels_last=channels_last) -> dict:
                    row = {}
                    for graphed in (False, True):
                        options = dataclasses.replace(base, amp_bf16=bf16, channels_last=channels_last,
                                                      cuda_graphs=graphed)
                        row["graphed_per_s" if graphed else "eager_per_s"] = round(fit_rate(name, source, options))
                    row["graphed_over_eager"] = round(row["graphed_per_s"] / row["eager_per_s"], 3)
                    return row
                REPORT.row("graphs", "throughput", {"model": name, "bf16": bf16, "channels_last": channels_last,
                                                    "examples": len(source)}, rates)


def compiled() -> dict:
    case = CASES["densenet40"]
    batch = batch_size("densenet40")
    eager = resident_steps_per_s(fresh_model("densenet40", True), batch, case["classes"], case["input_shape"], True,
                                 True)
    model = fresh_model("densenet40", True)
    start = time.perf_counter()
    compiled_model = torch.compile(model)
    first = resident_steps_per_s(compiled_model, batch, case["classes"], case["input_shape"], True, True,
                                 steps=1, warmup=0)
    compile_s = time.perf_counter() - start - 1 / first
    rate = resident_steps_per_s(compiled_model, batch, case["classes"], case["input_shape"], True, True)
    return dict(model="densenet40", eager_examples_per_s=round(eager * batch),
                compiled_examples_per_s=round(rate * batch), speed_up=round(rate / eager, 2),
                compile_s=round(compile_s, 1))


REPORT = runner.Report(None)
PARTS = {"lease": check_lease, "resident": resident, "graphs": graphs, "throughput": throughput, "feeding": feeding,
         "compile": compiled}
LEFT_OUT = {"full": "nothing", "short": "graphs: the configured precision and layout of each model only (fp32 for "
                                        "densenet40 and model_a, bf16 + channels_last for model_b), on half the data; "
                                        "throughput: 30 timed steps; feeding: a third of the data; lease: 1.5 s holds",
            "quick": "tiny data and narrow models: the logic only, on a CPU"}


def main(argv: list[str] | None = None) -> int:
    global DEVICE, SIZE, QUICK, REPORT
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="the JSON report, rewritten after each check and row")
    parser.add_argument("--budget", type=float, metavar="SECONDS",
                        help="end by then whatever runs (what did not run is listed); implies --size short")
    parser.add_argument("--size", choices=list(SIZES), help="full (default), short (default with --budget) or quick")
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--skip", nargs="*", default=[], choices=ORDER)
    parser.add_argument("--only", nargs="*", choices=ORDER, help="run these parts only")
    parser.add_argument("--device", default="cuda", help="cpu: run the logic without a GPU (with --quick)")
    parser.add_argument("--quick", action="store_true", help="--size quick: checks the script runs")
    args = parser.parse_args(argv)
    size = args.size or ("quick" if args.quick else "short" if args.budget else "full")
    DEVICE, QUICK, SIZE = torch.device(args.device), size == "quick", SIZES[size]
    if QUICK:
        torch.set_num_threads(1)  # batches of a few examples: more threads only wait for each other
    parts = [p for p in ORDER if p not in args.skip and (not args.only or p in args.only)] + ["compile"] * args.compile
    REPORT = runner.Report(args.out, args.budget, torch=torch.__version__, size=size, parts=parts,
                           left_out=LEFT_OUT[size], device=str(DEVICE))
    REPORT.start_watchdog()
    if DEVICE.type == "cuda":
        REPORT["cuda"] = runner.cuda_status()
        if not REPORT["cuda"]["usable"]:  # recorded, with the versions and the reason: no part can run
            REPORT.save()
            print(json.dumps(REPORT["cuda"], indent=1), flush=True)
            return 1
        REPORT["device"] = REPORT["cuda"]["name"]
    REPORT.save()
    runner.run_parts(REPORT, {part: PARTS[part] for part in parts})
    return 0


if __name__ == "__main__":
    sys.exit(main())
