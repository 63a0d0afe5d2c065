"""Where the decoder's dev optimum lies for every model of a finished run that is decoded on
TIMIT (ASR primaries, SER → ASR transfers, ASR controls): each model's dev/test posteriors are
decoded over a wide grid of acoustic scales × insertion penalties (the run's HMM, its decoder
self-loop scale), and the best pair on dev is reported with its dev and test PER, and whether a
candidate grid (`--grid`, e.g. the one in config.demo.yaml) holds it strictly inside.

    .venv/bin/python benchmarks/decoding_grid.py results/demo --configfile config.yaml config.demo.yaml
        [--json benchmarks/results/decoding_grid.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

WIDE = {"acoustic_scales": [0.1, 0.2, 0.3, 0.5, 0.7, 1.0, 1.5, 2.0, 3.0],
        "insertion_penalties": [-2.0, -1.0, 0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0]}


def dev_optimum(model: Path, loop, phones, references: dict, self_loop_scale: float) -> dict:
    import kaldiio

    from gradual_transfer import hmm
    from gradual_transfer.data.timit_labels import PhoneMap
    from gradual_transfer.metrics import phone_error_rate

    fold = PhoneMap.load().to39

    def per(split: str, scale: float, penalty: float) -> float:
        posteriors = {u: np.asarray(m) for u, m in kaldiio.load_scp(str(model / "posteriors" / f"{split}.scp")).items()}
        utts = sorted(references[split])
        decoded = hmm.decode([posteriors[u] for u in utts], loop, scale, penalty, self_loop_scale=self_loop_scale)
        return phone_error_rate(references[split], {u: [phones[i] for i in s] for u, s in zip(utts, decoded)}, fold)[0]

    grid = {(a, p): per("dev", a, p) for a in WIDE["acoustic_scales"] for p in WIDE["insertion_penalties"]}
    dev, scale, penalty = min((v, a, p) for (a, p), v in grid.items())
    return {"acoustic_scale": scale, "insertion_penalty": penalty, "dev_per": dev,
            "test_per": per("test", scale, penalty)}


def inside(value: float, grid: list[float]) -> bool:
    return min(grid) < value < max(grid)


def main() -> None:
    from gradual_transfer.config import load_config, with_defaults
    from gradual_transfer.data.arrow import SpeechFeatures
    from gradual_transfer.grid import realign_passes, training_jobs
    from gradual_transfer import hmm
    from gradual_transfer.io import read_json

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("outdir", type=Path)
    parser.add_argument("--configfile", nargs="+", required=True)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    config = with_defaults(load_config(*args.configfile))
    decode = config["tasks"]["asr"]["decode"]
    passes = realign_passes(config)
    features = args.outdir / "features" / "timit"
    data = read_json((features / f"realigned/pass{passes}" if passes else features) / "hmm.json")
    phones = data.pop("phones")
    loop = hmm.PhoneLoop.from_dict(data)
    references = {}
    for split in ("dev", "test"):
        table = SpeechFeatures(features / f"{split}.arrow")
        references[split] = dict(zip(table.utt_ids, table.column("phones")))
    results = {}
    for job in training_jobs(config):
        if config["tasks"][job.target]["dataset"] != "timit":
            continue
        model = args.outdir / "models" / job.folder
        optimum = dev_optimum(model, loop, phones, references, decode.get("self_loop_scale", 0.1))
        optimum["inside_configured_grid"] = (inside(optimum["acoustic_scale"], decode["acoustic_scales"])
                                             and inside(optimum["insertion_penalty"], decode["insertion_penalties"]))
        results[job.folder] = optimum
        print(f"| {job.folder} | {optimum['acoustic_scale']:g} | {optimum['insertion_penalty']:g} | "
              f"{optimum['dev_per']:.2f} | {optimum['test_per']:.2f} | "
              f"{'yes' if optimum['inside_configured_grid'] else 'no'} |", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"wide_grid": WIDE, "configured_grid": decode, "models": results}, indent=2))


if __name__ == "__main__":
    main()
