"""Prepared image data: the Arrow files every image kind's preparation writes (uint8 images of
one shape, int16 labels, the shape in the schema's metadata), their memory-mapped reading, and
the batches training takes from them (on the host, or resident on the device).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from gradual_transfer.data.errors import DataError
from gradual_transfer.data.order import IndexedSource


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
