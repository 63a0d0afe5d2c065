"""The CUDA paths, checked on a GPU machine in one short run (no Snakemake needed there).

1. Device lease: two jobs ask for the machine's GPU(s) at once; each must get a device of its
   own, and when there are more jobs than devices the extra one waits until a device is freed.
2. Training-step throughput of DenseNet-40 (batch 64, 32×32×3) and Model A / Model B (batch
   256, 21×40 frames) with the data already on the GPU: fp32 / bf16 autocast × channels_last.
3. Feeding: ``fit`` over the real batch sources (memory-mapped Arrow, gathered on the host),
   with the config's ``runtime`` settings for the model, with and without the prefetch thread,
   against the same steps on resident data. A ratio near 1 means the host keeps the GPU busy.
4. Data on the device (``runtime.cuda.resident_data_mb``) against streamed data: the same
   batches, scores and posterior archives through the real evaluators, and a fine-tuning with
   the frozen prefix cached from resident data, eager and graphed.
5. Graphs and data on the device (``runtime.cuda.cuda_graphs``, ``resident_data_mb``): per model,
   first whether a run whose step is a CUDA graph trains as the eager run (three epochs, a
   learning-rate drop after the first two, a ragged last batch: the losses per epoch side by
   side); then ``fit`` on resident data, eager and graphed, in fp32, bf16 and bf16 +
   channels_last: what ``runtime.cuda_by_architecture`` should say.
6. Optional ``torch.compile`` of DenseNet-40 (compile time and steady throughput).

    python benchmarks/gpu_check.py [--out gpu_check.json] [--compile] [--only graphs ...]

Prints one JSON document (and writes it to --out); benchmarks/README.md quotes the latest.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
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

from gradual_transfer.data.arrow import SpeechFeatures, SpeechWriter, speech_schema  # noqa: E402
from gradual_transfer.data.images import ImageArrays, ImageSource, write_images  # noqa: E402
from gradual_transfer.models import build_model  # noqa: E402
from gradual_transfer.speech import FrameSource  # noqa: E402
from gradual_transfer.train import Recipe, RuntimeOptions, fit  # noqa: E402

LEASE_CHILD = """
import json, os, sys, time
sys.path.insert(0, {repo!r})
from gradual_transfer.devices import lease_gpu
asked = time.time()
lease = lease_gpu(lock_dir={lock_dir!r}, poll_seconds=0.1)
import torch
print(json.dumps(dict(pid=os.getpid(), asked=asked, leased=time.time(), device=lease.device,
                      cuda_visible=os.environ.get("CUDA_VISIBLE_DEVICES"), cuda_available=torch.cuda.is_available(),
                      device_count=torch.cuda.device_count())), flush=True)
x = torch.ones(1024, device="cuda").sum().item()  # really use the device
time.sleep({hold})
"""


def check_lease(hold: float = 3.0) -> dict:
    proc = Path("/proc/driver/nvidia/gpus")
    gpus = torch.cuda.device_count()  # the parent may initialise CUDA: the children lease on their own
    if not proc.is_dir() or len(list(proc.iterdir())) != gpus:
        return {"gpus": gpus, "error": f"{proc} does not list the {gpus} CUDA device(s): the lease would not see them"}
    jobs = gpus + 1  # one more job than devices: it must wait for a release
    with tempfile.TemporaryDirectory() as lock_dir:
        env = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
        code = LEASE_CHILD.format(repo=str(REPO), lock_dir=lock_dir, hold=hold)
        procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env)
                 for _ in range(jobs)]
        reports = [json.loads(p.communicate(timeout=120)[0]) for p in procs]
    reports.sort(key=lambda r: r["leased"])
    concurrent = reports[:gpus]
    waiter = reports[-1]
    return {
        "gpus": gpus,
        "jobs": reports,
        "distinct_devices_for_concurrent_jobs": len({r["device"] for r in concurrent}) == gpus,
        "each_job_sees_one_device": all(r["device_count"] == 1 and r["cuda_available"] for r in reports),
        "extra_job_waited_s": round(waiter["leased"] - waiter["asked"], 2),
        "extra_job_waited_for_a_release": waiter["leased"] - waiter["asked"] > hold * 0.8,
    }


DEVICE = torch.device("cuda")  # (a CPU smoke test of the script's logic sets it to the CPU)

CASES = {
    "densenet40": dict(input_shape=(3, 32, 32), classes=10, batch=64),
    "model_a": dict(input_shape=(1, 21, 40), classes=144, batch=256),
    "model_b": dict(input_shape=(1, 21, 40), classes=144, batch=256),
}


def paper_config() -> dict:
    with open(REPO / "config.yaml") as f:  # plain YAML: the check needs no jsonschema on the GPU machine
        return yaml.safe_load(f)


def architectures() -> dict:
    return paper_config()["architectures"]


def runtime_config() -> dict:
    return paper_config()["runtime"]


def fresh_model(name: str, channels_last: bool, dropout: float | None = None):
    torch.manual_seed(0)
    case = CASES[name]
    arch = architectures()[name] if dropout is None else {**architectures()[name], "dropout": dropout}
    model = build_model(arch, case["classes"], case["input_shape"]).to(DEVICE)
    return model.to(memory_format=torch.channels_last) if channels_last else model


def resident_steps_per_s(model, batch, classes, input_shape, bf16, channels_last, steps=60, warmup=15) -> float:
    """Forward, loss, backward, SGD step on one batch already on the GPU."""
    x = torch.randn(batch, *input_shape, device="cuda")
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, classes, (batch,), device="cuda")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
    model.train()
    for i in range(warmup + steps):
        if i == warmup:
            torch.cuda.synchronize()
            start = time.perf_counter()
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    torch.cuda.synchronize()
    return steps / (time.perf_counter() - start)


def throughput() -> list[dict]:
    torch.backends.cudnn.benchmark = True
    rows = []
    for name, case in CASES.items():
        for bf16 in (False, True):
            for channels_last in (False, True):
                model = fresh_model(name, channels_last)
                rate = resident_steps_per_s(model, case["batch"], case["classes"], case["input_shape"], bf16, channels_last)
                rows.append(dict(model=name, bf16=bf16, channels_last=channels_last,
                                 examples_per_s=round(rate * case["batch"])))
    return rows


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


def synchronize() -> None:
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()


def fit_rate(name: str, source, options: RuntimeOptions) -> float:
    """Examples per second of the second epoch of ``fit`` (the first warms cuDNN up)."""
    case = CASES[name]
    recipe = Recipe(batch_size=case["batch"], epochs=2, lr=0.01, momentum=0.9, nesterov=True, weight_decay=1e-4,
                    schedule={"kind": "step", "milestones": [], "gamma": 0.1}, early_stopping_patience=0, seed=0)
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


def feeding() -> list[dict]:
    """One epoch of ``fit`` over host-gathered batches vs. the same number of resident steps."""
    torch.backends.cudnn.benchmark = True
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        frames = frame_source(tmp, 400, 300)
        sources = {"densenet40": image_source(tmp, 64 * 300), "model_a": frames, "model_b": frames}
        for name, source in sources.items():
            case = CASES[name]
            # the host side alone: how fast batches are gathered, normalised and pinned
            start = time.perf_counter()
            gathered = sum(len(y) for x, y in source.batches(case["batch"], torch.Generator().manual_seed(0)))
            gather_rate = gathered / (time.perf_counter() - start)
            options = RuntimeOptions.from_config(runtime_config(), name, torch.device("cuda"))
            plain = fit_rate(name, source, dataclasses.replace(options, prefetch=False))
            prefetched = fit_rate(name, source, dataclasses.replace(options, prefetch=True))
            resident = resident_steps_per_s(fresh_model(name, options.channels_last), case["batch"], case["classes"],
                                            case["input_shape"], options.amp_bf16, options.channels_last) * case["batch"]
            rows.append(dict(model=name, examples=len(source), amp_bf16=options.amp_bf16,
                             channels_last=options.channels_last, configured_prefetch=options.prefetch,
                             host_gather_per_s=round(gather_rate), fit_per_s=round(plain),
                             fit_prefetched_per_s=round(prefetched), resident_per_s=round(resident),
                             fit_over_resident=round(plain / resident, 3),
                             prefetched_over_resident=round(prefetched / resident, 3)))
    return rows


def resident() -> dict:
    """Data held on the device against the same data streamed from the host, on the GPU: the same
    batches, the same scores from the real evaluators (images; SER's per-utterance decisions),
    the same posterior archives, and a fine-tuning with the frozen prefix cached from resident
    data (its targets then live on the device too)."""
    from gradual_transfer import images as image_task
    from gradual_transfer import speech as speech_task

    report = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        image_streamed = image_source(tmp, 700)
        frames_streamed = frame_source(tmp, 30, 50)
        options = RuntimeOptions.from_config(runtime_config(), "model_a", DEVICE)
        for name, streamed, batch in (("images", image_streamed, 64), ("frames", frames_streamed, 256)):
            on_device = streamed.to_device(DEVICE)
            same = all(torch.equal(x.to(DEVICE), rx) and torch.equal(y.to(DEVICE), ry)
                       for (x, y), (rx, ry) in zip(streamed.batches(batch, torch.Generator().manual_seed(3)),
                                                   on_device.batches(batch, torch.Generator().manual_seed(3)),
                                                   strict=True))
            report[f"{name}_same_batches"] = same
        model = fresh_model("densenet40", False)
        evaluate = image_task.evaluator({}, 256, options)
        report["images_same_accuracy"] = evaluate(model, image_streamed) == evaluate(model, image_streamed.to_device(DEVICE))
        model = fresh_model("model_a", False)
        evaluate = speech_task.evaluator({"dataset": "timit"}, 1024, options)
        report["frames_same_scores"] = (evaluate(model, frames_streamed)
                                        == evaluate(model, frames_streamed.to_device(DEVICE)))
        for name, source in (("streamed", frames_streamed), ("resident", frames_streamed.to_device(DEVICE))):
            speech_task.write_posteriors(model, source, tmp / f"{name}.ark", tmp / f"{name}.scp", 1024, options)
        report["same_posterior_archives"] = (tmp / "streamed.ark").read_bytes() == (tmp / "resident.ark").read_bytes()
        recipe = Recipe(batch_size=64, epochs=2, lr=0.01, momentum=0.9, nesterov=True, weight_decay=1e-4,
                        schedule={"kind": "step", "milestones": [], "gamma": 0.1}, early_stopping_patience=0,
                        seed=0, head_warmup_iterations=3)
        cached = dataclasses.replace(RuntimeOptions.from_config(runtime_config(), "densenet40", DEVICE),
                                     frozen_cache_mb=4096)
        for graphed in (False, True):
            model = fresh_model("densenet40", False).freeze(5)
            evaluate = image_task.evaluator({}, 256, cached)
            with tempfile.TemporaryDirectory() as checkpoints:
                result = fit(model, image_streamed.to_device(DEVICE), lambda m: evaluate(m, image_streamed), recipe,
                             checkpoint_dir=checkpoints, fingerprint={}, device=DEVICE,
                             options=dataclasses.replace(cached, cuda_graphs=graphed))
            report[f"cached_prefix_fit{'_graphed' if graphed else ''}"] = dict(
                start_group=result.start_group, losses=[h["train_loss"] for h in result.history])
    print(json.dumps(report), flush=True)
    return report


def trained(name: str, source, options: RuntimeOptions, milestones=(0.67,)) -> tuple[list[float], torch.Tensor]:
    """(training loss per epoch, all parameters flattened) after three epochs of ``fit`` of a
    dropout-free model (dropout draws may be consumed differently by a graph) from the seed of
    :func:`fresh_model`; the learning rate drops ×0.1 after two epochs."""
    case = CASES[name]
    recipe = Recipe(batch_size=case["batch"], epochs=3, lr=0.01, momentum=0.9, nesterov=True,
                    weight_decay=1e-4, schedule={"kind": "step", "milestones": list(milestones), "gamma": 0.1},
                    early_stopping_patience=0, seed=0, head_warmup_iterations=5)
    model = fresh_model(name, options.channels_last, dropout=0.0)
    with tempfile.TemporaryDirectory() as checkpoints:
        result = fit(model, source, lambda m: {"score": 0.0}, recipe, checkpoint_dir=checkpoints, fingerprint={},
                     device=DEVICE, options=options)
    return [h["train_loss"] for h in result.history], flat(model)


def flat(model) -> torch.Tensor:
    return torch.cat([p.detach().float().flatten() for p in model.parameters()])


def same_training(name: str, source, options: RuntimeOptions) -> dict:
    """How far the graphed run's weights end from the eager run's, against how far training moved
    them and how far a wrong learning rate (no drop after epoch 2) would take them."""
    start = flat(fresh_model(name, options.channels_last, dropout=0.0))
    eager_losses, eager = trained(name, source, dataclasses.replace(options, cuda_graphs=False))
    graphed_losses, graphed = trained(name, source, dataclasses.replace(options, cuda_graphs=True))
    _, wrong = trained(name, source, dataclasses.replace(options, cuda_graphs=False), milestones=())
    moved = (eager - start).abs().max().item()
    return dict(model=name, bf16=options.amp_bf16, examples=len(source), eager_losses=eager_losses,
                graphed_losses=graphed_losses, weights_moved=moved,
                graphed_off_eager=(graphed - eager).abs().max().item() / moved,
                wrong_lr_off_eager=(wrong - eager).abs().max().item() / moved)


def graphs() -> dict:
    """Graphed against eager ``fit`` on resident data: the same training, and how much faster.
    A failing measurement is recorded with its error and the others go on."""
    torch.backends.cudnn.benchmark = True
    report = {"same_training": [], "throughput": []}

    def attempt(part: str, row: dict, measure) -> None:
        try:
            row.update(measure())
        except Exception as error:  # noqa: BLE001 - one GPU run should report everything it can
            row["error"] = f"{type(error).__name__}: {error}"
        report[part].append(row)
        print(json.dumps(row), flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        frames = frame_source(tmp, 400, 300).to_device(DEVICE)
        images = image_source(tmp, 64 * 150).to_device(DEVICE)
        (tmp / "ragged").mkdir()
        ragged_frames = frame_source(tmp / "ragged", 20, 301).to_device(DEVICE)  # 6,020 frames: 23 batches + 132
        ragged_images = image_source(tmp / "ragged", 1000).to_device(DEVICE)  # 15 batches and 40 more
        sources = {"densenet40": (images, ragged_images), "model_a": (frames, ragged_frames),
                   "model_b": (frames, ragged_frames)}
        for name, (source, ragged) in sources.items():
            base = dataclasses.replace(RuntimeOptions.from_config(runtime_config(), name, DEVICE), prefetch=False)
            for bf16 in (False, True):
                options = dataclasses.replace(base, amp_bf16=bf16, channels_last=False, frozen_cache_mb=0)
                attempt("same_training", {"model": name, "bf16": bf16},
                        lambda: same_training(name, ragged, options))
            for bf16, channels_last in ((False, False), (True, False), (True, True)):
                def rates() -> dict:
                    row = {}
                    for graphed in (False, True):
                        options = dataclasses.replace(base, amp_bf16=bf16, channels_last=channels_last,
                                                      cuda_graphs=graphed)
                        row["graphed_per_s" if graphed else "eager_per_s"] = round(fit_rate(name, source, options))
                    row["graphed_over_eager"] = round(row["graphed_per_s"] / row["eager_per_s"], 3)
                    return row
                attempt("throughput", {"model": name, "bf16": bf16, "channels_last": channels_last,
                                       "examples": len(source)}, rates)
    return report


def compiled() -> dict:
    case = CASES["densenet40"]
    eager = resident_steps_per_s(fresh_model("densenet40", True), case["batch"], case["classes"], case["input_shape"], True, True)
    model = fresh_model("densenet40", True)
    start = time.perf_counter()
    compiled_model = torch.compile(model)
    first = resident_steps_per_s(compiled_model, case["batch"], case["classes"], case["input_shape"], True, True,
                                 steps=1, warmup=0)
    compile_s = time.perf_counter() - start - 1 / first
    rate = resident_steps_per_s(compiled_model, case["batch"], case["classes"], case["input_shape"], True, True)
    return dict(model="densenet40", eager_examples_per_s=round(eager * case["batch"]),
                compiled_examples_per_s=round(rate * case["batch"]), speed_up=round(rate / eager, 2),
                compile_s=round(compile_s, 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path)
    parser.add_argument("--compile", action="store_true")
    parts = {"lease": check_lease, "throughput": throughput, "feeding": feeding, "resident": resident, "graphs": graphs}
    parser.add_argument("--skip", nargs="*", default=[], choices=list(parts))
    parser.add_argument("--only", nargs="*", choices=list(parts), help="run these parts only")
    args = parser.parse_args()
    report = {"torch": torch.__version__, "device": torch.cuda.get_device_name(0)}
    for part, measure in parts.items():
        if part not in args.skip and (not args.only or part in args.only):
            report[part] = measure()
            print(json.dumps(report[part], indent=1), flush=True)
    if args.compile:
        report["compile"] = compiled()
        print(json.dumps(report["compile"], indent=1), flush=True)
    if args.out:
        args.out.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
