"""The demo corpora, read back with parsers independent of the generators."""

from __future__ import annotations

import hashlib
import pickle
import re
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import soundfile

from gradual_transfer.data.timit import listed_speakers
from gradual_transfer.data.timit_labels import PHONE_MAP_FILE
from gradual_transfer.data.cifar_svhn import read_split
from gradual_transfer.demo import generate_corpus
from gradual_transfer.demo.espeak import Synthesizer, Voice
from gradual_transfer.demo.phones import to_timit_segments
from gradual_transfer.demo.sentences import vocabulary
from conftest import TINY_DEMO

TIMIT_61 = {line.split()[0] for line in PHONE_MAP_FILE.read_text().splitlines() if line.strip()}


@pytest.fixture(scope="module")
def corpora(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("demo")
    roots = {}
    for dataset in ("timit", "iemocap", "cifar10", "cifar100", "svhn"):
        roots[dataset] = base / dataset
        generate_corpus(dataset, roots[dataset], TINY_DEMO[dataset], TINY_DEMO["seed"])
    return roots


def read_sphere_header(path: Path) -> dict[str, str]:
    """A NIST SPHERE header parsed by hand: magic, header size, then `name -type value` lines."""
    raw = path.read_bytes()
    assert raw[:8] == b"NIST_1A\n"
    size = int(raw[8:16])
    fields = {}
    for line in raw[16:size].decode("ascii").splitlines():
        if line == "end_head":
            break
        name, kind, value = line.split(" ", 2)
        fields[name] = f"{kind} {value}"
    fields["_header_size"] = str(size)
    fields["_data_bytes"] = str(len(raw) - size)
    return fields


# --- TIMIT -----------------------------------------------------------------------------------

def test_timit_layout_and_speaker_lists(corpora):
    root = corpora["timit"]
    speakers = {p.name.lower(): p for p in root.glob("*/DR[1-8]/*")}
    assert all(p.parent.parent.name in ("TRAIN", "TEST") for p in speakers.values())
    test_speakers = {s for s, p in speakers.items() if p.parent.parent.name == "TEST"}
    dev, core = set(listed_speakers("dev")), set(listed_speakers("core_test"))
    assert len(test_speakers & dev) == 1 and len(test_speakers & core) == 1
    assert len(test_speakers - dev - core) == 1  # the "other" TEST speaker
    train = {s for s, p in speakers.items() if p.parent.parent.name == "TRAIN"}
    assert len(train) == 2 and not train & (dev | core)
    for speaker_dir in speakers.values():
        assert re.fullmatch(r"[FM][A-Z]{3}[0-9]", speaker_dir.name)
        names = sorted(p.stem for p in speaker_dir.glob("*.WAV"))
        assert names[:2] == ["SA1", "SA2"]
        assert all(re.fullmatch(r"S[IX]\d+", n) for n in names[2:])
        for stem in names:
            assert (speaker_dir / f"{stem}.PHN").is_file() and (speaker_dir / f"{stem}.TXT").is_file()


def test_timit_wav_is_nist_sphere_16khz(corpora):
    for wav in sorted(corpora["timit"].glob("*/*/*/*.WAV")):
        header = read_sphere_header(wav)
        assert header["_header_size"] == "1024"
        assert header["sample_rate"] == "-i 16000"
        assert header["channel_count"] == "-i 1"
        assert header["sample_n_bytes"] == "-i 2"
        assert header["sample_byte_format"] == "-s2 01"
        count = int(header["sample_count"].split()[-1])
        assert count * 2 == int(header["_data_bytes"])
        audio, rate = soundfile.read(str(wav), dtype="int16")  # libsndfile reads it as TIMIT
        assert rate == 16000 and len(audio) == count
        samples = np.frombuffer(wav.read_bytes()[1024:], dtype="<i2")
        assert int(header["sample_max"].split()[-1]) == samples.max()
        assert np.array_equal(samples, audio)


def test_timit_phn_files_cover_the_audio_with_timit_labels(corpora):
    for phn in sorted(corpora["timit"].glob("*/*/*/*.PHN")):
        rows = [line.split() for line in phn.read_text().splitlines()]
        starts, ends, labels = [int(r[0]) for r in rows], [int(r[1]) for r in rows], [r[2] for r in rows]
        count = int(read_sphere_header(phn.with_suffix(".WAV"))["sample_count"].split()[-1])
        assert starts[0] == 0 and ends[-1] == count
        assert all(b > a for a, b in zip(starts, ends)), "every segment has a positive length"
        assert starts[1:] == ends[:-1], "segments are contiguous and ordered"
        assert labels[0] == labels[-1] == "h#" and "h#" not in labels[1:-1]
        assert set(labels) <= TIMIT_61
        assert len(labels) > 5


def test_timit_labels_follow_the_audio(corpora):
    """Phones sit on speech and h# on the silent margins: the energy under h# is far lower."""
    ratios = []
    for phn in sorted(corpora["timit"].glob("*/*/*/*.PHN")):
        audio, _ = soundfile.read(str(phn.with_suffix(".WAV")))
        rows = [line.split() for line in phn.read_text().splitlines()]
        silence = np.concatenate([audio[int(a):int(b)] for a, b, l in rows if l == "h#"])
        vowels = [audio[int(a):int(b)] for a, b, l in rows if l in ("iy", "aa", "ae", "ao", "eh", "ih", "ah", "ax", "ay")]
        ratios.append(np.mean(np.concatenate(vowels) ** 2) / np.mean(silence ** 2))
    assert min(ratios) > 100  # > 20 dB


def test_every_vocabulary_word_maps_to_timit_labels():
    synthesizer = Synthesizer()
    for variant in ("m1", "f3"):
        for word in vocabulary():
            utt = synthesizer.synthesize(word, Voice(variant=variant))
            segments = to_timit_segments(utt.phonemes, len(utt.audio))  # raises on a gap in the table
            assert {label for _, _, label in segments} <= TIMIT_61 | {"pau"}


def test_espeak_segments_split_stops_and_keep_order():
    events = [("_:", 0), ("'d", 100), ("A@", 200), ("k", 400), (";", 450), ("_", 500)]
    assert to_timit_segments(events, 600) == [
        (0, 100, "pau"), (100, 160, "dcl"), (160, 200, "d"), (200, 320, "aa"), (320, 400, "r"),
        (400, 430, "kcl"), (430, 500, "k"), (500, 600, "pau"),
    ]
    with pytest.raises(KeyError, match="no TIMIT label for eSpeak phoneme 'Q'"):
        to_timit_segments([("Q", 0)], 10)


# --- IEMOCAP ---------------------------------------------------------------------------------

UTTERANCE_LINE = re.compile(r"^\[(\d+\.\d{4}) - (\d+\.\d{4})\]\t(Ses0(\d)[FM]_\w+_([FM])\d{3})\t(\w{3})\t\[(\d\.\d{4}), (\d\.\d{4}), (\d\.\d{4})\]$")


def test_iemocap_emoevaluation_lines_parse(corpora):
    root = corpora["iemocap"]
    seen_labels, speakers = set(), set()
    for session in range(1, 6):
        files = sorted((root / f"Session{session}" / "dialog" / "EmoEvaluation").glob("*.txt"))
        assert files
        for path in files:
            lines = path.read_text().splitlines()
            assert lines[0] == "% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]"
            blocks = [l for l in lines[1:] if l.startswith("[")]
            annotators = [l for l in lines[1:] if re.match(r"^[CA]-[EFM]\d:\t", l)]
            assert len(annotators) == 7 * len(blocks)
            assert len(lines[1:]) - lines[1:].count("") == len(blocks) + len(annotators)
            previous_end = 0.0
            for line in blocks:
                match = UTTERANCE_LINE.match(line)
                assert match, line
                start, end, utt, sess, gender, label = match.group(1, 2, 3, 4, 5, 6)
                assert int(sess) == session and float(start) >= previous_end and float(end) > float(start)
                previous_end = float(end)
                wav = root / f"Session{session}" / "sentences" / "wav" / path.stem / f"{utt}.wav"
                audio, rate = soundfile.read(str(wav))
                assert rate == 16000
                assert abs(len(audio) / rate - (float(end) - float(start))) < 0.01
                seen_labels.add(label)
                speakers.add(f"Ses0{session}{gender}")
    assert len(speakers) == 10
    assert seen_labels <= {"neu", "ang", "hap", "exc", "sad", "fru", "sur", "xxx"}
    assert {"neu", "ang", "sad"} <= seen_labels


# --- images ----------------------------------------------------------------------------------

def test_cifar_pickles_load_raw_and_through_torchvision(corpora):
    with open(corpora["cifar10"] / "cifar-10-batches-py" / "data_batch_1", "rb") as f:
        batch = pickle.load(f, encoding="latin1")
    assert batch["data"].dtype == np.uint8 and batch["data"].shape[1] == 3072
    images, labels = read_split("cifar10", corpora["cifar10"], "train", verify_md5=False)
    assert images.shape == (50, 32, 32, 3) and sorted(set(labels)) == list(range(10))
    # CIFAR rows are the red, green and blue planes in turn
    assert np.array_equal(images[0][..., 0].ravel(), batch["data"][0][:1024])
    test_images, _ = read_split("cifar10", corpora["cifar10"], "test", verify_md5=False)
    assert len(test_images) == 20
    images, labels = read_split("cifar100", corpora["cifar100"], "train", verify_md5=False)
    assert images.shape == (100, 32, 32, 3) and sorted(set(labels)) == list(range(100))


def test_checksummed_readers_refuse_demo_files(corpora):
    from gradual_transfer.data.errors import DataError

    with pytest.raises(DataError, match=r"not the original release \(torchvision's MD5 check: .*verify_md5: false"):
        read_split("cifar10", corpora["cifar10"], "train", verify_md5=True)
    with pytest.raises(DataError, match=r"train_32x32.mat: not found, or not the original release"):
        read_split("svhn", corpora["svhn"], "train", verify_md5=True)


def test_svhn_mat_files_load_raw_and_through_torchvision(corpora):
    raw = scipy.io.loadmat(corpora["svhn"] / "train_32x32.mat")
    assert raw["X"].shape == (32, 32, 3, 30) and raw["X"].dtype == np.uint8
    assert set(raw["y"].ravel()) <= set(range(1, 11))
    images, labels = read_split("svhn", corpora["svhn"], "train", verify_md5=False)
    assert images.shape == (30, 32, 32, 3)
    assert np.array_equal(labels, raw["y"].ravel() % 10)  # torchvision maps 10 → 0
    assert np.array_equal(images[3], raw["X"][..., 3])
    assert len(read_split("svhn", corpora["svhn"], "extra", verify_md5=False)[1]) == 10


# --- determinism -----------------------------------------------------------------------------

def tree_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("dataset", ["timit", "iemocap", "cifar10", "cifar100", "svhn"])
def test_generation_is_byte_identical(corpora, tmp_path, dataset):
    again = tmp_path / dataset
    generate_corpus(dataset, again, TINY_DEMO[dataset], TINY_DEMO["seed"])
    assert tree_digest(again) == tree_digest(corpora[dataset])


def test_another_seed_gives_other_data(corpora, tmp_path):
    generate_corpus("cifar10", tmp_path / "c", TINY_DEMO["cifar10"], seed=1)
    assert tree_digest(tmp_path / "c") != tree_digest(corpora["cifar10"])


def test_interrupted_generation_leaves_nothing(tmp_path, monkeypatch):
    from gradual_transfer.demo import images

    def fail(root, settings, seed):
        (root / "half").mkdir(parents=True)
        raise KeyboardInterrupt

    monkeypatch.setattr(images, "generate_cifar10", fail)
    with pytest.raises(KeyboardInterrupt):
        generate_corpus("cifar10", tmp_path / "cifar10", TINY_DEMO["cifar10"], 0)
    assert list(tmp_path.iterdir()) == []
