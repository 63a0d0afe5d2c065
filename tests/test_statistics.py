"""The statistics over runs against their references' definitions: the exact signed-rank test
against scipy (no ties, no zeros) and against brute-force enumeration of every sign pattern
(ties, zeros, rounding noise), Holm's adjustment, the unit of replication, the onset and the
trivial errors that normalise Figure 3."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import rankdata, wilcoxon

from gradual_transfer.metrics import trivial_error
from gradual_transfer.statistics import (
    ALPHA,
    MIN_UNITS_FOR_TEST,
    ci95,
    holm,
    onset,
    signed_rank_test,
    unit_values,
)


def brute_force_p(differences) -> float:
    """The definition: over all 2^n sign patterns of the non-zero differences (rounded to 1e-9),
    the fraction whose sum of positive midranks lies at least as far from n(n + 1)/4 as the
    observed one."""
    d = np.round(np.asarray(differences, dtype=float), 9)
    d = d[d != 0]
    ranks = rankdata(np.abs(d))
    centre = ranks.sum() / 2
    observed = abs(ranks[d > 0].sum() - centre)
    hits = sum(abs(np.dot(signs, ranks) - centre) >= observed - 1e-9
               for signs in itertools.product((0, 1), repeat=len(d)))
    return hits / 2 ** len(d)


@pytest.mark.parametrize("n", [6, 7, 10, 15, 20])
def test_signed_rank_equals_scipys_exact_test_without_ties_or_zeros(n):
    rng = np.random.default_rng(n)
    for shift in (0.0, 0.5, 1.5):
        d = rng.normal(shift, 1.0, n)
        assert signed_rank_test(d).p_value == pytest.approx(wilcoxon(d, method="exact").pvalue, rel=1e-12)


def test_signed_rank_with_ties_equals_brute_force_enumeration():
    # the audit's case: scipy's default falls back to a normal approximation here (9.79e-4)
    d = np.r_[1:14, 13.0]
    assert signed_rank_test(d).p_value == pytest.approx(brute_force_p(d), rel=1e-12)
    assert signed_rank_test(d).p_value == pytest.approx(1.22e-4, abs=5e-7)
    rng = np.random.default_rng(0)
    for n in (6, 8, 11, 13):
        for _ in range(5):
            d = rng.integers(-3, 4, n).astype(float)  # many ties and zeros
            test = signed_rank_test(d)
            if test.n >= MIN_UNITS_FOR_TEST:
                assert test.p_value == pytest.approx(brute_force_p(d), rel=1e-12), d
                assert test.n == np.count_nonzero(d)


def test_floating_point_noise_keeps_ties():
    noisy = [-3, -1, 3.000000000000007, -1, 2, 2]  # a difference of differences
    assert signed_rank_test(noisy).p_value == 0.71875 == brute_force_p([-3, -1, 3, -1, 2, 2])
    gap = (100 - 100 * 191 / 300) - (100 - 100 * 200 / 300)
    assert gap != 3 and signed_rank_test([gap, 3, 3, -1, 2, 2]).p_value == signed_rank_test([3, 3, 3, -1, 2, 2]).p_value


def test_zeros_are_dropped_and_too_few_differences_give_no_p_value():
    assert MIN_UNITS_FOR_TEST == 6 and 2 / 2**6 < ALPHA <= 2 / 2**5
    six = signed_rank_test([0, 0, 1, 2, 3, 4, 5, 6, np.nan])
    assert (six.n, six.p_value, six.statistic) == (6, 2 / 2**6, 21.0)  # all positive: the exact minimum
    five = signed_rank_test([0, 1, 2, 3, 4, 5])
    assert five.n == 5 and math.isnan(five.p_value) and "5 non-zero differences" in five.reason
    assert math.isnan(signed_rank_test([0.0] * 8).p_value)


def test_holm_adjustment():
    adjusted = holm([0.01, 0.04, np.nan, 0.03, 0.005])  # m = 4 tests
    # sorted 0.005, 0.01, 0.03, 0.04 → ×4, ×3, ×2, ×1 → 0.02, 0.03, 0.06, 0.04 → monotone 0.06
    assert adjusted[[0, 1, 3, 4]] == pytest.approx([0.03, 0.06, 0.06, 0.02]) and np.isnan(adjusted[2])
    assert holm([0.5, 0.6]).tolist() == [1.0, 1.0] and holm([]).size == 0


def test_seeds_of_one_fold_are_averaged_into_one_unit():
    runs = pd.DataFrame({"fold": [1, 1, 2, 2, 3], "seed": [0, 1, 0, 1, 0], "gap": [2.0, 4.0, 10.0, 20.0, 7.0]})
    unit, units = unit_values(runs, ["gap"])
    assert unit == "fold" and units["gap"].tolist() == [3.0, 15.0, 7.0]
    unit, units = unit_values(runs.assign(fold=0), ["gap"])
    assert unit == "seed" and units["gap"].tolist() == [(2 + 10 + 7) / 3, 12.0]
    assert ci95(np.std([3.0, 15.0, 7.0], ddof=1), 3) == pytest.approx(4.302652730 * np.std([3, 15, 7], ddof=1) / math.sqrt(3))


def test_onset_needs_every_larger_lc_above_zero():
    lcs = [0, 1, 2, 3]
    assert onset(lcs, [1, 2, 3, 4], [0.01, 0.01, 0.01, 0.01]) == (0, "")
    assert onset(lcs, [1, -2, 3, 4], [0.01, 0.01, 0.01, 0.01]) == (2, "")  # l_c 1 falls back below zero
    assert onset(lcs, [1, 2, 3, 4], [0.01, 0.2, 0.01, 0.01]) == (2, "")   # l_c 1 not significant
    lc, reason = onset(lcs, [1, 2, 3, 4], [0.01, 0.01, 0.01, np.nan], ["", "", "", "5 non-zero differences"])
    assert lc is None and reason == "no test at l_c = 3 (5 non-zero differences)"
    lc, reason = onset(lcs, [1, 2, 3, -4], [0.01, 0.01, 0.01, 0.01])
    assert lc is None and "not above zero at l_c = 3" in reason
    lc, reason = onset(lcs, [1, 2, 3, 4], [0.01, 0.01, 0.01, 0.06])
    assert lc is None and "not significant at l_c = 3" in reason


def test_trivial_errors():
    assert trivial_error("accuracy", 10) == 90.0 and trivial_error("accuracy", 100) == 99.0
    assert trivial_error("ue", 5) == 75.0  # 4 emotions and silence: a constant guess recalls 1 of 4
    assert trivial_error("per", 144) == 100.0  # the empty hypothesis deletes every phone
