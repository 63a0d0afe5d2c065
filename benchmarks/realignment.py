"""Thirds vs realigned TIMIT targets on the demo corpus, and the HMM transition weighting of the
aligner and of the decoder: dev and test PER of the ASR primaries per variant, the share of
frames whose state changed, how far phone boundaries moved from the labelled ones (exact on the
demo: they are the synthesiser's own phoneme events), the aligner's speed, and the frames two
alignment weightings assign to different states.

Runs the workflow (speech only, the demo's settings, the decoder's grid widened so that no
tuned setting sits at its edge) once per variant into `results/bench-realign/<variant>/`, all
reading one generated demo TIMIT, and asks only for the decodes of the ASR primaries. Each
primary's posteriors are then decoded again with each decoder self-loop scale of
`--decode-self-loop-scales` (same grid, tuned on dev).

    .venv/bin/python benchmarks/realignment.py [--window 3] [--self-loop-scales 1.0 0.1]
        [--free-self-loop-scales 0.1] [--seeds 0 1] [--json benchmarks/results/realignment.json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SNAKEMAKE = Path(sys.executable).with_name("snakemake")
BASE = Path("results/bench-realign")
ARCHS = ["model_a_demo", "model_b_demo"]
# wide enough that the demo's dev optimum lies inside (checked: `at_grid_edge` in the output)
GRID = {"acoustic_scales": [0.1, 0.2, 0.3, 0.5, 0.7, 1.0, 1.5, 2.0],
        "insertion_penalties": [-2.0, -1.0, 0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0]}


def run(variant: str, asr: dict, seeds: list[int], targets: list[str], corpora: dict | None) -> float:
    """One run of the workflow; its wall-clock seconds."""
    from gradual_transfer.config import load_config, merge

    config = merge(load_config(REPO / "config.yaml"), load_config(REPO / "config.demo.yaml"))
    config = merge(config, {"outdir": f"{BASE}/{variant}", "tasks": {"asr": asr},
                            "experiments": {"images": {"enabled": False}, "speech": {"seeds": seeds}}})
    if corpora:  # the corpora of the first variant, read where it generated them
        for dataset, root in corpora.items():
            del config["demo"][dataset]
            config["datasets"][dataset]["root"] = str(root)
    path = REPO / BASE / f"{variant}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(json.loads(json.dumps(config))))
    command = [str(SNAKEMAKE), *[f"{BASE}/{variant}/{t}" for t in targets],  # before --configfile, which
               "--cores", "2", "--max-threads", "1", "--configfile", str(path)]       # takes several values
    started = time.perf_counter()
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    if result.returncode:
        sys.exit(result.stderr[-4000:])
    return time.perf_counter() - started


def decode_tuned(model: Path, hmm_file: Path, features: Path, self_loop_scale: float) -> dict:
    """Dev-tuned decode of a model's posteriors over GRID with one self-loop scale: dev and test
    PER, the chosen settings and whether one lies at the grid's edge (as decoding.py tunes)."""
    import kaldiio

    from gradual_transfer import hmm
    from gradual_transfer.data.arrow import SpeechFeatures
    from gradual_transfer.data.timit_labels import PhoneMap
    from gradual_transfer.decoding import grid_edges
    from gradual_transfer.io import read_json
    from gradual_transfer.metrics import phone_error_rate

    data = read_json(hmm_file)
    phones = data.pop("phones")
    loop = hmm.PhoneLoop.from_dict(data)
    fold = PhoneMap.load().to39

    def per(split: str, scale: float, penalty: float) -> float:
        refs = SpeechFeatures(features / f"{split}.arrow")
        references = dict(zip(refs.utt_ids, refs.column("phones")))
        posteriors = {u: np.asarray(m) for u, m in kaldiio.load_scp(str(model / "posteriors" / f"{split}.scp")).items()}
        utts = sorted(references)
        decoded = hmm.decode([posteriors[u] for u in utts], loop, scale, penalty, self_loop_scale=self_loop_scale)
        return phone_error_rate(references, {u: [phones[i] for i in s] for u, s in zip(utts, decoded)}, fold)[0]

    dev, scale, penalty = min((per("dev", a, p), a, p) for a in GRID["acoustic_scales"]
                              for p in GRID["insertion_penalties"])
    return {"dev_per": dev, "test_per": per("test", scale, penalty), "acoustic_scale": scale,
            "insertion_penalty": penalty, "at_grid_edge": grid_edges(
                {"acoustic_scale": scale, "insertion_penalty": penalty},
                {"acoustic_scale": GRID["acoustic_scales"], "insertion_penalty": GRID["insertion_penalties"]})}


def differing_frames(a: Path, b: Path) -> dict:
    """Frames of two realigned training sets whose state differs."""
    from gradual_transfer.data.arrow import SpeechFeatures

    first, second = SpeechFeatures(a), SpeechFeatures(b)
    assert first.utt_ids == second.utt_ids
    differ = sum(int((first.targets(r) != second.targets(r)).sum()) for r in range(len(first)))
    return {"frames": int(first.total_frames), "differing": differ}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--window", type=int, default=3, help="also realign with phones held within ± this")
    parser.add_argument("--self-loop-scales", type=float, nargs="+", default=[1.0, 0.1],
                        help="alignment self-loop scales to compare within the window (1.0: transitions unscaled)")
    parser.add_argument("--free-self-loop-scales", type=float, nargs="*", default=[0.1],
                        help="the same with phone boundaries free")
    parser.add_argument("--decode-self-loop-scales", type=float, nargs="+", default=[1.0, 0.1])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="seeds of the ASR primaries")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    decodes = [f"models/{a}/primary/asr/fold0{'' if s == 0 else f'/seed{s}'}/decode/metrics.json"
               for a in ARCHS for s in args.seeds]
    variants = {"thirds": {"frame_targets": "thirds"}}
    for window, scales in ((args.window, args.self_loop_scales), (None, args.free_self_loop_scales)):
        for scale in scales:
            name = f"realigned-{'free' if window is None else f'window{window}'}-selfloop{scale:g}"
            variants[name] = {"frame_targets": "realigned", "realign_passes": 1, "realign_window": window,
                              "realign_self_loop_scale": scale}
    results, corpora = {}, None
    for variant, asr in variants.items():
        print(f"running {variant} ...", file=sys.stderr, flush=True)
        seconds = run(variant, {**asr, "decode": GRID}, args.seeds, decodes, corpora)
        out = REPO / BASE / variant
        corpora = corpora or {"timit": out / "corpora" / "timit"}  # the only corpus these targets read
        realigned = asr["frame_targets"] == "realigned"
        features = out / "features" / "timit" / ("realigned/pass1" if realigned else "")
        entry = {"seconds": seconds, "models": {}}
        for arch in ARCHS:
            for seed in args.seeds:
                model = out / "models" / arch / "primary" / "asr" / "fold0" / ("" if seed == 0 else f"seed{seed}")
                metrics = json.loads((model / "decode" / "metrics.json").read_text())
                entry["models"][f"{arch} seed {seed}"] = {
                    "dev_per": metrics["validation"]["per"], "test_per": metrics["test"]["per"],
                    "decoder": {f"self_loop_scale {s:g}": decode_tuned(model, features / "hmm.json",
                                                                       out / "features" / "timit", s)
                                for s in args.decode_self_loop_scales}}
        if realigned:
            report = json.loads((features / "report.json").read_text())
            entry["alignment"] = {split: {k: report[split][k] for k in ("changed_frames", "boundary_shift_frames",
                                                                        "not_aligned", "aligned_frames_per_s")}
                                  for split in ("train", "dev")}
        results[variant] = entry
        print(json.dumps(entry, indent=1), file=sys.stderr, flush=True)
    comparisons = {}  # the same aligner (trained on thirds, seed 0) under two weightings
    names = list(variants)
    for window in (f"window{args.window}", "free"):
        pair = [n for n in names if f"-{window}-" in n]
        if len(pair) == 2:
            comparisons[f"{pair[0]} vs {pair[1]}"] = differing_frames(
                *(REPO / BASE / n / "features/timit/realigned/pass1/train.arrow" for n in pair))
    print_tables(results, comparisons, args)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"grid": GRID, "seeds": args.seeds, "variants": results,
                                         "alignment_differences": comparisons}, indent=2))


def print_tables(results: dict, comparisons: dict, args) -> None:
    mean = lambda values: float(np.mean(values))  # noqa: E731 - over seeds
    print("| targets | " + " | ".join(f"{a} dev PER | {a} test PER" for a in ARCHS)
          + " | train frames changed | boundary shift (frames, mean) | within ±2 frames |")
    print("|---" * (1 + 2 * len(ARCHS) + 3) + "|")
    for variant, entry in results.items():
        cells = []
        for arch in ARCHS:
            runs = [m for name, m in entry["models"].items() if name.startswith(arch)]
            cells.append(f"{mean([m['dev_per'] for m in runs]):.2f} | {mean([m['test_per'] for m in runs]):.2f}")
        ali = entry.get("alignment", {}).get("train")
        extra = (f"{100 * ali['changed_frames']:.1f} % | {ali['boundary_shift_frames']['mean']:.2f} | "
                 f"{100 * ali['boundary_shift_frames']['within_2']:.0f} %" if ali else "– | – | –")
        print(f"| {variant} | {' | '.join(cells)} | {extra} |")
    print()
    scales = [f"self_loop_scale {s:g}" for s in args.decode_self_loop_scales]
    print("| targets | model | " + " | ".join(f"decoder {s}: dev / test PER (scale, penalty)" for s in scales) + " |")
    print("|---|---|" + "---|" * len(scales))
    for variant, entry in results.items():
        for model, m in entry["models"].items():
            cells = [f"{d['dev_per']:.2f} / {d['test_per']:.2f} ({d['acoustic_scale']:g}, {d['insertion_penalty']:g})"
                     + (" edge" if d["at_grid_edge"] else "") for d in (m["decoder"][s] for s in scales)]
            print(f"| {variant} | {model} | {' | '.join(cells)} |")
    for name, counts in comparisons.items():
        print(f"\n{name}: {counts['differing']} of {counts['frames']} training frames in another state "
              f"({100 * counts['differing'] / counts['frames']:.1f} %)")


if __name__ == "__main__":
    main()
