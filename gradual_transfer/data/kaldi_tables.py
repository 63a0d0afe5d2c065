"""A Kaldi data directory's tables, read and checked as Kaldi's ``utils/validate_data_dir.sh``
checks a data directory (:mod:`gradual_transfer.data.kaldi` reads the directory as a dataset):
every file's first fields sorted in C order (``LC_ALL=C sort``) and unique; ``utt2spk`` sorted
also when sorted by speaker first (speaker ids prefix utterance ids); ``spk2utt`` the inverse of
``utt2spk``; the utterances of ``utt2spk`` are those of ``segments`` (or ``wav.scp``) and of the
labels file; with ``segments``, its recordings are those of ``wav.scp``. Ids are checked by
:mod:`gradual_transfer.names` (a shell reads them as one word).

Text only (no numpy, no torch, no audio opened, no command run): the config check reads these
files when the workflow is parsed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from gradual_transfer.data.errors import DataError, check_id

EXPECTED = ("<root>/wav.scp (<recording> <wav file> or <recording> <command> |), <root>/utt2spk, "
            "<root>/utt2label (<utterance> <class>; or the file of datasets.<name>.labels), optionally "
            "<root>/segments and <root>/spk2utt (a Kaldi data directory)")


REQUIRED = ("wav.scp", "utt2spk")


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
