"""The audio a Kaldi data directory names (:mod:`gradual_transfer.data.kaldi`): WAV files read with
libsndfile, or commands whose output is the WAV.

A ``wav.scp`` entry ending in ``|`` is a command (``sph2pipe -f wav x.sph |``, ``sox ... -t wav -
|``). A data directory must not run code by surprise: commands run (through ``sh -c``, as Kaldi
runs them) only when the dataset sets ``allow_commands: true``; otherwise the config check names
the first such entry and the key. The files a command names that exist are inputs of the
extraction (:func:`command_files`): replacing one re-extracts. File paths are read as they are
written, relative paths from the working directory (as Kaldi reads them). An utterance of a
``segments`` file is cut from its recording as Kaldi's ``extract-segments`` cuts it.
"""

from __future__ import annotations

import io
import shlex
import subprocess
from pathlib import Path

from gradual_transfer.data.errors import DataError
from gradual_transfer.data.kaldi_tables import Utterance, is_command

COMMAND_TIMEOUT_S = 600  # one recording's command


def command_errors(utterances: list[Utterance], dataset: str, allow_commands: bool, root: Path) -> list[str]:
    """The refusal of a data directory whose wav.scp runs commands the dataset did not allow."""
    commands = [u for u in utterances if u.is_command]
    if not commands or allow_commands:
        return []
    first = commands[0]
    return [f"datasets.{dataset}: {root / 'wav.scp'} reads recording {first.recording} through a command "
            f"({first.source!r}{f' and {len(commands) - 1} more' if len(commands) > 1 else ''}); a data directory "
            f"runs no command unless you set datasets.{dataset}.allow_commands: true (only for a directory you trust)."]


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


def by_recording(utterances: list) -> list[tuple[str, list]]:
    """Utterances grouped by recording (each recording read once), in order of first appearance."""
    groups: dict[str, list] = {}
    for utt in utterances:
        groups.setdefault(utt.recording, []).append(utt)
    return list(groups.items())
