"""Speech front end shared by every speech kind: 40 log mel filter banks (MFSC), audio checks,
silence, normalisation statistics, and the export of a feature file as a Kaldi data directory.
Each kind's reader (``data/timit.py``, ``data/iemocap.py``, ``data/kaldi.py``) extracts its
corpus with it (``extract``) and makes its own frame targets.

Features: 16 kHz audio, 25 ms Hamming frames every 10 ms, 40 log mel filter banks, computed by
torchaudio's Kaldi-compatible ``compliance.kaldi.fbank`` on int16-scaled samples (as Kaldi's
``compute-fbank-feats`` reads a WAV), otherwise Kaldi's defaults (pre-emphasis 0.97, DC offset
removed, snip_edges). Dither is 0 by default, so features are deterministic. They are stored
raw; per-coefficient mean/std normalisation is computed on training data only
(:func:`normalisation_stats`) and applied when batches are gathered.

Extraction is two passes: first every utterance's labels and audio header are checked (so a bad
corpus fails in seconds, before any feature is computed), then features are computed and
written; the Arrow file appears only when complete. With ``bad_utterances: skip`` the problems
of the first pass are logged with their count and those utterances left out — never silently.
"""

from __future__ import annotations

import logging
import shlex
import struct
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile
import torch

from gradual_transfer.data.arrow import SpeechFeatures
from gradual_transfer.data.errors import DataError, check_id
from gradual_transfer.io import all_or_none, write_ark_scp, write_json, write_text

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FeatureSettings:
    sample_rate: int = 16000
    frame_length_ms: float = 25.0
    frame_shift_ms: float = 10.0
    window: str = "hamming"
    num_mel_bins: int = 40
    dither: float = 0.0
    context: int = 10

    @classmethod
    def from_config(cls, entry: dict) -> "FeatureSettings":
        return cls(**entry)

    @property
    def frame_length(self) -> int:
        return int(self.sample_rate * self.frame_length_ms / 1000)

    @property
    def frame_shift(self) -> int:
        return int(self.sample_rate * self.frame_shift_ms / 1000)

    def num_frames(self, num_samples: int) -> int:
        if num_samples < self.frame_length:
            return 0
        return 1 + (num_samples - self.frame_length) // self.frame_shift


def _declared_samples(path: Path) -> int | None:
    """Sample count the file's header declares (SPHERE or RIFF), to detect damage that
    libsndfile would read past: -1 when the data does not match it (a SPHERE file must hold
    exactly its samples; a RIFF data chunk must fit in the file)."""
    with open(path, "rb") as f:
        head = f.read(1024)
    size = path.stat().st_size
    if head.startswith(b"NIST_1A"):
        fields = dict(line.split(" ", 1) for line in head.decode("ascii", "replace").splitlines()[2:] if " " in line)
        values = {}
        for name, default in (("sample_count", "-i 0"), ("sample_n_bytes", "-i 2")):
            value = fields.get(name, default).split()[-1]
            if not value.isdigit():
                raise DataError(f"{path}: SPHERE header field {name} is {value!r}, not a number; the header is damaged.")
            values[name] = int(value)
        if not head[8:16].strip().isdigit():
            raise DataError(f"{path}: SPHERE header size {head[8:16]!r} is not a number; the header is damaged.")
        header = int(head[8:16])
        data = size - header
        return values["sample_count"] if data == values["sample_count"] * values["sample_n_bytes"] else -1
    if head.startswith(b"RIFF") and head[8:12] == b"WAVE":
        position, width = 12, 2
        while position + 8 <= len(head):
            chunk, length = head[position:position + 4], struct.unpack("<I", head[position + 4:position + 8])[0]
            if chunk == b"fmt ":
                width = struct.unpack("<H", head[position + 22:position + 24])[0] // 8 or 2
            if chunk == b"data":
                return length // width if position + 8 + length <= size else -1
            position += 8 + length + (length & 1)
    return None


def check_audio(path: Path, sample_rate: int) -> int:
    """Number of samples of a mono recording at `sample_rate`; DataError naming the file otherwise."""
    try:
        info = soundfile.info(str(path))
    except Exception as error:  # noqa: BLE001 - libsndfile errors
        raise DataError(f"{path}: unreadable audio ({error}).") from None
    if info.samplerate != sample_rate:
        raise DataError(f"{path}: sample rate {info.samplerate} Hz, expected {sample_rate} Hz "
                        f"(features.sample_rate); resample the corpus first.")
    if info.channels != 1:
        raise DataError(f"{path}: {info.channels} channels, expected mono.")
    if _declared_samples(path) == -1:
        raise DataError(f"{path}: truncated or padded: the header's sample count does not match the data "
                        f"the file holds.")
    if info.frames == 0:
        raise DataError(f"{path}: no audio samples.")
    return info.frames


def read_audio(path: Path) -> np.ndarray:
    try:
        samples, _ = soundfile.read(str(path), dtype="int16")
    except Exception as error:  # noqa: BLE001
        raise DataError(f"{path}: unreadable audio ({error}).") from None
    return samples


def fbank(samples: np.ndarray, settings: FeatureSettings) -> np.ndarray:
    """(num_frames, num_mel_bins) float32 log mel filter-bank energies of int16 samples."""
    from torchaudio.compliance import kaldi

    waveform = torch.from_numpy(samples.astype(np.float32))[None]
    feats = kaldi.fbank(waveform, sample_frequency=settings.sample_rate, frame_length=settings.frame_length_ms,
                        frame_shift=settings.frame_shift_ms, num_mel_bins=settings.num_mel_bins,
                        dither=settings.dither, window_type=settings.window, snip_edges=True)
    return feats.numpy()


def frame_energy_db(samples: np.ndarray, settings: FeatureSettings) -> np.ndarray:
    """Log energy (dB) of each frame, framed exactly as :func:`fbank` frames."""
    n = settings.num_frames(len(samples))
    starts = np.arange(n) * settings.frame_shift
    frames = samples.astype(np.float64)[starts[:, None] + np.arange(settings.frame_length)[None, :]]
    frames -= frames.mean(axis=1, keepdims=True)
    return 10 * np.log10((frames ** 2).sum(axis=1) + 1e-10)


def silence_mask(samples: np.ndarray, settings: FeatureSettings, threshold_db: float) -> np.ndarray:
    """Frames quieter than the utterance's loudest frame by more than |threshold_db|."""
    energy = frame_energy_db(samples, settings)
    return energy < energy.max() + threshold_db


def resolve_problems(problems: list[str], policy: str, what: str) -> None:
    if not problems:
        return
    if policy == "fail":
        listing = "\n  ".join(problems[:20]) + (f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else "")
        raise DataError(f"{len(problems)} bad {what}(s); nothing was written:\n  {listing}\n"
                        f"Fix or remove them, or set bad_utterances: skip for the dataset to leave them out.")
    for problem in problems:
        log.warning("skipping: %s", problem)
    log.warning("skipped %d bad %s(s) (bad_utterances: skip)", len(problems), what)


def normalisation_stats(features: SpeechFeatures, speakers: list[str] | None = None) -> dict:
    """Per-coefficient mean and standard deviation over the frames of `speakers` (all when
    None), accumulated in float64 one utterance at a time."""
    rows = [r for r in range(len(features)) if speakers is None or features.speakers[r] in speakers]
    if not rows:
        raise DataError(f"{features.path}: no utterance of speakers {speakers} to compute statistics on.")
    total = np.zeros(features.num_bins)
    squares = np.zeros(features.num_bins)
    count = 0
    for r in rows:
        x = features.feats(r).astype(np.float64)
        total += x.sum(axis=0)
        squares += (x ** 2).sum(axis=0)
        count += len(x)
    mean = total / count
    std = np.sqrt(np.maximum(squares / count - mean ** 2, 1e-10))
    return {"mean": mean.tolist(), "std": std.tolist(), "frames": int(count), "utterances": len(rows),
            "speakers": sorted(set(features.speakers[rows].tolist()))}


def write_stats(features_path: str | Path, out: str | Path, speakers: list[str] | None = None) -> dict:
    stats = normalisation_stats(SpeechFeatures(features_path), speakers)
    write_json(out, stats)
    return stats


# How wav.scp reads a NIST SPHERE file: Kaldi's own tools/sph2pipe, as its TIMIT recipe does
# (`sox -t sph FILE -t wav - |` is the alternative for those with sox).
SPHERE_READER = "sph2pipe -f wav"


def kaldi_utt_ids(utt_ids: list[str], speakers: list[str]) -> list[str]:
    """Utterance ids as Kaldi wants them: starting with the speaker id (TIMIT's already do;
    an IEMOCAP utterance is named after its dialog's first speaker, so its own speaker is
    prefixed: ``Ses01M-Ses01F_impro01_M000``), so that sorting by utterance sorts by speaker."""
    return [u if u.startswith(s) else f"{s}-{u}" for u, s in zip(utt_ids, speakers)]


def _audio_files(kind: str, root: str | Path) -> dict[str, Path]:
    """Every utterance's audio file in a corpus of `kind`, by utterance id (its reader's
    ``audio_files``)."""
    from gradual_transfer.data.kinds import KINDS, reader

    module = reader(KINDS[kind])
    if not hasattr(module, "audio_files"):
        raise DataError(f"a corpus of kind {kind} has no audio files to list in wav.scp (a Kaldi data directory "
                        f"has its own wav.scp).")
    return module.audio_files(root)


def _wav_entry(path: Path) -> str:
    """A wav.scp value: the absolute path, or for a SPHERE file a command that converts it, the
    path quoted for ``sh`` (Kaldi runs a value that ends in ``|`` through the shell: a folder
    named ``$(...)`` or ``a;b`` must stay a name). A plain path is never run, and Kaldi takes
    the rest of the line after the id as the file name, spaces included."""
    path = path.resolve()
    if "\n" in str(path) or "\r" in str(path):
        raise DataError(f"{str(path)!r}: a line break in a file name cannot stand in wav.scp (one line per "
                        f"utterance). Rename it.")
    with open(path, "rb") as f:
        sphere = f.read(7) == b"NIST_1A"
    return f"{SPHERE_READER} {shlex.quote(str(path))} |" if sphere else str(path)


def export_kaldi(features_path: str | Path, out_dir: str | Path, dataset: str | None = None,
                 corpus_root: str | Path | None = None, kind: str | None = None) -> int:
    """A Kaldi data directory of a feature file: ``feats.ark``/``feats.scp`` (absolute archive
    path), ``utt2spk``, ``spk2utt``, ``text`` (TIMIT: the reference phones on the 48-phone set,
    as Kaldi's TIMIT recipe keeps them; IEMOCAP: the emotion; a Kaldi directory's: the label) and, given the dataset and its
    root, ``wav.scp`` (absolute paths; SPHERE through :data:`SPHERE_READER`, the path quoted
    for ``sh``). Every file is sorted as ``LC_ALL=C sort`` sorts, and they appear together when
    all are complete. Ids that Kaldi cannot hold (:mod:`gradual_transfer.names`) are refused.
    `kind` is the dataset's kind (None: its name, as for the paper's corpora)."""
    features = SpeechFeatures(features_path)
    out_dir = Path(out_dir)
    duplicates = sorted(u for u, n in Counter(features.utt_ids).items() if n > 1)
    if duplicates:
        raise DataError(f"{features_path}: duplicate utterance ids {duplicates[:3]}; a Kaldi archive needs unique keys.")
    speakers = features.speakers.tolist()
    for value, what in [(u, "utterance id") for u in features.utt_ids] + [(s, "speaker id") for s in set(speakers)]:
        check_id(value, what, features_path, fix="Extract the features again from a corpus whose folders and "
                                                 "files are renamed.")
    with all_or_none():  # the directory is whole or absent: Kaldi tools trust a data directory they find
        _write_kaldi_dir(features, out_dir, speakers, dataset, corpus_root, kind or dataset)
    return len(features)


def _write_kaldi_dir(features: SpeechFeatures, out_dir: Path, speakers: list[str], dataset: str | None,
                     corpus_root: str | Path | None, kind: str | None) -> None:
    features_path = features.path
    ids = kaldi_utt_ids(features.utt_ids, speakers)
    order = sorted(range(len(ids)), key=lambda row: ids[row].encode())  # C locale: byte order
    label = next((name for name in ("phones", "emotion", "label") if name in features.schema.names), None)

    def lines(values) -> str:
        return "".join(f"{ids[row]} {values(row)}\n" for row in order)

    write_ark_scp(((ids[row], np.ascontiguousarray(features.feats(row))) for row in order),
                  out_dir / "feats.ark", out_dir / "feats.scp")
    write_text(out_dir / "utt2spk", lines(lambda row: speakers[row]))
    if label is not None:
        text = features.column(label)
        write_text(out_dir / "text", lines(lambda row: " ".join(text[row]) if label == "phones" else text[row]))
    by_speaker: dict[str, list[str]] = {}
    for row in order:
        by_speaker.setdefault(speakers[row], []).append(ids[row])
    write_text(out_dir / "spk2utt", "".join(f"{s} {' '.join(by_speaker[s])}\n"
                                            for s in sorted(by_speaker, key=str.encode)))
    if corpus_root is not None:
        audio = _audio_files(kind, corpus_root)
        missing = [u for u in features.utt_ids if u not in audio]
        if missing:
            raise DataError(f"{corpus_root}: no audio for {len(missing)} utterance(s) of {features_path}, e.g. "
                            f"{missing[0]}; is datasets.{dataset}.root the corpus these features came from?")
        write_text(out_dir / "wav.scp", lines(lambda row: _wav_entry(audio[features.utt_ids[row]])))
