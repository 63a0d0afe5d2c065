"""Speed and peak memory of TIMIT feature extraction, on the demo corpus and on one 10× larger.

Each extraction runs in a fresh process with one torch thread; its peak resident memory comes
from ``getrusage(RUSAGE_CHILDREN)``. Speed is reported as × real time per core (seconds of
audio processed per second of one core). Peak memory should not grow with the corpus, because
the Arrow file is written one record batch at a time.

    .venv/bin/python benchmarks/feature_extraction.py [--scales 1 10]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEMO = {"train_speakers": 16, "dev_speakers": 4, "core_test_speakers": 4, "other_test_speakers": 1,
        "si_sentences": 3, "sx_sentences": 5}

CHILD = """
import json, sys, time, torch
from gradual_transfer.data.frontend import FeatureSettings
from gradual_transfer.data.timit import extract as extract_timit
from gradual_transfer.data.arrow import SpeechFeatures
torch.set_num_threads(1)
start = time.process_time()
n = extract_timit(sys.argv[1], "train", sys.argv[2], FeatureSettings())
cpu = time.process_time() - start
frames = SpeechFeatures(sys.argv[2]).total_frames
print(json.dumps({"utterances": n, "frames": frames, "cpu_s": cpu}))
"""


def run(scale: int, workdir: Path) -> dict:
    from gradual_transfer.demo import generate_corpus

    root = workdir / f"timit_x{scale}"
    generate_corpus("timit", root, {**DEMO, "train_speakers": DEMO["train_speakers"] * scale}, seed=0)
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", CHILD, str(root), str(workdir / f"x{scale}.arrow")],
                         capture_output=True, text=True, check=True)
    wall = time.perf_counter() - start
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    result = json.loads(out.stdout.strip().splitlines()[-1])
    audio_s = result["frames"] * 0.01  # 10 ms per frame
    return {"scale": scale, **result, "audio_s": audio_s, "wall_s": wall,
            "x_real_time_per_core": audio_s / result["cpu_s"],
            "peak_rss_mib": max(peak_kib, before) / 1024, "arrow_mib": (workdir / f"x{scale}.arrow").stat().st_size / 2**20}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 10])
    args = parser.parse_args()
    print("| corpus | utterances | audio (min) | × real time per core | peak RSS (MiB) | Arrow file (MiB) |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for scale in args.scales:  # each child is a new process: ru_maxrss of the largest so far,
            r = run(scale, Path(tmp))  # so run small first; growth would show as a larger peak
            print(f"| demo TIMIT train × {scale} | {r['utterances']} | {r['audio_s'] / 60:.1f} | "
                  f"{r['x_real_time_per_core']:.0f} | {r['peak_rss_mib']:.0f} | {r['arrow_mib']:.1f} |", flush=True)


if __name__ == "__main__":
    main()
