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
    fixed_sequence,
    hodges_lehmann,
    holm,
    interval_note,
    onset,
    signed_rank_test,
    smallest_p,
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


def test_onset_by_fixed_sequence_from_the_deepest_lc():
    lcs = [0, 1, 2, 3]
    up = [1, 1, 1, 1]
    lc, adjusted, reason = onset(lcs, up, [0.01, 0.01, 0.01, 0.01])
    assert (lc, reason) == (0, "") and adjusted.tolist() == [0.01] * 4
    assert onset(lcs, [1, -1, 1, 1], [0.01, 0.01, 0.01, 0.01])[0] == 2  # l_c 1 below zero: the sequence stops
    lc, adjusted, _ = onset(lcs, up, [0.01, 0.2, 0.01, 0.03])           # l_c 1 not significant
    assert lc == 2 and adjusted.tolist() == [0.2, 0.2, 0.03, 0.03]    # the running maximum, deepest first
    lc, adjusted, reason = onset(lcs, up, [0.01, 0.01, 0.01, np.nan], ["", "", "", "5 non-zero differences"])
    assert lc is None and reason == "no test at l_c = 3 (5 non-zero differences)"
    assert np.isnan(adjusted[3]) and adjusted[:3].tolist() == [1.0, 1.0, 1.0]  # never reached
    lc, _, reason = onset(lcs, [1, 1, 1, -1], [0.01, 0.01, 0.01, 0.01])
    assert lc is None and reason == "not above zero at l_c = 3 (by the rank statistic)"
    lc, _, reason = onset(lcs, up, [0.01, 0.01, 0.01, 0.06])
    assert lc is None and reason == "not significant at l_c = 3 (p = 0.06, tested first)"
    assert onset([], [], [])[::2] == (None, "no l_c")


def test_fixed_sequence_reaches_what_holm_cannot_at_the_papers_n():
    # Model B's 7 l_c over 8 SER folds, every fold worse at every l_c: each exact p is 2/2^8
    p = [signed_rank_test(np.arange(1, 9)).p_value] * 7
    assert p[0] == 2 / 256
    assert holm(p).min() == pytest.approx(7 * 2 / 256) and holm(p).min() > ALPHA  # Holm: never below 0.0547
    assert (fixed_sequence(p, [1] * 7) == 2 / 256).all()  # fixed sequence: each at the full level
    lc, _, _ = onset(list(range(7)), [1] * 7, p)
    assert lc == 0


def test_fixed_sequence_controls_the_family_wise_error():
    # under the global null (8 units, 7 l_c, differences symmetric about 0), the chance of
    # declaring any onset must stay at or below ALPHA (the direction requirement halves it)
    rng = np.random.default_rng(1)
    trials, false = 400, 0
    for _ in range(trials):
        tests = [signed_rank_test(rng.normal(0, 1, 8)) for _ in range(7)]
        lc, _, _ = onset(list(range(7)), [t.direction for t in tests], [t.p_value for t in tests])
        false += lc is not None
    assert false / trials <= ALPHA
    # and it has power: a shift of one standard deviation is found in most curves
    found = sum(onset(list(range(7)), *zip(*[(t.direction, t.p_value) for t in
                                             (signed_rank_test(rng.normal(1.5, 1, 8)) for _ in range(7))]))[0]
                is not None for _ in range(50))
    assert found >= 25


def test_direction_comes_from_the_ranks_not_the_mean():
    # the audit's case: 19 small negative differences and one +1000
    d = np.r_[-np.linspace(0.1, 1.9, 19), 1000.0]
    assert d.mean() > 49 and signed_rank_test(d).p_value < 1e-3
    test = signed_rank_test(d)
    assert test.direction == -1 and test.statistic == 20 and test.expected == 105  # ranks 1..20, +1000 is rank 20
    assert hodges_lehmann(d) < 0
    lc, _, reason = onset([5], [test.direction], [test.p_value])
    assert lc is None and reason.startswith("not above zero")
    assert signed_rank_test(np.arange(1, 9)).direction == 1 and signed_rank_test([0, 0]).direction == 0


def test_hodges_lehmann_is_the_median_of_walsh_averages():
    rng = np.random.default_rng(3)
    for n in (1, 2, 5, 8):
        d = rng.normal(0, 2, n)
        walsh = [(d[i] + d[j]) / 2 for i in range(n) for j in range(i, n)]
        assert hodges_lehmann(list(d) + [np.nan]) == pytest.approx(np.median(walsh))
    assert hodges_lehmann([1.0, 2.0, 3.0]) == 2.0 and np.isnan(hodges_lehmann([]))


def test_interval_notes():
    assert interval_note(1.0, 1) == "1 unit: no interval"
    assert interval_note(1.0, 2) == "2 units: uninformative (t = 12.7 standard errors)"
    assert interval_note(0.0, 4).startswith("4 units with zero spread") and interval_note(1.0, 3) == ""
    assert smallest_p(8) == 2 / 256 and smallest_p(0) == 1.0


def test_trivial_errors():
    assert trivial_error("accuracy", 10) == 90.0 and trivial_error("accuracy", 100) == 99.0
    assert trivial_error("ue", 5) == 75.0  # 4 emotions and silence: a constant guess recalls 1 of 4
    assert trivial_error("per", 144) == 100.0  # the empty hypothesis deletes every phone
