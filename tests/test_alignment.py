"""Forced alignment (hmm.align): against brute force on tiny HMMs, boundaries recovered from
sharp posteriors, windows, and utterances that cannot be aligned."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from gradual_transfer import hmm
from gradual_transfer.hmm import STATES, PhoneLoop, path_score


def compositions(total: int, parts: int):
    """Every way of writing `total` as an ordered sum of `parts` positive integers."""
    for cuts in itertools.combinations(range(1, total), parts - 1):
        bounds = (0, *cuts, total)
        yield [b - a for a, b in zip(bounds[:-1], bounds[1:])]


def brute_force(x: np.ndarray, phones: list[int], loop: PhoneLoop, scale: float, windows=None):
    chain = [STATES * p + k for p in phones for k in range(STATES)]
    best, best_path = -np.inf, None
    for durations in compositions(len(x), len(chain)):
        path = [s for s, d in zip(chain, durations) for _ in range(d)]
        if windows is not None:
            frames = np.arange(len(path))
            position = np.repeat(np.arange(len(chain)), durations)
            if any(not (windows[c // STATES][0] <= t < windows[c // STATES][1]) for t, c in zip(frames, position)):
                continue
        score = path_score(path, x, loop, scale, insertion_penalty=0.0)
        if score > best:
            best, best_path = score, path
    return best_path


@pytest.mark.parametrize("seed", range(8))
def test_alignment_equals_brute_force_on_small_hmms(seed):
    rng = np.random.default_rng(seed)
    loop = PhoneLoop.random(3, rng)
    phones = [int(p) for p in rng.integers(0, 3, 2 + seed % 2)]  # repeated phones included by chance
    T = 3 * len(phones) + 2 + seed % 3
    x = np.log(rng.dirichlet(np.ones(3 * STATES), size=T))
    scale = [1.0, 0.3, 0.1][seed % 3]
    windows = None
    if seed >= 6:  # every phone near its own part of the utterance
        share = T // len(phones)
        windows = [(i * share - 2, (i + 1) * share + 2) for i in range(len(phones))]
    [path] = hmm.align([x], [phones], loop, scale, [windows] if windows else None)
    assert path.tolist() == brute_force(x, phones, loop, scale, windows)


def test_boundaries_are_recovered_from_sharp_posteriors():
    """Phones 0, 2, 1 with states lasting (2, 3, 1), (4, 1, 2), (1, 1, 5) frames: posteriors
    that put 0.9 on the true state recover every boundary, from a uniform start."""
    loop = PhoneLoop.random(3, np.random.default_rng(0))
    truth = [0] * 2 + [1] * 3 + [2] * 1 + [6] * 4 + [7] * 1 + [8] * 2 + [3] * 1 + [4] * 1 + [5] * 5
    x = np.full((len(truth), 9), np.log(0.1 / 8))
    x[np.arange(len(truth)), truth] = np.log(0.9)
    [path] = hmm.align([x], [[0, 2, 1]], loop, acoustic_scale=1.0)
    assert path.tolist() == truth


def test_windows_bound_each_phone_and_impossible_utterances_get_none():
    loop = PhoneLoop.random(2, np.random.default_rng(1))
    x = np.log(np.full((9, 6), 1 / 6))
    x[:, 0:3] = np.log(0.3)  # phone 0 everywhere, if it could
    [free, bounded, short, impossible] = hmm.align(
        [x, x, x[:5], x], [[0, 1], [0, 1], [0, 1], [0, 1]], loop, 1.0,
        [None, [(0, 4), (4, 9)], None, [(0, 3), (5, 9)]])
    assert (free // STATES == 0).sum() == 6  # phone 1 squeezed into its minimum of 3 frames
    assert (bounded[:4] // STATES == 0).all() and (bounded[4:] // STATES == 1).all()
    assert short is None  # 5 frames for 6 states
    assert impossible is None  # frame 3 and 4 belong to no phone's window


def test_phone_spans_follow_the_targets_and_place_frameless_phones_at_their_boundary():
    from gradual_transfer.realign import boundary_shifts, phone_spans

    # phones 4, 4, 7, 2, 5: the second 4 follows the first (its state goes back to 0); 2 got no frame
    targets = [12, 13, 14, 14, 12, 13, 14, 21, 22, 23, 15, 16, 17]
    assert phone_spans(np.array(targets), [4, 4, 7, 2, 5]) == [(0, 4), (4, 7), (7, 10), (10, 10), (10, 13)]
    moved = [(0, 3), (3, 7), (7, 9), (9, 11), (11, 13)]
    assert boundary_shifts(phone_spans(np.array(targets), [4, 4, 7, 2, 5]), moved).tolist() == [1, 0, 1, 1]


# --- end to end (the tiny run realigns once, with model_a_demo) ------------------------------

def test_the_tiny_runs_realignment_keeps_every_phone_in_order_and_is_used_by_timit_models(tiny_results):
    from gradual_transfer.data.arrow import SpeechFeatures
    from gradual_transfer.data.timit import PhoneMap, read_alignment
    from gradual_transfer.io import read_json
    from gradual_transfer.realign import phone_spans

    out, _, _ = tiny_results
    realigned = out / "features" / "timit" / "realigned" / "pass1"
    phone_map = PhoneMap.load()
    for split in ("train", "dev"):
        labelled, aligned = SpeechFeatures(out / "features" / "timit" / f"{split}.arrow"), SpeechFeatures(
            realigned / f"{split}.arrow")
        assert aligned.utt_ids == labelled.utt_ids and aligned.column("phones") == labelled.column("phones")
        archive = read_alignment(realigned / f"ali_{split}.ark")
        for row, utt in enumerate(aligned.utt_ids):
            targets = aligned.targets(row)
            assert np.array_equal(archive[utt], targets)
            assert np.array_equal(aligned.feats(row), labelled.feats(row))
            phones = [phone_map.index48(p) for p in aligned.column("phones")[row]]
            spans = phone_spans(targets, phones)
            assert all(end - first >= STATES for first, end in spans)  # every phone, every state
            assert [first for first, _ in spans] == sorted(first for first, _ in spans)
        report = read_json(realigned / "report.json")[split]
        assert report["not_aligned"] == 0 and 0 < report["changed_frames"] < 1
    decode = read_json(out / "models" / "model_a_demo" / "primary" / "asr" / "fold0" / "decode" / "metrics.json")
    assert decode["test"]["per"] < decode["test"]["per_chance"]
