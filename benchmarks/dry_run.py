"""Wall time of a dry run of the full paper grid (`snakemake -n`) on a fake data tree.

    .venv/bin/python benchmarks/dry_run.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from gradual_transfer.config import load_config
from gradual_transfer.data.layouts import write_placeholders

REPO = Path(__file__).resolve().parents[1]


def fake_data_tree(config: dict, base: Path) -> None:
    for dataset, entry in config["datasets"].items():
        write_placeholders(dataset, base / entry["root"], entry)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    snakemake = Path(sys.executable).with_name("snakemake")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        shutil.copy(REPO / "config.yaml", work / "config.yaml")
        fake_data_tree(load_config(work / "config.yaml"), work)
        times, jobs = [], None
        for _ in range(args.repeats):
            start = time.perf_counter()
            out = subprocess.run([str(snakemake), "-s", str(REPO / "Snakefile"), "-d", str(work), "-n", "--quiet", "rules"],
                                 capture_output=True, text=True, check=True, cwd=work)
            times.append(time.perf_counter() - start)
            match = re.search(r"^total\s+(\d+)$", out.stdout, re.M)
            jobs = int(match.group(1)) if match else None
    print("| jobs planned | dry run, median of {} (s) |".format(args.repeats))
    print("|---|---|")
    print(f"| {jobs} | {statistics.median(times):.1f} |")


if __name__ == "__main__":
    main()
