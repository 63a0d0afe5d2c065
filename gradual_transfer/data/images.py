"""CIFAR-10, CIFAR-100 and SVHN through torchvision's own readers.

torchvision checks every file's MD5 against the original release, even with
``download=False``. That check stays on for real data (``verify_md5: true``); files in the same
format with other content (the demo sets, test fixtures) are read by subclasses whose checksum
entries are ``None``, which torchvision treats as "exists is enough".
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from torchvision import datasets

from gradual_transfer.data.errors import DataError
from gradual_transfer.data.order import IndexedSource


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


CLASSES = {"cifar10": 10, "cifar100": 100, "svhn": 10}


def split_files(dataset: str, root: str | Path, split: str) -> list[Path]:
    """The files of one official split, as torchvision reads them."""
    root = Path(root)
    if dataset == "svhn":
        return [root / datasets.SVHN.split_list[split][1]]
    reader = _READERS[dataset][0]
    names = reader.train_list if split == "train" else reader.test_list
    return [root / reader.base_folder / name for name, _ in names]


def _check_cifar_files(dataset: str, root: str | Path, split: str) -> None:
    """Each CIFAR batch file on its own: readable, as many labels as images, rows of
    3 × 32 × 32 bytes, labels of the dataset's classes. (torchvision concatenates the batches
    first, so a batch one image short would shift every label after it.)"""
    import pickle

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
    checked, unchecked = _READERS[dataset]
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

IMAGE_SHAPE = (32, 32, 3)  # CIFAR's and SVHN's, and that of every file written before files recorded theirs
SPLIT_SEED = 0  # the validation images are a fixed random subset of the training images

# Schema metadata key holding "height,width,channels"; absent in files written before it existed.
SHAPE_KEY = b"image_shape"


def carve_validation(count: int, validation: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (sorted) of the `count` training images kept for training and of the
    `validation` ones held out: a fixed random subset (:data:`SPLIT_SEED`)."""
    order = np.random.default_rng(SPLIT_SEED).permutation(count)
    return np.sort(order[validation:]), np.sort(order[:validation])


def image_schema(shape: tuple[int, int, int] = IMAGE_SHAPE) -> "pa.Schema":
    import pyarrow as pa

    return pa.schema([pa.field("image", pa.list_(pa.uint8(), int(np.prod(shape)))), pa.field("label", pa.int16())],
                     metadata={SHAPE_KEY: ",".join(map(str, shape)).encode()})


def write_images(path: str | Path, images: np.ndarray, labels: np.ndarray, rows_per_batch: int = 8192) -> None:
    """(N, H, W, C) uint8 + labels → an uncompressed Arrow IPC file, written batch by batch;
    the image shape is stored in the schema's metadata."""
    import pyarrow as pa

    from gradual_transfer.io import atomic_path

    if images.ndim != 4 or images.dtype != np.uint8:
        raise ValueError(f"{path}: images must be (N, height, width, channels) uint8, not {images.shape} {images.dtype}")
    shape = tuple(int(n) for n in images.shape[1:])
    schema = image_schema(shape)
    with atomic_path(path) as tmp, pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, schema) as writer:
        for start in range(0, max(len(images), 1), rows_per_batch):
            chunk = np.ascontiguousarray(images[start:start + rows_per_batch]).reshape(-1)
            rows = pa.FixedSizeListArray.from_arrays(pa.array(chunk, pa.uint8()), int(np.prod(shape)))
            writer.write_batch(pa.record_batch([rows, pa.array(labels[start:start + rows_per_batch], pa.int16())],
                                               schema=schema))


def _stored_shape(path: Path, schema: "pa.Schema") -> tuple[int, ...]:
    """The image shape a file records, or 32 × 32 × 3 for files written before it did; a
    :class:`DataError` when it does not fit the file's rows."""
    text = (schema.metadata or {}).get(SHAPE_KEY)
    row = schema.field("image").type.list_size
    try:
        shape = tuple(int(n) for n in text.decode().split(",")) if text is not None else IMAGE_SHAPE
    except ValueError:
        shape = ()
    if len(shape) != 3 or int(np.prod(shape)) != row:
        raise DataError(f"{path}: image shape {text.decode(errors='replace') if text else IMAGE_SHAPE} does not fit "
                        f"its rows of {row} values; it is not a prepared image file. Delete it and prepare the "
                        f"dataset again.")
    return shape


class ImageArrays:
    """A memory-mapped image file: ``images`` (N, H, W, C) uint8 and ``labels`` (N,) views.
    Written as one record batch per 8,192 images; read as one contiguous view when it is a
    single batch, else concatenated once (the demo and test files are single batches)."""

    def __init__(self, path: str | Path) -> None:
        from gradual_transfer.data.arrow import read_ipc

        self.path = Path(path)
        self._source, schema, batches = read_ipc(self.path, ("image", "label"))
        shape = _stored_shape(self.path, schema)
        images = [b.column("image").values.to_numpy(zero_copy_only=True) for b in batches]
        labels = [b.column("label").to_numpy(zero_copy_only=True) for b in batches]
        flat = images[0] if len(images) == 1 else np.concatenate(images)
        self.images = flat.reshape(-1, *shape)
        self.labels = (labels[0] if len(labels) == 1 else np.concatenate(labels)).astype(np.int64)

    def __len__(self) -> int:
        return len(self.labels)


def prepare_images(dataset: str, root: str | Path, out_dir: str | Path, validation: int, verify_md5: bool = True,
                   download: bool = False, use_extra: bool = False, train_limit: int | None = None) -> dict:
    """Write ``train.arrow``, ``validation.arrow``, ``test.arrow`` and ``stats.json`` (per-channel
    mean/std of the training images in [0, 1]; SVHN is only scaled by 1/255, so 0 and 1)."""
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


class ImageSource:
    """Batches of normalised float images (N, 3, H, W) from uint8 arrays; only the gathered
    batch is ever converted."""

    def __init__(self, arrays: ImageArrays, mean: list[float], std: list[float]) -> None:
        import torch

        self.arrays = arrays
        self.mean = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1) * 255.0
        self.std = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1) * 255.0

    def __len__(self) -> int:
        return len(self.arrays)

    @property
    def input_shape(self) -> list[int]:
        """Channels, height, width of one example, as the model sees it."""
        return [self.arrays.images.shape[3], *self.arrays.images.shape[1:3]]

    def batches(self, batch_size, generator):
        import torch

        from gradual_transfer.data.order import epoch_order

        n = len(self)
        order = epoch_order(n, generator).numpy()
        for start in range(0, n, batch_size):
            index = order[start:start + batch_size]
            x = torch.from_numpy(self.arrays.images[index]).permute(0, 3, 1, 2).float()
            y = torch.from_numpy(self.arrays.labels[index])
            yield (x - self.mean) / self.std, y

    def resident_bytes(self) -> int:
        """Device memory :meth:`to_device` takes: the uint8 images and int64 labels."""
        return self.arrays.images.nbytes + len(self) * 8

    def labels(self) -> tuple[Path, np.ndarray]:
        """The file the examples come from, and their labels (to check them against the task)."""
        return self.arrays.path, self.arrays.labels

    def to_device(self, device) -> "ResidentImageSource":
        return ResidentImageSource(self, device)


class ResidentImageSource(IndexedSource):
    """An :class:`ImageSource` copied to `device` once (uint8, as stored): each batch is gathered
    and normalised there by index, so a training step costs the host nothing but the launches.
    The same examples in the same order as the source (both draw their order with
    :func:`~gradual_transfer.data.order.epoch_order` on the host), and the same values: the same
    float32 operations."""

    resident = True

    def __init__(self, source: ImageSource, device) -> None:
        import torch

        self.device = torch.device(device)
        self.input_shape = source.input_shape
        with warnings.catch_warnings():  # the memory-mapped file is read-only; it is only read, to copy it
            warnings.simplefilter("ignore", UserWarning)
            self.images = torch.from_numpy(source.arrays.images).to(self.device)
        self.targets = torch.from_numpy(source.arrays.labels).to(self.device)
        self.mean, self.std = source.mean.to(self.device), source.std.to(self.device)

    def gather(self, index):
        x = self.images[index].permute(0, 3, 1, 2).float()
        return (x - self.mean) / self.std
