"""TIMIT (LDC93S1) as the Kaldi recipe (egs/timit/s5) reads it.

- Layout ``TRAIN|TEST/DR1..8/<speaker>/<utt>.WAV|.PHN`` in upper or lower case; WAV files are
  NIST SPHERE (libsndfile reads them). Speaker folders and file names make the ids, so they
  may hold only the characters of :mod:`gradual_transfer.names`.
- Train: every TRAIN utterance but the dialect sentences SA1/SA2 (3,696). Dev: the 50 speakers of
  ``dev_speakers.txt`` (400 utterances); test: the 24-speaker core test set (192), both from TEST
  and without SA sentences. Utterance ids are ``<speaker>_<utt>`` in lower case, as in Kaldi.
- Phones and frame targets (the phone map, ``.PHN`` transcriptions, thirds, Kaldi alignments):
  :mod:`gradual_transfer.data.timit_labels`. Here is what the registry asks of a reader: the
  layout, the files a split reads, the checks, the utterances of each split and the extraction.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from gradual_transfer.data.errors import DataError, check_id
from gradual_transfer.data.timit_labels import (PhoneMap, alignment_files, map_segments, read_alignment, read_phn,
                                                thirds_targets)
from gradual_transfer.resources import listed

if TYPE_CHECKING:  # the front end imports torch; a reader is imported when the workflow is parsed
    from gradual_transfer.data.frontend import FeatureSettings

log = logging.getLogger(__name__)

SPLITS = ("train", "dev", "test")

LAYOUT = {"timit": "<root>/TRAIN/DR1..DR8/<speaker>/<utt>.WAV + .PHN and <root>/TEST/... "
                   "(LDC93S1; upper or lower case names)"}


def listed_speakers(which: str) -> list[str]:
    """Speaker ids (lower case) of TIMIT's 50-speaker dev set ("dev") or 24-speaker core
    test set ("core_test"), in the order of the Kaldi recipe's lists."""
    return list(listed(f"timit/{which}_speakers.txt"))


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
