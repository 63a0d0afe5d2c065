"""Transferability estimates: how well a frozen representation suits a target's labels, scored
without fine-tuning, from the papers' definitions.

Each takes features ``f`` (n × d, one row per example, pooled as the next group would see them)
and the target's integer labels ``y``:

- :func:`logme` — You, Liu, Wang & Long, "LogME: Practical Assessment of Pre-trained Models for
  Transfer Learning" (ICML 2021): for each class, the log evidence of a Bayesian linear
  regression of its one-hot column on the features, maximised over the prior precision α and
  the noise precision β, per example, averaged over the classes. Larger is better.
- :func:`shrinkage_h_score` — the H-score of Bao et al. (ICIP 2019), tr(cov(f)⁻¹ cov(E[f | y])),
  with the covariance of the features shrunk as Ibrahim, Ponomareva & Mazumder (ICLR 2022,
  "Newer is not always better") do: cov_α = (1 − α) cov(f) + α σ I, α the Ledoit–Wolf shrinkage
  (:func:`ledoit_wolf_shrinkage`), σ the mean variance; H_α = tr(cov_α⁻¹ (1 − α) cov(E[f | y])).
  Larger is better.
- :func:`leep` — Nguyen, Hassner, Seeger & Archambeau (ICML 2020): from the source model's own
  softmax over its source classes (so only with the whole source network, l_c = L_H), the
  mean log-likelihood of the target labels under the empirical conditional P(y | z) of the
  dummy label z. Larger is better.
- :func:`linear_probe_error` — a multinomial logistic regression on the features (L2-penalised,
  fitted exactly by L-BFGS), scored on held-out features: the plain baseline the others claim
  to approximate. Lower is better.

And :func:`rank_agreement`: Kendall's τ between estimates and measured scores, with its p-value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

LOGME_ITERATIONS = 100  # the fixed point converges in a few steps; this is a bound, not a budget
LOGME_TOLERANCE = 1e-6  # relative change of α/β at which the fixed point has converged


def _one_hot(y: np.ndarray, classes: int | None = None) -> np.ndarray:
    y = np.asarray(y, dtype=int)
    k = int(classes if classes is not None else y.max() + 1)
    return np.eye(k)[y]


def log_evidence(f: np.ndarray, t: np.ndarray, alpha: float, beta: float) -> float:
    """The log evidence log p(t | f, α, β) of a Bayesian linear regression t = f w + noise, with
    w ~ N(0, α⁻¹ I) and noise ~ N(0, β⁻¹): the quantity LogME maximises (You et al., eq. 2)."""
    n, d = f.shape
    a = alpha * np.eye(d) + beta * f.T @ f
    m = beta * np.linalg.solve(a, f.T @ t)
    residual = t - f @ m
    _, logdet = np.linalg.slogdet(a)
    return float(n / 2 * math.log(beta) + d / 2 * math.log(alpha) - n / 2 * math.log(2 * math.pi)
                 - beta / 2 * residual @ residual - alpha / 2 * m @ m - logdet / 2)


def _max_evidence(f: np.ndarray, s: np.ndarray, v: np.ndarray, t: np.ndarray) -> float:
    """max over α, β of :func:`log_evidence` for one target column, by MacKay's fixed point in
    the eigenbasis of fᵀf = v diag(s) vᵀ: γ = Σ βs/(α + βs), α = γ / mᵀm, β = (n − γ)/‖t − fm‖².

    Only the directions the features span (s > 0) enter: a direction with s = 0 adds
    ½ log α − ½ log α = 0 to the evidence, so a constant or rank-deficient representation (dead
    units of a small network) is scored as what it spans, and a representation that spans
    nothing, or nothing of `t`, as the noise-only model t ~ N(0, β⁻¹ I) (β = n / ‖t‖²), the
    limit α → ∞ of the fixed point."""
    n = len(t)
    projected = v.T @ (f.T @ t)  # fᵀt in the eigenbasis
    spanned = s > max(float(s.max(initial=0.0)), 0.0) * 1e-10
    s, v, projected = s[spanned], v[:, spanned], projected[spanned]
    tt = float(t @ t)
    if not spanned.any() or float(projected @ projected) <= 1e-24 * tt * max(float(s.max(initial=1.0)), 1.0):
        beta = n / tt
        return n / 2 * math.log(beta) - n / 2 * math.log(2 * math.pi) - n / 2
    alpha, beta = 1.0, 1.0
    for _ in range(LOGME_ITERATIONS):
        m_eig = beta * projected / (alpha + beta * s)
        gamma = float(np.sum(beta * s / (alpha + beta * s)))
        residual = float(np.sum((t - f @ (v @ m_eig)) ** 2))
        new_alpha = gamma / max(float(m_eig @ m_eig), 1e-300)
        new_beta = max(n - gamma, 1e-12) / max(residual, 1e-300)
        converged = (abs(new_alpha - alpha) <= LOGME_TOLERANCE * alpha
                     and abs(new_beta - beta) <= LOGME_TOLERANCE * beta)
        alpha, beta = new_alpha, new_beta
        if converged:
            break
    m_eig = beta * projected / (alpha + beta * s)
    residual = float(np.sum((t - f @ (v @ m_eig)) ** 2))
    return float(n / 2 * math.log(beta) - n / 2 * math.log(2 * math.pi) - beta / 2 * residual
                 - alpha / 2 * float(m_eig @ m_eig) + 0.5 * np.sum(np.log(alpha / (alpha + beta * s))))


def logme(f: np.ndarray, y: np.ndarray) -> float:
    """LogME: the maximum log evidence per example, averaged over the one-hot columns of the
    classes present in `y`. A class absent from the sample has no column: its all-zero target
    would be fitted exactly and its evidence grow without bound (a class the sample lacks, or a
    silence class that no utterance carries, would otherwise swamp the mean)."""
    f = np.asarray(f, dtype=np.float64)
    y = np.asarray(y)
    s, v = np.linalg.eigh(f.T @ f)
    s = np.clip(s, 0.0, None)
    return float(np.mean([_max_evidence(f, s, v, (y == label).astype(np.float64)) for label in np.unique(y)])
                 / len(f))


def ledoit_wolf_shrinkage(f: np.ndarray) -> float:
    """The Ledoit–Wolf (2004) shrinkage intensity towards μI (μ the mean variance) of the
    covariance of `f` (rows centred here), as an estimate of the MSE-optimal one: min(b², d²)/d²
    with d² = ‖S − μI‖² and b² = (1/n²) Σᵢ ‖xᵢxᵢᵀ − S‖², norms scaled by 1/p."""
    x = np.asarray(f, dtype=np.float64)
    x = x - x.mean(axis=0)
    n, p = x.shape
    cov = x.T @ x / n
    mu = np.trace(cov) / p
    d2 = np.sum((cov - mu * np.eye(p)) ** 2) / p
    b2 = (np.sum(np.sum(x**2, axis=1) ** 2) / n - np.sum(cov**2)) / (n * p)
    return 0.0 if d2 == 0 else float(min(b2, d2) / d2)


def shrinkage_h_score(f: np.ndarray, y: np.ndarray, shrinkage: float | None = None) -> float:
    """The shrinkage H-score H_α of Ibrahim et al. (see the module's docstring), with the
    covariances over the n examples (1/n); `shrinkage` replaces the Ledoit–Wolf α (0: Bao et
    al.'s plain H-score)."""
    x = np.asarray(f, dtype=np.float64)
    x = x - x.mean(axis=0)
    y = np.asarray(y)
    n, p = x.shape
    alpha = ledoit_wolf_shrinkage(x) if shrinkage is None else shrinkage
    cov = x.T @ x / n
    shrunk = (1 - alpha) * cov + alpha * np.trace(cov) / p * np.eye(p)
    class_means = np.zeros_like(x)
    for label in np.unique(y):
        class_means[y == label] = x[y == label].mean(axis=0)
    between = class_means.T @ class_means / n  # cov(E[f | y]); the class means average to 0
    if np.trace(cov) == 0:
        return 0.0  # constant features: no class is told apart
    # least squares: the plain H-score (α = 0) of rank-deficient features uses the pseudo-inverse
    return float(np.trace(np.linalg.lstsq(shrunk, (1 - alpha) * between, rcond=None)[0]))


def leep(source_probabilities: np.ndarray, y: np.ndarray, classes: int | None = None) -> float:
    """LEEP from the source model's softmax θ(x) (n × Z) and the target labels: with the
    empirical joint P(y, z) = (1/n) Σ_{i: yᵢ = y} θ(xᵢ)_z and P(y | z) = P(y, z) / P(z), the mean
    of log Σ_z P(yᵢ | z) θ(xᵢ)_z."""
    theta = np.asarray(source_probabilities, dtype=np.float64)
    targets = _one_hot(y, classes)
    joint = targets.T @ theta / len(theta)  # (Y, Z)
    conditional = joint / np.clip(joint.sum(axis=0, keepdims=True), 1e-300, None)
    likelihood = np.sum((theta @ conditional.T) * targets, axis=1)
    return float(np.mean(np.log(likelihood)))


PROBE_L2 = 1e-4  # the probe's penalty on its weights (per example); fixed, documented, not tuned


def fit_linear_probe(f: np.ndarray, y: np.ndarray, classes: int, l2: float = PROBE_L2) -> tuple[np.ndarray, np.ndarray]:
    """A multinomial logistic regression (weights, biases) minimising the mean cross-entropy +
    l2 ‖W‖² / 2 on standardised features, to convergence by L-BFGS (a convex problem: one
    optimum, whatever the start). Returns the weights for raw features (standardisation folded in)."""
    from scipy.optimize import minimize

    x = np.asarray(f, dtype=np.float64)
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale == 0] = 1.0
    z = (x - mean) / scale
    n, d = z.shape
    y = np.asarray(y, dtype=int)
    rows = np.arange(n)

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        # the labels index the log-softmax instead of multiplying a one-hot matrix, in place:
        # ×3 per call on 2,000 frames × 144 states (the probe is most of a speech estimates job)
        w, b = theta[: d * classes].reshape(d, classes), theta[d * classes:]
        logits = z @ w + b
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        total = p.sum(axis=1)
        value = (np.sum(np.log(total)) - np.sum(logits[rows, y])) / n + l2 / 2 * float(np.sum(w * w))
        p /= total[:, None]  # softmax
        p[rows, y] -= 1.0  # its gradient wrt the logits, times n
        p /= n
        return value, np.concatenate([(z.T @ p + l2 * w).ravel(), p.sum(axis=0)])

    result = minimize(loss, np.zeros(d * classes + classes), jac=True, method="L-BFGS-B",
                      options={"maxiter": 2000, "gtol": 1e-8})
    w, b = result.x[: d * classes].reshape(d, classes), result.x[d * classes:]
    return w / scale[:, None], b - (mean / scale) @ w


def linear_probe_error(train_f: np.ndarray, train_y: np.ndarray, test_f: np.ndarray, test_y: np.ndarray,
                       classes: int, unweighted: bool = False) -> float:
    """The error (%) of a linear probe fitted on (train_f, train_y), on (test_f, test_y): top-1
    error, or with `unweighted` 100 minus the mean recall over the classes present in test_y."""
    w, b = fit_linear_probe(train_f, train_y, classes)
    predicted = np.argmax(np.asarray(test_f, dtype=np.float64) @ w + b, axis=1)
    test_y = np.asarray(test_y)
    if unweighted:
        recalls = [np.mean(predicted[test_y == label] == label) for label in np.unique(test_y)]
        return float(100 * (1 - np.mean(recalls)))
    return float(100 * np.mean(predicted != test_y))


@dataclass(frozen=True)
class Agreement:
    """Kendall's τ-b between estimates and measured scores over ``n`` points, its two-sided
    p-value (exact where scipy computes it exactly: no ties and n ≤ 50; else its normal
    approximation, said by ``method``), NaN with fewer than 3 points."""

    tau: float
    p_value: float
    n: int
    method: str


def rank_agreement(estimates, measured) -> Agreement:
    """How far an estimate ranks the points as the measurement does: Kendall's τ over the pairs
    both have (NaN pairs left out). Estimates and measurements must be oriented alike (both
    "larger is better", or both errors) by the caller."""
    from scipy.stats import kendalltau

    a, b = np.asarray(estimates, dtype=float), np.asarray(measured, dtype=float)
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    n = len(a)
    if n < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return Agreement(float("nan"), float("nan"), n, "")
    ties = len(np.unique(a)) < n or len(np.unique(b)) < n
    method = "asymptotic" if ties or n > 50 else "exact"
    result = kendalltau(a, b, method=method)
    return Agreement(float(result.statistic), float(result.pvalue), n, method)
