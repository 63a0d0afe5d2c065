"""TIMIT's labels as frame targets (:mod:`gradual_transfer.data.timit` reads the corpus):

- phones: 61 TIMIT labels → 48 (training and decoding) → 39 (scoring), from the Kaldi recipe's
  ``conf/phones.60-48-39.map``; ``q`` has no mapping and is deleted from transcriptions, its
  frames going to the phone before it;
- ``.PHN`` transcriptions, checked to tile their audio;
- frame targets: 48 phones × 3 HMM states = 144 classes. Each phone segment is split into three
  equal parts and a frame takes the state of the part its centre falls in (``thirds``), or
  targets come from a Kaldi alignment of pdf ids (``alignment``: its files and its reading).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gradual_transfer.data.errors import DataError
from gradual_transfer.resources import RESOURCES

STATES_PER_PHONE = 3
PHONE_MAP_FILE = RESOURCES / "timit" / "phones.61-48-39.map"  # from the Kaldi recipe's conf/


@dataclass(frozen=True)
class PhoneMap:
    """TIMIT's 61 labels, the 48-phone set (indices = order of first appearance in the map
    file's second column) and the 39-phone scoring set."""

    to48: dict[str, str | None]
    to39: dict[str, str]  # 48-set label → 39-set label
    phones48: tuple[str, ...]

    @classmethod
    def load(cls, path: Path = PHONE_MAP_FILE) -> "PhoneMap":
        to48, to39, phones48 = {}, {}, []
        for line in Path(path).read_text().splitlines():
            fields = line.split()
            if not fields:
                continue
            if len(fields) == 1:  # q: no mapping, deleted
                to48[fields[0]] = None
                continue
            label61, label48, label39 = fields
            to48[label61] = label48
            to39[label48] = label39
            if label48 not in phones48:
                phones48.append(label48)
        return cls(to48, to39, tuple(sorted(phones48)))

    def index48(self, label48: str) -> int:
        return self.phones48.index(label48)

    @property
    def num_states(self) -> int:
        return len(self.phones48) * STATES_PER_PHONE


_PHN_LINE = re.compile(r"^\s*(\d+)\s+(\d+)\s+(\S+)\s*$")


def read_phn(path: Path, num_samples: int, phone_map: PhoneMap, tolerance: int = 400) -> list[tuple[int, int, str]]:
    """(begin, end, 61-label) segments of a ``.PHN`` file, checked against the audio: they tile
    it, as every TIMIT transcription does (the first begins at sample 0, each begins where the
    previous one ends, the last ends at the last sample, within `tolerance` samples: one
    frame), so a file that lost a line is refused instead of shifting every target."""
    if not path.is_file():
        raise DataError(f"{path}: missing phone transcription (.PHN) for {path.with_suffix('.WAV').name}.")
    try:
        text = path.read_bytes().decode("ascii")
    except UnicodeDecodeError as error:
        line = path.read_bytes()[: error.start].count(b"\n") + 1
        raise DataError(f"{path} line {line}: byte 0x{error.object[error.start]:02x} is not ASCII text; "
                        f"the file is damaged.") from None
    segments: list[tuple[int, int, str]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        match = _PHN_LINE.match(line)
        if not match:
            raise DataError(f"{path} line {number}: expected '<begin> <end> <label>', got {line!r}.")
        begin, end, label = int(match.group(1)), int(match.group(2)), match.group(3)
        if label not in phone_map.to48:
            raise DataError(f"{path} line {number}: unknown TIMIT phone label {label!r}.")
        if end <= begin:
            raise DataError(f"{path} line {number}: segment ends ({end}) before it begins ({begin}).")
        if not segments and begin != 0:
            raise DataError(f"{path} line {number}: the first segment begins at sample {begin}, not 0: "
                            f"is the first line missing?")
        if segments and begin < segments[-1][1]:
            raise DataError(f"{path} line {number}: segment begins at sample {begin}, before the previous "
                            f"one ends ({segments[-1][1]}): lines out of order or overlapping.")
        if segments and begin > segments[-1][1]:
            raise DataError(f"{path} line {number}: segment begins at sample {begin}, after the previous one "
                            f"ends ({segments[-1][1]}): a gap, is a line missing?")
        if end > num_samples:
            raise DataError(f"{path} line {number}: segment ends at sample {end}, past the end of the audio "
                            f"({num_samples} samples).")
        segments.append((begin, end, label))
    if not segments:
        raise DataError(f"{path}: empty phone transcription.")
    if num_samples - segments[-1][1] > tolerance:
        raise DataError(f"{path}: the last segment ends at sample {segments[-1][1]}, {num_samples - segments[-1][1]} "
                        f"samples before the end of the audio ({num_samples}): are the last lines missing?")
    return segments


def map_segments(segments: list[tuple[int, int, str]], phone_map: PhoneMap) -> list[tuple[int, int, str]]:
    """61-label segments → 48-label segments with ``q`` deleted (its time joins the previous
    phone, or the next one when it comes first)."""
    mapped: list[tuple[int, int, str]] = []
    pending_start = None
    for begin, end, label in segments:
        label48 = phone_map.to48[label]
        if label48 is None:
            if mapped:
                mapped[-1] = (mapped[-1][0], end, mapped[-1][2])
            else:
                pending_start = begin
            continue
        if pending_start is not None:
            begin, pending_start = pending_start, None
        mapped.append((begin, end, label48))
    return mapped


def frame_centres(num_frames: int, frame_length: int, frame_shift: int) -> np.ndarray:
    """Sample index of each frame's centre (Kaldi framing with snip_edges: frame t covers
    samples [t * shift, t * shift + length))."""
    return np.arange(num_frames) * frame_shift + frame_length // 2


def thirds_targets(segments48: list[tuple[int, int, str]], num_frames: int, frame_length: int,
                   frame_shift: int, phone_map: PhoneMap) -> np.ndarray:
    """Frame targets: 3 × phone index + the third of its segment the frame centre falls in.
    A centre in a gap between segments (or past the last one) belongs to the segment before it."""
    starts = np.array([s for s, _, _ in segments48])
    ends = np.array([e for _, e, _ in segments48])
    phones = np.array([phone_map.index48(p) for _, _, p in segments48])
    centres = frame_centres(num_frames, frame_length, frame_shift)
    segment = np.clip(np.searchsorted(starts, centres, side="right") - 1, 0, len(starts) - 1)
    position = (np.minimum(centres, ends[segment] - 1) - starts[segment]) / (ends[segment] - starts[segment])
    state = np.clip((np.clip(position, 0, None) * STATES_PER_PHONE).astype(np.int64), 0, STATES_PER_PHONE - 1)
    return (phones[segment] * STATES_PER_PHONE + state).astype(np.int16)


def alignment_files(path: str | Path, base: str | Path = ".") -> list[Path]:
    """The files a Kaldi alignment (``tasks.<asr>.alignment``) is read from: the archive, or the
    script file and every archive it names (relative names are read from `base`, the working
    directory, as kaldiio reads them). Each is an input of the extraction, so replacing one
    re-extracts; a missing one, or a file of another kind, is a :class:`DataError` naming it."""
    path = Path(base) / path
    if not path.is_file():
        raise DataError(f"{path}: {'a folder' if path.is_dir() else 'no such file'}; give a Kaldi alignment archive "
                        f"(ali.ark) or script file (ali.scp) of pdf ids.")
    if path.suffix not in (".ark", ".scp"):
        raise DataError(f"{path}: not a Kaldi alignment archive (.ark) or script file (.scp).")
    if path.suffix == ".ark":
        return [path]
    archives: dict[Path, int] = {}
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
        fields = line.split(None, 1)
        if not fields:
            continue
        value = fields[1].strip() if len(fields) == 2 else ""
        if not value or value.endswith("|"):
            raise DataError(f"{path} line {number}: expected '<utterance> <archive>:<offset>'"
                            f"{', not a command: write the alignment to an archive first' if value else ''}.")
        archive = Path(base) / re.sub(r":\d+$", "", value)
        archives.setdefault(archive, number)
    for archive, number in archives.items():
        if not archive.is_file():
            raise DataError(f"{path} line {number}: names the archive {archive}, which does not exist.")
    return [path, *archives]


def read_alignment(path: str | Path) -> dict[str, np.ndarray]:
    """Frame targets from a Kaldi alignment (pdf ids, e.g. ``ali-to-pdf`` output) via kaldiio."""
    import kaldiio

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such alignment file (tasks.asr.alignment).")
    try:
        reader = kaldiio.load_scp(str(path)) if path.suffix == ".scp" else kaldiio.load_ark(str(path))
        return {utt: np.asarray(ali, dtype=np.int64) for utt, ali in (reader.items() if hasattr(reader, "items") else reader)}
    except Exception as error:  # noqa: BLE001 - kaldiio raises many kinds
        raise DataError(f"{path}: not a readable Kaldi alignment archive ({error}).") from None
