"""Statistics over runs: units of replication, intervals, the exact signed-rank test, Holm's
adjustment and the onset of a transferability curve.

- **Unit of replication.** A task with folds (IEMOCAP's leave-one-speaker-out folds) replicates
  over folds: the seeds of one fold share its test speaker, so they are repeated measures of that
  fold and are averaged first; a task without folds replicates over seeds. SER → ASR runs carry
  the fold of their SER source, so their units are the source folds (they share one ASR primary
  and control per seed). Every mean, interval and test is over units, and every table row says
  its ``unit`` and ``n_units``.
- **Interval**: Student t with n − 1 degrees of freedom over the units' values
  (:func:`ci95`); :data:`MIN_UNITS_FOR_INTERVAL` is the fewest units a figure should draw one
  from.
- **Test**: the exact two-sided Wilcoxon signed-rank test of paired differences, ties and zeros
  included (:func:`signed_rank_test`): differences are rounded to :data:`RANK_DECIMALS`
  decimals (gaps are differences of differences: 191/300 − 200/300 is not exactly −3/100),
  zeros are dropped (Wilcoxon's convention), the rest ranked by absolute value with midranks,
  and the p-value counts, over all 2^n sign patterns, those whose sum of positive ranks lies at
  least as far from its mean as the observed one. Below :data:`MIN_UNITS_FOR_TEST` non-zero
  differences no p-value is given: none could fall below :data:`ALPHA`.
  The direction of a difference is the rank statistic's (:attr:`SignedRank.direction`: the sum
  of positive ranks above or below its null mean), never the mean's: one outlier can pull a
  mean above zero while the ranks say below. :func:`hodges_lehmann` is the location estimate
  that goes with the test (the median of the Walsh averages).
- **Holm** (:func:`holm`): step-down adjustment over one family of tests (the swept l_c of one
  curve), for a reader who tests each l_c on its own.
- **Onset** (:func:`onset`): a claim about an *ordered* family, so it is tested in that order by
  the fixed-sequence procedure (Maurer, Hothorn & Lehmacher 1995; Westfall & Krishen 2001;
  :func:`fixed_sequence`): the deepest swept l_c first, each at the full level ALPHA, stopping at
  the first that is not above zero. It controls the family-wise error at ALPHA (each hypothesis
  is tested only if every one before it was rejected, so the first true null tested is the only
  one that can be falsely rejected) without Holm's factor m: with 8 folds the smallest p is
  2/256 at every l_c, where Holm over 7 l_c cannot go below 7 · 2/256 = 0.055. The onset is the
  shallowest l_c rejected before the first non-rejection.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Sequence

import numpy as np
import pandas as pd

ALPHA = 0.05  # two-sided level of every test and interval (95 %)
# The smallest two-sided p of an exact signed-rank test on n non-zero differences is 2 / 2^n (all
# of one sign: the only pattern that extreme, ties or not): 0.0625 for 5, 0.03125 for 6.
MIN_UNITS_FOR_TEST = next(n for n in itertools.count(1) if 2 / 2**n < ALPHA)
# Two units give t(0.975, 1) = 12.7 standard errors (±158 points on the demo's SER rows); three
# give 4.3. Figures should draw no interval from fewer; the tables give every interval with its n.
MIN_UNITS_FOR_INTERVAL = 3
# A control that beats its primary by more than this fraction of the primary's headroom in every
# unit flags the primary as under-trained where there are too few units for an interval.
UNDERTRAINED_MARGIN = 0.02
RANK_DECIMALS = 9  # differences are rounded to this many decimals before ranking: ties stay ties


def ci95(std: float, n: int) -> float:
    """Half-width of the 95 % confidence interval of a mean of n units (Student t, n − 1
    degrees of freedom); NaN for a single unit, which has no spread to estimate."""
    from scipy.stats import t

    if n < 2 or not np.isfinite(std):
        return float("nan")
    return float(t.ppf(1 - ALPHA / 2, n - 1) * std / math.sqrt(n))


def interval_note(std: float, n: int) -> str:
    """Why an interval of n units says little, or "" when it is an ordinary one: a single unit
    has none, two give ±12.7 standard errors, and a zero spread is a coincidence of few units,
    not a certainty."""
    from scipy.stats import t

    if n < 2:
        return f"{n} unit{'s' * (n != 1)}: no interval"
    if n < MIN_UNITS_FOR_INTERVAL:
        return f"{n} units: uninformative (t = {t.ppf(1 - ALPHA / 2, n - 1):.1f} standard errors)"
    if np.isfinite(std) and std == 0:
        return f"{n} units with zero spread: the interval has no width, not certainty"
    return ""


def unit_of_replication(folds: Sequence[int]) -> str:
    """``fold`` where the runs carry folds (fold 0 is the single split of a task without folds),
    else ``seed``."""
    return "fold" if any(int(f) != 0 for f in folds) else "seed"


def unit_values(runs: pd.DataFrame, columns: list[str]) -> tuple[str, pd.DataFrame]:
    """(unit, one row per unit): the mean of ``columns`` over the runs (seeds) of each fold, or
    the runs of each seed where there are no folds."""
    unit = unit_of_replication(runs["fold"])
    return unit, runs.groupby(unit, sort=True)[columns].mean()


@dataclass(frozen=True)
class SignedRank:
    """An exact two-sided Wilcoxon signed-rank test: ``n`` non-zero differences, ``statistic``
    the sum of the (mid)ranks of the positive ones and ``expected`` its mean under the null
    hypothesis (half the sum of all ranks), ``p_value`` NaN with the ``reason`` when there are
    too few differences for p < ALPHA."""

    p_value: float
    n: int
    statistic: float
    expected: float = float("nan")
    reason: str = ""

    @property
    def direction(self) -> int:
        """+1 where the differences lie above zero by their ranks (the statistic above its null
        mean), −1 below, 0 balanced or no differences: the side the test speaks for."""
        if not (np.isfinite(self.statistic) and np.isfinite(self.expected)):
            return 0
        return int(np.sign(self.statistic - self.expected))


def hodges_lehmann(differences: Sequence[float]) -> float:
    """The Hodges–Lehmann estimate of the centre of paired differences (NaN ones ignored, zeros
    kept): the median of the n(n + 1)/2 Walsh averages (d_i + d_j)/2, i ≤ j. The location the
    signed-rank test tests, robust to an outlier that drags the mean; NaN without differences."""
    d = np.asarray(differences, dtype=float)
    d = d[np.isfinite(d)]
    if not len(d):
        return float("nan")
    i, j = np.triu_indices(len(d))
    return float(np.median((d[i] + d[j]) / 2))


def signed_rank_test(differences: Sequence[float]) -> SignedRank:
    """The exact two-sided signed-rank test of paired differences (NaN ones ignored), ties and
    zeros included: see the module's docstring."""
    from scipy.stats import rankdata

    d = np.round(np.asarray(differences, dtype=float), RANK_DECIMALS)
    d = d[np.isfinite(d) & (d != 0)]
    n = len(d)
    ranks = rankdata(np.abs(d))
    statistic, expected = float(ranks[d > 0].sum()), float(ranks.sum() / 2)
    if n < MIN_UNITS_FOR_TEST:
        return SignedRank(float("nan"), n, statistic, expected,
                          f"{n} non-zero difference{'s' * (n != 1)}; a two-sided p below {ALPHA} needs "
                          f"{MIN_UNITS_FOR_TEST}")
    # midranks are k or k + 1/2: doubled, they are integers, and the distribution of the doubled
    # sum of positive ranks is the product of (1 + x^r) over the doubled ranks r (each sign ±
    # with probability 1/2 under the null hypothesis), counted exactly in Python integers
    doubled = np.rint(2 * ranks).astype(int)
    total = int(doubled.sum())
    counts = np.zeros(total + 1, dtype=object)
    counts[0] = 1
    for r in doubled:
        counts[r:] = counts[r:] + counts[:-r]  # the right side is evaluated before assigning
    positive = int(doubled[d > 0].sum())
    distance = abs(2 * positive - total)  # the distribution is symmetric about total / 2
    sums = np.arange(total + 1)
    extreme = int(sum(counts[np.abs(2 * sums - total) >= distance]))
    return SignedRank(float(Fraction(extreme, 2**n)), n, positive / 2, expected)


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values of one family of tests: the i-th smallest of the m
    p-values times m − i + 1, made non-decreasing and capped at 1. NaN p-values (no test) stay
    NaN and are not counted in m."""
    p = np.asarray(p_values, dtype=float)
    adjusted = np.full(p.shape, np.nan)
    tested = np.flatnonzero(np.isfinite(p))
    m = len(tested)
    if m:
        order = tested[np.argsort(p[tested], kind="stable")]
        adjusted[order] = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    return adjusted


def smallest_p(n: int) -> float:
    """The smallest two-sided p an exact signed-rank test of n non-zero differences can give:
    every difference of one sign, the only pattern that extreme (2 of the 2^n)."""
    return 2 / 2**n if n > 0 else 1.0


def fixed_sequence(p_values: Sequence[float], directions: Sequence[int]) -> np.ndarray:
    """Adjusted p-values of the fixed-sequence procedure for the one-sided claims "above zero",
    the tests given in their order of testing (the first is tested first). Each test's p counts
    only where its direction is positive (:attr:`SignedRank.direction`; else it is 1); the
    adjusted p of the i-th is the largest of the first i, so a hypothesis is rejected at ALPHA
    exactly when it and every one before it are. A test without a p-value (too few units) is
    NaN and stops the sequence: every later one is 1."""
    adjusted = np.full(len(p_values), np.nan)
    running = 0.0
    for i, (p, direction) in enumerate(zip(p_values, directions, strict=True)):
        if not np.isfinite(p):
            running = 1.0
            continue
        running = max(running, float(p) if direction > 0 else 1.0)
        adjusted[i] = running
    return adjusted


ONSET_PROCEDURE = "fixed sequence from the deepest l_c"


def onset(lcs: Sequence[int], directions: Sequence[int], p_values: Sequence[float],
          reasons: Sequence[str] = ()) -> tuple[int | None, np.ndarray, str]:
    """(onset, fixed-sequence adjusted p per l_c in the given order, reason): the shallowest l_c
    at which the measure is above zero by the fixed-sequence procedure (:func:`fixed_sequence`)
    run from the deepest swept l_c towards 0 — it and every deeper l_c rejected at ALPHA, the
    direction from the rank statistic. None with the reason why not, naming the deepest l_c that
    fails. ``p_values`` are the raw exact p-values; ``reasons`` say why a test has none."""
    lcs = list(lcs)
    if not lcs:
        return None, np.array([]), "no l_c"
    reasons = list(reasons) or [""] * len(lcs)
    deepest_first = sorted(range(len(lcs)), key=lambda i: -lcs[i])
    adjusted_in_order = fixed_sequence([p_values[i] for i in deepest_first], [directions[i] for i in deepest_first])
    adjusted = np.full(len(lcs), np.nan)
    adjusted[deepest_first] = adjusted_in_order
    first = None
    for i in deepest_first:
        if adjusted[i] < ALPHA:
            first = lcs[i]
            continue
        if first is None:
            if not np.isfinite(p_values[i]):
                why = f"no test at l_c = {lcs[i]} ({reasons[i] or 'no units'})"
            elif not directions[i] > 0:
                why = f"not above zero at l_c = {lcs[i]} (by the rank statistic)"
            else:
                why = f"not significant at l_c = {lcs[i]} (p = {p_values[i]:.3g}, tested first)"
            return None, adjusted, why
        break
    return first, adjusted, ""
