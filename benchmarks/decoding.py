"""Decoding speed of gradual_transfer.hmm.decode against a straightforward per-utterance NumPy
Viterbi over the full (states × states) transition matrix of the same phone-loop HMM.

Same HMM (48 phones × 3 states, random but normalised), same posteriors, same acoustic scale
and insertion penalty; both must return the same phone sequences. Timed alternately, ratio of
medians reported (frames per second on the CPU).

    .venv/bin/python benchmarks/decoding.py [--utterances 64] [--frames 300] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from gradual_transfer import hmm


def full_matrix(loop: hmm.PhoneLoop, penalty: float):
    P = loop.num_phones
    S = 3 * P
    A = np.full((S, S), -np.inf)
    for p in range(P):
        for k in range(3):
            A[3 * p + k, 3 * p + k] = loop.log_self[p, k]
            if k < 2:
                A[3 * p + k, 3 * p + k + 1] = loop.log_next[p, k]
        A[3 * p + 2, 0::3] = loop.log_next[p, 2] + loop.log_bigram[p] + penalty
    initial = np.full(S, -np.inf)
    initial[0::3] = loop.log_initial + penalty
    final = np.full(S, -np.inf)
    final[2::3] = loop.log_final
    return A, initial, final


def naive_viterbi(log_posteriors: np.ndarray, loop: hmm.PhoneLoop, scale: float, A, initial, final) -> list[int]:
    emissions = scale * (log_posteriors - loop.log_prior)
    T, S = emissions.shape
    delta = initial + emissions[0]
    back = np.zeros((T, S), dtype=np.int64)
    for t in range(1, T):
        scores = delta[:, None] + A
        back[t] = scores.argmax(axis=0)
        delta = scores[back[t], np.arange(S)] + emissions[t]
    state = int(np.argmax(delta + final))
    path = [state]
    for t in range(T - 1, 0, -1):
        state = int(back[t, state])
        path.append(state)
    path.reverse()
    return [s // 3 for t, s in enumerate(path) if s % 3 == 0 and (t == 0 or path[t - 1] != s)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--utterances", type=int, default=64)
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    loop = hmm.PhoneLoop.random(48, rng)
    lengths = rng.integers(args.frames // 2, args.frames * 3 // 2, args.utterances)
    posteriors = [np.log(rng.dirichlet(np.full(144, 0.1), size=n)) for n in lengths]
    scale, penalty = 0.3, -0.5
    A, initial, final = full_matrix(loop, penalty)
    frames = int(lengths.sum())
    times = {"naive": [], "batched": []}
    for _ in range(args.repeats):
        start = time.perf_counter()
        naive = [naive_viterbi(p, loop, scale, A, initial, final) for p in posteriors]
        times["naive"].append(time.perf_counter() - start)
        start = time.perf_counter()
        batched = hmm.decode(posteriors, loop, scale, penalty)
        times["batched"].append(time.perf_counter() - start)
        assert batched == naive, "the two decoders disagree"
    naive_fps, batched_fps = (frames / statistics.median(times[k]) for k in ("naive", "batched"))
    print(f"{args.utterances} utterances, {frames} frames, 48 phones × 3 states, same output: yes")
    print("| decoder | frames/s | speed-up |")
    print("|---|---|---|")
    print(f"| per-utterance NumPy Viterbi, full transition matrix | {naive_fps:,.0f} | 1.0 |")
    print(f"| gradual_transfer.hmm.decode (batched, phone-loop structure) | {batched_fps:,.0f} | {batched_fps / naive_fps:.1f} |")


if __name__ == "__main__":
    main()
