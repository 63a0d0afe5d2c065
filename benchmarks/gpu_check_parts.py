"""The parts of the GPU check (benchmarks/gpu_check.py says what each measures), each a function of
a :class:`~gpu_check_setup.Run` that saves every check and row in the run's report as it goes
(benchmarks/gpu_check_runner.py: guarded, within the budget)."""

from __future__ import annotations

import dataclasses
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import gpu_check_runner as runner
from gpu_check_setup import (CASES, REPO, Run, briefly_trained, configured, fit_rate, frame_source, fresh_model,
                             from_state, image_source, recipe_for, resident_steps_per_s, same_training)
from gradual_transfer.data.kinds import KINDS
from gradual_transfer.train import fit

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


def lease_children(run: Run, lock_dir: str, jobs: int, hold: float, busy: str, timeout: float) -> list[dict]:
    """`jobs` child jobs asking for a lease at once (each waits at most `timeout` s for it, and is
    killed, with anything it started, if it has not ended `hold` + 60 s later)."""
    env = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    code = LEASE_CHILD.format(repo=str(REPO), lock_dir=lock_dir, hold=hold, busy=busy, timeout=timeout)
    return runner.run_children(code, jobs, max(1.0, min(timeout + hold + 60, run.report.left_s())), env)


def lease(run: Run) -> None:
    """Concurrent jobs get distinct GPUs and an extra one waits for a release (``share``: another
    container's process on the GPU must not make them wait); the lease counts the GPUs CUDA sees
    and reads nvidia-smi; a GPU this (parent) process uses counts as busy for a job
    (``busy_gpus: avoid``) and is leased with ``share``."""
    from gradual_transfer.devices import query_gpus, visible_devices

    gpus, hold = torch.cuda.device_count(), run.size["lease_hold"]  # (no CUDA context yet)
    if gpus == 0:
        raise RuntimeError("no CUDA device: nothing to lease")
    environ = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    run.report.check("lease", "counted", lambda: {
        "gpus": gpus, "counted_by_the_lease": len(visible_devices(environ)),
        "nvidia_smi": {k: dataclasses.asdict(g) for k, g in (query_gpus(environ) or {}).items() if k.isdigit()}})

    def concurrent() -> dict:
        with tempfile.TemporaryDirectory() as lock_dir:  # one more job than devices: it must wait for a release
            jobs = lease_children(run, lock_dir, gpus + 1, hold, "share", timeout=2 * hold + 30)
        if any("leased" not in job for job in jobs):
            return {"jobs": jobs, "error": "a child job got no lease"}
        jobs.sort(key=lambda job: job["leased"])
        waited = jobs[-1]["leased"] - jobs[-1]["asked"]
        return {"jobs": jobs, "distinct_devices_for_concurrent_jobs": len({j["device"] for j in jobs[:gpus]}) == gpus,
                "each_job_sees_one_device": all(j["device_count"] == 1 and j["cuda_available"] for j in jobs),
                "extra_job_waited_s": round(waited, 2), "extra_job_waited_for_a_release": waited > hold * 0.8}
    run.report.check("lease", "concurrent_jobs", concurrent)

    def busy() -> dict:
        in_use = [torch.ones(1, device=f"cuda:{i}") for i in range(gpus)]  # this process now runs on every GPU
        with tempfile.TemporaryDirectory() as lock_dir:
            avoided = lease_children(run, lock_dir, 1, 0, "avoid", timeout=1.0)[0]
            shared = lease_children(run, lock_dir, 1, 0, "share", timeout=1.0)[0]
        del in_use
        return {"avoid": avoided, "share": shared,
                "a_gpu_another_program_uses_is_avoided": f"pid {os.getpid()}" in avoided.get("error", ""),
                "and_shared_with_share": shared.get("device") is not None}
    run.report.check("lease", "busy_gpus", busy)


def throughput(run: Run) -> None:
    torch.backends.cudnn.benchmark = True
    for name, case in CASES.items():
        for bf16 in run.size["precisions"]:
            for channels_last in (False, True):
                def rate(bf16=bf16, channels_last=channels_last) -> dict:
                    steps = resident_steps_per_s(run, fresh_model(run, name, channels_last), run.batch_size(name),
                                                 case["classes"], case["input_shape"], bf16, channels_last)
                    return {"examples_per_s": round(steps * run.batch_size(name))}
                run.report.row("throughput", "rows", dict(model=name, bf16=bf16, channels_last=channels_last), rate)


def feeding(run: Run) -> None:
    """One epoch of ``fit`` over host-gathered batches vs. the same number of resident steps."""
    torch.backends.cudnn.benchmark = True
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        frames = frame_source(tmp, run.size["feeding_utterances"], 300)
        sources = {"densenet40": image_source(tmp, run.size["feeding_images"]), "model_a": frames, "model_b": frames}
        for name, source in sources.items():
            def rates(name=name, source=source) -> dict:
                case, options, batch = CASES[name], configured(run, name), run.batch_size(name)
                # the host side alone: how fast batches are gathered, normalised and pinned
                start = time.perf_counter()
                gathered = sum(len(y) for x, y in source.batches(batch, torch.Generator().manual_seed(0)))
                gather_rate = gathered / (time.perf_counter() - start)
                plain = fit_rate(run, name, source, dataclasses.replace(options, prefetch=False))
                prefetched = fit_rate(run, name, source, dataclasses.replace(options, prefetch=True))
                resident = resident_steps_per_s(run, fresh_model(run, name, options.channels_last), batch,
                                                case["classes"], case["input_shape"], options.amp_bf16,
                                                options.channels_last) * batch
                return dict(amp_bf16=options.amp_bf16, channels_last=options.channels_last,
                            configured_prefetch=options.prefetch, host_gather_per_s=round(gather_rate),
                            fit_per_s=round(plain), fit_prefetched_per_s=round(prefetched),
                            resident_per_s=round(resident), fit_over_resident=round(plain / resident, 3),
                            prefetched_over_resident=round(prefetched / resident, 3))
            run.report.row("feeding", "rows", {"model": name, "examples": len(source)}, rates)


def resident(run: Run) -> None:
    """Data held on the device against the same data streamed from the host: the same batches,
    the same scores from the real evaluators (images; SER's per-utterance decisions), the same
    per-utterance posteriors (what the ASR archive would hold), and a fine-tuning with the frozen
    prefix cached from resident data (its targets then live on the device too), eager and
    graphed from one briefly trained model. Each check is saved as it is done."""
    from gradual_transfer.tasks import images as image_task
    from gradual_transfer.tasks import speech as speech_task

    device, report = run.device, run.report

    def same(a, b) -> bool:
        return all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        images = image_source(tmp, run.size["resident_images"])
        frames = frame_source(tmp, run.size["resident_utterances"], 50)
        options = configured(run, "model_a")
        for name, streamed, batch in (("images", images, 64), ("frames", frames, 256)):
            report.check("resident", f"{name}_same_batches", lambda streamed=streamed, batch=batch: all(
                torch.equal(x.to(device), rx) and torch.equal(y.to(device), ry)
                for (x, y), (rx, ry) in zip(streamed.batches(batch, torch.Generator().manual_seed(3)),
                                            streamed.to_device(device).batches(batch, torch.Generator().manual_seed(3)),
                                            strict=True)))

        def images_same_accuracy() -> bool:
            evaluate = image_task.evaluator(KINDS["cifar10"], {}, 256, device, options)
            model = fresh_model(run, "densenet40", False)
            return evaluate(model, images) == evaluate(model, images.to_device(device))
        report.check("resident", "images_same_accuracy", images_same_accuracy)
        model = fresh_model(run, "model_a", False)

        def frames_same_scores() -> bool:
            evaluate = speech_task.evaluator(KINDS["timit"], {}, 1024, device, options)
            return evaluate(model, frames) == evaluate(model, frames.to_device(device))
        report.check("resident", "frames_same_scores", frames_same_scores)

        def same_posteriors() -> bool:
            streamed, held = (speech_task.utterance_posteriors(model, source, 1024, device, options)
                              for source in (frames, frames.to_device(device)))
            return [u for u, _ in streamed] == [u for u, _ in held] and same([p for _, p in streamed],
                                                                            [p for _, p in held])
        report.check("resident", "same_posteriors", same_posteriors)
        recipe = recipe_for(run, "densenet40", epochs=2, warmup=3)
        cached = dataclasses.replace(configured(run, "densenet40"), frozen_cache_mb=4096)
        resident_images = images.to_device(device)
        start = {}
        for graphed in (False, True):
            def cached_prefix_fit(graphed=graphed) -> dict:
                if not start:
                    start.update(briefly_trained(run, "densenet40", resident_images))
                model = from_state(run, "densenet40", start, False).freeze(5)
                evaluate = image_task.evaluator(KINDS["cifar10"], {}, 256, device, cached)
                with tempfile.TemporaryDirectory() as checkpoints:
                    result = fit(model, resident_images, lambda m: evaluate(m, images), recipe,
                                 checkpoint_dir=checkpoints, fingerprint={}, device=device,
                                 options=dataclasses.replace(cached, cuda_graphs=graphed))
                return dict(start_group=result.start_group, losses=[h["train_loss"] for h in result.history])
            report.check("resident", f"cached_prefix_fit{'_graphed' if graphed else ''}", cached_prefix_fit)


def graphs(run: Run) -> None:
    """Graphed against eager ``fit`` on resident data: the same training, and how much faster.
    Each row is saved as it comes; a failing one is recorded with its error and the others go on."""
    torch.backends.cudnn.benchmark = True
    size, device = run.size, run.device
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        frames = frame_source(tmp, size["graph_utterances"], size["graph_frames"]).to_device(device)
        images = image_source(tmp, size["graph_images"]).to_device(device)
        (tmp / "ragged").mkdir()
        # not a whole number of batches: 6,020 frames are 23 batches of 256 and 132; 1,000 images 15 of 64 and 40
        ragged_frames = frame_source(tmp / "ragged", size["ragged_utterances"], size["ragged_frames"]).to_device(device)
        ragged_images = image_source(tmp / "ragged", size["ragged_images"]).to_device(device)
        sources = {"densenet40": (images, ragged_images), "model_a": (frames, ragged_frames),
                   "model_b": (frames, ragged_frames)}
        for name, (source, ragged) in sources.items():
            base = dataclasses.replace(configured(run, name), prefetch=False)
            start = {}
            for bf16 in size["graph_precisions"] or (base.amp_bf16,):
                options = dataclasses.replace(base, amp_bf16=bf16, channels_last=False, frozen_cache_mb=0)

                def compared(options=options) -> dict:
                    if not start:
                        start.update(briefly_trained(run, name, ragged))
                    return same_training(run, name, ragged, options, start)
                run.report.row("graphs", "same_training", {"model": name, "bf16": bf16}, compared)
            for bf16, channels_last in size["layouts"] or ((base.amp_bf16, base.channels_last),):
                def rates(bf16=bf16, channels_last=channels_last) -> dict:
                    row = {}
                    for graphed in (False, True):
                        options = dataclasses.replace(base, amp_bf16=bf16, channels_last=channels_last,
                                                      cuda_graphs=graphed)
                        row["graphed_per_s" if graphed else "eager_per_s"] = round(fit_rate(run, name, source, options))
                    row["graphed_over_eager"] = round(row["graphed_per_s"] / row["eager_per_s"], 3)
                    return row
                run.report.row("graphs", "throughput", {"model": name, "bf16": bf16, "channels_last": channels_last,
                                                        "examples": len(source)}, rates)


def compiled(run: Run) -> dict:
    case, batch = CASES["densenet40"], run.batch_size("densenet40")
    eager = resident_steps_per_s(run, fresh_model(run, "densenet40", True), batch, case["classes"],
                                 case["input_shape"], True, True)
    model = fresh_model(run, "densenet40", True)
    start = time.perf_counter()
    compiled_model = torch.compile(model)
    first = resident_steps_per_s(run, compiled_model, batch, case["classes"], case["input_shape"], True, True,
                                 steps=1, warmup=0)
    compile_s = time.perf_counter() - start - 1 / first
    rate = resident_steps_per_s(run, compiled_model, batch, case["classes"], case["input_shape"], True, True)
    return dict(model="densenet40", eager_examples_per_s=round(eager * batch),
                compiled_examples_per_s=round(rate * batch), speed_up=round(rate / eager, 2),
                compile_s=round(compile_s, 1))


PARTS = {"lease": lease, "resident": resident, "graphs": graphs, "throughput": throughput, "feeding": feeding,
         "compile": compiled}
