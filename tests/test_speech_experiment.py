"""The speech experiment: frame batches, SER decisions, ASR decoding on demo TIMIT (better than
chance and than no bigram), tuning only on dev, and the end-to-end run's table and figure."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from gradual_transfer.data.arrow import SpeechFeatures
from gradual_transfer.data.kinds import KINDS
from gradual_transfer.data.timit_labels import PhoneMap
from gradual_transfer.demo import generate_corpus
from gradual_transfer.data.frontend import FeatureSettings, write_stats
from gradual_transfer.data.timit import extract as extract_timit
from gradual_transfer.io import read_json
from gradual_transfer.decoding import decode_and_score, estimate_hmm
from gradual_transfer.experiment import run_job
from gradual_transfer.grid import Job
from gradual_transfer.tasks.speech import FrameSource, ser_decisions
from test_speech_data import write_random_file

SMALL_A = {"kind": "convnet", "conv_groups": [{"channels": [16], "first_kernel": [5, 4], "pool": True},
                                              {"channels": [32], "pool": True}],
           "fc_units": [128, 128, 128], "dropout": 0.2, "lc": [0, 5]}
RECIPE = {"batch_size": 256, "epochs": 5, "optimizer": {"lr": 0.05, "momentum": 0.9, "nesterov": False, "weight_decay": 0.0},
          "schedule": {"kind": "plateau", "factor": 0.5, "patience": 0}, "early_stopping_patience": 0, "seed": 0}
RUNTIME = {"cpu": {"channels_last": False, "frozen_cache_mb": 64},
           "cuda": {"amp_bf16": True, "channels_last": False, "prefetch": True, "frozen_cache_mb": 64}}


def test_frame_source_normalises_windows_and_splits_by_utterance(tmp_path):
    feats = write_random_file(tmp_path / "f.arrow", [4, 6, 3])
    features = SpeechFeatures(tmp_path / "f.arrow")
    stats = {"mean": [1.0] * 40, "std": [2.0] * 40}
    source = FrameSource(features, [0, 2], stats, context=1)
    assert len(source) == 7 and source.input_shape == [1, 3, 40]
    x, y = next(source.batches(7, None))
    assert x.shape == (7, 1, 3, 40)
    assert torch.allclose(x[0, 0, 1], torch.from_numpy((feats[0][0] - 1.0) / 2.0))
    assert torch.allclose(x[0, 0, 0], x[0, 0, 1])  # the first frame's left context repeats it
    assert y.tolist() == [0, 1, 2, 3, 200, 201, 202]
    assert [len(a) for a in source.split_by_utterance(np.arange(7))] == [4, 3]


def test_ser_decision_is_the_mean_posterior_over_non_silence_frames(tmp_path):
    write_random_file(tmp_path / "f.arrow", [3, 2])
    source = FrameSource(SpeechFeatures(tmp_path / "f.arrow"), [0, 1], {"mean": [0.0] * 40, "std": [1.0] * 40}, 0)
    targets = torch.tensor([4, 2, 2, 1, 4])  # utt 1: sad with a silent frame; utt 2: hap
    post = torch.full((5, 5), 0.01)
    post[0, 0] = 0.96  # the silent frame votes ang: ignored
    post[1, 2], post[2, 3] = 0.6, 0.5  # mean over speech frames: sad 0.305 vs neu 0.255
    post[3, 1] = 0.9
    true, decided = ser_decisions(source, post.log(), targets, scored=4)  # IEMOCAP's four emotions
    assert true.tolist() == [2, 1] and decided.tolist() == [2, 1]


@pytest.fixture(scope="module")
def asr_demo(tmp_path_factory):
    """A Model A trained for a few epochs on a demo TIMIT, with dev/test posteriors."""
    base = tmp_path_factory.mktemp("asr")
    generate_corpus("timit", base / "timit", {"train_speakers": 8, "dev_speakers": 2, "core_test_speakers": 2,
                                              "other_test_speakers": 0, "si_sentences": 3, "sx_sentences": 5}, 0)
    features = base / "features"
    settings = FeatureSettings()
    for split in ("train", "dev", "test"):
        extract_timit(base / "timit", split, features / f"{split}.arrow", settings)
    write_stats(features / "train.arrow", features / "stats" / "train.json")
    estimate_hmm(features / "train.arrow", base / "hmm.json")
    model_dir = base / "model"
    params = {"job": Job("speech", "a", "asr", "asr").to_dict(), "version": 1,
              "settings": {"dataset": "timit", "network": SMALL_A, "classes": 144, "recipe": RECIPE, "lc": None,
                           "seed": 0, "context": 5}}
    inputs = {split: features / f"{split}.arrow" for split in ("train", "dev", "test")}
    outputs = {"model": model_dir / "model.pt", "metrics": model_dir / "metrics.json"}
    for split, name in (("dev", "validation"), ("test", "test")):  # file names the decoding tests read
        outputs.update({f"{split}_ark": model_dir / f"{name}.ark", f"{split}_scp": model_dir / f"{name}.scp"})
    run_job(params, {**inputs, "stats": features / "stats" / "train.json"}, outputs, RUNTIME, kind=KINDS["timit"])
    return base


def decode(base, out, test_scp=None):
    return decode_and_score(hmm_file=base / "hmm.json",
                            posteriors={"dev": base / "model" / "validation.scp", "test": test_scp or base / "model" / "test.scp"},
                            references={"dev": base / "features" / "dev.arrow", "test": base / "features" / "test.arrow"},
                            acoustic_scales=[0.2, 0.5, 1.0], insertion_penalties=[-1.0, 0.0, 1.0], out_dir=out,
                            meta={"kind": "primary"})


def test_asr_primary_decodes_better_than_chance_and_than_without_the_bigram(asr_demo, tmp_path):
    result = decode(asr_demo, tmp_path / "decode")
    test = result["test"]
    assert test["per"] < 0.5 * test["per_chance"]
    assert test["per"] < test["per_without_bigram"]
    assert test["per_chance"] > 60
    log = (tmp_path / "decode" / "metrics.json").read_text()
    assert "per_without_bigram" in log and "per_chance" in log


def test_decoding_writes_kaldi_style_text_on_the_39_set(asr_demo, tmp_path):
    decode(asr_demo, tmp_path / "decode")
    refs = SpeechFeatures(asr_demo / "features" / "test.arrow")
    fold = PhoneMap.load().to39
    lines = (tmp_path / "decode" / "test" / "ref.txt").read_text().splitlines()
    assert len(lines) == len(refs)
    utt, *phones = lines[0].split()
    assert utt == sorted(refs.utt_ids)[0]
    assert phones == [fold[p] for p in refs.column("phones")[refs.utt_ids.index(utt)]]
    assert set(phones) <= set(fold.values())
    per = read_json(tmp_path / "decode" / "test" / "per.json")
    assert per["substitutions"] + per["deletions"] + per["insertions"] == pytest.approx(per["per"] * per["reference_phones"] / 100)


def test_tuning_never_looks_at_test(asr_demo, tmp_path):
    """Replacing the test posteriors by noise changes the test PER, never the chosen settings."""
    import kaldiio

    rng = np.random.default_rng(0)
    noise = {u: np.log(rng.dirichlet(np.ones(144), size=len(m))).astype(np.float32)
             for u, m in kaldiio.load_scp(str(asr_demo / "model" / "test.scp")).items()}
    kaldiio.save_ark(str(tmp_path / "noise.ark"), noise, scp=str(tmp_path / "noise.scp"))
    real = decode(asr_demo, tmp_path / "real")
    noisy = decode(asr_demo, tmp_path / "noisy", test_scp=tmp_path / "noise.scp")
    assert (real["acoustic_scale"], real["insertion_penalty"]) == (noisy["acoustic_scale"], noisy["insertion_penalty"])
    assert real["validation"] == noisy["validation"] and real["test"]["per"] < noisy["test"]["per"]


def test_a_tuned_setting_at_the_edge_of_its_grid_is_logged_and_recorded(asr_demo, tmp_path, caplog):
    """A penalty of −50 per phone leaves hypotheses of one phone, so 0 wins: the largest value
    of that grid. A single acoustic scale is a fixed setting, not a search: no flag."""
    import logging

    from gradual_transfer.tables import grid_edge_note

    with caplog.at_level(logging.WARNING, logger="gradual_transfer.decoding"):
        result = decode_and_score(
            hmm_file=asr_demo / "hmm.json",
            posteriors={"dev": asr_demo / "model" / "validation.scp", "test": asr_demo / "model" / "test.scp"},
            references={"dev": asr_demo / "features" / "dev.arrow", "test": asr_demo / "features" / "test.arrow"},
            acoustic_scales=[0.5], insertion_penalties=[-50.0, 0.0], out_dir=tmp_path, meta={"kind": "primary"},
            self_loop_scale=0.1)
    assert result["insertion_penalty"] == 0.0 and result["tuned_at_grid_edge"] == {"insertion_penalty": "largest"}
    assert read_json(tmp_path / "metrics.json")["tuned_at_grid_edge"] == {"insertion_penalty": "largest"}
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "insertion_penalty (0) is the largest value" in warnings[0]
    assert "insertion_penalties" in warnings[0]
    assert grid_edge_note(result) == "insertion_penalty=0 (largest)"
    assert grid_edge_note({"tuned_at_grid_edge": {}}) == "none"
    assert grid_edge_note({"kind": "transfer"}) is None  # not a decode


# --- end to end (the tiny run shared with the workflow tests) --------------------------------

@pytest.fixture(scope="module")
def speech_results(tiny_results):
    return tiny_results


def test_table_has_speech_rows_per_fold_with_baselines(speech_results):
    _, config, table = speech_results
    speech = table[table["experiment"] == "speech"]
    ser = speech[speech["target"] == "ser"]
    assert set(ser["metric"]) == {"ue"} and set(ser["fold"]) == {1, 2}
    assert len(ser[(ser["kind"] == "transfer") & (ser["arch"] == "model_a_demo")]) == 2 * 2 * 2  # folds × lc × splits
    asr = speech[speech["target"] == "asr"]
    assert set(asr["metric"]) == {"per"}
    transfers = asr[asr["kind"] == "transfer"]
    assert set(transfers["fold"]) == {1} and transfers["primary_value"].notna().all()  # fold-0 ASR primary
    assert speech["primary_value"].notna().all()


def test_asr_target_models_have_decodes_and_figure2_exists(speech_results):
    out, _, _ = speech_results
    decode_dir = out / "models" / "model_b_demo" / "transfer" / "ser-to-asr" / "fold1" / "lc6" / "decode"
    for split in ("dev", "test"):
        assert (decode_dir / split / "hyp.txt").is_file() and (decode_dir / split / "ref.txt").is_file()
    metrics = json.loads((decode_dir / "metrics.json").read_text())
    assert metrics["lc"] == 6 and metrics["source"] == "ser" and "per" in metrics["test"]
    assert (out / "figures" / "figure2_speech.png").stat().st_size > 20_000
    assert (out / "figures" / "figure2_speech.pdf").read_bytes()[:4] == b"%PDF"


def test_decodes_have_per_speaker_scores_and_sclite_alignments(speech_results):
    import pandas as pd

    out, _, _ = speech_results
    decode_dir = out / "models" / "model_a_demo" / "primary" / "asr" / "fold0" / "decode"
    for split in ("dev", "test"):
        per = json.loads((decode_dir / split / "per.json").read_text())
        speakers = pd.read_csv(decode_dir / split / "per_speaker.tsv", sep="\t")
        total = speakers[speakers["speaker"] == "all"].iloc[0]
        assert (total["substitutions"], total["deletions"], total["insertions"], total["reference_length"]) == (
            per["substitutions"], per["deletions"], per["insertions"], per["reference_phones"])
        assert total["per"] == pytest.approx(per["per"], abs=0.01)
        by_speaker = speakers[speakers["speaker"] != "all"]
        assert by_speaker["reference_length"].sum() == per["reference_phones"] and len(by_speaker) >= 1
        listing = (decode_dir / split / "align.txt").read_text()
        hyps = (decode_dir / split / "hyp.txt").read_text().splitlines()
        assert listing.count("id: (") == len(hyps) and listing.count("\nREF:  ") == len(hyps)
    table = pd.read_csv(out / "tables" / "per_speaker.tsv", sep="\t")
    assert set(table["arch"]) == {"model_a_demo", "model_b_demo"} and set(table["split"]) == {"dev", "test"}
    assert list(table.columns[:4]) == ["arch", "seed", "split", "speaker"]


def test_every_decode_says_whether_its_tuned_settings_sit_at_a_grid_edge(speech_results):
    """The tiny run searches 2 acoustic scales × 2 penalties: whatever wins is an edge of both
    grids, so every decode is flagged, in its log, its metrics and the results table."""
    out, _, table = speech_results
    decoded = table["target"] == "asr"
    assert table.loc[~decoded, "decode_at_grid_edge"].isna().all()  # not decoded: nothing to say
    for note in table.loc[decoded, "decode_at_grid_edge"]:
        assert note.startswith("acoustic_scale=") and "; insertion_penalty=" in note
    metrics = json.loads((out / "models" / "model_a_demo" / "primary" / "asr" / "fold0" / "decode" /
                          "metrics.json").read_text())
    assert set(metrics["tuned_at_grid_edge"]) == {"acoustic_scale", "insertion_penalty"}
    assert metrics["self_loop_scale"] == 0.1  # Kaldi's graphs' weighting, the default
    log = (out / "logs" / "decode" / "model_a_demo" / "primary" / "asr" / "fold0.log").read_text()
    assert "WARNING" in log and "tasks.<asr>.decode.acoustic_scales" in log
