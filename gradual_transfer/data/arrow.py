"""Speech features in uncompressed Arrow IPC files: written in record batches (memory does not
grow with the corpus), read by memory-mapping (zero-copy, shared by every job on a machine).

One row per utterance: ``utt_id``, ``speaker``, ``num_frames``,
``feats: list<fixed_size_list<float32, F>>``, ``targets: list<int16>`` and corpus columns.
A batch of training examples is a set of global frame indices; :meth:`SpeechFeatures.windows`
gathers their context windows with vectorised indexing (no per-frame Python), repeating an
utterance's first/last frame at its edges as Kaldi's splicing does.
"""

from __future__ import annotations

import json

from pathlib import Path
from typing import Iterable

import numpy as np
import pyarrow as pa

from gradual_transfer.data.errors import DataError
from gradual_transfer.io import atomic_path


def read_ipc(path: str | Path, columns: Iterable[str]) -> tuple[pa.MemoryMappedFile, pa.Schema, list[pa.RecordBatch]]:
    """The memory-mapped record batches of an Arrow IPC file that has `columns`; a missing,
    truncated or foreign file is one :class:`DataError` naming it (pyarrow's "Not an Arrow
    file" names none)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file. Run the step that writes it first.")
    try:
        source = pa.memory_map(str(path), "r")
        reader = pa.ipc.open_file(source)
        batches = [reader.get_batch(i) for i in range(reader.num_record_batches)]
    except (pa.ArrowException, OSError) as error:
        raise DataError(f"{path}: not a readable Arrow file ({error}); it is truncated or damaged. Delete it and "
                        f"run the step that writes it again.") from None
    missing = [name for name in columns if name not in reader.schema.names]
    if missing:
        raise DataError(f"{path}: has no column {', '.join(missing)} (it holds {', '.join(reader.schema.names)}); "
                        f"is it the right file?")
    return source, reader.schema, batches


def speech_schema(num_bins: int, extra: Iterable[pa.Field] = ()) -> pa.Schema:
    return pa.schema([
        pa.field("utt_id", pa.string()),
        pa.field("speaker", pa.string()),
        pa.field("num_frames", pa.int32()),
        pa.field("feats", pa.list_(pa.list_(pa.float32(), num_bins))),
        pa.field("targets", pa.list_(pa.int16())),
        *extra,
    ])


class SpeechWriter:
    """Rows in, an Arrow IPC file out; appears at `path` only when closed without error."""

    def __init__(self, path: str | Path, schema: pa.Schema, rows_per_batch: int = 128) -> None:
        self.path, self.schema, self.rows_per_batch = Path(path), schema, rows_per_batch
        self._rows: list[dict] = []
        self.num_rows = 0

    def __enter__(self) -> "SpeechWriter":
        self._atomic = atomic_path(self.path)
        tmp = self._atomic.__enter__()
        self._sink = pa.OSFile(str(tmp), "wb")
        self._writer = pa.ipc.new_file(self._sink, self.schema)  # uncompressed: memory-mappable
        return self

    def add(self, row: dict) -> None:
        self._rows.append(row)
        if len(self._rows) >= self.rows_per_batch:
            self._flush()

    def _flush(self) -> None:
        if not self._rows:
            return
        columns = {}
        for field in self.schema:
            values = [r[field.name] for r in self._rows]
            if field.name == "feats":
                flat = np.concatenate([np.asarray(v, np.float32).reshape(-1) for v in values])
                frames = pa.FixedSizeListArray.from_arrays(pa.array(flat, pa.float32()), field.type.value_type.list_size)
                offsets = np.concatenate([[0], np.cumsum([len(v) for v in values])]).astype(np.int32)
                columns[field.name] = pa.ListArray.from_arrays(pa.array(offsets), frames)
            elif field.name == "targets":
                flat = np.concatenate([np.asarray(v, np.int16) for v in values])
                offsets = np.concatenate([[0], np.cumsum([len(v) for v in values])]).astype(np.int32)
                columns[field.name] = pa.ListArray.from_arrays(pa.array(offsets), pa.array(flat, pa.int16()))
            else:
                columns[field.name] = pa.array(values, field.type)
        self._writer.write_batch(pa.record_batch(list(columns.values()), schema=self.schema))
        self.num_rows += len(self._rows)
        self._rows = []

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is None:
            try:  # the last rows and the footer can fail too (a full disk): then nothing is kept
                self._flush()
                self._writer.close()
                self._sink.close()
            except BaseException as error:
                if not self._atomic.__exit__(type(error), error, error.__traceback__):
                    raise
            else:
                self._atomic.__exit__(None, None, None)
            return False
        try:
            self._writer.close()
            self._sink.close()
        except Exception:  # noqa: BLE001 - the error that got us here is the one to report
            pass
        return bool(self._atomic.__exit__(exc_type, exc, tb))


class SpeechFeatures:
    """A memory-mapped speech feature file. Feature and target buffers are numpy views of the
    mapped file (one per record batch); nothing is copied until a batch is gathered."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._source, self.schema, batches = read_ipc(self.path, ("utt_id", "speaker", "num_frames", "feats",
                                                                   "targets"))
        self.num_bins = self.schema.field("feats").type.value_type.list_size
        self.table = pa.Table.from_batches(batches, schema=self.schema)
        self.utt_ids = self.table.column("utt_id").to_pylist()
        self.speakers = np.array(self.table.column("speaker").to_pylist())
        # every speaker of the corpus (a Kaldi data directory's utt2spk), also those whose
        # utterances were all skipped: folds are numbered over them; else the file's own
        listed = (self.schema.metadata or {}).get(b"speakers")
        self.all_speakers = json.loads(listed) if listed else sorted(set(self.speakers.tolist()))
        self.num_frames = self.table.column("num_frames").to_numpy().astype(np.int64)
        self._feats, self._targets = [], []
        for batch in batches:
            feats = batch.column("feats").values.values  # the float32 buffer, zero-copy
            self._feats.append(feats.to_numpy(zero_copy_only=True).reshape(-1, self.num_bins))
            self._targets.append(batch.column("targets").values.to_numpy(zero_copy_only=True))
        # Global frame index f of utterance u lives in batch _batch_of_row[u] at local offset.
        rows_per_batch = [len(b) for b in batches]
        self._batch_of_row = np.repeat(np.arange(len(batches)), rows_per_batch)
        self.frame_start = np.concatenate([[0], np.cumsum(self.num_frames)[:-1]]).astype(np.int64)
        self._batch_first_frame = np.concatenate([[0], np.cumsum([len(f) for f in self._feats])[:-1]]).astype(np.int64)
        self.total_frames = int(self.num_frames.sum())

    def __len__(self) -> int:
        return len(self.utt_ids)

    def column(self, name: str) -> list:
        return self.table.column(name).to_pylist()

    def feats(self, row: int) -> np.ndarray:
        """(num_frames, F) view of one utterance's features."""
        b = self._batch_of_row[row]
        local = self.frame_start[row] - self._batch_first_frame[b]
        return self._feats[b][local: local + self.num_frames[row]]

    def targets(self, row: int) -> np.ndarray:
        b = self._batch_of_row[row]
        local = self.frame_start[row] - self._batch_first_frame[b]
        return self._targets[b][local: local + self.num_frames[row]]

    def frame_index(self, rows: Iterable[int] | None = None) -> "FrameIndex":
        """Every frame of the given utterances (all when None), with its utterance bounds."""
        rows = np.arange(len(self)) if rows is None else np.asarray(list(rows), dtype=np.int64)
        counts = self.num_frames[rows]
        starts = np.repeat(self.frame_start[rows], counts)
        ends = starts + np.repeat(counts, counts)
        frames = starts + (np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts))
        return FrameIndex(frames, starts, ends, np.repeat(rows, counts))

    def windows(self, frames: np.ndarray, first: np.ndarray, last: np.ndarray, context: int) -> np.ndarray:
        """(B, 2·context+1, F) float32 context windows around global frames `frames`, clipped to
        [first, last) of their utterance."""
        offsets = np.arange(-context, context + 1)
        index = np.clip(frames[:, None] + offsets[None, :], first[:, None], last[:, None] - 1)
        if len(self._feats) == 1:
            return self._feats[0][index]
        out = np.empty((len(frames), len(offsets), self.num_bins), dtype=np.float32)
        batch = np.searchsorted(self._batch_first_frame, frames, side="right") - 1  # a window never crosses batches
        for b in np.unique(batch):
            mask = batch == b
            out[mask] = self._feats[b][index[mask] - self._batch_first_frame[b]]
        return out

    def frame_targets(self, frames: np.ndarray) -> np.ndarray:
        if len(self._targets) == 1:
            return self._targets[0][frames]
        out = np.empty(len(frames), dtype=np.int16)
        batch = np.searchsorted(self._batch_first_frame, frames, side="right") - 1
        for b in np.unique(batch):
            mask = batch == b
            out[mask] = self._targets[b][frames[mask] - self._batch_first_frame[b]]
        return out


class FrameIndex:
    """Global frame indices with their utterance's [first, last) frame and row."""

    def __init__(self, frames: np.ndarray, first: np.ndarray, last: np.ndarray, rows: np.ndarray) -> None:
        self.frames, self.first, self.last, self.rows = frames, first, last, rows

    def __len__(self) -> int:
        return len(self.frames)
