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

REPO = Path(__file__).resolve().parents[1]


def fake_data_tree(data: Path) -> None:
    """Empty files and folders with the names the data-root checks look for."""
    batches = data / "cifar" / "cifar-10-batches-py"
    batches.mkdir(parents=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"]:
        (batches / name).touch()
    (data / "cifar" / "cifar-100-python").mkdir()
    for name in ("train", "test", "meta"):
        (data / "cifar" / "cifar-100-python" / name).touch()
    (data / "svhn").mkdir()
    for name in ("train", "test", "extra"):
        (data / "svhn" / f"{name}_32x32.mat").touch()
    for part in ("TRAIN", "TEST"):
        (data / "timit" / part / "DR1").mkdir(parents=True)
    for s in range(1, 6):
        for sub in ("sentences/wav", "dialog/EmoEvaluation"):
            (data / "IEMOCAP_full_release" / f"Session{s}" / sub).mkdir(parents=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    snakemake = Path(sys.executable).with_name("snakemake")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        fake_data_tree(work / "data")
        shutil.copy(REPO / "config.yaml", work / "config.yaml")
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
