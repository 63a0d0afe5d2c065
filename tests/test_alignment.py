"""Forced alignment (hmm.align): against brute force on tiny HMMs, Kaldi's transition scales
(against a scorer written from Kaldi's definition, and a case where they move a phone boundary),
boundaries recovered from sharp posteriors, windows, and utterances that cannot be aligned."""

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


def kaldi_score(path: list[int], x: np.ndarray, loop: PhoneLoop, acoustic_scale: float, self_loop_scale: float,
                transition_scale: float) -> float:
    """A path's alignment score as Kaldi's gmm-align-compiled computes it (GetScaledTransitionLogProb in
    src/hmm/hmm-utils.cc): acoustic_scale × scaled log-likelihood per frame; a self-loop
    self_loop_scale × log p; a forward transition self_loop_scale × log(1 − p) + transition_scale ×
    log P(this forward transition | leaving), with one forward transition per state: log 1."""
    score = acoustic_scale * sum(x[t, s] - loop.log_prior[s] for t, s in enumerate(path))
    for previous, state in zip(path[:-1], path[1:]):
        p, k = divmod(previous, STATES)
        stay = np.exp(loop.log_self[p, k])
        score += self_loop_scale * np.log(stay) if state == previous else (
            self_loop_scale * np.log(1 - stay) + transition_scale * np.log(1.0))
    return score


@pytest.mark.parametrize("seed", range(6))
def test_kaldi_scales_equal_brute_force_with_kaldis_score(seed):
    rng = np.random.default_rng(10 + seed)
    loop = PhoneLoop.random(3, rng)
    phones = [int(p) for p in rng.integers(0, 3, 2)]
    x = np.log(rng.dirichlet(np.ones(3 * STATES), size=3 * len(phones) + 3))
    self_loop_scale, transition_scale = [(0.1, 1.0), (0.0, 1.0), (0.5, 3.0)][seed % 3]
    chain = [STATES * p + k for p in phones for k in range(STATES)]
    paths = [[s for s, d in zip(chain, durations) for _ in range(d)] for durations in compositions(len(x), len(chain))]
    best = max(paths, key=lambda path: kaldi_score(path, x, loop, 0.1, self_loop_scale, transition_scale))
    [path] = hmm.align([x], [phones], loop, 0.1, self_loop_scale=self_loop_scale, transition_scale=transition_scale)
    assert path.tolist() == best


def test_kaldis_weighting_moves_a_phone_boundary_that_unscaled_transitions_keep():
    """Phones 0 and 1, 7 frames for 6 states: one state lasts two frames. The posteriors say the
    extra frame is phone 1's first state (frame 3: 0.99 on state 3), but phone 0's last state
    loops with p = 0.9 and every other state with p = 0.1. With unscaled transitions (the old
    weighting, self-loop scale 1) staying in state 2 gains log 0.9 − log 0.1 = 2.2 nats, more
    than 0.1 × the acoustic evidence (0.1 × log(0.99 / 0.002) = 0.62); Kaldi's weighting scales
    both by 0.1 and follows the posteriors: phone 1 starts at frame 3 instead of 4."""
    stay = np.array([[0.1, 0.1, 0.9], [0.1, 0.1, 0.1]])
    loop = PhoneLoop(log_prior=np.full(6, np.log(1 / 6)), log_self=np.log(stay), log_next=np.log(1 - stay),
                     log_bigram=np.log(np.full((2, 2), 0.5)), log_initial=np.log([0.5, 0.5]), log_final=np.zeros(2))
    truth = [0, 1, 2, 3, 3, 4, 5]
    x = np.full((7, 6), np.log(0.01 / 5))
    x[np.arange(7), truth] = np.log(0.99)
    [kaldi] = hmm.align([x], [[0, 1]], loop, 0.1, self_loop_scale=0.1, transition_scale=1.0)
    [unscaled] = hmm.align([x], [[0, 1]], loop, 0.1, self_loop_scale=1.0)
    assert kaldi.tolist() == truth
    assert unscaled.tolist() == [0, 1, 2, 2, 3, 4, 5]
    for path, scale in ((kaldi, 0.1), (unscaled, 1.0)):  # each the best under its own weighting
        paths = [[s for s, d in zip(range(6), durations) for _ in range(d)] for durations in compositions(7, 6)]
        assert path.tolist() == max(paths, key=lambda p: kaldi_score(p, x, loop, 0.1, scale, 1.0))


def test_the_transition_scale_changes_no_alignment_with_one_forward_transition_per_state():
    rng = np.random.default_rng(3)
    loop = PhoneLoop.random(4, rng)
    utterances = [np.log(rng.dirichlet(np.ones(12), size=n)) for n in (12, 20, 31)]
    phones = [[0, 2, 1], [3, 3, 0, 1], [1, 2, 3, 0, 2]]
    reference = hmm.align(utterances, phones, loop, 0.1, self_loop_scale=0.1, transition_scale=1.0)
    for transition_scale in (0.0, 3.0):
        paths = hmm.align(utterances, phones, loop, 0.1, self_loop_scale=0.1, transition_scale=transition_scale)
        assert all(np.array_equal(a, b) for a, b in zip(paths, reference))
    scaled = loop.with_transition_scales(0.1, 3.0)
    assert np.allclose(scaled.log_self, 0.1 * loop.log_self) and np.allclose(scaled.log_next, 0.1 * loop.log_next)
    assert scaled.log_bigram is loop.log_bigram and scaled.log_prior is loop.log_prior  # not HMM transitions


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
    from gradual_transfer.data.timit_labels import PhoneMap, read_alignment
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
    # the ASR primary trained on the realigned targets learnt from them (frame accuracy on dev far
    # above the 1/144 of a guess) and was decoded; the tiny model is too weak for its decode to
    # beat chance on every machine (98.2 = chance here): test_speech_experiment tests that on a
    # model trained for it
    primary = out / "models" / "model_a_demo" / "primary" / "asr" / "fold0"
    assert read_json(primary / "metrics.json")["validation"]["frame_accuracy"] > 5 * 100 / 144
    decode = read_json(primary / "decode" / "metrics.json")
    assert decode["test"]["per"] <= decode["test"]["per_chance"]
