"""IEMOCAP (IEMOCAP_full_release) for 4-class speech emotion recognition.

- Labels: ``Session*/dialog/EmoEvaluation/<dialog>.txt``; each utterance block starts with
  ``[<start> - <end>]<TAB><utt><TAB><emo><TAB>[<v>, <a>, <d>]``, followed by annotator lines
  (``C-…`` categorical, ``A-…`` attributes); the first line is a header.
- Audio: ``Session*/sentences/wav/<dialog>/<utt>.wav``.
- Classes: ang, hap (with exc merged into it), sad, neu — 5,531 utterances in the release; the
  rest (fru, sur, fea, dis, oth, xxx) are dropped. A fifth frame class marks silence.
- Speaker: session + the gender letter of the utterance's *last* field
  (``Ses01F_impro01_M003`` → ``Ses01M``; the letter after ``SesNN`` is the dialog's set-up).
- Folds: 2 fixed validation speakers; each of the 8 others is the test speaker of one fold,
  whose training speakers are the remaining 7.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from gradual_transfer.data.errors import DataError, check_id

if TYPE_CHECKING:  # the front end imports torch; a reader is imported when the workflow is parsed
    from gradual_transfer.data.frontend import FeatureSettings

log = logging.getLogger(__name__)

EMOTIONS = ("ang", "hap", "sad", "neu")  # class indices 0..3
SILENCE = len(EMOTIONS)  # class index 4
MERGE = {"ang": "ang", "hap": "hap", "exc": "hap", "sad": "sad", "neu": "neu"}
ALL_CODES = {"neu", "hap", "sad", "ang", "exc", "fru", "sur", "fea", "dis", "oth", "xxx"}
SPEAKERS = tuple(f"Ses0{s}{g}" for s in range(1, 6) for g in "FM")
SESSIONS = range(1, 6)
LAYOUT = {"iemocap": "<root>/Session1..Session5/sentences/wav/<dialog>/<utt>.wav and "
                     "<root>/Session1..Session5/dialog/EmoEvaluation/<dialog>.txt (IEMOCAP_full_release)"}
_FOLDERS = ("sentences/wav", "dialog/EmoEvaluation")  # of each session

_UTTERANCE = re.compile(
    r"^\[(?P<start>\d+(?:\.\d+)?) - (?P<end>\d+(?:\.\d+)?)\]\t(?P<utt>Ses0[1-5][FM]_\S+_[FM]\d+)\t"
    r"(?P<emo>\w+)\t\[(?P<vad>[^\]]*)\]\s*$"
)
_ANNOTATOR = re.compile(r"^[CA]-\w+:\t")


@dataclass(frozen=True)
class Utterance:
    utt_id: str
    speaker: str
    session: int
    emotion: str  # after merging exc into hap
    wav: Path
    start: float
    end: float


def missing_entries(root: Path, entry: dict | None = None) -> list[str]:
    """Each session's audio and label folders."""
    return [str(root / f"Session{s}" / sub) for s in SESSIONS for sub in _FOLDERS
            if not (root / f"Session{s}" / sub).is_dir()]


def write_placeholders(root: Path, entry: dict | None = None) -> None:
    for s in SESSIONS:
        for sub in _FOLDERS:
            (root / f"Session{s}" / sub).mkdir(parents=True, exist_ok=True)


def corpus_files(root: Path, entry: dict | None = None, split: str | None = None) -> list[Path]:
    """Every label file and every audio file of the five sessions (one extraction reads them all)."""
    files = []
    for s in SESSIONS:
        session = root / f"Session{s}"
        files += sorted((session / "dialog" / "EmoEvaluation").glob("*.txt"))
        files += sorted((session / "sentences" / "wav").glob("*/*.wav"))
    return files


def audio_files(root: str | Path) -> dict[str, Path]:
    """Every 4-class utterance's audio file, by utterance id (a Kaldi data directory's wav.scp)."""
    return {u.utt_id: u.wav for u in list_utterances(root)[0]}


def speaker_of(utt_id: str) -> str:
    """``Ses01F_impro01_M003`` → ``Ses01M``."""
    return utt_id[:5] + utt_id.rsplit("_", 1)[1][0]


def parse_emo_evaluation(path: Path) -> list[tuple[str, str, float, float]]:
    """(utt, emotion code, start, end) of every utterance line, checking every line's form."""
    rows = []
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
        if not line.strip() or line.startswith("%") or _ANNOTATOR.match(line):
            continue
        match = _UTTERANCE.match(line)
        if not match:
            raise DataError(f"{path} line {number}: malformed line {line[:80]!r}; expected "
                            f"'[start - end]<TAB>utterance<TAB>emotion<TAB>[v, a, d]' or an annotator line.")
        emo = match.group("emo")
        if emo not in ALL_CODES:
            raise DataError(f"{path} line {number}: unknown emotion code {emo!r} (known: {sorted(ALL_CODES)}).")
        start, end = float(match.group("start")), float(match.group("end"))
        if end <= start:
            raise DataError(f"{path} line {number}: utterance ends ({end}) before it starts ({start}).")
        rows.append((check_id(match.group("utt"), "utterance name", f"{path} line {number}"), emo, start, end))
    return rows


def list_utterances(root: str | Path) -> tuple[list[Utterance], list[str]]:
    """The labelled 4-class utterances of all five sessions (sorted by id), and one problem
    line per labelled utterance whose audio is missing (the caller decides: fail or skip)."""
    root = Path(root)
    utterances, problems = [], []
    labelled_in: dict[str, Path] = {}
    for session in range(1, 6):
        evaluation_dir = root / f"Session{session}" / "dialog" / "EmoEvaluation"
        if not evaluation_dir.is_dir():
            raise DataError(f"{evaluation_dir}: missing. Expected IEMOCAP_full_release/Session1..5/dialog/"
                            f"EmoEvaluation/<dialog>.txt; check datasets.iemocap.root.")
        for path in sorted(evaluation_dir.glob("*.txt")):
            dialog = path.stem
            for utt, emo, start, end in parse_emo_evaluation(path):
                if utt in labelled_in:
                    where = "twice in it" if labelled_in[utt] == path else f"also in {labelled_in[utt]}"
                    raise DataError(f"{path}: utterance {utt} is labelled {where}. Keep one label block.")
                labelled_in[utt] = path
                if emo not in MERGE:
                    continue
                wav = root / f"Session{session}" / "sentences" / "wav" / dialog / f"{utt}.wav"
                if not wav.is_file():
                    problems.append(f"{path}: utterance {utt} is labelled {emo} but its audio {wav} is missing")
                    continue
                utterances.append(Utterance(utt, speaker_of(utt), session, MERGE[emo], wav, start, end))
    if not utterances and not problems:
        raise DataError(f"{root}: no utterance labelled {'/'.join(sorted(MERGE))} in any EmoEvaluation file.")
    return sorted(utterances, key=lambda u: u.utt_id), problems


def folds(validation_speakers: list[str]) -> dict[int, dict[str, list[str]]]:
    """Fold k (1-based) → its train, validation and test speakers (leave one speaker out over
    the 8 speakers that are not validation speakers, in session order)."""
    unknown = sorted(set(validation_speakers) - set(SPEAKERS))
    if unknown:
        raise DataError(f"tasks.ser.validation_speakers: {unknown} are not IEMOCAP speakers ({', '.join(SPEAKERS)}).")
    others = [s for s in SPEAKERS if s not in validation_speakers]
    return {k: {"train": [s for s in others if s != test], "validation": list(validation_speakers), "test": [test]}
            for k, test in enumerate(others, start=1)}


def fold_problems(counts: dict[str, int], validation_speakers: list[str], fold_numbers: list[int], task: str,
                  source: str) -> list[str]:
    """One sentence per configured fold that would have nothing to select or score a model on:
    its test speaker, or all of its validation speakers, without a usable 4-class utterance
    (`counts`: usable utterances per speaker in `source`)."""
    layout = folds(validation_speakers)
    shown = ", ".join(f"{s} {counts.get(s, 0)}" for s in SPEAKERS)
    problems = []
    if not any(counts.get(s) for s in validation_speakers):
        problems.append(f"tasks.{task}.validation_speakers: {validation_speakers} have no usable 4-class utterance "
                        f"in {source} (utterances per speaker: {shown}); choose others.")
    for k in fold_numbers:
        test = layout[k]["test"][0]
        if not counts.get(test):
            problems.append(f"tasks.{task}.folds: fold {k} tests on {test}, who has no usable 4-class utterance in "
                            f"{source} (utterances per speaker: {shown}); remove fold {k}.")
    return problems


def data_errors(config: dict, dataset: str, root: Path) -> list[str]:
    """Folds of the tasks reading IEMOCAP whose test or validation speakers have no usable
    utterance in the corpus at `root` (its labels are read: a second; the config check). A corpus whose labels cannot be read is
    left to the extraction job, which says what is wrong with it."""
    try:
        utterances, _ = list_utterances(root)
    except DataError:
        return []
    counts: dict[str, int] = {}
    for utt in utterances:
        counts[utt.speaker] = counts.get(utt.speaker, 0) + 1
    problems = []
    for name, task in config["tasks"].items():
        if task["dataset"] != dataset:
            continue
        try:
            problems += fold_problems(counts, task["validation_speakers"], task["folds"], name, str(root))
        except DataError as error:  # validation speakers that are not IEMOCAP speakers
            problems.append(str(error))
    return problems


def task_errors(config: dict, name: str, task: dict) -> list[str]:
    """A task's folds beyond the 8 that 10 speakers less the validation speakers allow (the
    config check, without the data)."""
    available = len(SPEAKERS) - len(task["validation_speakers"])
    if max(task["folds"]) > available:
        return [f"tasks.{name}.folds: IEMOCAP has {len(SPEAKERS)} speakers; with {len(task['validation_speakers'])} "
                f"for validation there are {available} folds, not {max(task['folds'])}."]
    return []


def fold_layout(corpus_speakers: list[str], validation_speakers: list[str], fold: int) -> dict[str, list[str]]:
    """The train, validation and test speakers of a fold: over IEMOCAP's ten speakers, whichever
    of them the feature file holds."""
    return folds(validation_speakers)[fold]


def planned_speakers(root: str | Path, entry: dict, dataset: str) -> list[str]:
    """The speakers the folds are laid over when planning: IEMOCAP's ten, fixed by the corpus."""
    return list(SPEAKERS)


# --- extraction ----------------------------------------------------------------------------

def extract(root: str | Path, out: str | Path, settings: FeatureSettings, silence_threshold_db: float,
            bad_utterances: str = "fail") -> int:
    """Write ``out`` (Arrow) with the features (:mod:`gradual_transfer.data.frontend`' front end) and
    frame labels (emotion, or silence) of every 4-class IEMOCAP utterance; folds select rows by
    speaker at training time. Every audio header is checked before any feature is computed."""
    import numpy as np
    import pyarrow as pa

    from gradual_transfer.data.arrow import SpeechWriter, speech_schema
    from gradual_transfer.data.frontend import check_audio, fbank, read_audio, resolve_problems, silence_mask
    from gradual_transfer.logs import progress

    utterances, problems = list_utterances(root)
    planned = []
    for utt in utterances:
        try:
            num_samples = check_audio(utt.wav, settings.sample_rate)
            if settings.num_frames(num_samples) == 0:
                raise DataError(f"{utt.wav}: shorter than one frame ({num_samples} samples)")
            planned.append(utt)
        except DataError as error:
            problems.append(str(error))
    resolve_problems(problems, bad_utterances, "utterance")
    schema = speech_schema(settings.num_mel_bins, [pa.field("emotion", pa.string()), pa.field("session", pa.int8())])
    with SpeechWriter(out, schema) as writer:
        for utt in progress(planned, desc="iemocap"):
            samples = read_audio(utt.wav)
            feats = fbank(samples, settings)
            targets = np.full(len(feats), EMOTIONS.index(utt.emotion), dtype=np.int16)
            targets[silence_mask(samples, settings, silence_threshold_db)] = SILENCE
            writer.add({"utt_id": utt.utt_id, "speaker": utt.speaker, "num_frames": len(feats), "feats": feats,
                        "targets": targets, "emotion": utt.emotion, "session": utt.session})
    log.info("iemocap: %d utterances, %d problems skipped → %s", writer.num_rows, len(problems), out)
    return writer.num_rows


def extract_as_configured(config: dict, dataset: str, root: str | Path, out: str | Path, split: None = None) -> int:
    """:func:`extract` with the config's front end, the silence threshold of the tasks reading
    `dataset` (the config check makes them agree) and its ``bad_utterances`` (the command line's step)."""
    from gradual_transfer.data.kinds import task_reading
    from gradual_transfer.data.frontend import FeatureSettings

    task = task_reading(config, dataset)
    return extract(root, out, FeatureSettings.from_config(config["features"]),
                   silence_threshold_db=task["silence_threshold_db"],
                   bad_utterances=config["datasets"][dataset]["bad_utterances"])
