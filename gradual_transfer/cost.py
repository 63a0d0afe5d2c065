"""What a training job cost: throughput, model-FLOPs utilisation, memory, device time.

Every training job writes these into its ``metrics.json`` under ``cost``, and the results
table's companion ``cost.tsv`` adds them up per job type, so the grid's device-hours are
measured, not guessed.

- **FLOPs of a training step** are counted once per job by ``torch.utils.flop_counter`` on a
  copy of the model on the ``meta`` device (no memory, no arithmetic): forward and backward of
  one batch, as the job runs it (from the first unfrozen group when the frozen prefix is
  cached; backward only through the groups that train).
- **MFU** = counted FLOPs per example × examples per second ÷ the device's peak. The peak is
  the dense tensor-core rate from the vendor's datasheet for the precision the job ran in:
  bf16 with ``amp_bf16``, else TF32 (cuDNN runs fp32 convolutions on TF32 tensor cores by
  default). CPUs have no such number here: their MFU is left empty and the achieved rate given.
"""

from __future__ import annotations

import copy
import hashlib
import json
import resource
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

from gradual_transfer.io import write_json
from gradual_transfer.models import GroupedNet

# Dense peak TFLOP/s (no sparsity) by device name, first match wins: NVIDIA datasheets.
PEAK_TFLOPS = (
    ("H100 PCIe", {"bf16": 756.0, "tf32": 378.0}),
    ("H100", {"bf16": 989.4, "tf32": 494.7}),     # SXM5
    ("H200", {"bf16": 989.4, "tf32": 494.7}),     # SXM: the H100's compute, more memory
    ("A100", {"bf16": 312.0, "tf32": 156.0}),
    ("L40S", {"bf16": 362.0, "tf32": 183.0}),
)


def train_step_flops(model: GroupedNet, input_shape: list[int], batch_size: int, start_group: int = 0) -> int:
    """FLOPs of one SGD step on a batch (forward from `start_group`, loss, backward)."""
    from torch.utils.flop_counter import FlopCounterMode

    meta = copy.deepcopy(model).to("meta").train()
    x = torch.empty(batch_size, *input_shape, device="meta")
    y = torch.zeros(batch_size, dtype=torch.long, device="meta")
    with torch.no_grad():
        h = meta.forward_groups(x, 0, start_group) if start_group else x
    with FlopCounterMode(display=False) as counter:
        loss = F.cross_entropy(meta(h, start_group), y)
        loss.backward()
    return int(counter.get_total_flops())


def cached_train_step_flops(model: GroupedNet, network: dict, input_shape: list[int], batch_size: int,
                            start_group: int, cache_dir: str | Path | None) -> int:
    """:func:`train_step_flops`, remembered in `cache_dir` (one small file per network, input
    shape, classes, batch size, frozen and first groups, and torch version): the count is
    cheap, but the counter's first use in a process imports ~1 s of torch modules, which
    dozens of small CPU jobs would each pay."""
    if cache_dir is None:
        return train_step_flops(model, input_shape, batch_size, start_group)
    key = json.dumps({"network": network, "classes": model.head.out_features, "input_shape": list(input_shape),
                      "batch_size": batch_size, "frozen": model.frozen_groups, "start_group": start_group,
                      "torch": torch.__version__}, sort_keys=True)
    path = Path(cache_dir) / "step_flops" / f"{hashlib.sha1(key.encode()).hexdigest()[:20]}.json"
    try:
        entry = json.loads(path.read_text())
        if entry["key"] == key:
            return int(entry["flops"])
    except (OSError, ValueError, KeyError):
        pass
    flops = train_step_flops(model, input_shape, batch_size, start_group)
    write_json(path, {"key": key, "flops": flops})
    return flops


def device_peak(device: torch.device, bf16: bool) -> tuple[float | None, str | None]:
    """(peak TFLOP/s, what it is) of `device` for the precision a job ran in, or (None, None)."""
    if device.type != "cuda":
        return None, None
    name = torch.cuda.get_device_name(device)
    precision = "bf16" if bf16 else "tf32"
    for key, peaks in PEAK_TFLOPS:
        if key in name:
            return peaks[precision], f"{name}: dense {precision} tensor-core peak, {peaks[precision]:g} TFLOP/s"
    return None, None


def peak_memory_mb(device: torch.device) -> tuple[float, str]:
    """The job's peak memory: CUDA memory allocated by tensors on a GPU, else the process's RSS."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20, "cuda allocated"
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return rss / (2**20 if sys.platform == "darwin" else 2**10), "host rss"


def summary(history: list[dict], step_flops: int, batch_size: int, device: torch.device, bf16: bool,
            settings: dict | None = None) -> dict:
    """The ``cost`` entry of a job's metrics from its epoch history (warm-up excluded from the
    rates, included in the device time). `settings` are the speed settings the job ran with
    (precision, data on the device, graphs, frozen-prefix cache), so that a rate can be read
    against them."""
    epochs = [h for h in history if h.get("phase") != "head warm-up" and "seconds" in h]
    seconds = sum(h["seconds"] for h in epochs)
    examples = sum(h["examples_per_s"] * h["seconds"] for h in epochs)
    rate = examples / seconds if seconds else None
    flops_per_example = step_flops / batch_size
    achieved = flops_per_example * rate / 1e12 if rate else None
    peak, peak_source = device_peak(device, bf16)
    memory, memory_kind = peak_memory_mb(device)
    return {
        "device": device.type,
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "train_seconds": sum(h.get("seconds", 0.0) for h in history),
        "seconds_per_epoch": seconds / len(epochs) if epochs else None,
        "examples_per_s": rate,
        "step_flops": step_flops,
        "batch_size": batch_size,
        "achieved_tflops": achieved,
        "peak_tflops": peak,
        "peak": peak_source,
        "mfu": achieved / peak if achieved is not None and peak else None,
        "peak_memory_mb": memory,
        "peak_memory": memory_kind,
        "settings": dict(settings or {}),
    }
