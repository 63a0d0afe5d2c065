"""Hybrid decoding and scoring with known answers: Viterbi against brute force, PER by hand,
UAR from a hand-made confusion, the LM and HMM estimates on a toy corpus."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from gradual_transfer import hmm
from gradual_transfer.metrics import edit_counts, phone_error_rate, unweighted_average_recall, unweighted_error


def brute_force(log_posteriors, loop, scale, penalty, self_loop_scale=1.0):
    S = loop.num_phones * 3
    best, best_path = -np.inf, None
    for path in itertools.product(range(S), repeat=len(log_posteriors)):
        score = hmm.path_score(list(path), log_posteriors, loop, scale, penalty, self_loop_scale)
        if score > best:
            best, best_path = score, path
    phones = [s // 3 for t, s in enumerate(best_path) if s % 3 == 0 and (t == 0 or best_path[t - 1] != s)]
    return best, phones


@pytest.mark.parametrize("seed", range(6))
def test_viterbi_equals_brute_force_on_small_hmms(seed):
    rng = np.random.default_rng(seed)
    loop = hmm.PhoneLoop.random(2, rng)
    T = 6 if seed % 2 else 7
    log_posteriors = np.log(rng.dirichlet(np.ones(6), size=T))
    scale, penalty = [(1.0, 0.0), (0.3, -0.5), (0.7, 1.0)][seed % 3]
    self_loop_scale = [1.0, 0.1][seed % 2]  # unscaled transitions, and Kaldi's graphs' weighting
    best, phones = brute_force(log_posteriors, loop, scale, penalty, self_loop_scale)
    assert hmm.decode([log_posteriors], loop, scale, penalty, self_loop_scale=self_loop_scale) == [phones]
    assert np.isfinite(best)


def test_path_score_weighs_transitions_by_the_self_loop_scale():
    """One phone over 4 frames, states 0, 0, 1, 2: one self-loop, two forward transitions and
    the exit of the last state into the final state (Kaldi's graphs include it), each times the
    self-loop scale."""
    loop = hmm.PhoneLoop.random(2, np.random.default_rng(4))
    x = np.log(np.full((4, 6), 1 / 6))
    def score(self_loop_scale):
        return hmm.path_score([0, 0, 1, 2], x, loop, 0.5, -1.0, self_loop_scale)
    rest = loop.log_initial[0] - 1.0 + 0.5 * sum(x[t, s] - loop.log_prior[s] for t, s in enumerate([0, 0, 1, 2])) \
        + loop.log_final[0]
    stay = np.exp(loop.log_self[0])  # the exit leaves state 2 with probability 1 − its self-loop
    transitions = np.log(stay[0]) + np.log(1 - stay[0]) + np.log(1 - stay[1]) + np.log(1 - stay[2])
    assert score(1.0) == pytest.approx(rest + transitions) and score(0.1) == pytest.approx(rest + 0.1 * transitions)


def test_the_last_phones_exit_transition_decides_between_otherwise_equal_phones():
    # two phones, equally likely to start and to end a sentence, their frames equally likely; the
    # first stays in its last state with probability 0.99, the second 0.2: only the exit
    # transition (Kaldi's final state) tells them apart, and the second must win
    stay = np.array([[0.5, 0.5, 0.99], [0.5, 0.5, 0.2]])
    half = np.log([0.5, 0.5])
    loop = hmm.PhoneLoop(log_prior=np.full(6, np.log(1 / 6)), log_self=np.log(stay), log_next=np.log(1 - stay),
                         log_bigram=np.log(np.full((2, 2), 0.25)), log_initial=half, log_final=np.log([0.5, 0.5]))
    frames = np.log(np.full((3, 6), 1 / 6))
    assert hmm.decode([frames], loop, 1.0, 0.0) == [[1]]
    assert brute_force(frames, loop, 1.0, 0.0)[1] == [1]
    # with the first phone's frames a little likelier, the exit still decides: log(0.8/0.01) > 3 · 0.5
    frames[:, :3] += 0.5
    assert hmm.decode([frames], loop, 1.0, 0.0) == [[1]]


def test_grid_edges_name_the_settings_at_an_edge_of_a_searched_grid():
    from gradual_transfer.decoding import grid_edges

    grids = {"acoustic_scale": [0.3, 0.7, 1.0], "insertion_penalty": [1.0, -1.0, 0.0]}
    assert grid_edges({"acoustic_scale": 0.7, "insertion_penalty": 0.0}, grids) == {}
    assert grid_edges({"acoustic_scale": 1.0, "insertion_penalty": -1.0}, grids) == {
        "acoustic_scale": "largest", "insertion_penalty": "smallest"}  # the grid's order does not matter
    assert grid_edges({"acoustic_scale": 0.3, "insertion_penalty": 1.0}, {**grids, "insertion_penalty": [1.0]}) == {
        "acoustic_scale": "smallest"}  # one value is a fixed setting, not a search


def test_batched_decoding_equals_one_at_a_time():
    rng = np.random.default_rng(1)
    loop = hmm.PhoneLoop.random(4, rng)
    utterances = [np.log(rng.dirichlet(np.ones(12), size=n)) for n in (3, 17, 9, 30, 4)]
    together = hmm.decode(utterances, loop, 0.5, -0.2, batch_size=8)
    alone = [hmm.decode([u], loop, 0.5, -0.2)[0] for u in utterances]
    assert together == alone


def test_confident_posteriors_decode_to_their_phones():
    loop = hmm.PhoneLoop.random(3, np.random.default_rng(2))
    states = [0, 0, 1, 2, 6, 7, 7, 8, 3, 4, 5, 5]  # phones 0, 2, 1
    posteriors = np.full((len(states), 9), 1e-4)
    posteriors[np.arange(len(states)), states] = 1.0
    assert hmm.decode([np.log(posteriors / posteriors.sum(1, keepdims=True))], loop, 1.0, 0.0) == [[0, 2, 1]]


def test_estimates_on_a_toy_corpus():
    # two phones; utterance 1: phone 0 for 4 frames (states 0,0,1,2), then phone 1 (3,4,5,5)
    targets = [np.array([0, 0, 1, 2, 3, 4, 5, 5]), np.array([3, 4, 5, 0, 1, 1, 2])]
    loop = hmm.estimate(targets, [[0, 1], [1, 0]], num_phones=2)
    counts = np.array([3, 3, 2, 2, 2, 3]) + 1  # frames per state, plus one
    assert np.allclose(np.exp(loop.log_prior), counts / counts.sum())
    # state 0: frames followed by another frame: 0→0 once, 0→1 twice → (1 + .5) / (3 + 1)
    assert np.exp(loop.log_self[0, 0]) == pytest.approx(1.5 / 4)
    assert np.allclose(np.exp(loop.log_self) + np.exp(loop.log_next), 1)
    # bigram: every sentence has one 0→1 or 1→0; rows sum to one with the end token
    rows = np.exp(loop.log_bigram).sum(axis=1) + np.exp(loop.log_final)
    assert np.allclose(rows, 1)
    assert np.exp(loop.log_initial).sum() == pytest.approx(1)
    assert np.exp(loop.log_bigram[0, 1]) > np.exp(loop.log_bigram[0, 0])  # seen beats unseen
    uniform = loop.without_bigram()
    assert np.allclose(np.exp(uniform.log_bigram), 0.5)


def test_edit_counts_by_hand():
    assert edit_counts("a b c".split(), "a b c".split()) == edit_counts([], []).__class__(0, 0, 0, 3)
    c = edit_counts("a b c d".split(), "a x c".split())  # b→x substituted, d deleted
    assert (c.substitutions, c.deletions, c.insertions, c.reference_length) == (1, 1, 0, 4)
    c = edit_counts("a b".split(), "a q b r".split())  # two insertions
    assert (c.substitutions, c.deletions, c.insertions) == (0, 0, 2)
    c = edit_counts([], "a".split())
    assert (c.insertions, c.reference_length) == (1, 0)


def levenshtein(a: list[str], b: list[str]) -> int:
    """The textbook dynamic programme: an independent check of the library's alignment."""
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        previous, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (x != y))
    return row[-1]


@pytest.mark.parametrize("seed", range(4))
def test_alignment_is_minimal_and_reproduces_both_sequences_on_random_strings(seed):
    from gradual_transfer.metrics import align, counts_of

    rng = np.random.default_rng(seed)
    for _ in range(200):
        ref = list(rng.choice(list("abcde"), rng.integers(0, 12)))
        hyp = list(rng.choice(list("abcdf"), rng.integers(0, 12)))
        pairs = align(ref, hyp)
        assert [r for r, _ in pairs if r is not None] == ref and [h for _, h in pairs if h is not None] == hyp
        counts = counts_of(pairs)
        assert counts.errors == levenshtein(ref, hyp) and counts.reference_length == len(ref)
        assert edit_counts(ref, hyp) == counts


def test_sclite_listing_and_per_speaker_by_hand():
    from gradual_transfer.metrics import align, counts_of, per_speaker, sclite_listing

    pairs = align("sil b aa r sil".split(), "sil b ae r iy".split())
    assert sclite_listing("fadg0_si1279", "fadg0", pairs) == (
        "id: (fadg0_si1279)\nspeaker: fadg0\nScores: (#C #S #D #I) 3 2 0 0\n"
        "REF:  sil b AA r SIL\nHYP:  sil b AE r IY\nEval:       S    S\n\n")
    deletion = sclite_listing("u", "s", align(["a", "bb", "c"], ["a", "c"]))
    assert "REF:  a BB  c\nHYP:  a *** c\nEval:   D" in deletion
    counts = {"u1": counts_of(pairs), "u2": counts_of(align(["a", "b"], ["a", "b", "c"])),
              "u3": counts_of(align(["a"], []))}
    rows = per_speaker(counts, {"u1": "s1", "u2": "s2", "u3": "s2"})
    assert [r["speaker"] for r in rows] == ["s1", "s2", "all"]
    assert (rows[1]["utterances"], rows[1]["reference_length"], rows[1]["insertions"], rows[1]["deletions"]) == (2, 3, 1, 1)
    assert rows[1]["per"] == pytest.approx(100 * 2 / 3)
    assert rows[2]["errors"] == 4 and rows[2]["per"] == pytest.approx(100 * 4 / 8)


def test_phone_error_rate_folds_48_to_39_and_scores_sil():
    fold = {"ao": "aa", "cl": "sil", "vcl": "sil", "zh": "sh"}
    refs = {"u1": ["sil", "ao", "cl", "t", "sil"], "u2": ["sh", "iy"]}
    hyps = {"u1": ["sil", "aa", "vcl", "t"], "u2": ["zh", "iy", "n"]}
    per, counts = phone_error_rate(refs, hyps, fold)
    # u1: ao≡aa, cl≡vcl (both sil), final sil deleted → 1 error; u2: zh≡sh, n inserted → 1 error
    assert (counts.substitutions, counts.deletions, counts.insertions, counts.reference_length) == (0, 1, 1, 7)
    assert per == pytest.approx(100 * 2 / 7)
    _, unfolded = phone_error_rate(refs, hyps)
    assert unfolded.substitutions == 3
    with pytest.raises(ValueError, match="no hypothesis"):
        phone_error_rate(refs, {"u1": []})


def test_uar_from_a_hand_made_confusion():
    # class 0: 3 of 4 right; class 1: 1 of 2; class 2: 2 of 2; class 3: 0 of 2
    true = [0, 0, 0, 0, 1, 1, 2, 2, 3, 3]
    pred = [0, 0, 0, 1, 1, 0, 2, 2, 0, 1]
    assert unweighted_average_recall(true, pred, range(4)) == pytest.approx((0.75 + 0.5 + 1 + 0) / 4)
    assert unweighted_error(true, pred, range(4)) == pytest.approx(100 * (1 - 2.25 / 4))
    # weighted accuracy would be 6/10; UAR ignores class sizes
    assert unweighted_average_recall([0, 0, 0, 1], [0, 0, 0, 0], range(4)) == pytest.approx(0.5)
