"""`kind: kaldi`: utterance classification from a Kaldi data directory (an emotion corpus of
one's own, speaker, language or accent identification).

    <root>/wav.scp     <recording> <wav file>, or <recording> <command> |  (commands: allow_commands)
    <root>/utt2spk     <utterance> <speaker>
    <root>/utt2label   <utterance> <class>     (or the file named by datasets.<name>.labels)
    <root>/segments    optional: <utterance> <recording> <start s> <end s>; without it each
                       recording of wav.scp is one utterance
    <root>/spk2utt     optional: checked against utt2spk when present

The reader of the kind, in three modules by concept: the tables, read and checked as Kaldi's
``utils/validate_data_dir.sh`` checks them (:mod:`~gradual_transfer.data.kaldi_tables`); the audio
they name, files or commands run only when allowed (:mod:`~gradual_transfer.data.kaldi_recordings`);
and here what the registry asks of a reader: the layout, the files a job reads, the checks before
planning, the folds and the extraction.

Classes are the sorted distinct labels (label index = class); silent frames are one class more
(the last), as IEMOCAP's are. Folds leave one speaker out as IEMOCAP's do: fixed validation
speakers, and fold k tests on the k-th of the other speakers in sorted order.

Text only at module level (no numpy, no torch): the config check reads these files when the
workflow is parsed.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from gradual_transfer.data.errors import DataError
from gradual_transfer.data.kaldi_recordings import (by_recording, check_rate, command_errors, command_files,
                                                    read_recording, segment_bounds, utterance_samples)
from gradual_transfer.data.kaldi_tables import (EXPECTED, classes, is_command, labels_file, missing_entries,
                                                read_data_dir, speakers)

if TYPE_CHECKING:  # the front end imports torch; a reader is imported when the workflow is parsed
    from gradual_transfer.data.frontend import FeatureSettings

log = logging.getLogger(__name__)

LAYOUT = {"kaldi": EXPECTED}
# missing_entries (the layout check) is the tables module's: the reader's answer as imported above
__all__ = ["LAYOUT", "missing_entries", "write_placeholders", "corpus_files", "data_errors", "folds", "fold_layout",
           "planned_speakers", "extract", "extract_as_configured"]


def write_placeholders(root: Path, entry: dict) -> None:
    """A one-utterance data directory with the names the layout check looks for (planning only)."""
    root = Path(root)
    (root / "wav.scp").write_text("u1 u1.wav\n")
    (root / "utt2spk").write_text("u1 s1\n")
    labels_file(root, entry).write_text("u1 a\n")



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
        for recording, group in by_recording(utterances):  # pass 1: audio and segment bounds
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
