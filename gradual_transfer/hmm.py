"""Hybrid ConvNet-HMM phone decoding: a loop of 3-state left-to-right phone HMMs joined by a
phone bigram, searched with a batched Viterbi.

- **Scaled likelihoods**: the network gives state posteriors; ``log p(x|s) ∝ log P(s|x) − log P(s)``
  with state priors P(s) counted on the training targets.
- **Topology**: state k of phone p (index 3p + k) loops on itself or moves to k + 1; from the last
  state the path leaves the phone and enters state 0 of the next phone through the bigram.
  Transition probabilities are estimated from the training targets.
- **Bigram LM** over the 48 phones with sentence start and end, estimated on the training
  transcriptions with Witten-Bell interpolation towards an add-one unigram.
- **Score** of a path: ``acoustic_scale · Σ scaled log-likelihoods + self_loop_scale · Σ log
  transitions + Σ (log bigram + insertion_penalty) per phone``; acoustic scale and insertion
  penalty are tuned on the dev set and applied unchanged to test.
- **Transition scales as Kaldi defines them** (``GetScaledTransitionLogProb`` and
  ``AddSelfLoops`` in Kaldi's ``src/hmm/hmm-utils.cc``): a self-loop weighs
  ``self_loop_scale · log p``, a forward transition ``self_loop_scale · log(1 − p) +
  transition_scale · log P(this forward transition | leaving)``. Every state here has one
  forward transition (the next state, or out of the phone), so the second term is log 1 = 0 and
  the transition scale has no effect, as Kaldi's documentation says of typical topologies; the
  self-loop scale scales every HMM transition. Kaldi aligns and builds decoding graphs with a
  self-loop scale of 0.1.

The decoder is vectorised over utterances and states: per frame one (batch × states) update and
one (batch × phones × phones) maximum for the phone-to-phone step.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

STATES = 3
NEG_INF = -1e30


@dataclass
class PhoneLoop:
    """Log-probabilities of the phone-loop HMM (P phones, S = 3P states)."""

    log_prior: np.ndarray  # (S,) state priors
    log_self: np.ndarray  # (P, 3) stay in state k of phone p
    log_next: np.ndarray  # (P, 3) leave state k (to k + 1, or out of the phone for k = 2)
    log_bigram: np.ndarray  # (P, P) next phone q after p
    log_initial: np.ndarray  # (P,) first phone
    log_final: np.ndarray  # (P,) sentence end after phone p

    @property
    def num_phones(self) -> int:
        return len(self.log_initial)

    def without_bigram(self) -> "PhoneLoop":
        """The same HMM with a uniform phone loop instead of the bigram (a baseline)."""
        uniform = np.full_like(self.log_bigram, -np.log(self.num_phones))
        return PhoneLoop(self.log_prior, self.log_self, self.log_next, uniform,
                         np.full_like(self.log_initial, -np.log(self.num_phones)), np.zeros_like(self.log_final))

    @classmethod
    def random(cls, num_phones: int, rng: np.random.Generator) -> "PhoneLoop":
        """A normalised phone loop with random probabilities (for tests and benchmarks)."""
        def log_normalised(shape):
            x = rng.uniform(0.05, 1.0, shape)
            return np.log(x / x.sum(axis=-1, keepdims=True))

        stay = rng.uniform(0.2, 0.8, (num_phones, STATES))
        bigram = log_normalised((num_phones, num_phones + 1))  # last column: sentence end
        return cls(log_prior=log_normalised(num_phones * STATES), log_self=np.log(stay), log_next=np.log(1 - stay),
                   log_bigram=bigram[:, :num_phones], log_initial=log_normalised(num_phones),
                   log_final=bigram[:, num_phones])

    def with_transition_scales(self, self_loop_scale: float, transition_scale: float = 1.0) -> "PhoneLoop":
        """The same HMM with its transition log-probabilities weighted as Kaldi weights them in
        its graphs: a self-loop ``self_loop_scale · log p``, a forward transition
        ``self_loop_scale · log(1 − p) + transition_scale · log P(this one | leaving)``, where
        the last term is 0: each state has one forward transition. 1.0 and 1.0 leave the HMM as
        it is. Priors, bigram and sentence start and end are not transitions of the HMM."""
        forward_choice = np.zeros_like(self.log_next)  # log 1: one forward transition per state
        return replace(self, log_self=self_loop_scale * self.log_self,
                       log_next=self_loop_scale * self.log_next + transition_scale * forward_choice)

    def to_dict(self) -> dict:
        return {k: getattr(self, k).tolist() for k in self.__dataclass_fields__}

    @classmethod
    def from_dict(cls, data: dict) -> "PhoneLoop":
        return cls(**{k: np.asarray(v, dtype=np.float64) for k, v in data.items()})


def _witten_bell(counts: np.ndarray, unigram: np.ndarray) -> np.ndarray:
    """Rows of bigram counts → probabilities interpolated with `unigram` (Witten-Bell)."""
    totals = counts.sum(axis=1, keepdims=True)
    types = (counts > 0).sum(axis=1, keepdims=True)
    return np.where(totals > 0, (counts + types * unigram[None, :]) / np.maximum(totals + types, 1), unigram[None, :])


def estimate(target_sequences: list[np.ndarray], phone_sequences: list[list[int]], num_phones: int) -> PhoneLoop:
    """Priors and transitions from frame-target sequences (state ids 3p + k), bigram from phone
    index sequences, all of the training set."""
    num_states = num_phones * STATES
    state_counts = np.ones(num_states)  # add-one: a state never seen still gets a prior
    stay = np.zeros(num_states)
    leave = np.zeros(num_states)
    for targets in target_sequences:
        targets = np.asarray(targets, dtype=np.int64)
        state_counts += np.bincount(targets, minlength=num_states)
        same = targets[1:] == targets[:-1]
        np.add.at(stay, targets[:-1][same], 1)
        np.add.at(leave, targets[:-1][~same], 1)
    log_prior = np.log(state_counts / state_counts.sum())
    p_stay = np.where(stay + leave > 0, (stay + 0.5) / (stay + leave + 1.0), 0.5).reshape(num_phones, STATES)
    p_stay = np.clip(p_stay, 0.01, 0.99)

    end = num_phones  # successor index of the sentence end
    counts = np.zeros((num_phones + 1, num_phones + 1))  # row P: sentence start; column P: end
    unigram_counts = np.ones(num_phones + 1)
    for phones in phone_sequences:
        sequence = [end] + list(phones) + [end]  # start context, phones, end token
        for a, b in zip(sequence[:-1], sequence[1:]):
            counts[a, b] += 1
        np.add.at(unigram_counts, list(phones) + [end], 1)
    unigram = unigram_counts / unigram_counts.sum()
    probabilities = _witten_bell(counts, unigram)
    start_row = probabilities[end, :num_phones] / probabilities[end, :num_phones].sum()  # no empty sentences
    return PhoneLoop(
        log_prior=log_prior, log_self=np.log(p_stay), log_next=np.log(1 - p_stay),
        log_bigram=np.log(probabilities[:num_phones, :num_phones]), log_initial=np.log(start_row),
        log_final=np.log(probabilities[:num_phones, end]),
    )


def decode(log_posteriors: list[np.ndarray], hmm: PhoneLoop, acoustic_scale: float,
           insertion_penalty: float, batch_size: int = 64, self_loop_scale: float = 1.0) -> list[list[int]]:
    """Best phone-index sequence of each utterance (frames × states log posteriors), the HMM's
    transitions weighted by `self_loop_scale` (:meth:`PhoneLoop.with_transition_scales`)."""
    hmm = hmm.with_transition_scales(self_loop_scale)
    results: list[list[int]] = [[] for _ in log_posteriors]
    order = np.argsort([len(x) for x in log_posteriors])  # similar lengths share a batch
    for start in range(0, len(order), batch_size):
        chosen = order[start:start + batch_size]
        for index, phones in zip(chosen, _decode_batch([log_posteriors[i] for i in chosen], hmm, acoustic_scale,
                                                       insertion_penalty)):
            results[index] = phones
    return results


def _decode_batch(log_posteriors: list[np.ndarray], hmm: PhoneLoop, acoustic_scale: float,
                  insertion_penalty: float) -> list[list[int]]:
    batch, P = len(log_posteriors), hmm.num_phones
    S = P * STATES
    dtype = np.float32  # half the memory traffic of float64; scores stay far from its limits
    lengths = np.array([len(x) for x in log_posteriors])
    T = int(lengths.max())
    emissions = np.zeros((T, batch, S), dtype=dtype)  # time-major: emissions[t] is contiguous
    for b, x in enumerate(log_posteriors):
        emissions[:len(x), b] = acoustic_scale * (np.asarray(x, dtype=np.float64) - hmm.log_prior[None, :])
    self_loop = hmm.log_self.reshape(S).astype(dtype)
    forward = hmm.log_next[:, :2].astype(dtype)  # (P, 2): k → k + 1
    # (to q, from p): leave p's last state, bigram p → q, insertion penalty; reduced over p,
    # the last (contiguous) axis
    enter_from = (hmm.log_next[:, 2][:, None] + hmm.log_bigram + insertion_penalty).T.astype(dtype)

    delta = np.full((batch, S), NEG_INF, dtype=dtype)
    delta[:, 0::STATES] = hmm.log_initial[None, :] + insertion_penalty + emissions[0, :, 0::STATES]
    backpointer = np.empty((T, batch, S), dtype=np.int16)
    backpointer[0] = np.arange(S)
    stay_pointer = np.broadcast_to(np.arange(S, dtype=np.int16), (batch, S))
    states = np.arange(S)
    for t in range(1, T):
        grid = delta.reshape(batch, P, STATES)
        new = delta + self_loop[None, :]
        bp = stay_pointer.copy()
        for k in (1, 2):  # advance within the phone
            advance = grid[:, :, k - 1] + forward[None, :, k - 1]
            target = states[k::STATES]
            better = advance > new[:, target]
            new[:, target] = np.maximum(advance, new[:, target])
            bp[:, target] = np.where(better, target - 1, bp[:, target])
        enter = grid[:, None, :, 2] + enter_from[None, :, :]  # (batch, to q, from p)
        best_from = enter.argmax(axis=2)
        best = np.take_along_axis(enter, best_from[:, :, None], axis=2)[:, :, 0]
        first = states[0::STATES]
        better = best > new[:, first]
        new[:, first] = np.maximum(best, new[:, first])
        bp[:, first] = np.where(better, best_from * STATES + 2, bp[:, first])
        new += emissions[t]
        active = (t < lengths)[:, None]
        delta = np.where(active, new, delta)
        backpointer[t] = np.where(active, bp, stay_pointer)
    # the sentence ends through the last phone's exit transition, as in Kaldi's graphs (the last
    # state's forward transition into the final state), then the bigram's end of sentence
    final = np.full((batch, S), NEG_INF, dtype=dtype)
    final[:, 2::STATES] = delta[:, 2::STATES] + (hmm.log_next[:, 2] + hmm.log_final)[None, :]
    state = final.argmax(axis=1)
    path = np.zeros((batch, T), dtype=np.int64)
    rows = np.arange(batch)
    for t in range(T - 1, -1, -1):
        inside = t < lengths
        path[:, t] = np.where(inside, state, 0)
        if t > 0:
            state = np.where(inside, backpointer[t, rows, state], state)
    phones = []
    for b in range(batch):
        p = path[b, :lengths[b]]
        entries = (p % STATES == 0) & np.concatenate([[True], p[1:] != p[:-1]])
        phones.append((p[entries] // STATES).tolist())
    return phones


def path_score(states: list[int], log_posteriors: np.ndarray, hmm: PhoneLoop, acoustic_scale: float,
               insertion_penalty: float, self_loop_scale: float = 1.0) -> float:
    """Score of one state path under the decoder's model (-inf when the topology forbids it);
    the reference the Viterbi search is tested against."""
    hmm = hmm.with_transition_scales(self_loop_scale)
    P = hmm.num_phones
    score = 0.0
    for t, s in enumerate(states):
        p, k = divmod(s, STATES)
        if t == 0:
            if k != 0:
                return -np.inf
            score += hmm.log_initial[p] + insertion_penalty
        else:
            q, j = divmod(states[t - 1], STATES)
            if s == states[t - 1]:
                score += hmm.log_self[p, k]
            elif q == p and k == j + 1:
                score += hmm.log_next[p, j]
            elif j == STATES - 1 and k == 0:
                score += hmm.log_next[q, j] + hmm.log_bigram[q, p] + insertion_penalty
            else:
                return -np.inf
        score += acoustic_scale * (log_posteriors[t, s] - hmm.log_prior[s])
    last_p, last_k = divmod(states[-1], STATES)
    if last_k != STATES - 1:
        return -np.inf
    return score + hmm.log_next[last_p, last_k] + hmm.log_final[last_p]  # exit the last phone, end the sentence


# --- forced alignment -------------------------------------------------------------------------

def align(log_posteriors: list[np.ndarray], phone_sequences: list[list[int]], hmm: PhoneLoop,
          acoustic_scale: float, windows: list[list[tuple[int, int]] | None] | None = None,
          batch_size: int = 64, self_loop_scale: float = 1.0, transition_scale: float = 1.0) -> list[np.ndarray | None]:
    """Viterbi forced alignment: the best state path (one state id 3p + k per frame) of each
    utterance through its own phone sequence, each phone a 3-state left-to-right HMM entered at
    its first state and left from its last, every state at least one frame, the path starting in
    the first phone's first state and ending in the last phone's last state. Scored like the
    decoder (:func:`path_score`): ``acoustic_scale`` × (log posterior − log prior) plus the
    HMM's self-loop and forward log-probabilities weighted as Kaldi's ``--self-loop-scale`` and
    ``--transition-scale`` weight them (:meth:`PhoneLoop.with_transition_scales`; Kaldi's
    align scripts use 0.1 and 1.0 with an acoustic scale of 0.1); the bigram is constant for a
    given phone sequence and left out. ``windows[u][i] = (first, end)`` keeps phone i of
    utterance u within frames first ≤ t < end (None: boundaries free, as Kaldi aligns from the
    transcript alone). An utterance that cannot be aligned (fewer frames than 3 × its phones, or
    windows too tight) gets None. Vectorised over utterances and chain states, one update per
    frame."""
    hmm = hmm.with_transition_scales(self_loop_scale, transition_scale)
    results: list[np.ndarray | None] = [None] * len(log_posteriors)
    windows = windows or [None] * len(log_posteriors)
    order = np.argsort([len(x) for x in log_posteriors])
    for start in range(0, len(order), batch_size):
        chosen = order[start:start + batch_size]
        paths = _align_batch([log_posteriors[i] for i in chosen], [phone_sequences[i] for i in chosen], hmm,
                             acoustic_scale, [windows[i] for i in chosen])
        for index, path in zip(chosen, paths):
            results[index] = path
    return results


def _align_batch(log_posteriors: list[np.ndarray], phone_sequences: list[list[int]], hmm: PhoneLoop,
                 acoustic_scale: float, windows: list[list[tuple[int, int]] | None]) -> list[np.ndarray | None]:
    batch = len(log_posteriors)
    lengths = np.array([len(x) for x in log_posteriors])
    chains = [np.repeat(np.asarray(p, dtype=np.int64) * STATES, STATES) + np.tile(np.arange(STATES), len(p))
              for p in phone_sequences]  # chain position c → state id
    sizes = np.array([len(c) for c in chains])
    T, N = int(lengths.max()), int(max(sizes.max(), 1))
    emissions = np.full((T, batch, N), NEG_INF)
    stay = np.full((batch, N), NEG_INF)  # log-prob of staying in chain position c
    advance = np.full((batch, N), NEG_INF)  # log-prob of moving from c − 1 to c
    for b, (x, chain) in enumerate(zip(log_posteriors, chains)):
        if not len(chain):
            continue
        scaled = acoustic_scale * (np.asarray(x, dtype=np.float64)[:, chain] - hmm.log_prior[chain][None, :])
        if windows[b] is not None:  # a phone's three states only inside its window
            allowed = np.zeros((len(x), len(chain)), dtype=bool)
            for i, (first, end) in enumerate(windows[b]):
                allowed[max(first, 0):max(end, 0), STATES * i:STATES * (i + 1)] = True
            scaled = np.where(allowed, scaled, NEG_INF)
        emissions[:len(x), b, :len(chain)] = scaled
        phone, state = np.divmod(chain, STATES)
        stay[b, :len(chain)] = hmm.log_self[phone, state]
        advance[b, 1:len(chain)] = hmm.log_next[phone[:-1], state[:-1]]
    delta = np.full((batch, N), NEG_INF)
    delta[:, 0] = emissions[0, :, 0]
    advanced = np.zeros((T, batch, N), dtype=bool)
    for t in range(1, T):
        stayed = delta + stay
        moved = np.full((batch, N), NEG_INF)
        moved[:, 1:] = delta[:, :-1] + advance[:, 1:]
        better = moved > stayed
        new = np.maximum(stayed, moved) + emissions[t]
        active = (t < lengths)[:, None]
        delta = np.where(active, np.maximum(new, NEG_INF), delta)  # stay at -1e30, never below
        advanced[t] = better & active
    paths: list[np.ndarray | None] = []
    for b, chain in enumerate(chains):
        last = len(chain) - 1
        if last < 0 or lengths[b] < len(chain) or delta[b, last] <= NEG_INF / 2:
            paths.append(None)
            continue
        position = last
        path = np.empty(lengths[b], dtype=np.int64)
        for t in range(lengths[b] - 1, -1, -1):
            path[t] = chain[position]
            if t > 0 and advanced[t, b, position]:
                position -= 1
        paths.append(path if position == 0 else None)
    return paths
