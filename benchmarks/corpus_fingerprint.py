"""Cost of the corpus-content params on a TIMIT-sized tree (empty files, real layout): what
every `snakemake -n` pays to notice a replaced, added or removed corpus file.

    .venv/bin/python benchmarks/corpus_fingerprint.py
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from gradual_transfer.data.timit import listed_speakers
from gradual_transfer.data.layouts import content_fingerprint, corpus_files


def timit_tree(root: Path) -> None:
    """462 training speakers × 10 utterances and 168 test speakers (the dev and core-test
    speakers among them) × 10, each with .WAV, .PHN, .WRD and .TXT: TIMIT's file count."""
    listed = listed_speakers("dev") + listed_speakers("core_test")
    test_speakers = listed + [f"mtst{i}" for i in range(168 - len(listed))]
    for part, speakers in (("TRAIN", [f"mtrn{i}" for i in range(462)]), ("TEST", test_speakers)):
        for i, speaker in enumerate(speakers):
            folder = root / part / f"DR{i % 8 + 1}" / speaker.upper()
            folder.mkdir(parents=True)
            for utt in range(10):
                for ext in ("WAV", "PHN", "WRD", "TXT"):
                    (folder / f"SX{utt}.{ext}").touch()


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        timit_tree(root)
        print("| split | files | fingerprint, median of 5 (s) |")
        print("|---|---|---|")
        for split in ("train", "dev", "test"):
            times = []
            for _ in range(5):
                start = time.perf_counter()
                files = corpus_files("timit", root, split)
                content_fingerprint(root, files)
                times.append(time.perf_counter() - start)
            print(f"| {split} | {len(files)} | {statistics.median(times):.3f} |")


if __name__ == "__main__":
    main()
