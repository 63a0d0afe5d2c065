"""CIFAR-10, CIFAR-100 and SVHN through torchvision's own readers.

torchvision checks every file's MD5 against the original release, even with
``download=False``. That check stays on for real data (``verify_md5: true``); files in the same
format with other content (the demo sets, test fixtures) are read by subclasses whose checksum
entries are ``None``, which torchvision treats as "exists is enough".
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from torchvision import datasets


class _UncheckedCIFAR10(datasets.CIFAR10):
    train_list = [[name, None] for name, _ in datasets.CIFAR10.train_list]
    test_list = [[name, None] for name, _ in datasets.CIFAR10.test_list]
    meta = {**datasets.CIFAR10.meta, "md5": None}


class _UncheckedCIFAR100(datasets.CIFAR100):
    train_list = [[name, None] for name, _ in datasets.CIFAR100.train_list]
    test_list = [[name, None] for name, _ in datasets.CIFAR100.test_list]
    meta = {**datasets.CIFAR100.meta, "md5": None}


class _UncheckedSVHN(datasets.SVHN):
    split_list = {split: [url, name, None] for split, (url, name, _) in datasets.SVHN.split_list.items()}


_READERS = {
    "cifar10": (datasets.CIFAR10, _UncheckedCIFAR10),
    "cifar100": (datasets.CIFAR100, _UncheckedCIFAR100),
    "svhn": (datasets.SVHN, _UncheckedSVHN),
}


def read_split(dataset: str, root: str | Path, split: str, verify_md5: bool = True,
               download: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 32, 32, 3) uint8 and labels (N,) int64 of one official split.

    `split` is ``train`` or ``test`` for CIFAR and ``train``, ``extra`` or ``test`` for SVHN
    (whose label 10 torchvision already maps to 0).
    """
    checked, unchecked = _READERS[dataset]
    reader = checked if verify_md5 else unchecked
    if dataset == "svhn":
        ds = reader(str(root), split=split, download=download)
        return np.ascontiguousarray(ds.data.transpose(0, 2, 3, 1)), np.asarray(ds.labels, dtype=np.int64)
    if split not in ("train", "test"):
        raise ValueError(f"{dataset} has splits train and test, not {split!r}")
    ds = reader(str(root), train=split == "train", download=download)
    return ds.data, np.asarray(ds.targets, dtype=np.int64)
