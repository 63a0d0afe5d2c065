"""`kind: imagefolder`: a user's own image dataset in torchvision's ``ImageFolder`` layout.

    <root>/train/<class>/<image>     one folder per class; the sorted folder names are the
    <root>/test/<class>/<image>      classes (label = index), the same in every split
    <root>/val/<class>/<image>       optional; without it the validation images are carved
                                     from train/ as CIFAR's are (fixed seed)

Which files count as images, in which order, and which folders are classes is torchvision's
rule (``torchvision.datasets.folder``), so a tree that loads as an ``ImageFolder`` prepares here
the same way, with two differences where torchvision's would be wrong:

- links are followed once: a folder reached twice (a link back up the tree: a loop, or two links
  to one folder) or an image reached twice (by a link, within a split or across splits) is
  refused naming both paths, at the config check and by the preparation; torchvision walks a
  loop until the system stops it and reads its images dozens of times;
- images whose pixels are not 8-bit keep their range: 16-bit grey images (Pillow's ``I;16``
  modes) are scaled to 8 bits (65535 → 255), where converting them to RGB as torchvision does
  clips them white; 32-bit integer and floating-point images (``I``, ``F``), whose range no file
  says, are refused naming the mode (a bad image: ``bad_images: skip`` leaves them out).

Each image is decoded by Pillow and converted to RGB (torchvision's ``pil_loader``), its shorter
side resized to ``image_size`` and centre-cropped to a square (``transforms.functional.resize``
with antialiasing, then ``center_crop``: the usual evaluation transform), and stored as uint8 in
the Arrow files CIFAR's preparation writes.

Preparation holds every split's images in memory at once, N × image_size² × 3 bytes (50,000
images at 64 pixels: 614 MB), as CIFAR's does.

Longer than the library's ~350-line rule of thumb because it is its kind's whole reader (layout,
checks before planning, class folders, bad images, preparation), as each reader of data/ is.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from gradual_transfer.data.errors import DataError

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")  # folder names under the root; val/ is optional
BAD_IMAGES = ("fail", "skip")

# Module level imports stay light (no numpy, no torch): the layout check runs when the workflow is
# parsed. torchvision's IMG_EXTENSIONS (any case), spelt out for messages without importing torchvision.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")

EXPECTED = ("<root>/train/<class>/<image> and <root>/test/<class>/<image>, optionally <root>/val/<class>/<image> "
            "(torchvision's ImageFolder layout: one folder per class, the same class folders in every split; "
            f"images {', '.join(IMAGE_SUFFIXES)})")
LAYOUT = {"imagefolder": EXPECTED}


def _class_folders(split_dir: Path) -> list[str]:
    """torchvision's rule: the sorted names of the folders directly under `split_dir`."""
    return sorted(entry.name for entry in os.scandir(split_dir) if entry.is_dir())


def missing_entries(root: Path, entry: dict | None = None) -> list[str]:
    """What the layout requires and `root` lacks: train/ and test/ with at least one class
    folder each (names only: no file is opened, so it runs when the workflow is parsed)."""
    root = Path(root)
    return [str(root / split / "<class>") for split in ("train", "test")
            if not (root / split).is_dir() or not _class_folders(root / split)]


def class_names(root: str | Path) -> list[str]:
    """The classes in label order: the sorted folder names of train/ (torchvision's
    ``find_classes``, without importing torchvision). test/ and val/ must hold the same
    folders, else a :class:`DataError` names the folder and the difference."""
    root = Path(root)
    classes = _class_folders(root / "train") if (root / "train").is_dir() else []
    if not classes:
        raise DataError(f"{root / 'train'}: no class folders. Expected {EXPECTED}.")
    for split in ("val", "test"):
        folder = root / split
        if split == "val" and not folder.is_dir():
            continue
        if not folder.is_dir():
            raise DataError(f"{folder}: no such folder. Expected {EXPECTED}.")
        found = _class_folders(folder)
        if found != classes:
            missing, extra = sorted(set(classes) - set(found)), sorted(set(found) - set(classes))
            difference = "; ".join(part for part in (
                f"lacks {', '.join(missing)}" if missing else "",
                f"has {', '.join(extra)} that train/ does not" if extra else "") if part)
            raise DataError(f"{folder}: its class folders differ from {root / 'train'}'s ({difference}); every "
                            f"split holds the same class folders. Add or rename folders so they match.")
    return classes


class _Walk:
    """What one walk of an image tree has seen, by real path (links followed once), and the
    problems found: a folder or an image reached twice, each a sentence naming both paths."""

    def __init__(self) -> None:
        self.folders: dict[str, Path] = {}
        self.files: dict[str, Path] = {}
        self.problems: list[str] = []

    def folder(self, path: Path) -> bool:
        """Whether to walk `path`: not when its real folder was walked already."""
        real = os.path.realpath(path)
        if real in self.folders:
            self.problems.append(f"{path}: a link to {self.folders[real]}, which is read already (a loop, or one "
                                 f"folder reached twice); remove the link, or copy the folder.")
            return False
        self.folders[real] = path
        return True

    def image(self, path: Path, real: str) -> bool:
        """Whether to read `path`: not when its real file was listed already."""
        if real in self.files:
            self.problems.append(f"{path}: the same file as {self.files[real]} (a link); an image is read once, in "
                                 f"one class of one split: remove one of them.")
            return False
        self.files[real] = path
        return True


def _class_images(folder: Path, walk: _Walk) -> list[Path]:
    """The images under one class folder by torchvision's ``make_dataset`` rule (folders in
    sorted order of their paths, following links, files whose name ends in an image suffix in
    any case, sorted), each real folder and file once (:class:`_Walk`)."""
    found: list[tuple[str, list[Path]]] = []
    pending = [folder]
    while pending:
        current = pending.pop()
        if not walk.folder(current):
            continue
        try:
            entries = sorted(os.scandir(current), key=lambda e: e.name)
        except OSError:  # unreadable: skipped, as os.walk (and so torchvision) skips it
            continue
        real = os.path.realpath(current)
        images = []
        for entry in entries:
            if entry.is_dir():
                pending.append(current / entry.name)
            elif entry.name.lower().endswith(IMAGE_SUFFIXES):
                target = os.path.realpath(entry.path) if entry.is_symlink() else os.path.join(real, entry.name)
                if walk.image(current / entry.name, target):
                    images.append(current / entry.name)
        found.append((str(current), images))
        pending.sort(reverse=True)  # the next folder in sorted order first: problems name the first path read
    return [path for _, images in sorted(found, key=lambda pair: pair[0]) for path in images]


def _tree_images(root: Path, classes_by_split: dict[str, list[str]]) -> tuple[dict[str, list[tuple[Path, int]]], list[str]]:
    """(image, label) of each split (label = the class's index in its split's `classes`), in
    torchvision's order, and the problems of the walk (folders or images reached twice, within a
    split or across splits)."""
    walk = _Walk()
    items = {split: [(path, label) for label, name in enumerate(classes)
                     for path in _class_images(root / split / name, walk)]
             for split, classes in classes_by_split.items()}
    return items, walk.problems


def tree_problems(root: str | Path) -> list[str]:
    """Folders or images of an image folder reached twice (by links): sentences naming both."""
    root = Path(root)
    return _tree_images(root, {split: _class_folders(root / split) for split in SPLITS if (root / split).is_dir()})[1]


def corpus_files(root: str | Path, entry: dict | None = None, split: str | None = None) -> list[Path]:
    """Every image file preparation reads (sorted), each once: a directory walk, nothing decoded,
    no torchvision imported (it runs when the workflow is parsed). Absent folders are simply not
    listed, nor what links reach twice; :func:`prepare` and the check report what is wrong."""
    root = Path(root)
    items, _ = _tree_images(root, {split: _class_folders(root / split) for split in SPLITS if (root / split).is_dir()})
    return sorted(path for split_items in items.values() for path, _ in split_items)


def write_placeholders(root: str | Path, entry: dict | None = None, classes: int = 1) -> None:
    """Empty class folders in train/ and test/ (``class000``, ...): a fake tree that passes
    :func:`missing_entries`, on which Snakemake can plan (dry runs, tests, benchmarks)."""
    root = Path(root)
    for split in ("train", "test"):
        for i in range(classes):
            (root / split / f"class{i:03d}").mkdir(parents=True, exist_ok=True)


SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N")  # Pillow's 16-bit grey images (PNG, TIFF)
NO_RANGE_MODES = {"I": "32-bit integer", "F": "32-bit floating-point"}


class ImageModeError(ValueError):
    """An image whose pixels have no range that maps to 8 bits."""


def rgb(image):
    """A Pillow image as 8-bit RGB, its range kept: 16-bit grey scaled to 8 bits (65535 → 255,
    rounded), every 8-bit mode converted as torchvision's ``pil_loader`` converts it; 32-bit
    integer and floating-point pixels refused (:class:`ImageModeError`, naming the mode)."""
    import numpy as np
    from PIL import Image

    if image.mode in NO_RANGE_MODES:
        raise ImageModeError(f"mode {image.mode}: {NO_RANGE_MODES[image.mode]} pixels, whose range no image file "
                             f"says; save it with 8 or 16 bits per channel")
    if image.mode in SIXTEEN_BIT_MODES:
        pixels = np.asarray(image).astype(np.uint32)
        image = Image.fromarray(((pixels * 255 + 32767) // 65535).astype(np.uint8), "L")
    return image.convert("RGB")


def load_image(path: Path, image_size: int) -> np.ndarray:
    """One image as (image_size, image_size, 3) uint8: decoded by Pillow and converted to RGB
    (:func:`rgb`: as torchvision's ``pil_loader``, 16-bit grey kept in range), shorter side
    resized with antialiasing, centre-cropped."""
    import numpy as np
    from PIL import Image
    from torchvision.transforms import functional as F

    with open(path, "rb") as f, Image.open(f) as image:
        converted = rgb(image)
    return np.asarray(F.center_crop(F.resize(converted, image_size, antialias=True), [image_size, image_size]))


def escaped(text: str) -> str:
    r"""`text` as one field of a tab-separated line: backslash, tab, newline and carriage return
    written as ``\\``, ``\t``, ``\n``, ``\r`` (a file may be named with any of them)."""
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _decode(items: list[tuple[Path, int]], image_size: int, root: Path, skip: bool,
            bad: list[tuple[Path, str]]) -> tuple[np.ndarray, np.ndarray]:
    """Images and labels of `items`; an unreadable image is a :class:`DataError`, or with
    `skip` left out and appended to `bad`."""
    import numpy as np
    from PIL import Image

    from gradual_transfer.logs import progress

    images = np.empty((len(items), image_size, image_size, 3), dtype=np.uint8)
    labels = np.empty(len(items), dtype=np.int64)
    count = 0
    for path, label in progress(items, desc=f"decoding {len(items)} images", total=len(items)):
        try:
            images[count] = load_image(path, image_size)
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
            # OSError covers UnidentifiedImageError and "image file is truncated"
            reason = str(error) if isinstance(error, ImageModeError) else f"{type(error).__name__}: {error}"
            if not skip:
                raise DataError(f"{escaped(str(path))}: not a readable image ({reason}). Replace or remove it, or set "
                                f"bad_images: skip for this dataset to leave such images out (they are "
                                f"listed in bad_images.txt).") from None
            log.warning("%s: not a readable image (%s); left out (bad_images: skip)", escaped(str(path)), reason)
            bad.append((path, reason))
            continue
        labels[count] = label
        count += 1
    return images[:count], labels[:count]


def _check_no_empty_class(items_by_split: dict[str, list[tuple[Path, int]]], labels_by_split: dict[str, np.ndarray],
                          root: Path, classes: list[str]) -> None:
    """Every class of every split that exists as a folder holds at least one image, before and
    after bad images are left out."""
    import numpy as np

    for split, items in items_by_split.items():
        listed = np.bincount([label for _, label in items], minlength=len(classes))
        kept = np.bincount(labels_by_split.get(split, np.array([], np.int64)), minlength=len(classes))
        for label, name in enumerate(classes):
            folder = root / split / name
            if listed[label] == 0:
                raise DataError(f"{folder}: no image file ({', '.join(IMAGE_SUFFIXES)}). "
                                f"Add images or remove the folder from every split.")
            if split in labels_by_split and kept[label] == 0:
                raise DataError(f"{folder}: no readable image left after leaving out bad images (see "
                                f"bad_images.txt). Replace them, or remove the class from every split.")


def prepare_as_configured(config: dict, dataset: str, root: str | Path, out_dir: str | Path) -> dict:
    """:func:`prepare` with the settings of ``datasets.<dataset>`` and the class count of the tasks
    reading it (the command line's step)."""
    from gradual_transfer.data.kinds import dataset_classes

    return prepare(root, out_dir, config["datasets"][dataset], classes=dataset_classes(config, dataset),
                   dataset=dataset)


def validation_problem(root: Path, entry: dict, dataset: str) -> str | None:
    """The validation split is ``val/`` or ``validation``, exactly one of the two."""
    has_val = (Path(root) / "val").is_dir()
    if has_val and entry.get("validation") is not None:
        return (f"datasets.{dataset}.validation: {root}/val is the validation split; remove validation (or val/ to "
                f"carve it from train/).")
    if not has_val and entry.get("validation") is None:
        return (f"datasets.{dataset}.validation: {root} has no val/; give how many training images to hold out for "
                f"validation (e.g. validation: 500).")
    return None


def prepare(root: str | Path, out_dir: str | Path, entry: dict, classes: int | None = None,
            dataset: str = "<name>") -> dict:
    """Write ``train.arrow``, ``validation.arrow``, ``test.arrow``, ``stats.json`` (per-channel
    mean/std of the training images in [0, 1], counts, classes), ``classes.json`` (the class
    names in label order) and ``bad_images.txt`` (images left out with ``bad_images: skip``: a
    line per image, its path relative to `root`, a tab and the reason, each :func:`escaped`;
    empty when none) into `out_dir`: all, or none of them.

    `entry` is the dataset's config entry (``image_size``, ``validation``, ``bad_images``);
    `classes` the configured class count of the task reading it, checked against the folders;
    `dataset` its name under ``datasets``, for the messages.
    """
    import numpy as np

    from gradual_transfer.data.images import carve_validation, write_images
    from gradual_transfer.io import all_or_none, write_json, write_text

    root, out_dir = Path(root), Path(out_dir)
    image_size = int(entry["image_size"])
    policy = entry["bad_images"]
    if policy not in BAD_IMAGES:
        raise ValueError(f"bad_images is {policy!r}; it is one of {', '.join(BAD_IMAGES)}")
    names = class_names(root)
    if classes is not None and classes != len(names):
        raise DataError(f"{root}: {len(names)} class folders in train/ ({', '.join(names[:5])}"
                        f"{', ...' if len(names) > 5 else ''}), but the task reading it declares classes: {classes}. "
                        f"Set the task's classes to {len(names)}, or fix the folders.")

    problem = validation_problem(root, entry, dataset)
    if problem:
        raise DataError(problem)
    items, problems = _tree_images(root, {split: names for split in SPLITS if (root / split).is_dir()})
    if problems:
        raise DataError(problems[0] + (f" ({len(problems) - 1} more such links)" if len(problems) > 1 else ""))
    _check_no_empty_class(items, {}, root, names)
    if "val" in items:
        validation_from = "val/"
    else:
        validation = entry["validation"]
        if not 0 <= int(validation) < len(items["train"]):
            raise DataError(f"validation = {validation} leaves no training images ({len(items['train'])} in "
                            f"{root / 'train'}).")
        # Carved by file before decoding: which images are held out does not depend on which are bad.
        kept, held = carve_validation(len(items["train"]), int(validation))
        train = items.pop("train")
        items = {"train": [train[i] for i in kept], "val": [train[i] for i in held], **items}
        validation_from = "carved from train/"

    bad: list[tuple[Path, str]] = []
    arrays = {split: _decode(items[split], image_size, root, policy == "skip", bad) for split in ("train", "val", "test")}
    if validation_from == "val/":
        _check_no_empty_class(items, {s: labels for s, (_, labels) in arrays.items()}, root, names)
    else:  # a carved split may lack a class; train/ as a whole may not
        _check_no_empty_class({"train": items["train"] + items["val"], "test": items["test"]},
                              {"train": np.concatenate([arrays["train"][1], arrays["val"][1]]),
                               "test": arrays["test"][1]}, root, names)

    train_images = arrays["train"][0]
    pixels = train_images.shape[0] * image_size * image_size
    # Exact integer sums of x and x² per channel: no float64 copy of the whole split.
    total = train_images.sum(axis=(0, 1, 2), dtype=np.int64)
    squares = np.einsum("nhwc,nhwc->c", train_images, train_images, dtype=np.int64)
    mean = total / max(pixels, 1) / 255.0
    std = np.sqrt(np.maximum(squares / max(pixels, 1) / 255.0 ** 2 - mean ** 2, 0.0))
    stats = {"mean": mean.tolist(), "std": std.tolist(), "train": len(arrays["train"][1]),
             "validation": len(arrays["val"][1]), "test": len(arrays["test"][1]), "classes": len(names),
             "image_size": image_size, "validation_from": validation_from, "images_left_out": len(bad)}
    listing = "".join(f"{escaped(path.relative_to(root).as_posix())}\t{escaped(reason)}\n" for path, reason in
                      sorted(bad, key=lambda pair: pair[0].relative_to(root).as_posix()))
    with all_or_none():  # the splits, their statistics, the class names and the bad images appear together
        for split, name in (("train", "train"), ("val", "validation"), ("test", "test")):
            write_images(out_dir / f"{name}.arrow", *arrays[split])
        write_json(out_dir / "stats.json", stats)
        write_json(out_dir / "classes.json", names)
        write_text(out_dir / "bad_images.txt", listing)
    return stats


def data_errors(config: dict, dataset: str, root: Path) -> list[str]:
    """An image folder's classes (folder names only) against its tasks' ``classes``, and its
    validation split: ``val/`` or ``validation``, one of the two (the config check, before planning)."""
    entry = config["datasets"][dataset]
    try:
        found = len(class_names(root))
    except DataError as error:
        return [f"datasets.{dataset}.root: {error}"]
    problems = [f"tasks.{name}.classes: {task['classes']}, but {root}/train holds {found} class folders "
                f"(datasets.{dataset}); write classes: {found}."
                for name, task in config["tasks"].items() if task["dataset"] == dataset and task["classes"] != found]
    problem = validation_problem(root, entry, dataset)
    links = tree_problems(root)
    return (problems + ([problem] if problem else [])
            + [f"datasets.{dataset}.root: {link}" for link in links[:3]]
            + ([f"datasets.{dataset}.root: {len(links) - 3} more such links."] if len(links) > 3 else []))
