"""Estimated device-hours of the paper grid, from throughput measured through the real `fit`.

For every architecture of `config.yaml`'s experiments, at its paper batch size and input shape,
and for every l_c of its sweep (0: a primary, or a transfer with nothing frozen): a model with
the first l_c groups frozen trains two epochs of synthetic data through
:func:`gradual_transfer.train.fit` with the runtime knobs the workflow would use on this device
(frozen-prefix cache included), and the second epoch's examples per second are kept (the first
pays cuDNN autotuning, the cache and the graph capture). The data are the workflow's own batch
sources over Arrow files (images: uint8 pixels normalised per batch; speech: frames with their
context windows), streamed from the host or, within ``resident_data_mb``, held on the device,
as a job would hold them. Then every training job of the grid costs

    (epochs × training examples of its target + head warm-up iterations × batch) ÷ throughput

with the epochs of its recipe in `config.yaml` (speech recipes stop early; their full epochs
are an upper bound) and the training-set sizes below. Validation passes are not counted (CIFAR:
5,000 forward passes per 45,000 training steps' worth of forward and backward, ~4 %). Whether
the frozen prefix is cached is decided for the small synthetic set; a real job whose cache
does not fit its budget (SVHN at low l_c) recomputes the frozen groups and runs slower.

Runtime variants (``--variants``, one column each, measured in the same process):

- ``configured``: `config.yaml`'s ``runtime`` as it is;
- ``before``: as before data on the device and graphs (streamed data, eager steps);
- ``after``: data on the device and the step as a CUDA graph, on top of `config.yaml`.

    .venv/bin/python benchmarks/grid_cost.py [--device cuda] [--steps 40] [--variants before after] [--json F]
    .venv/bin/python benchmarks/grid_cost.py --quick     # seconds on a CPU: narrow models, 2 steps

Run it on the GPU whose hours you want; on a GPU the whole measurement takes a few minutes.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from gradual_transfer.config import load_config, with_defaults  # noqa: E402
from gradual_transfer.architectures import network
from gradual_transfer.grid import sweep, training_jobs  # noqa: E402
from gradual_transfer.models import build_model  # noqa: E402
from gradual_transfer.batches import place_on_device
from gradual_transfer.recipe import Recipe, RuntimeOptions
from gradual_transfer.train import fit  # noqa: E402

# Training examples per epoch (images, or speech frames at 10 ms).
TRAINING_EXAMPLES = {
    "cifar10": 45_000,      # 50,000 − 5,000 validation
    "cifar100": 45_000,
    "svhn": 598_388,        # train + extra − 6,000 validation
    "timit": 1_120_000,     # 3,696 SI/SX utterances, ~3.0 s each
    "iemocap": 1_750_000,   # one fold's 7 training speakers: ~7/10 of 5,531 utterances of ~4.5 s
}
def quick(arch: dict) -> dict:
    """--quick: the same groups, a fraction of the width (a DenseNet-7; ConvNets at 1/8)."""
    if arch["kind"] == "densenet":
        return {**arch, "depth": 7, "growth_rate": 4, "init_features": 8}
    return {**arch, "fc_units": [max(8, u // 8) for u in arch["fc_units"]],
            "conv_groups": [{**g, "channels": [max(4, c // 8) for c in g["channels"]]} for g in arch["conv_groups"]]}


def input_shape(config: dict, experiment: str) -> list[int]:
    return [3, 32, 32] if experiment == "images" else [1, 2 * config["features"]["context"] + 1,
                                                       config["features"]["num_mel_bins"]]


VARIANTS = {
    "configured": {},
    "before": {"resident_data_mb": 0, "cuda_graphs": False},
    "after": {"resident_data_mb": 1 << 20, "cuda_graphs": True},
}


def synthetic_source(experiment: str, shape: list[int], classes: int, n: int, folder: Path):
    """`n` random examples in the workflow's own on-disk format, read by its batch source."""
    import numpy as np

    rng = np.random.default_rng(0)
    if experiment == "images":
        from gradual_transfer.data.images import ImageArrays, ImageSource, write_images

        write_images(folder / "images.arrow", rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8),
                     rng.integers(0, classes, n).astype(np.int16))
        return ImageSource(ImageArrays(folder / "images.arrow"), [0.49, 0.48, 0.45], [0.25, 0.24, 0.26])
    from gradual_transfer.data.arrow import SpeechFeatures, SpeechWriter, speech_schema
    from gradual_transfer.tasks.speech import FrameSource

    frames, bins, context = 300, shape[2], (shape[1] - 1) // 2  # TIMIT's utterances are ~300 frames
    utterances = -(-n // frames)
    with SpeechWriter(folder / "speech.arrow", speech_schema(bins)) as writer:
        for u in range(utterances):
            writer.add(dict(utt_id=f"u{u:05d}", speaker=f"s{u % 50}", num_frames=frames,
                            feats=rng.standard_normal((frames, bins), dtype=np.float32),
                            targets=rng.integers(0, classes, frames).astype(np.int16)))
    stats = {"mean": [0.0] * bins, "std": [1.0] * bins}
    return FrameSource(SpeechFeatures(folder / "speech.arrow"), np.arange(utterances), stats, context=context)


def throughput(arch: dict, source, classes: int, batch: int, lc: int, device: torch.device,
               options: RuntimeOptions) -> float:
    """Training examples per second of the second of two epochs over `source` (streamed, or
    already on the device)."""
    recipe = Recipe(batch_size=batch, epochs=2, lr=0.01, momentum=0.9, nesterov=True, weight_decay=1e-4,
                    schedule={"kind": "step", "milestones": [], "gamma": 0.1}, early_stopping_patience=0, seed=0)
    torch.manual_seed(0)
    model = build_model(arch, classes, source.input_shape).freeze(lc)
    with tempfile.TemporaryDirectory() as checkpoints:
        result = fit(model, source, lambda m: {"score": 0.0}, recipe, checkpoint_dir=checkpoints, fingerprint={},
                     device=device, options=options)
    return result.history[-1]["examples_per_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--steps", type=int, default=40, help="batches per timed epoch")
    parser.add_argument("--quick", action="store_true", help="tiny DenseNet and 2 steps: checks the script runs")
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=["configured"],
                        help="runtime settings to measure, side by side")
    parser.add_argument("--json", type=Path, help="write the measurements and the estimate here")
    args = parser.parse_args()
    device = torch.device(args.device)
    steps = 2 if args.quick else args.steps
    config = with_defaults(load_config(REPO / "config.yaml"))
    jobs = training_jobs(config)

    rates: dict[tuple[str, str, int], float] = {}
    errors: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for experiment in ("images", "speech"):
            spec = config["experiments"][experiment]
            for arch_name in spec["architectures"] if spec["enabled"] else []:
                arch = network(config["architectures"][arch_name])
                if args.quick:
                    arch = quick(arch)
                task = config["tasks"][spec["tasks"][0]]
                batch = task["training"]["batch_size"]
                folder = Path(tmp) / arch_name
                folder.mkdir()
                source = synthetic_source(experiment, input_shape(config, experiment), task["classes"], steps * batch,
                                          folder)
                configured = RuntimeOptions.from_config(config["runtime"], arch_name, device)
                for variant in args.variants:
                    options = dataclasses.replace(configured, **VARIANTS[variant])
                    # streamed, or held on the device as a job would hold it (once per variant)
                    placed = place_on_device({"train": source}, device, options.resident_data_mb,
                                             splits=("train",))["train"]
                    for lc in sorted({0, *sweep(config, arch_name)}):
                        try:
                            rates[variant, arch_name, lc] = throughput(arch, placed, task["classes"], batch, lc,
                                                                       device, options)
                        except Exception as error:  # noqa: BLE001 - a GPU run should measure all it can
                            errors[f"{variant} {arch_name} lc{lc}"] = f"{type(error).__name__}: {error}"
                            print(f"{variant}: {arch_name} l_c {lc}: failed: {error}", file=sys.stderr, flush=True)
                            continue
                        print(f"{variant}: {arch_name} l_c {lc}: {rates[variant, arch_name, lc]:,.0f} examples/s",
                              file=sys.stderr, flush=True)
    failed = sorted({key.split()[0] for key in errors})
    variants = [v for v in args.variants if v not in failed]  # a variant with a failed measurement has no total

    hours: dict[str, dict[tuple[str, str, str], float]] = {v: defaultdict(float) for v in variants}
    counts: dict[tuple[str, str, str], int] = defaultdict(int)
    for job in jobs:
        task = config["tasks"][job.target]
        recipe = task["finetune" if job.is_transfer else "training"]
        examples = recipe["epochs"] * TRAINING_EXAMPLES[task["dataset"]]
        examples += recipe.get("head_warmup_iterations", 0) * recipe["batch_size"]
        key = (job.experiment, job.arch, job.kind)
        for variant in variants:
            hours[variant][key] += examples / rates[variant, job.arch, job.lc or 0] / 3600
        counts[key] += 1

    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"| experiment | architecture | jobs | kind | {' | '.join(f'{v}: {device_name}-hours' for v in variants)} |")
    print("|---|---|---|---|" + "---|" * len(variants))
    for key in sorted(counts):
        experiment, arch, kind = key
        print(f"| {experiment} | {arch} | {counts[key]} | {kind} | "
              f"{' | '.join(f'{hours[v][key]:,.1f}' for v in variants)} |")
    totals = {v: sum(hours[v].values()) for v in variants}
    print(f"| all | | {len(jobs)} | | {' | '.join(f'{totals[v]:,.1f}' for v in variants)} |")
    if args.json:
        args.json.write_text(json.dumps({
            "device": device_name, "steps": steps, "quick": args.quick, "variants": variants, "errors": errors,
            "examples_per_s": {v: {f"{a} lc{lc}": r for (w, a, lc), r in sorted(rates.items()) if w == v}
                               for v in args.variants},
            "hours": {v: {"/".join(k): h for k, h in sorted(hours[v].items())} for v in variants},
            "total_hours": totals,
        }, indent=2))
    if errors:
        print(f"failed measurements (their variants have no total): {json.dumps(errors, indent=1)}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
