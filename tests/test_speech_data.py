"""Speech front end: phone maps, frame targets, readers, features, Arrow files, bad input."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from gradual_transfer.data import iemocap, timit, timit_labels
from gradual_transfer.data.arrow import SpeechFeatures, SpeechWriter, speech_schema
from gradual_transfer.data.errors import DataError
from gradual_transfer.demo.formats import write_sphere, write_wav
from gradual_transfer.data.frontend import FeatureSettings, export_kaldi, fbank, normalisation_stats, silence_mask
from gradual_transfer.data.iemocap import extract as extract_iemocap
from gradual_transfer.data.timit import extract as extract_timit

SETTINGS = FeatureSettings()
PHONES = timit_labels.PhoneMap.load()


# --- phone map and frame targets -------------------------------------------------------------

def test_phone_map_61_48_39():
    assert len(PHONES.to48) == 61 and len(PHONES.phones48) == 48 and len(set(PHONES.to39.values())) == 39
    assert PHONES.to48["q"] is None
    assert PHONES.to48["h#"] == "sil" and PHONES.to48["pau"] == "sil"
    assert PHONES.to48["pcl"] == "cl" and PHONES.to39["cl"] == "sil"
    assert PHONES.to48["ax-h"] == "ax" and PHONES.to39["ax"] == "ah"
    assert PHONES.to39[PHONES.to48["ao"]] == "aa" and PHONES.to39[PHONES.to48["zh"]] == "sh"
    assert PHONES.num_states == 144


def test_q_is_deleted_and_its_time_joins_the_previous_phone():
    segments = [(0, 100, "h#"), (100, 300, "q"), (300, 500, "iy"), (500, 600, "q")]
    assert timit_labels.map_segments(segments, PHONES) == [(0, 300, "sil"), (300, 600, "iy")]
    assert timit_labels.map_segments([(0, 50, "q"), (50, 90, "ao")], PHONES) == [(0, 90, "ao")]


def test_frame_targets_for_a_hand_written_phn():
    # frames: length 400, shift 160 → centres 200, 360, 520, 680, 840, 1000, 1160
    segments = [(0, 480, "sil"), (480, 1200, "iy")]
    targets = timit_labels.thirds_targets(segments, 7, 400, 160, PHONES)
    sil, iy = PHONES.index48("sil") * 3, PHONES.index48("iy") * 3
    # sil thirds: [0,160) [160,320) [320,480); iy thirds: [480,720) [720,960) [960,1200)
    assert targets.tolist() == [sil + 1, sil + 2, iy + 0, iy + 0, iy + 1, iy + 2, iy + 2]
    assert targets.dtype == np.int16


# --- a small TIMIT tree written by hand ------------------------------------------------------

def tone(seconds: float, freq: float = 440.0, rate: int = 16000, amplitude: float = 3000.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    noise = np.random.default_rng(0).normal(0, 30, len(t))
    return (amplitude * np.sin(2 * np.pi * freq * t) + noise).astype(np.int16)


def write_timit_utt(directory: Path, name: str, upper: bool = True) -> None:
    audio = tone(0.5)
    directory.mkdir(parents=True, exist_ok=True)
    stem = name if upper else name.lower()
    write_sphere(directory / f"{stem}.{'WAV' if upper else 'wav'}", audio, 16000, name.lower())
    (directory / f"{stem}.{'PHN' if upper else 'phn'}").write_text(
        "0 2000 h#\n2000 4000 sh\n4000 5200 q\n5200 6400 iy\n6400 8000 h#\n")


def make_timit(root: Path, upper: bool = True) -> Path:
    case = str.upper if upper else str.lower
    layout = {("TRAIN", "DR1", "FCJF0"): ["SA1", "SI1027", "SX37"],
              ("TRAIN", "DR2", "MABC0"): ["SA2", "SX11"],
              ("TEST", "DR1", "FAKS0"): ["SA1", "SI1573", "SX43"],   # dev
              ("TEST", "DR2", "MDAB0"): ["SI1039", "SX9"],           # core test
              ("TEST", "DR3", "MZZZ0"): ["SI100"]}                   # neither list
    for (part, region, speaker), utts in layout.items():
        for utt in utts:
            write_timit_utt(root / case(part) / case(region) / case(speaker), utt, upper)
    return root


@pytest.mark.parametrize("upper", [True, False])
def test_timit_splits_and_speakers(tmp_path, upper):
    root = make_timit(tmp_path, upper)
    train = timit.list_utterances(root, "train")
    assert [u.utt_id for u in train] == ["fcjf0_si1027", "fcjf0_sx37", "mabc0_sx11"]  # no SA sentences
    assert [u.utt_id for u in timit.list_utterances(root, "dev")] == ["faks0_si1573", "faks0_sx43"]
    test = timit.list_utterances(root, "test")
    assert [u.utt_id for u in test] == ["mdab0_si1039", "mdab0_sx9"] and test[0].speaker == "mdab0"


def test_timit_extraction_writes_features_targets_and_references(tmp_path):
    root = make_timit(tmp_path / "timit")
    out = tmp_path / "train.arrow"
    assert extract_timit(root, "train", out, SETTINGS) == 3
    features = SpeechFeatures(out)
    assert features.utt_ids == ["fcjf0_si1027", "fcjf0_sx37", "mabc0_sx11"]
    assert features.num_frames.tolist() == [48, 48, 48]  # 1 + (8000 - 400) // 160
    assert features.column("phones")[0] == ["sil", "sh", "iy", "sil"]  # q deleted
    targets = features.targets(0)
    assert targets[0] == PHONES.index48("sil") * 3 and targets[-1] == PHONES.index48("sil") * 3 + 2
    assert PHONES.index48("sh") * 3 in targets.tolist() and PHONES.index48("iy") * 3 + 2 in targets.tolist()
    assert features.schema.field("feats").type == pa.list_(pa.list_(pa.float32(), 40))
    assert features.schema.field("targets").type == pa.list_(pa.int16())
    again = tmp_path / "again.arrow"
    extract_timit(root, "train", again, SETTINGS)
    assert np.array_equal(SpeechFeatures(again).feats(1), features.feats(1))  # dither 0: deterministic


def test_frame_targets_from_a_kaldi_alignment(tmp_path):
    import kaldiio

    root = make_timit(tmp_path / "timit")
    ids = ["fcjf0_si1027", "fcjf0_sx37", "mabc0_sx11"]
    alignment = {u: (np.arange(48) % 144).astype(np.int32) + i for i, u in enumerate(ids)}
    kaldiio.save_ark(str(tmp_path / "ali.ark"), alignment, scp=str(tmp_path / "ali.scp"))
    out = tmp_path / "train.arrow"
    extract_timit(root, "train", out, SETTINGS, frame_targets="alignment", alignment=tmp_path / "ali.scp")
    features = SpeechFeatures(out)
    assert np.array_equal(features.targets(2), alignment["mabc0_sx11"])
    alignment["fcjf0_sx37"] = alignment["fcjf0_sx37"][:40]
    kaldiio.save_ark(str(tmp_path / "short.ark"), alignment)
    with pytest.raises(DataError, match=r"alignment of fcjf0_sx37 has 40 frames, the features 48"):
        extract_timit(root, "train", tmp_path / "x.arrow", SETTINGS, frame_targets="alignment", alignment=tmp_path / "short.ark")


# --- IEMOCAP ---------------------------------------------------------------------------------

REAL_FORMAT = """% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]

[6.2901 - 8.2357]\tSes01F_impro01_F000\tneu\t[2.5000, 2.5000, 2.5000]
C-E2:\tNeutral;\t()
C-E3:\tNeutral;\t()
C-F1:\tNeutral;\t(curious)
A-E3:\tval 3; act 2; dom  2;\t()
A-F1:\tval 2; act 3; dom  3;\t(mildly aggravated but staying polite, attitude)

[10.0100 - 11.3925]\tSes01F_impro01_M000\texc\t[3.5000, 3.5000, 3.0000]
C-E2:\tExcited;\t()

[14.8872 - 18.0175]\tSes01F_impro01_M001\tfru\t[2.0000, 3.5000, 3.5000]
C-E2:\tFrustration; Anger;\t()

[20.1000 - 21.5000]\tSes01F_impro01_F001\txxx\t[2.5000, 3.0000, 3.0000]
"""


def test_emo_evaluation_parsing_of_real_format_lines(tmp_path):
    path = tmp_path / "Ses01F_impro01.txt"
    path.write_text(REAL_FORMAT)
    assert iemocap.parse_emo_evaluation(path) == [
        ("Ses01F_impro01_F000", "neu", 6.2901, 8.2357), ("Ses01F_impro01_M000", "exc", 10.01, 11.3925),
        ("Ses01F_impro01_M001", "fru", 14.8872, 18.0175), ("Ses01F_impro01_F001", "xxx", 20.1, 21.5)]


def test_speaker_is_session_plus_gender_of_the_last_field():
    assert iemocap.speaker_of("Ses01F_impro01_M003") == "Ses01M"
    assert iemocap.speaker_of("Ses03M_script01_1_F000") == "Ses03F"


def test_fold_layout():
    layout = iemocap.folds(["Ses05F", "Ses05M"])
    assert sorted(layout) == list(range(1, 9))
    tested = [layout[k]["test"][0] for k in layout]
    assert sorted(tested) == sorted(s for s in iemocap.SPEAKERS if not s.startswith("Ses05"))
    for k, fold in layout.items():
        assert len(fold["train"]) == 7 and fold["test"][0] not in fold["train"]
        assert not {"Ses05F", "Ses05M"} & set(fold["train"] + fold["test"])
        assert fold["validation"] == ["Ses05F", "Ses05M"]
    with pytest.raises(DataError, match="not IEMOCAP speakers"):
        iemocap.folds(["Ses06F"])


def make_iemocap(root: Path) -> Path:
    for s in range(1, 6):
        evaluation = root / f"Session{s}" / "dialog" / "EmoEvaluation"
        evaluation.mkdir(parents=True)
        dialog = f"Ses0{s}F_impro01"
        text = REAL_FORMAT.replace("Ses01F_impro01", dialog)
        (evaluation / f"{dialog}.txt").write_text(text)
        wav_dir = root / f"Session{s}" / "sentences" / "wav" / dialog
        wav_dir.mkdir(parents=True)
        for utt in ("F000", "M000", "M001", "F001"):
            audio = np.concatenate([np.zeros(3200, np.int16) + np.int16(1), tone(0.6), np.zeros(3200, np.int16)])
            write_wav(wav_dir / f"{dialog}_{utt}.wav", audio, 16000)
    return root


def test_iemocap_extraction_keeps_four_classes_and_marks_silence(tmp_path):
    root = make_iemocap(tmp_path / "iemocap")
    out = tmp_path / "all.arrow"
    assert extract_iemocap(root, out, SETTINGS, silence_threshold_db=-30.0) == 10  # neu + exc→hap per session
    features = SpeechFeatures(out)
    assert features.column("emotion")[:2] == ["neu", "hap"]
    assert sorted(set(features.speakers)) == sorted(iemocap.SPEAKERS)
    targets = features.targets(0)
    assert targets[0] == iemocap.SILENCE and targets[len(targets) // 2] == iemocap.EMOTIONS.index("neu")
    assert features.targets(1)[len(targets) // 2] == iemocap.EMOTIONS.index("hap")


def test_silence_mask_follows_the_energy():
    audio = np.concatenate([np.zeros(1600, np.int16), tone(0.3), np.zeros(1600, np.int16)])
    mask = silence_mask(audio, SETTINGS, -30.0)
    assert mask[:5].all() and not mask[15:40].any() and mask[-5:].all()


# --- features --------------------------------------------------------------------------------

def test_tone_lands_in_the_expected_mel_bin():
    mel = lambda f: 1127 * np.log(1 + f / 700)  # noqa: E731 - Kaldi's mel scale
    inverse = lambda m: 700 * (np.exp(m / 1127) - 1)  # noqa: E731
    low, high = mel(20), mel(8000)  # Kaldi defaults: low-freq 20, high-freq Nyquist
    centres = inverse(low + (np.arange(40) + 1) * (high - low) / 41)
    for bin_ in (8, 20, 31):
        feats = fbank(tone(0.5, freq=float(centres[bin_]), amplitude=8000), SETTINGS)
        assert feats.shape == (48, 40)
        assert int(np.argmax(feats.mean(axis=0))) == bin_


# --- Arrow -----------------------------------------------------------------------------------

def write_random_file(path: Path, lengths: list[int], rows_per_batch: int = 2, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    feats = [rng.normal(size=(n, 40)).astype(np.float32) for n in lengths]
    with SpeechWriter(path, speech_schema(40), rows_per_batch=rows_per_batch) as writer:
        for i, f in enumerate(feats):
            writer.add({"utt_id": f"u{i}", "speaker": f"s{i % 2}", "num_frames": len(f), "feats": f,
                        "targets": np.arange(len(f), dtype=np.int16) + 100 * i})
    return feats


def test_arrow_round_trip(tmp_path):
    feats = write_random_file(tmp_path / "f.arrow", [5, 9, 1, 7, 3])
    features = SpeechFeatures(tmp_path / "f.arrow")
    assert features.utt_ids == [f"u{i}" for i in range(5)] and features.total_frames == 25
    for i, f in enumerate(feats):
        assert np.array_equal(features.feats(i), f)
        assert features.targets(i).tolist() == list(range(100 * i, 100 * i + len(f)))


def test_arrow_read_is_zero_copy(tmp_path):
    write_random_file(tmp_path / "f.arrow", [400] * 50, rows_per_batch=10)
    before = pa.total_allocated_bytes()
    features = SpeechFeatures(tmp_path / "f.arrow")
    view = features.feats(17)
    total = sum(float(features.feats(i).sum()) for i in range(len(features)))
    assert pa.total_allocated_bytes() - before < 64 * 1024  # metadata only; 50 × 400 × 40 × 4 B = 3.2 MB mapped
    assert not view.flags.owndata and not view.flags.writeable
    assert np.isfinite(total)


def test_context_windows_equal_a_naive_loop(tmp_path):
    feats = write_random_file(tmp_path / "f.arrow", [5, 9, 1, 7, 3, 12], rows_per_batch=2)
    features = SpeechFeatures(tmp_path / "f.arrow")
    index = features.frame_index([0, 2, 3, 5])
    chosen = np.random.default_rng(1).permutation(len(index))[:20]
    context = 3
    got = features.windows(index.frames[chosen], index.first[chosen], index.last[chosen], context)
    expected = []
    for f, first, last, row in zip(index.frames[chosen], index.first[chosen], index.last[chosen], index.rows[chosen]):
        local = f - first
        utt = feats[row]
        expected.append(np.stack([utt[min(max(local + o, 0), len(utt) - 1)] for o in range(-context, context + 1)]))
    assert got.shape == (20, 7, 40)
    assert np.array_equal(got, np.stack(expected))
    assert np.array_equal(features.frame_targets(index.frames[chosen]),
                          np.array([features.targets(r)[f - a] for f, a, r in zip(index.frames[chosen], index.first[chosen], index.rows[chosen])]))


def test_normalisation_stats_match_numpy(tmp_path):
    feats = write_random_file(tmp_path / "f.arrow", [5, 9, 1, 7])
    features = SpeechFeatures(tmp_path / "f.arrow")
    stats = normalisation_stats(features)
    everything = np.concatenate(feats).astype(np.float64)
    assert np.allclose(stats["mean"], everything.mean(0)) and np.allclose(stats["std"], everything.std(0))
    only_s1 = normalisation_stats(features, ["s1"])
    assert only_s1["frames"] == 9 + 7 and only_s1["speakers"] == ["s1"]


def test_kaldi_export_reads_back(tmp_path):
    import kaldiio

    feats = write_random_file(tmp_path / "f.arrow", [5, 9])
    export_kaldi(tmp_path / "f.arrow", tmp_path / "kaldi")
    loaded = kaldiio.load_scp(str(tmp_path / "kaldi" / "feats.scp"))
    assert np.array_equal(loaded["s1-u1"], feats[1])  # Kaldi ids start with the speaker id
    assert (tmp_path / "kaldi" / "utt2spk").read_text() == "s0-u0 s0\ns1-u1 s1\n"
    assert (tmp_path / "kaldi" / "spk2utt").read_text() == "s0 s0-u0\ns1 s1-u1\n"
    ark = (tmp_path / "kaldi" / "feats.scp").read_text().split()[1].rsplit(":", 1)[0]
    assert Path(ark).is_absolute() and Path(ark) == (tmp_path / "kaldi" / "feats.ark").resolve()


# --- bad input -------------------------------------------------------------------------------

def utt_file(root: Path, speaker: str = "FCJF0", utt: str = "SI1027", suffix: str = "WAV") -> Path:
    return root / "TRAIN" / "DR1" / speaker / f"{utt}.{suffix}"


def expect_error(tmp_path: Path, root: Path, pattern: str, split: str = "train") -> None:
    out = tmp_path / "out.arrow"
    with pytest.raises(DataError, match=pattern):
        extract_timit(root, split, out, SETTINGS)
    assert not out.exists() and not list(tmp_path.glob(".out.arrow*"))


def test_truncated_wav(tmp_path):
    root = make_timit(tmp_path / "t")
    wav = utt_file(root)
    wav.write_bytes(wav.read_bytes()[:4000])
    expect_error(tmp_path, root, f"{wav}: truncated")


def test_corrupt_wav(tmp_path):
    root = make_timit(tmp_path / "t")
    utt_file(root).write_bytes(b"\x00garbage" * 100)
    expect_error(tmp_path, root, f"{utt_file(root)}: unreadable audio")


def test_wrong_sample_rate(tmp_path):
    root = make_timit(tmp_path / "t")
    write_sphere(utt_file(root), tone(1.0, rate=8000), 8000, "fcjf0_si1027")
    expect_error(tmp_path, root, r"sample rate 8000 Hz, expected 16000 Hz")


def test_phn_out_of_order(tmp_path):
    root = make_timit(tmp_path / "t")
    utt_file(root, suffix="PHN").write_text("0 2000 h#\n1500 4000 sh\n4000 8000 h#\n")
    expect_error(tmp_path, root, r"SI1027.PHN line 2: segment begins at sample 1500, before the previous one ends")


def test_phn_past_the_end(tmp_path):
    root = make_timit(tmp_path / "t")
    utt_file(root, suffix="PHN").write_text("0 2000 h#\n2000 9000 sh\n")
    expect_error(tmp_path, root, r"line 2: segment ends at sample 9000, past the end of the audio \(8000 samples\)")


def test_unknown_phone(tmp_path):
    root = make_timit(tmp_path / "t")
    utt_file(root, suffix="PHN").write_text("0 2000 h#\n2000 8000 xx\n")
    expect_error(tmp_path, root, r"line 2: unknown TIMIT phone label 'xx'")


def test_missing_phn(tmp_path):
    root = make_timit(tmp_path / "t")
    utt_file(root, suffix="PHN").unlink()
    expect_error(tmp_path, root, r"missing phone transcription")


def test_empty_corpus(tmp_path):
    (tmp_path / "t" / "TRAIN" / "DR1").mkdir(parents=True)
    expect_error(tmp_path, tmp_path / "t", r"no train utterances")


def test_no_speaker_from_the_list(tmp_path):
    root = make_timit(tmp_path / "t")
    shutil.rmtree(root / "TEST" / "DR1" / "FAKS0")
    expect_error(tmp_path, root, r"none of the 50 dev speakers of dev_speakers.txt is there", split="dev")


def test_bad_utterances_can_be_skipped_and_are_listed(tmp_path, caplog):
    root = make_timit(tmp_path / "t")
    utt_file(root, suffix="PHN").write_text("0 2000 h#\n2000 8000 xx\n")
    with caplog.at_level(logging.WARNING):
        assert extract_timit(root, "train", tmp_path / "out.arrow", SETTINGS, bad_utterances="skip") == 2
    assert "skipping:" in caplog.text and "unknown TIMIT phone label 'xx'" in caplog.text
    assert "skipped 1 bad utterance(s)" in caplog.text


def test_all_problems_are_listed_before_anything_is_written(tmp_path):
    root = make_timit(tmp_path / "t")
    utt_file(root, suffix="PHN").write_text("0 2000 h#\n2000 8000 xx\n")
    utt_file(root, "MABC0", "SX11").parent.mkdir(parents=True, exist_ok=True)
    (root / "TRAIN" / "DR2" / "MABC0" / "SX11.PHN").write_text("0 9000 h#\n")
    expect_error(tmp_path, root, r"2 bad utterance\(s\); nothing was written")


def test_malformed_emo_evaluation_line(tmp_path):
    root = make_iemocap(tmp_path / "i")
    path = root / "Session2" / "dialog" / "EmoEvaluation" / "Ses02F_impro01.txt"
    path.write_text(path.read_text().replace("[10.0100 - 11.3925]\t", "[10.0100 11.3925]\t"))
    with pytest.raises(DataError, match=rf"{path} line 10: malformed line"):
        extract_iemocap(root, tmp_path / "out.arrow", SETTINGS, -30.0)
    assert not (tmp_path / "out.arrow").exists()


def test_labelled_utterance_without_audio(tmp_path):
    root = make_iemocap(tmp_path / "i")
    wav = root / "Session3" / "sentences" / "wav" / "Ses03F_impro01" / "Ses03F_impro01_F000.wav"
    wav.unlink()
    with pytest.raises(DataError, match=r"utterance Ses03F_impro01_F000 is labelled neu but its audio .* is missing"):
        extract_iemocap(root, tmp_path / "out.arrow", SETTINGS, -30.0)
    assert extract_iemocap(root, tmp_path / "out.arrow", SETTINGS, -30.0, bad_utterances="skip") == 9


def test_iemocap_without_sessions(tmp_path):
    with pytest.raises(DataError, match=r"Session1/dialog/EmoEvaluation: missing"):
        extract_iemocap(tmp_path, tmp_path / "out.arrow", SETTINGS, -30.0)
