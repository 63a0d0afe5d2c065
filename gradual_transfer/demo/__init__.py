"""Demo corpora in the real on-disk formats, generated offline and deterministically.

Real CIFAR, SVHN, TIMIT and IEMOCAP cannot be fetched on an offline machine (and the speech
corpora are licensed), so the demo writes small stand-ins that the real readers accept.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

log = logging.getLogger(__name__)


def _generators():
    from gradual_transfer.demo import iemocap, images, timit

    return {
        "timit": timit.generate,
        "iemocap": iemocap.generate,
        "cifar10": images.generate_cifar10,
        "cifar100": images.generate_cifar100,
        "svhn": images.generate_svhn,
    }


DATASETS = ("timit", "iemocap", "cifar10", "cifar100", "svhn")


def generate_corpus(dataset: str, out: str | Path, settings: dict, seed: int) -> int:
    """Generate the demo `dataset` at `out`. Written into a temporary sibling and renamed at the
    end, so an interrupted run never leaves a corpus that looks complete."""
    generators = _generators()
    if dataset not in generators:
        raise ValueError(f"no demo generator for {dataset!r}; choose one of {', '.join(DATASETS)}")
    out = Path(out)
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.parent.mkdir(parents=True, exist_ok=True)
    log.info("generating demo %s (seed %d, %s) in %s", dataset, seed, settings, partial)
    try:
        count = generators[dataset](partial, settings, seed)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    if out.exists():
        shutil.rmtree(out)
    partial.rename(out)
    log.info("wrote %d items of demo %s to %s", count, dataset, out)
    return count
