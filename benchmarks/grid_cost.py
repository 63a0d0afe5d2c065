"""Estimated device-hours of the paper grid, from throughput measured through the real `fit`.

For every architecture of `config.yaml`'s experiments, at its paper batch size and input shape,
and for every l_c of its sweep (0: a primary, or a transfer with nothing frozen): a model with
the first l_c groups frozen trains two epochs of synthetic data through
:func:`gradual_transfer.train.fit` with the runtime knobs the workflow would use on this device
(frozen-prefix cache included), and the second epoch's examples per second are kept (the first
pays cuDNN autotuning and the cache). Then every training job of the grid costs

    (epochs × training examples of its target + head warm-up iterations × batch) ÷ throughput

with the epochs of its recipe in `config.yaml` (speech recipes stop early; their full epochs
are an upper bound) and the training-set sizes below. Validation passes are not counted (CIFAR:
5,000 forward passes per 45,000 training steps' worth of forward and backward, ~4 %). Whether
the frozen prefix is cached is decided for the small synthetic set; a real job whose cache
does not fit its budget (SVHN at low l_c) recomputes the frozen groups and runs slower.

    .venv/bin/python benchmarks/grid_cost.py [--device cuda] [--steps 40] [--json grid_cost.json]
    .venv/bin/python benchmarks/grid_cost.py --quick     # seconds on a CPU: narrow models, 2 steps

Run it on the GPU whose hours you want; on a GPU the whole measurement takes a few minutes.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from gradual_transfer.config import load_config  # noqa: E402
from gradual_transfer.grid import network, sweep, training_jobs  # noqa: E402
from gradual_transfer.models import build_model  # noqa: E402
from gradual_transfer.train import Recipe, RuntimeOptions, TensorSource, fit  # noqa: E402

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


def throughput(arch: dict, shape: list[int], classes: int, batch: int, lc: int, steps: int, device: torch.device,
               options: RuntimeOptions) -> float:
    """Training examples per second of the second of two epochs of `steps` batches."""
    g = torch.Generator().manual_seed(0)
    n = steps * batch
    source = TensorSource(torch.randn(n, *shape, generator=g), torch.randint(0, classes, (n,), generator=g))
    recipe = Recipe(batch_size=batch, epochs=2, lr=0.01, momentum=0.9, nesterov=True, weight_decay=1e-4,
                    schedule={"kind": "step", "milestones": [], "gamma": 0.1}, early_stopping_patience=0, seed=0)
    torch.manual_seed(0)
    model = build_model(arch, classes, shape).freeze(lc)
    with tempfile.TemporaryDirectory() as checkpoints:
        result = fit(model, source, lambda m: {"score": 0.0}, recipe, checkpoint_dir=checkpoints, fingerprint={},
                     device=device, options=options)
    return result.history[-1]["examples_per_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--steps", type=int, default=40, help="batches per timed epoch")
    parser.add_argument("--quick", action="store_true", help="tiny DenseNet and 2 steps: checks the script runs")
    parser.add_argument("--json", type=Path, help="write the measurements and the estimate here")
    args = parser.parse_args()
    device = torch.device(args.device)
    steps = 2 if args.quick else args.steps
    config = load_config(REPO / "config.yaml")
    jobs = training_jobs(config)

    rates: dict[tuple[str, int], float] = {}
    for experiment in ("images", "speech"):
        spec = config["experiments"][experiment]
        for arch_name in spec["architectures"] if spec["enabled"] else []:
            arch = network(config["architectures"][arch_name])
            if args.quick:
                arch = quick(arch)
            task = config["tasks"][spec["tasks"][0]]
            batch = task["training"]["batch_size"]
            options = RuntimeOptions.from_config(config["runtime"], arch_name, device)
            for lc in sorted({0, *sweep(config, arch_name)}):
                rates[arch_name, lc] = throughput(arch, input_shape(config, experiment), task["classes"], batch, lc,
                                                  steps, device, options)
                print(f"{arch_name} l_c {lc}: {rates[arch_name, lc]:,.0f} examples/s", file=sys.stderr)

    hours: dict[tuple[str, str, str], float] = defaultdict(float)
    counts: dict[tuple[str, str, str], int] = defaultdict(int)
    for job in jobs:
        task = config["tasks"][job.target]
        recipe = task["finetune" if job.is_transfer else "training"]
        examples = recipe["epochs"] * TRAINING_EXAMPLES[task["dataset"]]
        examples += recipe.get("head_warmup_iterations", 0) * recipe["batch_size"]
        key = (job.experiment, job.arch, job.kind)
        hours[key] += examples / rates[job.arch, job.lc or 0] / 3600
        counts[key] += 1

    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"| experiment | architecture | jobs | kind | estimated {device_name}-hours |")
    print("|---|---|---|---|---|")
    for (experiment, arch, kind), value in sorted(hours.items()):
        print(f"| {experiment} | {arch} | {counts[experiment, arch, kind]} | {kind} | {value:,.1f} |")
    total = sum(hours.values())
    print(f"| all | | {len(jobs)} | | {total:,.1f} |")
    if args.json:
        args.json.write_text(json.dumps({
            "device": device_name, "steps": steps, "quick": args.quick,
            "examples_per_s": {f"{a} lc{lc}": r for (a, lc), r in sorted(rates.items())},
            "hours": {"/".join(k): v for k, v in sorted(hours.items())}, "total_hours": total,
        }, indent=2))


if __name__ == "__main__":
    main()
