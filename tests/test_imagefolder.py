"""Arrow image files of any square size (old 32 × 32 files still read)."""

from __future__ import annotations

import numpy as np
import pytest

from gradual_transfer.data.errors import DataError
from gradual_transfer.data.images import ImageArrays, ImageSource, write_images


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
