"""Fine-tuning time with the frozen groups' output cached (docs/method.md) against recomputing it
every epoch, for DenseNet-40 (CIFAR-size images) and Model A / Model B (21 × 40 frames).

For each l_c: a fresh transfer-shaped model (first l_c groups frozen) trains 1 and 3 epochs
with ``runtime.frozen_cache_mb`` = 0 and with a large budget, alternated. The difference of the
two runs gives the time per epoch (what a long run pays); the rest is one-off cost (building
the cache, cuDNN autotuning, first checkpoint). Results in benchmarks/README.md.

    .venv/bin/python benchmarks/frozen_cache.py [--device cuda] [--examples 2048] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from gradual_transfer.models import build_model  # noqa: E402
from gradual_transfer.batches import TensorSource
from gradual_transfer.recipe import Recipe, RuntimeOptions
from gradual_transfer.train import fit  # noqa: E402

CASES = {
    "densenet40": dict(input_shape=(3, 32, 32), classes=10, batch=64, lcs=[1, 3, 5, 7]),
    "model_a": dict(input_shape=(1, 21, 40), classes=144, batch=256, lcs=[1, 2, 3, 4, 5]),
    "model_b": dict(input_shape=(1, 21, 40), classes=144, batch=256, lcs=[2, 4, 5, 6]),
}


def seconds(name: str, lc: int, examples: int, cache_mb: int, device: torch.device, epochs: int) -> float:
    case = CASES[name]
    with open(REPO / "config.yaml") as f:
        config = yaml.safe_load(f)
    options = RuntimeOptions.from_config(config["runtime"], name, device)
    options = RuntimeOptions(amp_bf16=options.amp_bf16, channels_last=options.channels_last,
                             prefetch=options.prefetch, frozen_cache_mb=cache_mb)
    g = torch.Generator().manual_seed(0)
    source = TensorSource(torch.randn(examples, *case["input_shape"], generator=g),
                          torch.randint(0, case["classes"], (examples,), generator=g))
    recipe = Recipe(batch_size=case["batch"], epochs=epochs, lr=0.01, momentum=0.9, nesterov=True, weight_decay=1e-4,
                    schedule={"kind": "step", "milestones": [], "gamma": 0.1}, early_stopping_patience=0, seed=0)
    torch.manual_seed(0)
    model = build_model(config["architectures"][name], case["classes"], case["input_shape"]).freeze(lc)
    with tempfile.TemporaryDirectory() as checkpoints:
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fit(model, source, lambda m: {"score": 0.0}, recipe, checkpoint_dir=checkpoints, fingerprint={},
            device=device, options=options)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--examples", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--models", nargs="*", default=list(CASES))
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    seconds("densenet40", 1, 128, 0, device, 1)  # warm up (CUDA and cuDNN; oneDNN's primitives on a CPU)
    rows = []
    for name in args.models:
        examples = args.examples if name == "densenet40" else args.examples * 16  # frames are cheap
        for lc in CASES[name]["lcs"]:
            runs = {(kind, epochs): [] for kind in ("recomputed", "cached") for epochs in (1, 3)}
            for _ in range(args.repeats):
                for kind, epochs in runs:
                    runs[kind, epochs].append(seconds(name, lc, examples, 0 if kind == "recomputed" else 1 << 20,
                                                      device, epochs))
            t = {key: statistics.median(values) for key, values in runs.items()}
            epoch = {kind: (t[kind, 3] - t[kind, 1]) / 2 for kind in ("recomputed", "cached")}
            rows.append(dict(model=name, lc=lc, examples=examples,
                             epoch_recomputed_s=round(epoch["recomputed"], 3), epoch_cached_s=round(epoch["cached"], 3),
                             epoch_speed_up=round(epoch["recomputed"] / epoch["cached"], 2),
                             one_off_recomputed_s=round(t["recomputed", 1] - epoch["recomputed"], 2),
                             one_off_cached_s=round(t["cached", 1] - epoch["cached"], 2)))
            print(json.dumps(rows[-1]), flush=True)
    print("| model | l_c | examples | epoch, recomputed (s) | epoch, cached (s) | per-epoch speed-up "
          "| one-off, recomputed (s) | one-off, cached (s) |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['lc']} | {r['examples']} | {r['epoch_recomputed_s']} | {r['epoch_cached_s']} "
              f"| ×{r['epoch_speed_up']} | {r['one_off_recomputed_s']} | {r['one_off_cached_s']} |")
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
