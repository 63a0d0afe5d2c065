"""Training-step throughput of gradual_transfer.train.fit against a bare PyTorch loop.

Same model, same batches, same optimiser; the bare loop is the four lines every tutorial has
(forward, loss, backward, step). Runs alternate (bare, ours, bare, ours, ...) and the ratio of
medians is reported, because this machine's absolute speed drifts. ``fit`` pays for its
progress bar, per-epoch checkpoint and bookkeeping; the evaluation callback is a constant so
only training is compared.

    .venv/bin/python benchmarks/train_step_throughput.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch
import torch.nn.functional as F

from gradual_transfer.config import load_config
from gradual_transfer.models import build_model
from gradual_transfer.batches import TensorSource
from gradual_transfer.recipe import Recipe, RuntimeOptions
from gradual_transfer.train import fit

CASES = {
    # steps per run: enough that fit's per-epoch checkpoint (model + momentum + best copy) is
    # amortised roughly as in a real epoch's first minute, few enough to finish in minutes
    "densenet40": dict(input_shape=(3, 32, 32), classes=10, batch=64, steps=8),
    "model_a": dict(input_shape=(1, 21, 40), classes=144, batch=256, steps=48),
}


def bare_loop(model, batches, recipe, channels_last):
    optimizer = recipe.optimizer(model.parameters())
    model.train()
    for x, y in batches:
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()


def our_loop(model, source, recipe, channels_last):
    with tempfile.TemporaryDirectory() as checkpoints:
        fit(model, source, lambda m: {"score": 0.0}, recipe, checkpoint_dir=checkpoints, fingerprint={},
            device=torch.device("cpu"), options=RuntimeOptions(channels_last=channels_last))


def measure(name: str, repeats: int, channels_last: bool = True) -> dict:
    config = load_config("config.yaml")
    case = CASES[name]
    arch = config["architectures"][name]
    n = case["steps"] * case["batch"]
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, *case["input_shape"], generator=g)
    y = torch.randint(0, case["classes"], (n,), generator=g)
    source = TensorSource(x, y)
    recipe = Recipe(batch_size=case["batch"], epochs=1, lr=0.01, momentum=0.9, nesterov=True, weight_decay=1e-4,
                    schedule={"kind": "step", "milestones": [], "gamma": 0.1}, early_stopping_patience=0, seed=0)
    batches = list(source.batches(case["batch"], torch.Generator().manual_seed(1)))

    def fresh():
        torch.manual_seed(0)
        model = build_model(arch, case["classes"], case["input_shape"])
        return model.to(memory_format=torch.channels_last) if channels_last else model

    times = {"bare": [], "ours": []}
    for _ in range(repeats):
        for kind in ("bare", "ours"):
            model = fresh()
            start = time.perf_counter()
            if kind == "bare":
                bare_loop(model, batches, recipe, channels_last)
            else:
                our_loop(model, source, recipe, channels_last)
            times[kind].append(time.perf_counter() - start)
    bare, ours = statistics.median(times["bare"]), statistics.median(times["ours"])
    return {"model": name, "channels_last": channels_last, "examples_per_s_bare": n / bare,
            "examples_per_s_ours": n / ours, "ours_over_bare": bare / ours}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(torch.get_num_threads())
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.repeats} repeats, alternating")
    print("| model | channels_last | bare loop (examples/s) | fit (examples/s) | fit / bare |")
    print("|---|---|---|---|---|")
    for name in CASES:
        for channels_last in (True, False):
            r = measure(name, args.repeats, channels_last)
            print(f"| {r['model']} | {r['channels_last']} | {r['examples_per_s_bare']:.0f} | "
                  f"{r['examples_per_s_ours']:.0f} | {r['ours_over_bare']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
