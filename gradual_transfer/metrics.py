"""Scores of the study: top-1 accuracy (images), phone error rate (ASR), unweighted average
recall and unweighted error (SER)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np


@dataclass(frozen=True)
class EditCounts:
    substitutions: int
    deletions: int
    insertions: int
    reference_length: int

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    def __add__(self, other: "EditCounts") -> "EditCounts":
        return EditCounts(self.substitutions + other.substitutions, self.deletions + other.deletions,
                          self.insertions + other.insertions, self.reference_length + other.reference_length)


EPSILON = None  # the empty side of an insertion or deletion in an alignment


def align(reference: Sequence[str], hypothesis: Sequence[str]) -> list[tuple[str | None, str | None]]:
    """Minimum-edit alignment of two label sequences by kaldialign (Kaldi's own
    ``align-text``/``compute-wer`` algorithm): pairs (reference label, hypothesis label), with
    None on the reference side of an insertion and the hypothesis side of a deletion."""
    import kaldialign

    marker = "<eps>"
    while marker in reference or marker in hypothesis:  # never a label of either side
        marker += "*"
    pairs = kaldialign.align(list(reference), list(hypothesis), marker)
    return [(None if r is marker else r, None if h is marker else h) for r, h in pairs]


def counts_of(pairs: list[tuple[str | None, str | None]]) -> EditCounts:
    """Substitutions, deletions and insertions of an alignment."""
    substitutions = sum(r is not None and h is not None and r != h for r, h in pairs)
    deletions = sum(h is None for _, h in pairs)
    insertions = sum(r is None for r, _ in pairs)
    return EditCounts(substitutions, deletions, insertions, sum(r is not None for r, _ in pairs))


def edit_counts(reference: Sequence[str], hypothesis: Sequence[str]) -> EditCounts:
    """Substitutions, deletions and insertions of the minimum-edit alignment (:func:`align`)."""
    return counts_of(align(reference, hypothesis))


def phone_error_rate(references: dict[str, list[str]], hypotheses: dict[str, list[str]],
                     fold: dict[str, str] | None = None) -> tuple[float, EditCounts]:
    """PER in percent, (S + D + I) / N over all utterances, after mapping both sides with
    `fold` (e.g. the 48 → 39 phone map; ``sil`` stays a scored phone, as in Kaldi)."""
    missing = sorted(set(references) - set(hypotheses))
    if missing:
        raise ValueError(f"no hypothesis for {len(missing)} utterance(s), e.g. {missing[0]}")
    fold = fold or {}
    total = EditCounts(0, 0, 0, 0)
    for utt, reference in references.items():
        total += edit_counts([fold.get(p, p) for p in reference], [fold.get(p, p) for p in hypotheses[utt]])
    return 100.0 * total.errors / max(total.reference_length, 1), total


def unweighted_average_recall(true: Sequence[int], predicted: Sequence[int], classes: Sequence[int]) -> float:
    """Mean over `classes` of the recall of each class (classes absent from `true` are left
    out of the mean, since their recall is undefined)."""
    true, predicted = np.asarray(true), np.asarray(predicted)
    recalls = [np.mean(predicted[true == c] == c) for c in classes if np.any(true == c)]
    if not recalls:
        raise ValueError("no example of any class")
    return float(np.mean(recalls))


def unweighted_error(true: Sequence[int], predicted: Sequence[int], classes: Sequence[int]) -> float:
    """UE in percent: 100 − 100 · UAR."""
    return 100.0 * (1.0 - unweighted_average_recall(true, predicted, classes))


def sclite_listing(utt: str, speaker: str, pairs: list[tuple[str | None, str | None]]) -> str:
    """One utterance's alignment as sclite's ``pralign`` report prints it: correct labels in
    lower case, errors in upper case, ``***`` on the empty side of an insertion or deletion,
    columns aligned, and an ``Eval:`` line marking S, D and I."""
    refs, hyps, marks = [], [], []
    for r, h in pairs:
        correct = r == h
        ref = "***" if r is None else (r.lower() if correct else r.upper())
        hyp = "***" if h is None else (h.lower() if correct else h.upper())
        mark = "" if correct else "I" if r is None else "D" if h is None else "S"
        width = max(len(ref), len(hyp))
        refs.append(ref.ljust(width))
        hyps.append(hyp.ljust(width))
        marks.append(mark.ljust(width))
    c = counts_of(pairs)
    correct = c.reference_length - c.substitutions - c.deletions
    return (f"id: ({utt})\nspeaker: {speaker}\n"
            f"Scores: (#C #S #D #I) {correct} {c.substitutions} {c.deletions} {c.insertions}\n"
            f"REF:  {' '.join(refs).rstrip()}\nHYP:  {' '.join(hyps).rstrip()}\n"
            f"Eval: {' '.join(marks).rstrip()}\n\n")


def per_speaker(counts: dict[str, EditCounts], speakers: dict[str, str]) -> list[dict]:
    """PER per speaker from per-utterance counts, sorted by speaker, and the corpus total
    (``speaker`` = ``all``), as sclite's per-speaker summary gives them."""
    by_speaker: dict[str, EditCounts] = {}
    utterances: dict[str, int] = {}
    for utt, c in counts.items():
        speaker = speakers[utt]
        by_speaker[speaker] = by_speaker.get(speaker, EditCounts(0, 0, 0, 0)) + c
        utterances[speaker] = utterances.get(speaker, 0) + 1
    total = sum(by_speaker.values(), EditCounts(0, 0, 0, 0))
    rows = [(s, utterances[s], by_speaker[s]) for s in sorted(by_speaker)] + [("all", len(counts), total)]
    return [{"speaker": s, "utterances": n, "reference_length": c.reference_length, "substitutions": c.substitutions,
             "deletions": c.deletions, "insertions": c.insertions, "errors": c.errors,
             "per": 100.0 * c.errors / max(c.reference_length, 1)} for s, n, c in rows]


# Frame classes a metric does not score: SER's models learn a silence class beside the emotions,
# but an utterance is decided among the emotions only, so UE averages over the others.
UNSCORED_CLASSES = {"accuracy": 0, "per": 0, "ue": 1}


def trivial_error(metric: str, classes: int) -> float:
    """The error (%) of a predictor that learnt nothing, on a task with `classes` output classes:
    the floor of the headroom a model gains.

    - ``accuracy``: top-1 error of a uniform guess, 100 (1 − 1/K) (a constant guess's too, on a
      test set with balanced classes);
    - ``ue``: unweighted error of any constant guess, 100 (1 − 1/E) with E the scored classes
      (the task's classes less silence): its recall is 1 on one class and 0 on the E − 1 others;
    - ``per``: 100, the empty hypothesis (every reference phone deleted).
    """
    if metric == "per":
        return 100.0
    scored = classes - UNSCORED_CLASSES[metric]
    if scored < 2:
        raise ValueError(f"a {metric} task needs 2 scored classes or more, not {scored}")
    return 100.0 * (1.0 - 1.0 / scored)
