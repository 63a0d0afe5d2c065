"""Kaldi data directories: the checks of Kaldi's `utils/validate_data_dir.sh`, implemented here
independently of the exporter, run on the tiny run's TIMIT splits and IEMOCAP, and shown to
catch what they are for."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import run_snakemake

KALDI = "results/demo/features/{corpus}/kaldi/{split}"
DIRECTORIES = [("timit", "train"), ("timit", "dev"), ("timit", "test"), ("iemocap", "all")]


def first_fields(path: Path) -> list[str]:
    return [line.split(" ", 1)[0] for line in path.read_text().splitlines()]


def c_sorted(lines: list[str]) -> list[str]:
    """`LC_ALL=C sort`: byte order."""
    return sorted(lines, key=str.encode)


def validate_data_dir(data: Path) -> list[str]:
    """The problems `utils/validate_data_dir.sh` (no segments, no --no-* options) reports."""
    problems = []
    for name in ("spk2utt", "utt2spk", "text", "wav.scp", "feats.scp"):
        if not (data / name).is_file() or not (data / name).stat().st_size:
            return [f"no such file or empty: {name}"]

    def check_sorted_and_uniq(name: str) -> None:
        raw = (data / name).read_bytes()
        if not raw.endswith(b"\n"):
            problems.append(f"{name} has invalid newline")
        keys = first_fields(data / name)
        if keys != c_sorted(set(keys)):
            problems.append(f"{name} is not in sorted order or has duplicates")

    utt2spk = (data / "utt2spk").read_text().splitlines()
    if any(len(line.split()) != 2 for line in utt2spk):
        problems.append("utt2spk has wrong format")
    check_sorted_and_uniq("utt2spk")
    by_speaker = sorted(utt2spk, key=lambda line: (line.split(" ", 1)[1].encode(), line.encode()))  # sort -k2
    if by_speaker != utt2spk:
        problems.append("utt2spk is not in sorted order when sorted first on speaker-id")
    check_sorted_and_uniq("spk2utt")
    expanded = [f"{utt} {line.split()[0]}" for line in (data / "spk2utt").read_text().splitlines()
                for utt in line.split()[1:]]
    if expanded != utt2spk:
        problems.append("spk2utt and utt2spk do not seem to match")
    utts = [line.split()[0] for line in utt2spk]
    try:
        text = (data / "text").read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        problems.append("text is not UTF-8")
        text = ""
    if "\r" in text or any(symbol in line.split()[1:] for line in text.splitlines() for symbol in ("<s>", "</s>", "#0")):
        problems.append("text has a carriage return or an illegal symbol")
    for name in ("text", "wav.scp", "feats.scp"):
        check_sorted_and_uniq(name)
        if first_fields(data / name) != utts:
            problems.append(f"utterance lists extracted from utt2spk and {name} differ")
    if any(line.split()[1].startswith("~") for line in (data / "wav.scp").read_text().splitlines()):
        problems.append("tilde in wav.scp")
    return problems


@pytest.fixture(scope="module")
def kaldi_dirs(tiny_run):
    workdir, config = tiny_run
    targets = [KALDI.format(corpus=c, split=s) + "/wav.scp" for c, s in DIRECTORIES]
    result = run_snakemake(workdir, "--cores", "2", *targets, config=config, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return workdir, {(c, s): workdir / KALDI.format(corpus=c, split=s) for c, s in DIRECTORIES}


def test_kaldi_data_directories_of_the_demo_validate(kaldi_dirs):
    _, dirs = kaldi_dirs
    for key, data in dirs.items():
        assert validate_data_dir(data) == [], key


def test_the_validator_catches_what_it_checks(kaldi_dirs, tmp_path):
    _, dirs = kaldi_dirs
    for number, (damage, expected) in enumerate([
        (lambda d: (d / "utt2spk").write_text("".join(reversed((d / "utt2spk").read_text().splitlines(True)))),
         "utt2spk is not in sorted order"),
        (lambda d: (d / "text").write_text("".join((d / "text").read_text().splitlines(True)[1:])),
         "utt2spk and text differ"),
        (lambda d: (d / "spk2utt").write_text((d / "spk2utt").read_text().rstrip("\n")), "spk2utt has invalid newline"),
    ]):
        copy = tmp_path / f"damaged{number}"
        shutil.copytree(dirs["timit", "train"], copy)
        damage(copy)
        assert any(expected in problem for problem in validate_data_dir(copy)), expected


def test_kaldi_files_hold_absolute_paths_48_phone_text_and_speaker_prefixed_ids(kaldi_dirs, tmp_path):
    workdir, dirs = kaldi_dirs
    timit = dirs["timit", "train"]
    for line in (timit / "wav.scp").read_text().splitlines():
        utt, command = line.split(" ", 1)
        assert command.startswith("sph2pipe -f wav /") and command.endswith(" |")  # the demo's TIMIT is SPHERE
        assert Path(command.split()[3]).is_file()
    assert {p for line in (timit / "text").read_text().splitlines() for p in line.split()[1:]} >= {"cl", "sil"}
    iemocap = dirs["iemocap", "all"]
    for line in (iemocap / "utt2spk").read_text().splitlines():
        utt, speaker = line.split()
        assert utt.startswith(speaker)
    assert all(Path(line.split()[1]).is_absolute() for line in (iemocap / "wav.scp").read_text().splitlines())
    assert set(" ".join(line.split()[1:]) for line in (iemocap / "text").read_text().splitlines()) <= {
        "neu", "hap", "ang", "sad"}
    # feats.scp opens from any folder; every posterior scp names its archive by an absolute path
    utterances = len((timit / "utt2spk").read_text().splitlines())
    elsewhere = subprocess.run([sys.executable, "-c", "import kaldiio, sys; print(len(kaldiio.load_scp(sys.argv[1])))",
                                str(timit / "feats.scp")], cwd=tmp_path, capture_output=True, text=True)
    assert elsewhere.stdout.strip() == str(utterances), elsewhere.stderr
    scps = list((workdir / "results" / "demo" / "models").rglob("posteriors/*.scp"))
    assert scps
    for scp in scps:
        assert all(Path(line.split()[1].rsplit(":", 1)[0]).is_absolute() for line in scp.read_text().splitlines())
