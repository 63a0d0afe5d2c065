"""`kind: imagefolder`: torchvision's ImageFolder layout prepared into the Arrow files CIFAR's
preparation writes, and Arrow image files of any square size (old 32 × 32 files still read)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gradual_transfer.data import imagefolder
from gradual_transfer.data.errors import DataError
from gradual_transfer.data.images import SPLIT_SEED, ImageArrays, ImageSource, write_images

SIZE = 8
ENTRY = {"kind": "imagefolder", "image_size": SIZE, "validation": 2, "bad_images": "fail"}


def draw(path, size, mode, seed):
    """A random image of `size` (width, height) in `mode`, saved in the format its suffix names."""
    rng = np.random.default_rng(seed)
    channels = {"L": 1, "RGB": 3, "RGBA": 4}[mode]
    pixels = rng.integers(0, 256, (size[1], size[0], channels), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels[..., 0] if channels == 1 else pixels, mode).save(path)
    return path


def make_tree(root, splits=("train", "test"), classes=("cat", "ant", "bee"), per_class=3):
    """`per_class` images per class and split, of various sizes, modes and formats."""
    kinds = [((11, 9), "RGB", "png"), ((9, 14), "L", "jpg"), ((10, 10), "RGBA", "png"), ((20, 12), "RGB", "jpg")]
    seed = 0
    for split in splits:
        for name in classes:
            for i in range(per_class):  # img0.png, img1.jpg, img2.png, img3.jpg
                size, mode, suffix = kinds[i % len(kinds)]
                draw(root / split / name / f"img{i}.{suffix}", size, mode, seed)
                seed += 1
    (root / "train" / classes[0] / "notes.txt").write_text("not an image: torchvision's rule leaves it out")
    return root


def test_classes_are_the_sorted_folder_names(tmp_path):
    from torchvision.datasets.folder import find_classes

    root = make_tree(tmp_path / "skin")
    assert imagefolder.class_names(root) == ["ant", "bee", "cat"] == find_classes(root / "train")[0]
    out = tmp_path / "out"
    stats = imagefolder.prepare(root, out, ENTRY, classes=3)
    assert json.loads((out / "classes.json").read_text()) == ["ant", "bee", "cat"]
    assert stats["classes"] == 3
    test = ImageArrays(out / "test.arrow")
    assert test.labels.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]  # label = index of the sorted folder name


def test_images_are_read_in_torchvisions_order_with_its_labels(tmp_path):
    from torchvision.datasets import ImageFolder

    root = make_tree(tmp_path / "skin", per_class=2)
    (root / "test" / "ant" / "more").mkdir()
    draw(root / "test" / "ant" / "more" / "deeper.PNG", (5, 5), "RGB", 99)  # nested, upper-case suffix
    (root / "test" / "bee" / "Z.JPEG").write_bytes((root / "test" / "bee" / "img1.jpg").read_bytes())
    out = tmp_path / "out"
    imagefolder.prepare(root, out, {**ENTRY, "validation": 0}, classes=3)
    reference = ImageFolder(str(root / "test"))
    test = ImageArrays(out / "test.arrow")
    assert test.labels.tolist() == reference.targets
    for row, (path, _) in enumerate(reference.samples):
        np.testing.assert_array_equal(test.images[row], imagefolder.load_image(Path(path), SIZE))


def test_layout_check_names_what_is_missing_without_opening_files(tmp_path):
    root = tmp_path / "skin"
    assert imagefolder.missing_entries(root, ENTRY) == [str(root / "train" / "<class>"), str(root / "test" / "<class>")]
    (root / "train" / "cat").mkdir(parents=True)
    assert imagefolder.missing_entries(root, ENTRY) == [str(root / "test" / "<class>")]
    (root / "test" / "cat").mkdir(parents=True)
    assert imagefolder.missing_entries(root, ENTRY) == []
    assert "<root>/train/<class>/" in imagefolder.EXPECTED


def test_image_suffixes_are_torchvisions():
    from torchvision.datasets.folder import IMG_EXTENSIONS

    assert imagefolder.IMAGE_SUFFIXES == IMG_EXTENSIONS


def test_placeholders_satisfy_the_layout_check(tmp_path):
    imagefolder.write_placeholders(tmp_path / "fake", ENTRY)
    assert imagefolder.missing_entries(tmp_path / "fake", ENTRY) == []


def test_corpus_files_are_the_images_preparation_reads(tmp_path):
    root = make_tree(tmp_path / "skin", splits=("train", "val", "test"), per_class=2)
    from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes, make_dataset

    (root / "test" / "ant" / "more").mkdir()
    draw(root / "test" / "ant" / "more" / "deeper.PNG", (5, 5), "RGB", 99)  # nested, upper-case suffix
    files = imagefolder.corpus_files(root, ENTRY)
    read_by_torchvision = [Path(path) for split in ("train", "val", "test") for path, _ in
                           make_dataset(root / split, find_classes(root / split)[1], IMG_EXTENSIONS)]
    assert files == sorted(read_by_torchvision) and len(files) == 3 * 3 * 2 + 1
    assert root / "train" / "cat" / "notes.txt" not in files


def test_each_image_is_resized_and_centre_cropped_as_torchvision_does(tmp_path):
    from torchvision.transforms import functional as F

    root = make_tree(tmp_path / "skin", classes=("a", "b"), per_class=1)
    wide = draw(root / "test" / "a" / "img0.png", (37, 13), "RGBA", 7)  # replace the first test image
    out = tmp_path / "out"
    imagefolder.prepare(root, out, {**ENTRY, "validation": 0}, classes=2)
    test = ImageArrays(out / "test.arrow")
    assert test.images.shape == (2, SIZE, SIZE, 3) and test.images.dtype == np.uint8
    with Image.open(wide) as image:
        expected = np.asarray(F.center_crop(F.resize(image.convert("RGB"), SIZE, antialias=True), [SIZE, SIZE]))
    np.testing.assert_array_equal(test.images[0], expected)


def test_validation_comes_from_val_when_present(tmp_path):
    root = make_tree(tmp_path / "skin", splits=("train", "val", "test"), per_class=2)
    without_count = {k: v for k, v in ENTRY.items() if k != "validation"}
    stats = imagefolder.prepare(root, tmp_path / "out", without_count, classes=3)
    assert (stats["train"], stats["validation"], stats["test"]) == (6, 6, 6)
    assert stats["validation_from"] == "val/"


def test_a_validation_count_beside_val_is_refused_as_the_check_refuses_it(tmp_path):
    """The config check refused it; prepare-images used to ignore the count silently."""
    from test_cli import cli

    root = make_tree(tmp_path / "skin", splits=("train", "val", "test"), per_class=2)
    sentence = f"datasets.skin.validation: {root}/val is the validation split; remove validation"
    config = {"datasets": {"skin": {**ENTRY, "root": str(root), "validation": 5}}, "tasks": {}}
    assert any(p.startswith(sentence) for p in imagefolder.data_errors(config, "skin", root))
    with pytest.raises(DataError, match=f"^{sentence}"):
        imagefolder.prepare(root, tmp_path / "out", {**ENTRY, "validation": 5}, classes=3, dataset="skin")
    assert not (tmp_path / "out").exists()
    own = _cli_config(tmp_path, root, validation=5)
    result = cli("prepare-images", "skin", str(root), str(tmp_path / "cli"), "--configfile", str(own), cwd=tmp_path)
    assert result.returncode == 2 and sentence in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "cli").exists()


def _cli_config(tmp_path, root, **entry) -> Path:
    """A whole config (the paper's, its experiments off) with the image folder `skin`."""
    import yaml

    from conftest import own_study_base

    config = own_study_base("results")
    config["datasets"]["skin"] = {**ENTRY, "root": str(root), **entry}
    path = tmp_path / "skin.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_validation_is_carved_from_train_deterministically(tmp_path):
    root = make_tree(tmp_path / "skin", per_class=4)
    first = imagefolder.prepare(root, tmp_path / "a", ENTRY, classes=3)
    imagefolder.prepare(root, tmp_path / "b", ENTRY, classes=3)
    assert (first["train"], first["validation"], first["test"]) == (10, 2, 12)
    assert first["validation_from"] == "carved from train/"
    train, val = ImageArrays(tmp_path / "a" / "train.arrow"), ImageArrays(tmp_path / "a" / "validation.arrow")
    rows = {bytes(x) for x in np.concatenate([train.images, val.images]).reshape(12, -1)}
    assert len(rows) == 12  # the validation images are held out of training, none duplicated
    held = np.sort(np.random.default_rng(SPLIT_SEED).permutation(12)[:2])  # CIFAR's rule, on torchvision's order
    all_labels = np.repeat([0, 1, 2], 4)
    assert val.labels.tolist() == all_labels[held].tolist()
    for split in ("train", "validation", "test"):
        a, b = ImageArrays(tmp_path / "a" / f"{split}.arrow"), ImageArrays(tmp_path / "b" / f"{split}.arrow")
        np.testing.assert_array_equal(a.images, b.images)
        np.testing.assert_array_equal(a.labels, b.labels)
    pixels = train.images.reshape(-1, 3) / 255.0
    assert np.allclose(first["mean"], pixels.mean(0)) and np.allclose(first["std"], pixels.std(0))


def test_class_count_mismatch_is_a_sentence_naming_root_and_both_numbers(tmp_path):
    root = make_tree(tmp_path / "skin", per_class=1)
    with pytest.raises(DataError, match=rf"{root}.*3 class folders.*classes: 10") as error:
        imagefolder.prepare(root, tmp_path / "out", ENTRY, classes=10)
    assert not (tmp_path / "out" / "train.arrow").exists()
    assert str(error.value).count(". ") <= 2


def test_test_classes_must_match_train(tmp_path):
    root = make_tree(tmp_path / "skin", per_class=1)
    (root / "test" / "dog").mkdir()
    for image in (root / "test" / "bee").iterdir():
        image.unlink()
    (root / "test" / "bee").rmdir()
    with pytest.raises(DataError, match=rf"{root / 'test'}.*bee.*dog"):
        imagefolder.class_names(root)


def test_a_class_without_images_is_refused(tmp_path):
    root = make_tree(tmp_path / "skin", per_class=1)
    (root / "train" / "dog").mkdir()
    (root / "test" / "dog").mkdir()
    with pytest.raises(DataError, match=rf"{root / 'train' / 'dog'}: no image"):
        imagefolder.prepare(root, tmp_path / "out", ENTRY, classes=4)


def truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def test_a_truncated_image_is_a_sentence_naming_it_and_leaves_no_output(tmp_path):
    root = make_tree(tmp_path / "skin", per_class=2)
    bad = truncate(root / "test" / "bee" / "img0.png")
    with pytest.raises(DataError, match=rf"{bad}:.*bad_images: skip"):
        imagefolder.prepare(root, tmp_path / "out", ENTRY, classes=3)
    assert not (tmp_path / "out" / "train.arrow").exists()  # all or none: no split without its siblings


def test_an_unreadable_file_is_refused_too(tmp_path):
    root = make_tree(tmp_path / "skin", per_class=2)
    bad = root / "train" / "ant" / "img1.jpg"
    bad.write_bytes(b"this is no jpeg")
    with pytest.raises(DataError, match=rf"{bad}:"):
        imagefolder.prepare(root, tmp_path / "out", ENTRY, classes=3)


def test_skip_leaves_bad_images_out_and_lists_them(tmp_path, caplog):
    root = make_tree(tmp_path / "skin", per_class=3)
    truncated = truncate(root / "test" / "bee" / "img0.png")
    garbage = root / "train" / "cat" / "img2.png"
    garbage.write_bytes(b"not a png")
    out = tmp_path / "out"
    with caplog.at_level(logging.WARNING):
        stats = imagefolder.prepare(root, out, {**ENTRY, "bad_images": "skip"}, classes=3)
    assert (stats["train"] + stats["validation"], stats["test"]) == (8, 8) and stats["images_left_out"] == 2
    listed = [line.split("\t")[0] for line in (out / "bad_images.txt").read_text().splitlines()]
    assert listed == ["test/bee/img0.png", "train/cat/img2.png"]
    assert str(truncated) in caplog.text and str(garbage) in caplog.text
    assert len(ImageArrays(out / "test.arrow")) == 8


def test_bad_images_txt_escapes_names_with_tabs_and_newlines(tmp_path):
    root = make_tree(tmp_path / "skin", per_class=2)
    odd = root / "train" / "cat" / "a\tb\nc\\d.png"
    odd.write_bytes(b"not a png")
    stats = imagefolder.prepare(root, tmp_path / "out", {**ENTRY, "bad_images": "skip"}, classes=3)
    assert stats["images_left_out"] == 1
    lines = (tmp_path / "out" / "bad_images.txt").read_text().split("\n")
    assert len(lines) == 2 and lines[1] == ""  # one line, however the file is named
    name, reason = lines[0].split("\t")
    assert name == "train/cat/a\\tb\\nc\\\\d.png" and "UnidentifiedImageError" in reason


# --- links, and pixels that are not 8-bit ----------------------------------------------------

def test_a_link_loop_is_refused_naming_both_paths(tmp_path):
    root = make_tree(tmp_path / "skin", per_class=2)
    loop = root / "train" / "cat" / "loop"
    loop.symlink_to(root / "train" / "cat")
    sentence = f"{loop}: a link to {root / 'train' / 'cat'}, which is read already"
    with pytest.raises(DataError, match=f"^{sentence}"):
        imagefolder.prepare(root, tmp_path / "out", ENTRY, classes=3)
    config = {"datasets": {"skin": {**ENTRY, "root": str(root)}}, "tasks": {}}
    assert f"datasets.skin.root: {sentence}" in "\n".join(imagefolder.data_errors(config, "skin", root))
    assert len(imagefolder.corpus_files(root, ENTRY)) == 3 * 2 * 2  # each image once, not ~41 times


def test_an_image_reached_twice_is_refused_naming_both_paths(tmp_path):
    root = make_tree(tmp_path / "skin", per_class=2)
    twice = root / "test" / "cat" / "leak.png"  # a training image, again in test
    twice.symlink_to(root / "train" / "cat" / "img0.png")
    with pytest.raises(DataError, match=f"^{twice}: the same file as {root / 'train' / 'cat' / 'img0.png'}"):
        imagefolder.prepare(root, tmp_path / "out", ENTRY, classes=3)
    assert not (tmp_path / "out").exists()
    elsewhere = tmp_path / "elsewhere"  # a class folder that is a link, reached once: fine
    (root / "test" / "cat").rename(elsewhere)
    (root / "test" / "cat").symlink_to(elsewhere)
    twice.unlink()
    assert imagefolder.prepare(root, tmp_path / "out", ENTRY, classes=3)["test"] == 6


def test_sixteen_bit_images_keep_their_range(tmp_path):
    root = make_tree(tmp_path / "skin", classes=("a", "b"), per_class=1)
    for index, value in enumerate((0, 128 * 257, 65535)):  # 16-bit grey PNGs: black, mid grey, white
        Image.fromarray(np.full((10, 12), value, np.uint16)).save(root / "test" / "a" / f"grey{index}.png")
    assert Image.open(root / "test" / "a" / "grey1.png").mode == "I;16"
    imagefolder.prepare(root, tmp_path / "out", {**ENTRY, "validation": 0}, classes=2)
    test = ImageArrays(tmp_path / "out" / "test.arrow")
    greys = [int(test.images[row].mean()) for row in (0, 1, 2)]  # grey*.png before img0.png
    assert greys == [0, 128, 255]  # converted as torchvision converts them: [0, 255, 255]


@pytest.mark.parametrize("mode, pixels, named", [("F", np.float32, "mode F: 32-bit floating-point pixels"),
                                                 ("I", np.int32, "mode I: 32-bit integer pixels")])
def test_images_without_a_fixed_range_are_refused_naming_the_mode(tmp_path, mode, pixels, named):
    root = make_tree(tmp_path / "skin", classes=("a", "b"), per_class=1)
    odd = root / "train" / "b" / "odd.tif"
    Image.fromarray(np.full((10, 12), 7, pixels)).save(odd)
    assert Image.open(odd).mode == mode
    with pytest.raises(DataError, match=rf"^{odd}: not a readable image \({named}, whose range no image file says; "
                                        rf"save it with 8 or 16 bits per channel\)"):
        imagefolder.prepare(root, tmp_path / "out", {**ENTRY, "validation": 0}, classes=2)


def test_bad_images_txt_is_written_empty_when_none(tmp_path):
    root = make_tree(tmp_path / "skin", per_class=1)
    imagefolder.prepare(root, tmp_path / "out", {**ENTRY, "validation": 0}, classes=3)
    assert (tmp_path / "out" / "bad_images.txt").read_text() == ""


def test_a_class_left_empty_by_skipping_is_refused(tmp_path):
    root = make_tree(tmp_path / "skin", per_class=1)
    truncate(root / "test" / "ant" / "img0.png")
    with pytest.raises(DataError, match=rf"{root / 'test' / 'ant'}: no readable image"):
        imagefolder.prepare(root, tmp_path / "out", {**ENTRY, "bad_images": "skip", "validation": 0}, classes=3)


# --- Arrow image files of any square size ---------------------------------------------------

def test_arrow_files_record_their_image_shape(tmp_path):
    rng = np.random.default_rng(0)
    images, labels = rng.integers(0, 256, (5, 64, 64, 3), dtype=np.uint8), np.arange(5)
    write_images(tmp_path / "big.arrow", images, labels)
    arrays = ImageArrays(tmp_path / "big.arrow")
    np.testing.assert_array_equal(arrays.images, images)
    source = ImageSource(arrays, [0.5] * 3, [0.25] * 3)
    assert source.input_shape == [3, 64, 64]


def test_files_written_before_the_shape_was_recorded_read_as_32x32(tmp_path):
    import pyarrow as pa

    rng = np.random.default_rng(1)
    images, labels = rng.integers(0, 256, (4, 32, 32, 3), dtype=np.uint8), np.array([0, 1, 2, 3])
    old_schema = pa.schema([pa.field("image", pa.list_(pa.uint8(), 32 * 32 * 3)), pa.field("label", pa.int16())])
    rows = pa.FixedSizeListArray.from_arrays(pa.array(images.reshape(-1), pa.uint8()), 32 * 32 * 3)
    with pa.OSFile(str(tmp_path / "old.arrow"), "wb") as sink, pa.ipc.new_file(sink, old_schema) as writer:
        writer.write_batch(pa.record_batch([rows, pa.array(labels, pa.int16())], schema=old_schema))
    arrays = ImageArrays(tmp_path / "old.arrow")
    np.testing.assert_array_equal(arrays.images, images)
    assert arrays.labels.tolist() == [0, 1, 2, 3]


def test_a_shape_that_does_not_fit_the_rows_is_refused(tmp_path):
    import pyarrow as pa

    schema = pa.schema([pa.field("image", pa.list_(pa.uint8(), 12)), pa.field("label", pa.int16())],
                       metadata={"image_shape": "4,4,3"})
    rows = pa.FixedSizeListArray.from_arrays(pa.array(np.zeros(12, np.uint8), pa.uint8()), 12)
    with pa.OSFile(str(tmp_path / "odd.arrow"), "wb") as sink, pa.ipc.new_file(sink, schema) as writer:
        writer.write_batch(pa.record_batch([rows, pa.array([0], pa.int16())], schema=schema))
    with pytest.raises(DataError, match=rf"{tmp_path / 'odd.arrow'}"):
        ImageArrays(tmp_path / "odd.arrow")
