"""`kind: kaldi`: utterance classification from a Kaldi data directory (an emotion corpus of
one's own, speaker, language or accent identification).

    <root>/wav.scp     <recording> <wav file>, or <recording> <command> |  (commands: allow_commands)
    <root>/utt2spk     <utterance> <speaker>
    <root>/utt2label   <utterance> <class>     (or the file named by datasets.<name>.labels)
    <root>/segments    optional: <utterance> <recording> <start s> <end s>; without it each
                       recording of wav.scp is one utterance
    <root>/spk2utt     optional: checked against utt2spk when present

The files are checked as Kaldi's ``utils/validate_data_dir.sh`` checks a data directory: every
file's first fields sorted in C order (``LC_ALL=C sort``) and unique; ``utt2spk`` sorted also
when sorted by speaker first (speaker ids prefix utterance ids); ``spk2utt`` the inverse of
``utt2spk``; the utterances of ``utt2spk`` are those of ``segments`` (or ``wav.scp``) and of the
labels file; with ``segments``, its recordings are those of ``wav.scp``. Ids are checked by
:mod:`gradual_transfer.names` (a shell reads them as one word).

A ``wav.scp`` entry ending in ``|`` is a command whose output is the WAV (``sph2pipe -f wav
x.sph |``, ``sox ... -t wav - |``). A data directory must not run code by surprise: commands run
(through ``sh -c``, as Kaldi runs them) only when the dataset sets ``allow_commands: true``;
otherwise the config check names the first such entry and the key. Each command runs once per
extraction, and the files it names that exist are inputs of the extraction
(:func:`command_files`): replacing one re-extracts. File paths are read as they are written,
relative paths from the working directory (as Kaldi reads them).

Classes are the sorted distinct labels (label index = class); silent frames are one class more
(the last), as IEMOCAP's are. Folds leave one speaker out as IEMOCAP's do: fixed validation
speakers, and fold k tests on the k-th of the other speakers in sorted order.

Text only at module level (no numpy, no torch): the config check reads these files when the
workflow is parsed.
"""

from __future__ import annotations

import io
import logging
import math
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from gradual_transfer.data.errors import DataError, check_id

if TYPE_CHECKING:  # the front end imports torch; a reader is imported when the workflow is parsed
    from gradual_transfer.data.frontend import FeatureSettings

log = logging.getLogger(__name__)

EXPECTED = ("<root>/wav.scp (<recording> <wav file> or <recording> <command> |), <root>/utt2spk, "
            "<root>/utt2label (<utterance> <class>; or the file of datasets.<name>.labels), optionally "
            "<root>/segments and <root>/spk2utt (a Kaldi data directory)")
LAYOUT = {"kaldi": EXPECTED}
REQUIRED = ("wav.scp", "utt2spk")
COMMAND_TIMEOUT_S = 600  # one recording's command


@dataclass(frozen=True)
class Utterance:
    utt_id: str
    speaker: str
    label: str
    recording: str
    source: str  # the wav.scp value: a file path, or a command ending in "|"
    start: float = 0.0  # seconds into the recording (segments)
    end: float | None = None  # None: to the end of the recording

    @property
    def is_command(self) -> bool:
        return is_command(self.source)


def is_command(value: str) -> bool:
    return value.rstrip().endswith("|")


def labels_file(root: str | Path, entry: dict | None = None) -> Path:
    """The labels of a data directory: ``datasets.<name>.labels``, else ``<root>/utt2label``."""
    given = (entry or {}).get("labels")
    return Path(given) if given else Path(root) / "utt2label"


def missing_entries(root: Path, entry: dict | None = None) -> list[str]:
    root = Path(root)
    missing = [str(root / name) for name in REQUIRED if not (root / name).is_file()]
    if not labels_file(root, entry).is_file():
        missing.append(str(labels_file(root, entry)))
    return missing


def write_placeholders(root: Path, entry: dict) -> None:
    """A one-utterance data directory with the names the layout check looks for (planning only)."""
    root = Path(root)
    (root / "wav.scp").write_text("u1 u1.wav\n")
    (root / "utt2spk").write_text("u1 s1\n")
    labels_file(root, entry).write_text("u1 a\n")


def read_table(path: Path, fields: tuple[int, int | None] = (2, 2)) -> list[tuple[str, list[str]]]:
    """(key, other fields) of every line of a Kaldi table file, checked as ``validate_data_dir.sh``
    checks one: not empty, each line with `fields` (least, most) fields, keys sorted in C order
    (byte order) and unique. A ``wav.scp`` value keeps its spaces (a command)."""
    least, most = fields
    rows = []
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as error:
        raise DataError(f"{path}: not UTF-8 text ({error}).") from None
    if text.startswith("\ufeff"):
        raise DataError(f"{path}: starts with a byte order mark (bytes EF BB BF, written by some editors), which "
                        f"Kaldi reads as part of the first key; save it as UTF-8 without one "
                        f"(sed -i '1s/^\\xEF\\xBB\\xBF//' {path.name}).")
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            raise DataError(f"{path} line {number}: empty line; Kaldi's tables have one entry per line.")
        if path.name == "wav.scp":  # the value is the rest of the line (a command has spaces)
            key, *rest = line.strip().split(maxsplit=1)
            parts = [rest[0].strip()] if rest else []
        else:
            key, *parts = line.split()
        if len(parts) + 1 < least or (most is not None and len(parts) + 1 > most):
            wanted = f"{least}" if least == most else f"{least} to {most}" if most else f"at least {least}"
            raise DataError(f"{path} line {number}: {len(parts) + 1} fields, expected {wanted} ({line[:80]!r}).")
        rows.append((key, parts))
    if not rows:
        raise DataError(f"{path}: empty.")
    keys = [key for key, _ in rows]
    for number, (before, after) in enumerate(zip(keys, keys[1:]), start=2):
        if before.encode() == after.encode():
            raise DataError(f"{path} line {number}: {after!r} appears twice; keys must be unique.")
        if before.encode() > after.encode():
            raise DataError(f"{path} line {number}: {after!r} comes after {before!r}: not sorted. Sort it as Kaldi "
                            f"does: LC_ALL=C sort {path.name} -o {path.name} (or utils/fix_data_dir.sh).")
    return rows


def read_data_dir(root: str | Path, entry: dict | None = None, dataset: str = "<name>") -> list[Utterance]:
    """The labelled utterances of a Kaldi data directory, sorted by id, after the checks of
    ``validate_data_dir.sh`` (module docstring); a :class:`DataError` names the file, the line
    and the fix otherwise. Reads text only: no audio is opened and no command is run."""
    root = Path(root)
    missing = missing_entries(root, entry)
    if missing:
        raise DataError(f"{root}: missing {', '.join(missing)}. Expected {EXPECTED}.")
    wav = {check_id(k, "recording id", root / "wav.scp"): v[0] for k, v in read_table(root / "wav.scp", (2, None))}
    utt2spk = {check_id(k, "utterance id", root / "utt2spk"): check_id(v[0], "speaker id", root / "utt2spk")
               for k, v in read_table(root / "utt2spk")}
    by_speaker = sorted(utt2spk, key=lambda u: (utt2spk[u].encode(), u.encode()))
    if by_speaker != list(utt2spk):
        first = next(u for u, v in zip(utt2spk, by_speaker) if u != v)
        raise DataError(f"{root / 'utt2spk'}: not in sorted order when sorted first on speaker id (at {first!r}); "
                        f"make speaker ids prefixes of utterance ids, as Kaldi requires.")
    if (root / "spk2utt").is_file():
        spk2utt = {k: v for k, v in read_table(root / "spk2utt", (2, None))}
        inverse: dict[str, list[str]] = {}
        for utt, speaker in utt2spk.items():
            inverse.setdefault(speaker, []).append(utt)
        if spk2utt != inverse:
            raise DataError(f"{root / 'spk2utt'}: not the inverse of utt2spk; remake it "
                            f"(utils/utt2spk_to_spk2utt.pl utt2spk > spk2utt).")
    labels_path = labels_file(root, entry)
    labels = {k: check_id(v[0], "class label", labels_path) for k, v in read_table(labels_path)}
    if (root / "segments").is_file():
        segments = {key: (recording, *segment_times(root / "segments", number, key, start, end))
                    for number, (key, (recording, start, end, *_)) in
                    enumerate(read_table(root / "segments", (4, 5)), start=1)}
        _same_keys(root / "segments", segments, root / "utt2spk", utt2spk)
        recordings = {recording for recording, _, _ in segments.values()}
        if recordings != set(wav):
            extra, lacking = sorted(recordings - set(wav)), sorted(set(wav) - recordings)
            raise DataError(f"{root}: the recordings of segments and wav.scp differ "
                            f"({_listing('only in segments', extra)}{_listing('only in wav.scp', lacking)}).")
    else:
        _same_keys(root / "wav.scp", wav, root / "utt2spk", utt2spk)
        segments = {utt: (utt, 0.0, None) for utt in utt2spk}
    _same_keys(labels_path, labels, root / "utt2spk", utt2spk)
    return [Utterance(utt, utt2spk[utt], labels[utt], segments[utt][0], wav[segments[utt][0]], segments[utt][1],
                      segments[utt][2]) for utt in utt2spk]


def segment_times(path: Path, number: int, key: str, start: str, end: str) -> tuple[float, float | None]:
    """(start, end) in seconds of the `segments` line `number` (end None: ``-1``, to the end of
    the recording, as Kaldi's extract-segments reads it); a :class:`DataError` names the line
    when they are not finite seconds with 0 ≤ start < end."""
    where = f"{path} line {number}: segment {key}"
    try:
        begin, finish = float(start), float(end)
    except ValueError:
        raise DataError(f"{where}: start {start!r} and end {end!r} must be seconds.") from None
    if not (math.isfinite(begin) and math.isfinite(finish)):
        raise DataError(f"{where}: start {start!r} and end {end!r} must be finite seconds (not nan or inf).")
    if begin < 0:
        raise DataError(f"{where} starts at {start} s, before its recording; a segment starts at 0 or later.")
    if finish != -1 and finish <= begin:
        raise DataError(f"{where} ends ({end} s) before it starts ({start} s); write an end after the start, "
                        f"or -1 for the end of the recording.")
    return begin, None if finish == -1 else finish


def _listing(what: str, keys: list[str]) -> str:
    return f"{what}: {', '.join(keys[:5])}{' …' if len(keys) > 5 else ''}; " if keys else ""


def _same_keys(path: Path, table: dict, reference_path: Path, reference: dict) -> None:
    if set(table) != set(reference):
        extra, lacking = sorted(set(table) - set(reference)), sorted(set(reference) - set(table))
        raise DataError(f"{path}: its utterances differ from {reference_path.name}'s ("
                        f"{_listing('only in ' + path.name, extra)}{_listing('only in ' + reference_path.name, lacking)}"
                        f"); every utterance needs one line in each (utils/fix_data_dir.sh keeps the common ones).")


def classes(utterances: list[Utterance]) -> list[str]:
    """The class labels in label order: sorted (C order), as torchvision sorts class folders."""
    return sorted({u.label for u in utterances}, key=str.encode)


def speakers(utterances: list[Utterance]) -> list[str]:
    return sorted({u.speaker for u in utterances}, key=str.encode)


def command_errors(utterances: list[Utterance], dataset: str, allow_commands: bool, root: Path) -> list[str]:
    """The refusal of a data directory whose wav.scp runs commands the dataset did not allow."""
    commands = [u for u in utterances if u.is_command]
    if not commands or allow_commands:
        return []
    first = commands[0]
    return [f"datasets.{dataset}: {root / 'wav.scp'} reads recording {first.recording} through a command "
            f"({first.source!r}{f' and {len(commands) - 1} more' if len(commands) > 1 else ''}); a data directory "
            f"runs no command unless you set datasets.{dataset}.allow_commands: true (only for a directory you trust)."]


def folds(speaker_list: list[str], validation_speakers: list[str], task: str = "<task>") -> dict[int, dict[str, list[str]]]:
    """Fold k (1-based) → its train, validation and test speakers: leave one speaker out over
    the speakers that are not validation speakers, in sorted order (as IEMOCAP's folds)."""
    unknown = sorted(set(validation_speakers) - set(speaker_list))
    if unknown:
        raise DataError(f"tasks.{task}.validation_speakers: {unknown} are not speakers of the data directory "
                        f"({', '.join(speaker_list)}).")
    others = [s for s in speaker_list if s not in validation_speakers]
    return {k: {"train": [s for s in others if s != test], "validation": list(validation_speakers), "test": [test]}
            for k, test in enumerate(others, start=1)}


def fold_problems(speaker_list: list[str], validation_speakers: list[str], fold_numbers: list[int], task: str,
                  source: str) -> list[str]:
    """One sentence per configured fold beyond the speakers of the data directory."""
    try:
        layout = folds(speaker_list, validation_speakers, task)
    except DataError as error:
        return [str(error)]
    beyond = sorted(k for k in fold_numbers if k not in layout)
    if beyond:
        return [f"tasks.{task}.folds: {beyond} exceed the {len(layout)} folds of {source} (one per speaker that is "
                f"not a validation speaker: {', '.join(s for f in layout.values() for s in f['test'])}); remove them."]
    return []


def corpus_files(root: str | Path, entry: dict | None = None, split: str | None = None) -> list[Path]:
    """The data directory's tables and the audio files wav.scp names; with ``allow_commands``,
    also every existing file a command names (:func:`command_files`: its input audio, and its
    program when given as a path), so that replacing one re-runs the extraction. Absent files are
    simply not listed: the extraction says what is wrong."""
    root = Path(root)
    files = [root / name for name in ("wav.scp", "utt2spk", "segments", "spk2utt") if (root / name).is_file()]
    if labels_file(root, entry).is_file():
        files.append(labels_file(root, entry))
    commands: list[Path] = []
    if (root / "wav.scp").is_file():
        for line in (root / "wav.scp").read_text(errors="replace").splitlines():
            fields = line.strip().split(maxsplit=1)
            value = fields[1].strip() if len(fields) == 2 else ""
            if value and not is_command(value) and Path(value).is_file():
                files.append(Path(value))
            elif value and is_command(value) and (entry or {}).get("allow_commands"):
                commands += command_files(value)
    return files + [path for path in dict.fromkeys(commands) if path not in files]


def command_files(source: str) -> list[Path]:
    """The existing files among the words of a wav.scp command (``sph2pipe -f wav x.sph |``:
    ``x.sph``; ``./convert.sh x.wav |``: both), split as ``sh`` splits them (quotes, operators),
    relative paths from the working directory, where the command runs. Words that name no file
    (options, programs found on PATH, ``-``) are not inputs."""
    command = source.rstrip()[:-1]
    try:
        lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        words = list(lexer)
    except ValueError:  # unbalanced quotes: sh refuses it too, when the extraction runs it
        words = command.split()
    return [Path(word) for word in dict.fromkeys(words) if word and Path(word).is_file()]


def read_recording(source: str, allow_commands: bool, dataset: str):
    """(int16 samples, sample rate) of a wav.scp value: a file read with libsndfile, or (only
    with `allow_commands`) the WAV a command writes to its standard output."""
    import soundfile

    if is_command(source):
        if not allow_commands:
            raise DataError(f"wav.scp entry {source!r} is a command; set datasets.{dataset}.allow_commands: true "
                            f"to run it.")
        command = source.rstrip()[:-1]
        try:
            done = subprocess.run(["sh", "-c", command], capture_output=True, timeout=COMMAND_TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired:
            raise DataError(f"wav.scp command {command!r} ran past {COMMAND_TIMEOUT_S} s.") from None
        if done.returncode != 0:
            raise DataError(f"wav.scp command {command!r} failed (exit {done.returncode}): "
                            f"{done.stderr.decode(errors='replace').strip()[-300:]}")
        data = io.BytesIO(done.stdout)
        where = f"the output of {command!r}"
    else:
        path = Path(source)
        if not path.is_file():
            hint = " (archive offsets are not read: give a WAV file)" if ":" in source else ""
            raise DataError(f"{source}: no such audio file{hint}.")
        data, where = str(path), source
    try:
        samples, rate = soundfile.read(data, dtype="int16")
    except Exception as error:  # noqa: BLE001 - libsndfile errors
        raise DataError(f"{where}: unreadable audio ({error}).") from None
    if samples.ndim != 1:
        raise DataError(f"{where}: {samples.shape[1]} channels, expected mono.")
    return samples, rate


def segment_bounds(utt: Utterance, num_samples: int, rate: int) -> tuple[int, int]:
    """The samples [first, last) of one utterance in a recording of `num_samples` at `rate` (all
    of it, or its segment: Kaldi's extract-segments takes samples [start × rate, end × rate), an
    end up to 0.5 s beyond the recording clamped to it)."""
    first = int(utt.start * rate)
    last = num_samples if utt.end is None else int(utt.end * rate)
    if last > num_samples + rate // 2:
        raise DataError(f"segment {utt.utt_id}: ends at {utt.end} s, beyond its recording {utt.recording} "
                        f"({num_samples / rate:.2f} s).")
    return first, min(last, num_samples)


def check_rate(utt: Utterance, rate: int, sample_rate: int) -> None:
    if rate != sample_rate:
        raise DataError(f"{utt.source}: sample rate {rate} Hz, expected {sample_rate} Hz (features.sample_rate); "
                        f"resample the corpus first.")


def utterance_samples(utt: Utterance, recording, sample_rate: int):
    """The samples of one utterance of a recording (:func:`segment_bounds`)."""
    samples, rate = recording
    check_rate(utt, rate, sample_rate)
    first, last = segment_bounds(utt, len(samples), rate)
    return samples[first:last]


def data_errors(config: dict, dataset: str, root: Path) -> list[str]:
    """A Kaldi data directory checked as Kaldi's validate_data_dir.sh checks one (its tables, not
    its audio), its commands refused unless allowed, its labels counted against the tasks'
    ``classes`` (+ silence) and its speakers against their folds (the config check, before planning)."""
    entry = config["datasets"][dataset]
    try:
        utterances = read_data_dir(root, entry, dataset)
    except DataError as error:
        return [f"datasets.{dataset}.root: {error}"]
    problems = command_errors(utterances, dataset, entry["allow_commands"], root)
    labels, found = classes(utterances), speakers(utterances)
    for name, task in config["tasks"].items():
        if task["dataset"] != dataset:
            continue
        if task["classes"] != len(labels) + 1:
            problems.append(f"tasks.{name}.classes: {task['classes']}, but {labels_file(root, entry)} names "
                            f"{len(labels)} classes ({', '.join(labels[:10])}{' …' if len(labels) > 10 else ''}) "
                            f"and silence is one more; write classes: {len(labels) + 1}.")
        problems += fold_problems(found, task["validation_speakers"], task["folds"], name, str(root))
    return problems


def fold_layout(corpus_speakers: list[str], validation_speakers: list[str], fold: int) -> dict[str, list[str]]:
    """The train, validation and test speakers of a fold, over every speaker of the data
    directory's utt2spk (as the feature file records them: skipped utterances renumber nothing)."""
    return folds(corpus_speakers, validation_speakers)[fold]


def planned_speakers(root: str | Path, entry: dict, dataset: str) -> list[str]:
    """The speakers the folds are laid over when planning: those of utt2spk (its tables were
    checked before planning)."""
    return speakers(read_data_dir(root, entry, dataset))


# --- extraction ----------------------------------------------------------------------------

def extract(root: str | Path, out: str | Path, settings: FeatureSettings, silence_threshold_db: float,
            entry: dict, dataset: str, bad_utterances: str = "fail", classes_out: str | Path | None = None) -> int:
    """Write ``out`` (Arrow) with the features and frame labels (the utterance's class, or
    silence: one class more) of every utterance of a Kaldi data directory
    (:mod:`gradual_transfer.data.kaldi`), and the class labels in label order to `classes_out`.
    Folds select rows by speaker at training time. Pass 1 reads every recording's header and
    runs every command once (a command's output has no header apart from it: its samples are
    kept in a temporary folder, so that no command runs twice); pass 2 reads the recordings
    again in utterance order, once for consecutive segments of one recording."""
    import json
    import tempfile

    import numpy as np
    import pyarrow as pa

    from gradual_transfer.data.arrow import SpeechWriter, speech_schema
    from gradual_transfer.data.frontend import check_audio, fbank, resolve_problems, silence_mask
    from gradual_transfer.io import all_or_none, write_json
    from gradual_transfer.logs import progress

    utterances = read_data_dir(root, entry, dataset)
    allow = bool(entry.get("allow_commands"))
    refused = command_errors(utterances, dataset, allow, Path(root))
    if refused:
        raise DataError(refused[0])
    labels = classes(utterances)
    planned, problems = [], []
    with tempfile.TemporaryDirectory(prefix="gradual-transfer-commands-") as spool:
        spooled: dict[str, Path] = {}  # recording → its command's samples (.npy)
        for recording, group in _by_recording(utterances):  # pass 1: audio and segment bounds
            try:
                if group[0].is_command:
                    samples, rate = read_recording(group[0].source, allow, dataset)
                    check_rate(group[0], rate, settings.sample_rate)
                    num_samples = len(samples)
                    spooled[recording] = Path(spool) / f"{len(spooled)}.npy"
                    np.save(spooled[recording], samples)
                    del samples
                else:
                    path = Path(group[0].source)
                    if not path.is_file():
                        raise DataError(f"{path}: no such audio file (wav.scp, recording {recording}).")
                    num_samples = check_audio(path, settings.sample_rate)
            except DataError as error:
                problems += [f"{utt.utt_id}: {error}" for utt in group]
                continue
            for utt in group:
                try:
                    first, last = segment_bounds(utt, num_samples, settings.sample_rate)
                    if settings.num_frames(last - first) == 0:
                        raise DataError(f"{utt.utt_id}: shorter than one frame")
                    planned.append(utt)
                except DataError as error:
                    problems.append(str(error))
        resolve_problems(problems, bad_utterances, "utterance")
        if not planned:
            raise DataError(f"{root}: no usable utterance.")
        planned.sort(key=lambda u: u.utt_id.encode())
        schema = speech_schema(settings.num_mel_bins, [pa.field("label", pa.string())]).with_metadata(
            {"speakers": json.dumps(speakers(utterances)), "classes": json.dumps(labels)})
        with all_or_none(), SpeechWriter(out, schema) as writer:
            held = (None, None)  # the last recording read: a recording's segments usually follow each other
            for utt in progress(planned, desc=dataset):  # pass 2: features, in utterance order
                if held[0] != utt.recording:
                    audio = ((np.load(spooled[utt.recording]), settings.sample_rate)
                             if utt.recording in spooled else read_recording(utt.source, allow, dataset))
                    held = (utt.recording, audio)
                samples = utterance_samples(utt, held[1], settings.sample_rate)
                feats = fbank(samples, settings)
                targets = np.full(len(feats), labels.index(utt.label), dtype=np.int16)
                targets[silence_mask(samples, settings, silence_threshold_db)] = len(labels)
                writer.add({"utt_id": utt.utt_id, "speaker": utt.speaker, "num_frames": len(feats), "feats": feats,
                            "targets": targets, "label": utt.label})
            if classes_out is not None:
                write_json(classes_out, labels)
    log.info("%s: %d utterances of %d classes (%s), %d problems skipped → %s", dataset, writer.num_rows,
             len(labels), ", ".join(labels), len(problems), out)
    return writer.num_rows


def _by_recording(utterances: list) -> list[tuple[str, list]]:
    """Utterances grouped by recording (each recording read once), in order of first appearance."""
    groups: dict[str, list] = {}
    for utt in utterances:
        groups.setdefault(utt.recording, []).append(utt)
    return list(groups.items())


def extract_as_configured(config: dict, dataset: str, root: str | Path, out: str | Path, split: None = None) -> int:
    """:func:`extract` with the config's front end, the silence threshold of the tasks reading
    `dataset` (the config check makes them agree) and its entry; the classes go to
    ``classes.json`` beside `out` (the command line's step)."""
    from gradual_transfer.data.kinds import task_reading
    from gradual_transfer.data.frontend import FeatureSettings

    task = task_reading(config, dataset)
    entry = config["datasets"][dataset]
    return extract(root, out, FeatureSettings.from_config(config["features"]),
                   silence_threshold_db=task["silence_threshold_db"], entry=entry, dataset=dataset,
                   bad_utterances=entry["bad_utterances"], classes_out=Path(out).with_name("classes.json"))
