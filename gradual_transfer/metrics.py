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


def edit_counts(reference: Sequence[str], hypothesis: Sequence[str]) -> EditCounts:
    """Levenshtein alignment of two label sequences: substitutions, deletions, insertions
    (minimum total errors; among equal totals, the backtrace prefers substitutions)."""
    n, m = len(reference), len(hypothesis)
    cost = np.zeros((n + 1, m + 1), dtype=np.int64)
    cost[:, 0] = np.arange(n + 1)
    cost[0, :] = np.arange(m + 1)
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            cost[i, j] = min(cost[i - 1, j - 1] + (reference[i - 1] != hypothesis[j - 1]),
                             cost[i - 1, j] + 1, cost[i, j - 1] + 1)
    s = d = ins = 0
    i, j = n, m
    while i > 0 or j > 0:
        if i > 0 and j > 0 and cost[i, j] == cost[i - 1, j - 1] + (reference[i - 1] != hypothesis[j - 1]):
            s += reference[i - 1] != hypothesis[j - 1]
            i, j = i - 1, j - 1
        elif i > 0 and cost[i, j] == cost[i - 1, j] + 1:
            d, i = d + 1, i - 1
        else:
            ins, j = ins + 1, j - 1
    return EditCounts(int(s), d, ins, n)


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
