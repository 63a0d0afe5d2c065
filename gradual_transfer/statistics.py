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
- **Holm** (:func:`holm`): step-down adjustment over one family of tests (the swept l_c of one
  curve).
- **Onset** (:func:`onset`): the first l_c from which a measure stays above zero at every larger
  swept l_c by the Holm-adjusted test.
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
RANK_DECIMALS = 9  # differences are rounded to this many decimals before ranking: ties stay ties


def ci95(std: float, n: int) -> float:
    """Half-width of the 95 % confidence interval of a mean of n units (Student t, n − 1
    degrees of freedom); NaN for a single unit, which has no spread to estimate."""
    from scipy.stats import t

    if n < 2 or not np.isfinite(std):
        return float("nan")
    return float(t.ppf(1 - ALPHA / 2, n - 1) * std / math.sqrt(n))


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
    the sum of the (mid)ranks of the positive ones, ``p_value`` NaN with the ``reason`` when
    there are too few differences for p < ALPHA."""

    p_value: float
    n: int
    statistic: float
    reason: str = ""


def signed_rank_test(differences: Sequence[float]) -> SignedRank:
    """The exact two-sided signed-rank test of paired differences (NaN ones ignored), ties and
    zeros included: see the module's docstring."""
    from scipy.stats import rankdata

    d = np.round(np.asarray(differences, dtype=float), RANK_DECIMALS)
    d = d[np.isfinite(d) & (d != 0)]
    n = len(d)
    if n < MIN_UNITS_FOR_TEST:
        return SignedRank(float("nan"), n, float("nan"),
                          f"{n} non-zero difference{'s' * (n != 1)}; a two-sided p below {ALPHA} needs "
                          f"{MIN_UNITS_FOR_TEST}")
    # midranks are k or k + 1/2: doubled, they are integers, and the distribution of the doubled
    # sum of positive ranks is the product of (1 + x^r) over the doubled ranks r (each sign ±
    # with probability 1/2 under the null hypothesis), counted exactly in Python integers
    doubled = np.rint(2 * rankdata(np.abs(d))).astype(int)
    total = int(doubled.sum())
    counts = np.zeros(total + 1, dtype=object)
    counts[0] = 1
    for r in doubled:
        counts[r:] = counts[r:] + counts[:-r]  # the right side is evaluated before assigning
    positive = int(doubled[d > 0].sum())
    distance = abs(2 * positive - total)  # the distribution is symmetric about total / 2
    sums = np.arange(total + 1)
    extreme = int(sum(counts[np.abs(2 * sums - total) >= distance]))
    return SignedRank(float(Fraction(extreme, 2**n)), n, positive / 2)


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


def onset(lcs: Sequence[int], means: Sequence[float], p_adjusted: Sequence[float],
          reasons: Sequence[str] = ()) -> tuple[int | None, str]:
    """(onset, reason): the first l_c from which the measure is above zero (mean > 0 and
    adjusted p < ALPHA) at every larger swept l_c; None with the reason why not, naming the
    largest l_c that fails. ``reasons`` say why a test has no p-value."""
    rows = sorted(zip(lcs, means, p_adjusted, list(reasons) or [""] * len(lcs), strict=True))
    if not rows:
        return None, "no l_c"
    first = None
    for lc, mean, p, reason in reversed(rows):
        if mean > 0 and p < ALPHA:
            first = lc
            continue
        if first is None:
            if not np.isfinite(p):
                why = f"no test at l_c = {lc} ({reason or 'no units'})"
            elif not mean > 0:
                why = f"not above zero at l_c = {lc} (mean {mean:.4g})"
            else:
                why = f"not significant at l_c = {lc} (Holm-adjusted p = {p:.3g})"
            return None, why
        break
    return first, ""
