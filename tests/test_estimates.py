"""Transferability estimates and representation similarity against their definitions, with known
answers: LogME against a brute-force maximisation of the same evidence (and the evidence against
the Gaussian density it is), H-score and CKA against direct formulas and scikit-learn's
Ledoit-Wolf, LEEP against a loop over its definition, invariances, and τ against scipy."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize
from scipy.stats import kendalltau, multivariate_normal

from gradual_transfer.estimates import (
    ledoit_wolf_shrinkage,
    leep,
    linear_probe_error,
    log_evidence,
    logme,
    rank_agreement,
    shrinkage_h_score,
)
from gradual_transfer.similarity import debiased_cka, linear_cka, unbiased_hsic


def blobs(rng, n=60, d=4, classes=3, spread=1.0):
    y = np.arange(n) % classes
    centres = rng.normal(0, 3, (classes, d))
    return centres[y] + rng.normal(0, spread, (n, d)), y


def test_the_evidence_is_the_gaussian_density_of_the_targets():
    rng = np.random.default_rng(0)
    f, t = rng.normal(size=(12, 3)), rng.normal(size=12)
    for alpha, beta in ((1.0, 1.0), (0.3, 4.0), (7.0, 0.5)):
        covariance = np.eye(12) / beta + f @ f.T / alpha  # t = f w + e, w ~ N(0, 1/α), e ~ N(0, 1/β)
        assert log_evidence(f, t, alpha, beta) == pytest.approx(
            multivariate_normal(np.zeros(12), covariance).logpdf(t), rel=1e-10)


def test_logme_is_the_maximum_evidence_found_by_brute_force():
    rng = np.random.default_rng(1)
    f, y = blobs(rng, n=30, d=3, classes=2)
    brute = []
    for k in range(2):
        t = (y == k).astype(float)
        best = -np.inf
        for start in ((0.0, 0.0), (-3.0, 2.0), (3.0, -1.0)):  # over log α, log β, from several starts
            result = minimize(lambda v: -log_evidence(f, t, np.exp(v[0]), np.exp(v[1])), start, method="Nelder-Mead",
                              options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 5000})
            best = max(best, -result.fun)
        brute.append(best)
    assert logme(f, y) == pytest.approx(np.mean(brute) / len(f), abs=1e-7)


def test_logme_of_rank_deficient_features_is_the_evidence_of_what_they_span():
    """Dead units (constant columns, as a small network's ReLUs give) and more features than
    examples: LogME is finite and equals the brute-force maximum of the evidence on the features
    that vary; constant features are the noise-only model, whose maximum is closed-form."""
    rng = np.random.default_rng(3)
    f, y = blobs(rng, n=20, d=3, classes=2)
    dead = np.concatenate([f, np.zeros((20, 4)), np.ones((20, 1)) * 0.0], axis=1)
    assert logme(dead, y) == pytest.approx(logme(f, y), abs=1e-9)
    wide = rng.normal(size=(8, 30))  # n < d: the features can fit any target
    assert np.isfinite(logme(wide, np.arange(8) % 3))
    y = np.arange(10) % 2
    noise_only = np.mean([5 * np.log(10 / 5) - 5 * np.log(2 * np.pi) - 5 for _ in (0, 1)]) / 10
    assert logme(np.zeros((10, 4)), y) == pytest.approx(noise_only, rel=1e-12)
    assert shrinkage_h_score(np.zeros((10, 4)), y) == 0.0


def test_logme_leaves_out_a_class_the_sample_lacks():
    """An absent class's all-zero column would be fitted exactly, its evidence without bound: the
    utterances of a SER sample carry no silence label, and they must not score as near-perfect."""
    rng = np.random.default_rng(4)
    f, y = blobs(rng, n=45, d=5, classes=3)
    # labels 3..6 absent: no columns of theirs (a count of 8 classes would have added 5 unbounded ones)
    assert logme(f, y) == pytest.approx(logme(f, np.where(y == 2, 7, y)), rel=1e-12)


def test_logme_and_h_score_prefer_separable_labels_to_shuffled_ones():
    rng = np.random.default_rng(2)
    f, y = blobs(rng, n=200, d=6, classes=4)
    shuffled = rng.permutation(y)
    assert logme(f, y) > logme(f, shuffled)
    assert shrinkage_h_score(f, y) > shrinkage_h_score(f, shuffled) >= 0


def test_ledoit_wolf_shrinkage_and_the_h_score_against_scikit_learn():
    covariance = pytest.importorskip("sklearn.covariance")
    rng = np.random.default_rng(3)
    for n, d in ((40, 5), (15, 20)):  # well and badly conditioned
        f, y = blobs(rng, n=n, d=d, classes=3)
        alpha = ledoit_wolf_shrinkage(f)
        assert alpha == pytest.approx(covariance.ledoit_wolf_shrinkage(f), rel=1e-9)
        shrunk = covariance.LedoitWolf().fit(f).covariance_  # (1 − α) S + α μ I, S over n
        centred = f - f.mean(axis=0)
        means = np.array([centred[y == label].mean(axis=0) for label in y])
        expected = np.trace(np.linalg.inv(shrunk) @ ((1 - alpha) * means.T @ means / n))
        assert shrinkage_h_score(f, y) == pytest.approx(expected, rel=1e-8)


def test_h_score_without_shrinkage_is_bao_et_als():
    rng = np.random.default_rng(4)
    f, y = blobs(rng, n=90, d=4, classes=3)
    centred = f - f.mean(axis=0)
    means = np.array([centred[y == label].mean(axis=0) for label in y])
    plain = np.trace(np.linalg.inv(centred.T @ centred) @ (means.T @ means))  # tr(cov(f)⁻¹ cov(E[f | y]))
    assert shrinkage_h_score(f, y, shrinkage=0.0) == pytest.approx(plain, rel=1e-10)
    # features that are their class means: cov(f) = cov(E[f | y]), so H is its rank, classes − 1
    assert shrinkage_h_score(means[:, :2] @ np.diag([1.0, 3.0]) + 1.0, y, shrinkage=0.0) == pytest.approx(2.0)


def test_leep_against_its_definition():
    rng = np.random.default_rng(5)
    theta = rng.dirichlet(np.ones(4), size=25)  # a source model's softmax over 4 source classes
    y = rng.integers(0, 3, 25)
    joint = np.zeros((3, 4))
    for i in range(25):
        joint[y[i]] += theta[i] / 25
    conditional = joint / joint.sum(axis=0)
    expected = np.mean([np.log(sum(conditional[y[i], z] * theta[i, z] for z in range(4))) for i in range(25)])
    assert leep(theta, y) == pytest.approx(expected, rel=1e-12)
    # source classes that determine the target's give LEEP 0 (log 1), the maximum
    assert leep(np.eye(3)[y], y) == pytest.approx(0.0, abs=1e-12)


def test_linear_probe():
    rng = np.random.default_rng(6)
    f, y = blobs(rng, n=120, d=5, classes=3, spread=0.2)
    assert linear_probe_error(f[:60], y[:60], f[60:], y[60:], 3) == 0.0
    noise = rng.normal(size=(120, 5))
    assert linear_probe_error(noise[:60], y[:60], noise[60:], y[60:], 3) > 30.0
    # unweighted: a probe that always says class 0 recalls 1 of 3 classes
    unbalanced = np.r_[np.zeros(8, int), [1, 2]]
    assert linear_probe_error(f[:60], y[:60], np.zeros((10, 5)) + f[y == 0][:1], unbalanced, 3,
                              unweighted=True) == pytest.approx(100 * (1 - 1 / 3))
    sklearn = pytest.importorskip("sklearn.linear_model")
    from gradual_transfer.estimates import PROBE_L2, fit_linear_probe

    w, b = fit_linear_probe(f, y, 3)
    z = (f - f.mean(axis=0)) / f.std(axis=0)
    reference = sklearn.LogisticRegression(C=1 / (PROBE_L2 * len(f)), tol=1e-10, max_iter=10000).fit(z, y)
    assert np.allclose(np.argmax(f @ w + b, axis=1), reference.predict(z))
    # classes that overlap, with more of them: the same optimum as scikit-learn's (probabilities)
    f, y = blobs(rng, n=300, d=6, classes=5, spread=3.0)
    w, b = fit_linear_probe(f, y, 5)
    z = (f - f.mean(axis=0)) / f.std(axis=0)
    reference = sklearn.LogisticRegression(C=1 / (PROBE_L2 * len(f)), tol=1e-12, max_iter=100000).fit(z, y)
    logits = f @ w + b
    ours = np.exp(logits - logits.max(axis=1, keepdims=True))
    # the optimum is flat along some directions: L-BFGS stops on the objective's relative change
    assert np.allclose(ours / ours.sum(axis=1, keepdims=True), reference.predict_proba(z), atol=2e-3)
    assert np.array_equal(np.argmax(logits, axis=1), reference.predict(z))

    def objective(weights, biases):  # mean cross-entropy + l2 ‖W‖² / 2, on the standardised features
        scores = z @ weights + biases
        scores -= scores.max(axis=1, keepdims=True)
        log_p = scores - np.log(np.exp(scores).sum(axis=1, keepdims=True))
        return -log_p[np.arange(len(y)), y].mean() + PROBE_L2 / 2 * np.sum(weights**2)

    ours_in_z = (w * f.std(axis=0)[:, None], b + f.mean(axis=0) @ w)
    assert objective(*ours_in_z) == pytest.approx(objective(reference.coef_.T, reference.intercept_), rel=1e-6)


def test_rank_agreement_is_kendalls_tau():
    a, b = [3.0, 1.0, 4.0, 1.5, 5.0, 9.0], [2.0, 0.5, 3.0, 1.0, 2.5, 8.0]
    result = rank_agreement(a, b)
    expected = kendalltau(a, b, method="exact")
    assert (result.tau, result.p_value, result.n, result.method) == (expected.statistic, expected.pvalue, 6, "exact")
    tied = rank_agreement([1.0, 1.0, 2.0, 3.0], [1.0, 2.0, 3.0, np.nan])
    assert tied.n == 3 and tied.method == "asymptotic"
    assert np.isnan(rank_agreement([1.0, 2.0], [2.0, 1.0]).tau)


def test_cka_formulas_and_invariances():
    rng = np.random.default_rng(7)
    x = rng.normal(size=(50, 8))
    y = x @ rng.normal(size=(8, 6)) + 0.5 * rng.normal(size=(50, 6))
    # the plug-in CKA from its kernels: tr(KHLH) / √(tr(KHKH) tr(LHLH))
    h = np.eye(50) - 1 / 50
    k, l = x @ x.T, y @ y.T
    hsic = lambda a, b: np.trace(a @ h @ b @ h)  # noqa: E731
    assert linear_cka(x, y) == pytest.approx(hsic(k, l) / np.sqrt(hsic(k, k) * hsic(l, l)), rel=1e-10)
    q, _ = np.linalg.qr(rng.normal(size=(8, 8)))
    for cka in (linear_cka, debiased_cka):
        assert cka(x, x) == pytest.approx(1.0)
        assert cka(x @ q * 3.7, y) == pytest.approx(cka(x, y), rel=1e-9)  # orthogonal transform, scaling
        assert cka(x + 5.0, y) == pytest.approx(cka(x, y), rel=1e-9)      # centred first
    # independent representations: the plug-in form is biased up on a small sample, the unbiased one is not
    plug_in, unbiased = [], []
    for _ in range(20):
        a, b = rng.normal(size=(20, 30)), rng.normal(size=(20, 30))
        plug_in.append(linear_cka(a, b))
        unbiased.append(debiased_cka(a, b))
    assert np.mean(plug_in) > 0.5 and abs(np.mean(unbiased)) < 0.05


def test_unbiased_hsic_against_its_sum_over_distinct_index_tuples():
    # Song et al.'s estimator is the U-statistic of h over distinct (i, j, q, r): check on n = 5
    import itertools

    rng = np.random.default_rng(8)
    x, y = rng.normal(size=(5, 2)), rng.normal(size=(5, 3))
    k, l = x @ x.T, y @ y.T
    n = 5
    total = 0.0
    for i, j, q, r in itertools.permutations(range(n), 4):
        total += k[i, j] * l[i, j] + k[i, j] * l[q, r] - 2 * k[i, j] * l[i, q]
    assert unbiased_hsic(k, l) == pytest.approx(total / (n * (n - 1) * (n - 2) * (n - 3)), rel=1e-10)
