"""TIMIT (LDC93S1) as the Kaldi recipe (egs/timit/s5) reads it.

- Layout ``TRAIN|TEST/DR1..8/<speaker>/<utt>.WAV|.PHN`` in upper or lower case; WAV files are
  NIST SPHERE (libsndfile reads them). Speaker folders and file names make the ids, so they
  may hold only the characters of :mod:`gradual_transfer.names`.
- Train: every TRAIN utterance but the dialect sentences SA1/SA2 (3,696). Dev: the 50 speakers of
  ``dev_speakers.txt`` (400 utterances); test: the 24-speaker core test set (192), both from TEST
  and without SA sentences. Utterance ids are ``<speaker>_<utt>`` in lower case, as in Kaldi.
- Phones: 61 TIMIT labels → 48 (training and decoding) → 39 (scoring); ``q`` has no mapping
  and is deleted from transcriptions; its frames go to the phone before it.
- Frame targets: 48 phones × 3 HMM states = 144 classes. Each phone segment is split into three
  equal parts and a frame takes the state of the part its centre falls in (``thirds``), or
  targets come from a Kaldi alignment of pdf ids (``alignment``).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from gradual_transfer.resources import RESOURCES, listed
from gradual_transfer.data.errors import DataError, check_id

if TYPE_CHECKING:  # the front end imports torch; a reader is imported when the workflow is parsed
    from gradual_transfer.data.frontend import FeatureSettings

log = logging.getLogger(__name__)

SPLITS = ("train", "dev", "test")
STATES_PER_PHONE = 3
PHONE_MAP_FILE = RESOURCES / "timit" / "phones.61-48-39.map"  # from the Kaldi recipe's conf/

LAYOUT = {"timit": "<root>/TRAIN/DR1..DR8/<speaker>/<utt>.WAV + .PHN and <root>/TEST/... "
                   "(LDC93S1; upper or lower case names)"}


def listed_speakers(which: str) -> list[str]:
    """Speaker ids (lower case) of TIMIT's 50-speaker dev set ("dev") or 24-speaker core
    test set ("core_test"), in the order of the Kaldi recipe's lists."""
    return list(listed(f"timit/{which}_speakers.txt"))


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


@dataclass(frozen=True)
class Utterance:
    utt_id: str  # <speaker>_<utt>, lower case
    speaker: str
    split: str
    wav: Path
    phn: Path


def _child(directory: Path, name: str) -> Path | None:
    """The folder `directory/name` in either case (TIMIT ships both ways), or None."""
    for candidate in (name, name.upper(), name.lower()):
        if (directory / candidate).is_dir():
            return directory / candidate
    return None


# --- layout: what the config check looks for, and the files a split reads -------------------

def missing_entries(root: Path, entry: dict | None = None) -> list[str]:
    """TRAIN/ and TEST/ (either case), each with dialect-region folders."""
    missing = []
    for part in ("TRAIN", "TEST"):
        folder = _child(root, part)
        if folder is None or not any(p.name.upper().startswith("DR") for p in folder.iterdir()):
            missing.append(str(root / part / "DR1..DR8"))
    return missing


def write_placeholders(root: Path, entry: dict | None = None) -> None:
    for part in ("TRAIN", "TEST"):
        (root / part / "DR1").mkdir(parents=True, exist_ok=True)


def corpus_files(root: Path, entry: dict | None = None, split: str | None = None) -> list[Path]:
    """The files of one split's speakers: every file of TRAIN's for train, of the dev or
    core-test speakers' folders of TEST for dev and test."""
    part = _child(root, "TRAIN" if split == "train" else "TEST")
    if part is None:
        return []
    wanted = None if split == "train" else set(listed_speakers("dev" if split == "dev" else "core_test"))
    files = []
    for region in sorted(p for p in part.iterdir() if p.is_dir() and p.name.upper().startswith("DR")):
        for speaker in sorted(p for p in region.iterdir() if p.is_dir()):
            if wanted is None or speaker.name.lower() in wanted:
                files += sorted(p for p in speaker.iterdir() if p.is_file())
    return files


def audio_files(root: str | Path) -> dict[str, Path]:
    """Every utterance's audio file, by utterance id (a Kaldi data directory's wav.scp)."""
    return {u.utt_id: u.wav for split in SPLITS for u in list_utterances(root, split)}


def list_utterances(root: str | Path, split: str) -> list[Utterance]:
    """The utterances of `split` (train, dev or test) in a sorted, reproducible order."""
    if split not in SPLITS:
        raise ValueError(f"TIMIT split must be one of {SPLITS}, not {split!r}")
    root = Path(root)
    part = _child(root, "TRAIN" if split == "train" else "TEST")
    if part is None:
        raise DataError(f"{root}: no {'TRAIN' if split == 'train' else 'TEST'} folder (either case). "
                        f"Expected <root>/TRAIN/DR1..DR8/<speaker>/<utt>.WAV; check datasets.timit.root.")
    wanted = None
    if split != "train":
        listed = listed_speakers("dev" if split == "dev" else "core_test")
        wanted = set(listed)
    utterances = []
    found_speakers = set()
    for region in sorted(p for p in part.iterdir() if p.is_dir() and p.name.upper().startswith("DR")):
        for speaker_dir in sorted(p for p in region.iterdir() if p.is_dir()):
            speaker = speaker_dir.name.lower()
            if wanted is not None and speaker not in wanted:
                continue
            check_id(speaker, "speaker folder name", speaker_dir)
            found_speakers.add(speaker)
            for wav in sorted(speaker_dir.iterdir()):
                if wav.suffix.upper() != ".WAV" or wav.stem.upper().startswith("SA"):
                    continue
                phn = next((wav.with_suffix(s) for s in (".PHN", ".phn") if wav.with_suffix(s).exists()), wav.with_suffix(".PHN"))
                utt_id = check_id(f"{speaker}_{wav.stem.lower()}", "utterance id", wav)
                utterances.append(Utterance(utt_id, speaker, split, wav, phn))
    if wanted is not None and not found_speakers:
        raise DataError(f"{part}: none of the {len(wanted)} {split} speakers of "
                        f"{'dev_speakers.txt' if split == 'dev' else 'core_test_speakers.txt'} is there "
                        f"(e.g. {sorted(wanted)[0]}). Is datasets.timit.root the TIMIT root?")
    if not utterances:
        raise DataError(f"{part}: no {split} utterances (<DR>/<speaker>/<utt>.WAV without SA1/SA2) found.")
    seen: dict[str, Path] = {}
    for utt in utterances:
        if utt.utt_id in seen:
            raise DataError(f"{utt.wav}: duplicate utterance id {utt.utt_id}, also {seen[utt.utt_id]} (a speaker "
                            f"folder in two dialect regions?). Remove one copy.")
        seen[utt.utt_id] = utt.wav
    return sorted(utterances, key=lambda u: u.utt_id)


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


def task_file_errors(name: str, task: dict, base: Path) -> list[str]:
    """The Kaldi alignment a task trains on (``frame_targets: alignment``): its files exist and
    are of the right kind (an archive, or a script file and the archives it names)."""
    if task["frame_targets"] != "alignment" or not task["alignment"]:
        return []
    try:
        alignment_files(task["alignment"], base)
    except DataError as error:
        return [f"tasks.{name}.alignment: {error}"]
    return []


def task_errors(config: dict, name: str, task: dict) -> list[str]:
    """What a phone-recognition task's frame targets need: the alignment it reads, or a speech
    architecture to realign with (the config check, without the data)."""
    problems = []
    if task["frame_targets"] == "alignment" and not task["alignment"]:
        problems.append(f"tasks.{name}.alignment: frame_targets is 'alignment', so give the path of a "
                        f"Kaldi alignment archive (ali.ark or ali.scp, pdf ids).")
    aligner = task["realign_with"]
    if task["frame_targets"] == "realigned" and aligner is not None and (
            aligner not in config["architectures"] or config["architectures"][aligner].get("kind") != "convnet"):
        speech = sorted(a for a, e in config["architectures"].items() if e.get("kind") == "convnet")
        problems.append(f"tasks.{name}.realign_with: {aligner!r} is not a speech architecture of "
                        f"`architectures` ({', '.join(speech)}).")
    return problems


# --- extraction ----------------------------------------------------------------------------

def extract(root: str | Path, split: str, out: str | Path, settings: FeatureSettings,
            frame_targets: str = "thirds", alignment: str | Path | None = None,
            bad_utterances: str = "fail") -> int:
    """Write ``out`` (Arrow) with the features (:mod:`gradual_transfer.data.frontend`' front end),
    frame targets and 48-phone references of one TIMIT split; return the number of utterances
    written. Two passes: every utterance's labels and audio header first (a bad corpus fails in
    seconds), then the features."""
    import pyarrow as pa

    from gradual_transfer.data.arrow import SpeechWriter, speech_schema
    from gradual_transfer.data.frontend import check_audio, fbank, read_audio, resolve_problems
    from gradual_transfer.logs import progress

    phone_map = PhoneMap.load()
    utterances = list_utterances(root, split)
    aligned = read_alignment(alignment) if frame_targets == "alignment" else None
    planned, problems = [], []
    for utt in utterances:  # pass 1: labels and headers
        try:
            num_samples = check_audio(utt.wav, settings.sample_rate)
            num_frames = settings.num_frames(num_samples)
            if num_frames == 0:
                raise DataError(f"{utt.wav}: shorter than one frame ({num_samples} samples)")
            segments = map_segments(read_phn(utt.phn, num_samples, phone_map, settings.frame_length),
                                          phone_map)
            if aligned is not None:
                if utt.utt_id not in aligned:
                    raise DataError(f"{alignment}: no alignment for {utt.utt_id}")
                if len(aligned[utt.utt_id]) != num_frames:
                    raise DataError(f"{alignment}: alignment of {utt.utt_id} has {len(aligned[utt.utt_id])} "
                                    f"frames, the features {num_frames} (frame settings differ from Kaldi's?)")
            planned.append((utt, segments, num_frames))
        except DataError as error:
            problems.append(str(error))
    resolve_problems(problems, bad_utterances, "utterance")
    if not planned:
        raise DataError(f"{root}: no usable {split} utterance.")
    schema = speech_schema(settings.num_mel_bins, [pa.field("phones", pa.list_(pa.string()))])
    with SpeechWriter(out, schema) as writer:  # pass 2: features
        for utt, segments, num_frames in progress(planned, desc=f"timit {split}"):
            feats = fbank(read_audio(utt.wav), settings)
            assert len(feats) == num_frames
            if aligned is not None:
                targets = aligned[utt.utt_id].astype(np.int16)
            else:
                targets = thirds_targets(segments, num_frames, settings.frame_length, settings.frame_shift, phone_map)
            writer.add({"utt_id": utt.utt_id, "speaker": utt.speaker, "num_frames": num_frames, "feats": feats,
                        "targets": targets, "phones": [p for _, _, p in segments]})
    log.info("timit %s: %d utterances, %d problems skipped → %s", split, writer.num_rows, len(problems), out)
    return writer.num_rows


def extract_as_configured(config: dict, dataset: str, root: str | Path, out: str | Path, split: str) -> int:
    """:func:`extract` of one split with the config's front end, the frame targets of the first
    task reading `dataset`, and ``datasets.<dataset>.bad_utterances`` (the command line's step)."""
    from gradual_transfer.data.kinds import task_reading
    from gradual_transfer.data.frontend import FeatureSettings

    task = task_reading(config, dataset)
    return extract(root, split, out, FeatureSettings.from_config(config["features"]),
                   frame_targets=task["frame_targets"], alignment=task.get("alignment"),
                   bad_utterances=config["datasets"][dataset]["bad_utterances"])
