"""What a training job cost: throughput, model-FLOPs utilisation, memory, device time.

Every training job writes these into its ``metrics.json`` under ``cost``, and :func:`cost_table`
(``cost.tsv``) adds them up per job type, so the grid's device-hours are
measured, not guessed.

- **FLOPs of a training step** are counted once per job by ``torch.utils.flop_counter`` on a
  copy of the model on the ``meta`` device (no memory, no arithmetic): forward and backward of
  one batch, as the job runs it (from the first unfrozen group when the frozen prefix is
  cached; backward only through the groups that train).
- **MFU** = counted FLOPs per example × examples per second ÷ the device's peak for what ran.
  The peak is the rate at which the step's FLOPs could run, each kind on the unit that runs it
  (vendors' datasheets, dense: no sparsity): with ``amp_bf16`` convolutions and matrix products
  run on bf16 tensor cores; in fp32 each runs on TF32 tensor cores only where PyTorch allows
  it (cuDNN's convolutions by default, ``torch.backends.cudnn.allow_tf32``; cuBLAS's matrix
  products only with ``torch.backends.cuda.matmul.allow_tf32``, off by default), else on FP32
  cores, 7× slower on an H100. The job records those units. A GPU is looked up by the exact
  name CUDA gives it: an H100 NVL is not an H100 SXM, and a MIG slice, named as such, gets no
  peak (it has a share of the GPU's units). CPUs have no such number here: their MFU is left
  empty and the achieved rate given.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import resource
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

from gradual_transfer.io import read_json, write_json
from gradual_transfer.models import GroupedNet

# Dense peak TFLOP/s (no sparsity) by the exact name CUDA gives the device: NVIDIA datasheets
# (H100: its whitepaper; NVL parts: their per-GPU datasheet rates). fp32 on FP32 cores; tf32
# and bf16 on tensor cores.
_HOPPER_SXM = {"fp32": 66.9, "tf32": 494.7, "bf16": 989.4}
_HOPPER_NVL = {"fp32": 60.0, "tf32": 417.5, "bf16": 835.5}
_A100 = {"fp32": 19.5, "tf32": 156.0, "bf16": 312.0}
PEAK_TFLOPS = {
    "NVIDIA H100 80GB HBM3": _HOPPER_SXM,
    "NVIDIA H100 PCIe": {"fp32": 51.2, "tf32": 378.0, "bf16": 756.0},
    "NVIDIA H100 NVL": _HOPPER_NVL,
    "NVIDIA H200": _HOPPER_SXM,  # SXM: the H100's compute, more memory
    "NVIDIA H200 NVL": _HOPPER_NVL,
    "NVIDIA A100-SXM4-40GB": _A100,
    "NVIDIA A100-SXM4-80GB": _A100,
    "NVIDIA A100-PCIE-40GB": _A100,
    "NVIDIA A100 80GB PCIe": _A100,
    "NVIDIA L40S": {"fp32": 91.6, "tf32": 183.0, "bf16": 362.05},
}
UNIT_NAMES = {"fp32": "FP32 cores", "tf32": "TF32 tensor cores", "bf16": "BF16 tensor cores"}


@dataclass(frozen=True)
class StepFlops:
    """FLOPs of one training step by the kind of kernel that runs them (they may run on different
    units: :func:`device_peak`)."""

    convolution: int
    matmul: int  # matrix products: linear layers (and attention, were there any)

    @property
    def total(self) -> int:
        return self.convolution + self.matmul

    def as_dict(self) -> dict:
        return {"convolution": self.convolution, "matmul": self.matmul}


def train_step_flops(model: GroupedNet, input_shape: list[int], batch_size: int, start_group: int = 0) -> StepFlops:
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
    by_op = counter.get_flop_counts().get("Global", {})
    convolution = sum(n for op, n in by_op.items() if "conv" in str(op))
    return StepFlops(convolution=int(convolution), matmul=int(counter.get_total_flops() - convolution))


def cached_train_step_flops(model: GroupedNet, network: dict, input_shape: list[int], batch_size: int,
                            start_group: int, cache_dir: str | Path | None) -> StepFlops:
    """:func:`train_step_flops`, remembered in `cache_dir` (one small file per network, input
    shape, classes, batch size, frozen and first groups, and torch version): the count is
    cheap, but the counter's first use in a process imports ~1 s of torch modules, which
    dozens of small CPU jobs would each pay."""
    if cache_dir is None:
        return train_step_flops(model, input_shape, batch_size, start_group)
    key = json.dumps({"network": network, "classes": model.head.out_features, "input_shape": list(input_shape),
                      "batch_size": batch_size, "frozen": model.frozen_groups, "start_group": start_group,
                      "torch": torch.__version__, "by_kind": True}, sort_keys=True)
    path = Path(cache_dir) / "step_flops" / f"{hashlib.sha1(key.encode()).hexdigest()[:20]}.json"
    try:
        entry = json.loads(path.read_text())
        if entry["key"] == key:
            return StepFlops(**{kind: int(n) for kind, n in entry["flops"].items()})
    except (OSError, ValueError, KeyError, TypeError):
        pass
    flops = train_step_flops(model, input_shape, batch_size, start_group)
    write_json(path, {"key": key, "flops": flops.as_dict()})
    return flops


def _allows_tf32(precisions: tuple[str | None, ...], legacy: Callable[[], bool]) -> bool:
    """PyTorch's TF32 switch for one kind of kernel: the first of its ``fp32_precision`` settings
    (the kernel's, its backend's, the global one) that is not "none", else the legacy flag
    (reading which raises once the new settings were used)."""
    for precision in precisions:
        if precision in ("tf32", "ieee"):
            return precision == "tf32"
    try:
        return bool(legacy())
    except RuntimeError:
        return False


def fp32_units() -> dict[str, str]:
    """The units that run fp32 convolutions and matrix products in this process, by PyTorch's flags."""
    backends = torch.backends
    common = (getattr(backends, "fp32_precision", None),)
    convolution = _allows_tf32((getattr(getattr(backends.cudnn, "conv", None), "fp32_precision", None),
                                getattr(backends.cudnn, "fp32_precision", None), *common),
                               lambda: backends.cudnn.allow_tf32)
    matmul = _allows_tf32((getattr(backends.cuda.matmul, "fp32_precision", None), *common),
                          lambda: backends.cuda.matmul.allow_tf32)
    return {"convolution": "tf32" if convolution else "fp32", "matmul": "tf32" if matmul else "fp32"}


def device_peak(device: torch.device, bf16: bool, flops: StepFlops,
                units: dict[str, str] | None = None) -> tuple[float | None, str | None]:
    """(peak TFLOP/s, what it is) for a step of `flops` on `device`, or (None, None) off a GPU,
    (None, why) for a GPU without a known peak. `units`: what ran fp32 convolutions and matrix
    products (:func:`fp32_units` by default); with `bf16` both ran on bf16 tensor cores."""
    if device.type != "cuda":
        return None, None
    name = torch.cuda.get_device_name(device)
    mig = re.search(r" MIG (\S+)$", name)
    if mig:
        return None, f"{name}: a MIG slice ({mig.group(1)}) of a GPU; no peak is known for a slice"
    peaks = PEAK_TFLOPS.get(name)
    if peaks is None:
        return None, f"{name}: no peak known for this GPU"
    units = {"convolution": "bf16", "matmul": "bf16"} if bf16 else (units or fp32_units())
    shares = {kind: n for kind, n in flops.as_dict().items() if n}
    if not shares:
        return None, None
    # the fastest the step's FLOPs could run: each kind at the peak of the unit that runs it
    peak = flops.total / sum(n / peaks[units[kind]] for kind, n in shares.items())
    kinds = {"convolution": "convolutions", "matmul": "matrix products"}
    parts = [f"{kinds[kind]} on {UNIT_NAMES[units[kind]]} ({peaks[units[kind]]:g} TFLOP/s, "
             f"{n / flops.total:.0%} of the FLOPs)" for kind, n in shares.items()]
    return peak, f"{name}: dense peak of the units that ran the step, {'; '.join(parts)}: {peak:.4g} TFLOP/s"


def peak_memory_mb(device: torch.device) -> tuple[float, str]:
    """The job's peak memory: CUDA memory allocated by tensors on a GPU, else the process's RSS."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20, "cuda allocated"
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return rss / (2**20 if sys.platform == "darwin" else 2**10), "host rss"


def summary(history: list[dict], step_flops: StepFlops, batch_size: int, device: torch.device, bf16: bool,
            settings: dict | None = None) -> dict:
    """The ``cost`` entry of a job's metrics from its epoch history (warm-up excluded from the
    rates, included in the device time). `settings` are the speed settings the job ran with
    (precision, data on the device, graphs, frozen-prefix cache), so that a rate can be read
    against them; ``units`` says what ran the step's convolutions and matrix products on a GPU."""
    epochs = [h for h in history if h.get("phase") != "head warm-up" and "seconds" in h]
    seconds = sum(h["seconds"] for h in epochs)
    examples = sum(h["examples_per_s"] * h["seconds"] for h in epochs)
    rate = examples / seconds if seconds else None
    flops_per_example = step_flops.total / batch_size
    achieved = flops_per_example * rate / 1e12 if rate else None
    units = None
    if device.type == "cuda":
        units = {"convolution": "bf16", "matmul": "bf16"} if bf16 else fp32_units()
    peak, peak_source = device_peak(device, bf16, step_flops, units)
    memory, memory_kind = peak_memory_mb(device)
    return {
        "device": device.type,
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "train_seconds": sum(h.get("seconds", 0.0) for h in history),
        "seconds_per_epoch": seconds / len(epochs) if epochs else None,
        "examples_per_s": rate,
        "step_flops": step_flops.total,
        "step_flops_by_kind": step_flops.as_dict(),
        "batch_size": batch_size,
        "achieved_tflops": achieved,
        "units": units,
        "peak_tflops": peak,
        "peak": peak_source,
        "mfu": achieved / peak if achieved is not None and peak else None,
        "peak_memory_mb": memory,
        "peak_memory": memory_kind,
        "settings": dict(settings or {}),
    }


# --- the grid's cost: every training job's, added up (rule cost_table) ---

COST_KEYS = ["experiment", "arch", "kind", "device_name"]


def cost_table(metrics_files: list[str | Path], screen_files: list[str | Path] = ()) -> "pd.DataFrame":
    """Device time and efficiency of the training jobs, per (experiment, architecture, kind,
    device) and in all: jobs, device-hours (the sum of their training time), mean examples
    per second, mean MFU, the largest peak memory. Jobs trained before costs were recorded
    count in ``jobs_without_cost``. The screen's jobs (`screen_files`: estimates and similarity,
    :mod:`gradual_transfer.screen`) count their seconds on the CPU, and two rows compare what the
    screen costs (the primaries it trains and its estimates) with what it predicts (the transfers)."""
    import pandas as pd  # only the table needs it, not a training job

    rows = []
    for path in metrics_files:
        m = read_json(path)
        c = m.get("cost") or {}
        rows.append({"experiment": m["experiment"], "arch": m["arch"], "kind": m["kind"],
                     "device_name": c.get("device_name", "unknown"), "train_seconds": c.get("train_seconds"),
                     "examples_per_s": c.get("examples_per_s"), "mfu": c.get("mfu"),
                     "peak_memory_mb": c.get("peak_memory_mb"), "has_cost": bool(c)})
    for path in screen_files:
        m = read_json(path)
        rows.append({"experiment": m["screen"]["experiment"], "arch": m["screen"]["arch"],
                     "kind": "similarity" if "family" in m["screen"] else "estimates",
                     "device_name": m["cost"]["device"], "train_seconds": m["cost"]["seconds"],
                     "examples_per_s": None, "mfu": None, "peak_memory_mb": None, "has_cost": True})
    jobs = pd.DataFrame(rows, columns=COST_KEYS + ["train_seconds", "examples_per_s", "mfu", "peak_memory_mb",
                                                  "has_cost"])
    for column in ("train_seconds", "examples_per_s", "mfu", "peak_memory_mb"):
        jobs[column] = pd.to_numeric(jobs[column])

    def totals(group: pd.DataFrame) -> pd.Series:
        return pd.Series({"jobs": len(group), "jobs_without_cost": int((~group["has_cost"]).sum()),
                          "device_hours": group["train_seconds"].sum() / 3600,
                          "mean_examples_per_s": group["examples_per_s"].mean(), "mean_mfu": group["mfu"].mean(),
                          "max_peak_memory_mb": group["peak_memory_mb"].max()})

    table = jobs.groupby(COST_KEYS, sort=True).apply(totals, include_groups=False).reset_index()
    # the grid's total: jobs and device time (rates of images and of speech frames do not add up)
    everything = totals(jobs).to_frame().T.assign(experiment="all", arch="all", kind="all", device_name="all",
                                                  mean_examples_per_s=float("nan"), mean_mfu=float("nan"))
    parts = [table, everything[table.columns]]
    if len(screen_files):
        for kind, kinds in (("screen: primaries and estimates", ("primary", "estimates")),
                            ("what it predicts: transfers", ("transfer",))):
            part = totals(jobs[jobs["kind"].isin(kinds)]).to_frame().T
            parts.append(part.assign(experiment="all", arch="all", kind=kind, device_name="all",
                                     mean_examples_per_s=float("nan"), mean_mfu=float("nan"))[table.columns])
    table = pd.concat(parts, ignore_index=True)
    numbers = ["device_hours", "mean_examples_per_s", "mean_mfu", "max_peak_memory_mb"]
    return table.astype({"jobs": int, "jobs_without_cost": int, **{column: float for column in numbers}})
