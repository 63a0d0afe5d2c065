"""Thirds vs realigned TIMIT targets on the demo corpus: dev and test PER of the ASR primaries
per realignment pass, the share of frames whose state changed, how far phone boundaries moved
from the labelled ones (exact on the demo: they are the synthesiser's own phoneme events), and
the aligner's speed.

Runs the workflow (speech only, the demo's settings) once per variant into
`results/bench-realign/<variant>/`, all reading one generated demo TIMIT and IEMOCAP, and asks
only for the decodes of the ASR primaries. Takes ~10 minutes on 2 cores.

    .venv/bin/python benchmarks/realignment.py [--passes 2] [--window 3] [--json benchmarks/results/realignment.json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SNAKEMAKE = Path(sys.executable).with_name("snakemake")
BASE = Path("results/bench-realign")


def run(variant: str, asr: dict, targets: list[str], corpora: dict | None) -> None:
    from gradual_transfer.config import load_config, merge

    config = merge(load_config(REPO / "config.yaml"), load_config(REPO / "config.demo.yaml"))
    config = merge(config, {"outdir": f"{BASE}/{variant}", "experiments": {"images": {"enabled": False}},
                            "tasks": {"asr": asr}})
    if corpora:  # the corpora of the first variant, read where it generated them
        for dataset, root in corpora.items():
            del config["demo"][dataset]
            config["datasets"][dataset]["root"] = str(root)
    path = REPO / BASE / f"{variant}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(json.loads(json.dumps(config))))
    command = [str(SNAKEMAKE), *[f"{BASE}/{variant}/{t}" for t in targets],  # before --configfile, which
               "--cores", "2", "--max-threads", "1", "--configfile", str(path)]       # takes several values
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    if result.returncode:
        sys.exit(result.stderr[-4000:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--passes", type=int, default=2)
    parser.add_argument("--window", type=int, default=None, help="also realign with phones held within ± this")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    archs = ["model_a_demo", "model_b_demo"]
    decodes = [f"models/{a}/primary/asr/fold0/decode/metrics.json" for a in archs]
    variants = {"thirds": {"frame_targets": "thirds"}}
    for passes in range(1, args.passes + 1):
        variants[f"realigned-{passes}"] = {"frame_targets": "realigned", "realign_passes": passes}
    if args.window is not None:
        variants[f"realigned-1-window{args.window}"] = {"frame_targets": "realigned", "realign_passes": 1,
                                                         "realign_window": args.window}
    results, corpora = {}, None
    for variant, asr in variants.items():
        print(f"running {variant} ...", file=sys.stderr)
        run(variant, asr, decodes, corpora)
        out = REPO / BASE / variant
        corpora = corpora or {"timit": out / "corpora" / "timit"}  # the only corpus these targets read
        entry = {}
        for arch, decode in zip(archs, decodes):
            metrics = json.loads((out / decode).read_text())
            entry[arch] = {"dev_per": metrics["validation"]["per"], "test_per": metrics["test"]["per"]}
        passes = asr.get("realign_passes", 0) if asr["frame_targets"] == "realigned" else 0
        if passes:
            report = json.loads((out / f"features/timit/realigned/pass{passes}/report.json").read_text())
            entry["alignment"] = {split: {k: report[split][k] for k in ("changed_frames", "boundary_shift_frames",
                                                                        "not_aligned", "aligned_frames_per_s")}
                                  for split in ("train", "dev")}
        results[variant] = entry
    print("| targets | " + " | ".join(f"{a} dev PER | {a} test PER" for a in archs)
          + " | train frames changed | boundary shift (frames, mean) | within ±2 frames | aligner frames/s |")
    print("|---" * (1 + 2 * len(archs) + 4) + "|")
    for variant, entry in results.items():
        pers = " | ".join(f"{entry[a]['dev_per']:.2f} | {entry[a]['test_per']:.2f}" for a in archs)
        ali = entry.get("alignment", {}).get("train")
        extra = (f"{100 * ali['changed_frames']:.1f} % | {ali['boundary_shift_frames']['mean']:.2f} | "
                 f"{100 * ali['boundary_shift_frames']['within_2']:.0f} % | {ali['aligned_frames_per_s']:,.0f}"
                 if ali else "– | – | – | –")
        print(f"| {variant} | {pers} | {extra} |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
