"""CIFAR-10, CIFAR-100 and SVHN (the paper's image kinds): their layouts, the files they read,
and their preparation into the prepared image files (:mod:`gradual_transfer.data.images`),
read through torchvision's own readers.

torchvision checks every file's MD5 against the original release, even with
``download=False``. That check stays on for real data (``verify_md5: true``); files in the same
format with other content (the demo sets, test fixtures) are read by subclasses whose checksum
entries are ``None``, which torchvision treats as "exists is enough".

Module level imports stay light (numpy only; the prepared-image module needs torch): the layout
check runs when the workflow is parsed.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from gradual_transfer.data.errors import DataError

LAYOUT = {
    "cifar10": "<root>/cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta} "
               "(the python version of CIFAR-10, as torchvision stores it)",
    "cifar100": "<root>/cifar-100-python/{train, test, meta} "
                "(the python version of CIFAR-100, as torchvision stores it)",
    "svhn": "<root>/{train_32x32.mat, test_32x32.mat, extra_32x32.mat} (SVHN format 2, cropped digits)",
}


def _files(entry: dict) -> list[str]:
    """The files of a kind, relative to its root (SVHN's extra split only with use_extra)."""
    kind = entry["kind"]
    if kind == "cifar10":
        return [f"cifar-10-batches-py/{n}" for n in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"]]
    if kind == "cifar100":
        return [f"cifar-100-python/{n}" for n in ("train", "test", "meta")]
    return ["train_32x32.mat", "test_32x32.mat"] + (["extra_32x32.mat"] if entry.get("use_extra") else [])


def missing_entries(root: Path, entry: dict) -> list[str]:
    """The files of the layout absent under `root`."""
    return [str(root / name) for name in _files(entry) if not (root / name).is_file()]


def write_placeholders(root: Path, entry: dict) -> None:
    """Empty files with the layout's names (SVHN's extra split included)."""
    for name in _files({"use_extra": True, **entry}):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).touch()


def corpus_files(root: Path, entry: dict, split: str | None = None) -> list[Path]:
    """The files preparation reads (every split: one preparation writes them all)."""
    return [root / name for name in _files(entry) if (root / name).is_file()]


# --- reading: one official split, checked ------------------------------------------------------

@lru_cache(maxsize=None)
def _readers() -> dict:
    """torchvision's reader of each kind, and a subclass of it whose checksum entries are None
    (built when first asked: torchvision is not imported when the workflow is parsed)."""
    from torchvision import datasets

    class UncheckedCIFAR10(datasets.CIFAR10):
        train_list = [[name, None] for name, _ in datasets.CIFAR10.train_list]
        test_list = [[name, None] for name, _ in datasets.CIFAR10.test_list]
        meta = {**datasets.CIFAR10.meta, "md5": None}

    class UncheckedCIFAR100(datasets.CIFAR100):
        train_list = [[name, None] for name, _ in datasets.CIFAR100.train_list]
        test_list = [[name, None] for name, _ in datasets.CIFAR100.test_list]
        meta = {**datasets.CIFAR100.meta, "md5": None}

    class UncheckedSVHN(datasets.SVHN):
        split_list = {split: [url, name, None] for split, (url, name, _) in datasets.SVHN.split_list.items()}

    return {
        "cifar10": (datasets.CIFAR10, UncheckedCIFAR10),
        "cifar100": (datasets.CIFAR100, UncheckedCIFAR100),
        "svhn": (datasets.SVHN, UncheckedSVHN),
    }


CLASSES = {"cifar10": 10, "cifar100": 100, "svhn": 10}


def split_files(dataset: str, root: str | Path, split: str) -> list[Path]:
    """The files of one official split, as torchvision reads them."""
    root = Path(root)
    reader = _readers()[dataset][0]
    if dataset == "svhn":
        return [root / reader.split_list[split][1]]
    names = reader.train_list if split == "train" else reader.test_list
    return [root / reader.base_folder / name for name, _ in names]


def _check_cifar_files(dataset: str, root: str | Path, split: str) -> None:
    """Each CIFAR batch file on its own: readable, as many labels as images, rows of
    3 × 32 × 32 bytes, labels of the dataset's classes. (torchvision concatenates the batches
    first, so a batch one image short would shift every label after it.)"""
    import pickle

    from gradual_transfer.data.images import IMAGE_SHAPE

    key = "fine_labels" if dataset == "cifar100" else "labels"
    for path in split_files(dataset, root, split):
        try:
            with open(path, "rb") as f:
                entry = pickle.load(f, encoding="latin1")
            data, labels = np.asarray(entry["data"]), np.asarray(entry[key])
        except (OSError, EOFError, pickle.UnpicklingError, KeyError, TypeError, ValueError) as error:
            raise DataError(f"{path}: not a readable {dataset} batch ({type(error).__name__}: {error}). "
                            f"Replace it with the original file.") from None
        if data.ndim != 2 or data.shape[1] != int(np.prod(IMAGE_SHAPE)) or data.dtype != np.uint8:
            raise DataError(f"{path}: images of shape {data.shape} and type {data.dtype}; a {dataset} batch holds "
                            f"rows of {int(np.prod(IMAGE_SHAPE))} uint8 values. Replace it with the original file.")
        if len(data) != len(labels):
            raise DataError(f"{path}: {len(data)} images but {len(labels)} labels. Replace it with the original file.")
        _check_labels(labels, dataset, path)


def _check_labels(labels: np.ndarray, dataset: str, path: Path) -> None:
    bad = np.flatnonzero((labels < 0) | (labels >= CLASSES[dataset]))
    if len(bad):
        raise DataError(f"{path}: label {labels[bad[0]]} at index {bad[0]} is outside 0..{CLASSES[dataset] - 1} "
                        f"({len(bad)} such labels). Replace it with the original file.")


def read_split(dataset: str, root: str | Path, split: str, verify_md5: bool = True,
               download: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 32, 32, 3) uint8 and labels (N,) int64 of one official split, checked: as
    many labels as images, 32 × 32 × 3 images, labels in 0..classes - 1 (a :class:`DataError`
    names the file and the first bad index).

    `split` is ``train`` or ``test`` for CIFAR and ``train``, ``extra`` or ``test`` for SVHN
    (whose label 10 torchvision already maps to 0).
    """
    from gradual_transfer.data.images import IMAGE_SHAPE

    checked, unchecked = _readers()[dataset]
    reader = checked if verify_md5 else unchecked
    if dataset != "svhn" and split not in ("train", "test"):
        raise ValueError(f"{dataset} has splits train and test, not {split!r}")
    if dataset != "svhn" and not download:
        _check_cifar_files(dataset, root, split)
    files = ", ".join(map(str, split_files(dataset, root, split)))
    try:
        if dataset == "svhn":
            ds = reader(str(root), split=split, download=download)
            images, labels = np.ascontiguousarray(ds.data.transpose(0, 2, 3, 1)), np.asarray(ds.labels, dtype=np.int64)
        else:
            ds = reader(str(root), train=split == "train", download=download)
            images, labels = ds.data, np.asarray(ds.targets, dtype=np.int64)
    except RuntimeError as error:  # torchvision: a file is missing or its MD5 is not the release's
        raise DataError(f"{files}: not found, or not the original release (torchvision's MD5 check: {error}). "
                        f"For a copy in the same format with other content, set datasets.{dataset}.verify_md5: "
                        f"false.") from None
    except (OSError, EOFError, KeyError, TypeError, ValueError, IndexError) as error:
        raise DataError(f"{files}: not a readable {dataset} {split} split ({type(error).__name__}: {error}). "
                        f"Replace it with the original file.") from None
    if images.ndim != 4 or images.shape[1:] != IMAGE_SHAPE:
        raise DataError(f"{files}: images of shape {images.shape[1:]}, not {IMAGE_SHAPE}. Replace it with the "
                        f"original file.")
    labels = labels.reshape(-1) if labels.ndim == 2 and 1 in labels.shape else labels
    if len(images) != len(labels):
        raise DataError(f"{files}: {len(images)} images but {len(labels)} labels. Replace it with the original file.")
    _check_labels(labels, dataset, Path(files))
    return images, labels


# --- preparation: official splits → train / validation / test Arrow files -------------------

def prepare(dataset: str, root: str | Path, out_dir: str | Path, validation: int, verify_md5: bool = True,
            download: bool = False, use_extra: bool = False, train_limit: int | None = None) -> dict:
    """Write ``train.arrow``, ``validation.arrow``, ``test.arrow`` and ``stats.json`` (per-channel
    mean/std of the training images in [0, 1]; SVHN is only scaled by 1/255, so 0 and 1)."""
    from gradual_transfer.data.images import carve_validation, write_images

    from gradual_transfer.io import all_or_none, write_json

    out_dir = Path(out_dir)
    images, labels = read_split(dataset, root, "train", verify_md5, download)
    if dataset == "svhn" and use_extra:
        extra_images, extra_labels = read_split(dataset, root, "extra", verify_md5, download)
        images, labels = np.concatenate([images, extra_images]), np.concatenate([labels, extra_labels])
    if validation >= len(images):
        raise DataError(f"datasets.{dataset}.validation = {validation} leaves no training images "
                        f"({len(images)} in {root}).")
    kept, held = carve_validation(len(images), validation)
    if train_limit:
        kept = kept[:train_limit]
    test_images, test_labels = read_split(dataset, root, "test", verify_md5, download)
    if dataset == "svhn":
        mean, std = [0.0] * 3, [1.0] * 3
    else:
        pixels = images[kept].reshape(-1, 3).astype(np.float64) / 255.0
        mean, std = pixels.mean(axis=0).tolist(), pixels.std(axis=0).tolist()
    stats = {"mean": mean, "std": std, "train": int(len(kept)), "validation": int(len(held)),
             "test": int(len(test_labels)), "classes": CLASSES[dataset]}
    with all_or_none():  # the three splits and their statistics appear together, or none does
        write_images(out_dir / "train.arrow", images[kept], labels[kept])
        write_images(out_dir / "validation.arrow", images[held], labels[held])
        write_images(out_dir / "test.arrow", test_images, test_labels)
        write_json(out_dir / "stats.json", stats)
    return stats


def prepare_as_configured(config: dict, dataset: str, root: str | Path, out_dir: str | Path) -> dict:
    """:func:`prepare` with the settings of ``datasets.<dataset>`` (the command line's step)."""
    entry = config["datasets"][dataset]
    return prepare(entry["kind"], root, out_dir, validation=entry["validation"], verify_md5=entry["verify_md5"],
                   download=entry["download"], use_extra=entry.get("use_extra", False),
                   train_limit=entry.get("train_limit"))
