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

The parts are functions of benchmarks/gpu_check_parts.py, on the models, data and rates of
benchmarks/gpu_check_setup.py (shared with tests/test_gpu_check.py). It always reports
(benchmarks/gpu_check_runner.py): each part, check and row runs guarded and
``--out`` is rewritten after each, with the seconds each part took; CUDA that does not start is
recorded with the driver and PyTorch versions and the reason; ``--budget`` ends the run by then,
whatever runs. It needs torch, numpy, pyarrow, torchvision and PyYAML only (no Snakemake,
kaldiio, soundfile, jsonschema, kaldialign or tensorboard: the GPU machine has none of them; the
per-utterance posteriors are compared as the archive writer receives them).
benchmarks/README.md quotes the latest run and says what ``--size short`` leaves out.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))  # (the check's modules; grid_cost, for --quick)

import gpu_check_runner as runner  # noqa: E402
from gpu_check_parts import PARTS  # noqa: E402
from gpu_check_setup import SIZES, Run  # noqa: E402

ORDER = ["lease", "resident", "graphs", "throughput", "feeding"]  # what matters most first, for a budget
LEFT_OUT = {"full": "nothing", "short": "graphs: the configured precision and layout of each model only (fp32 for "
                                        "densenet40 and model_a, bf16 + channels_last for model_b), on half the data; "
                                        "throughput: 30 timed steps; feeding: a third of the data; lease: 1.5 s holds",
            "quick": "tiny data and narrow models: the logic only, on a CPU"}


def main(argv: list[str] | None = None) -> int:
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
    device = torch.device(args.device)
    if size == "quick":
        torch.set_num_threads(1)  # batches of a few examples: more threads only wait for each other
    parts = [p for p in ORDER if p not in args.skip and (not args.only or p in args.only)] + ["compile"] * args.compile
    report = runner.Report(args.out, args.budget, torch=torch.__version__, size=size, parts=parts,
                           left_out=LEFT_OUT[size], device=str(device))
    run = Run(device, SIZES[size], quick=size == "quick", report=report)
    report.start_watchdog()
    if device.type == "cuda":
        report["cuda"] = runner.cuda_status()
        if not report["cuda"]["usable"]:  # recorded, with the versions and the reason: no part can run
            report.save()
            print(json.dumps(report["cuda"], indent=1), flush=True)
            return 1
        report["device"] = report["cuda"]["name"]
    report.save()
    runner.run_parts(report, {part: functools.partial(PARTS[part], run) for part in parts})
    return 0


if __name__ == "__main__":
    sys.exit(main())
