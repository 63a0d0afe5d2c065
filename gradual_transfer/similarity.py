"""Representation similarity: linear centred kernel alignment (CKA) between two representations
of the same examples (Kornblith, Norouzi, Lee & Hinton, "Similarity of Neural Network
Representations Revisited", ICML 2019).

With X (n × p) and Y (n × q) the two representations, K = XXᵀ and L = YYᵀ their linear kernels,
CKA = HSIC(K, L) / √(HSIC(K, K) HSIC(L, L)). It is 1 for representations equal up to an
orthogonal transform and an isotropic scaling, and does not change under either.

- :func:`linear_cka`: the plug-in form with the biased HSIC estimator, (1/(n−1)²) tr(KHLH):
  equal to ‖YᵀX‖²_F / (‖XᵀX‖_F ‖YᵀY‖_F) for column-centred X and Y (Kornblith et al., eq. 5).
  It is biased upwards on small samples: two independent random representations of n
  examples score well above 0.
- :func:`debiased_cka`: the same ratio of the unbiased HSIC estimator (Song, Smola, Gretton,
  Bedo & Borgwardt, JMLR 2012, eq. 5; used for CKA by Nguyen, Raghu & Kornblith, ICLR 2021):
  HSIC₁(K, L) = [tr(K̃L̃) + 1ᵀK̃1 1ᵀL̃1 / ((n − 1)(n − 2)) − 2/(n − 2) 1ᵀK̃L̃1] / (n(n − 3)), K̃ and
  L̃ the kernels with their diagonals set to 0. Near 0 for independent representations at any n;
  what the tables report, since their samples are small.
"""

from __future__ import annotations

import math

import numpy as np


def _centred(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    x = x.reshape(len(x), -1)
    return x - x.mean(axis=0)


def linear_cka(x: np.ndarray, y: np.ndarray) -> float:
    """The plug-in linear CKA of two representations of the same examples (rows)."""
    x, y = _centred(x), _centred(y)
    cross = np.sum((y.T @ x) ** 2)
    norms = np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y)
    return float(cross / norms) if norms > 0 else float("nan")


def unbiased_hsic(k: np.ndarray, l: np.ndarray) -> float:
    """Song et al.'s unbiased HSIC estimator of two n × n kernel matrices (n ≥ 4)."""
    n = len(k)
    if n < 4:
        raise ValueError(f"the unbiased HSIC needs at least 4 examples, not {n}")
    k, l = k.copy(), l.copy()
    np.fill_diagonal(k, 0.0)
    np.fill_diagonal(l, 0.0)
    ones_k, ones_l = k.sum(axis=0), l.sum(axis=0)  # 1ᵀK̃ and 1ᵀL̃
    value = (np.sum(k * l) + ones_k.sum() * ones_l.sum() / ((n - 1) * (n - 2))
             - 2 / (n - 2) * ones_k @ ones_l)
    return float(value / (n * (n - 3)))


def debiased_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Linear CKA from the unbiased HSIC estimator; NaN where a representation is constant. It
    can fall slightly below 0 (or above 1) on small samples, as an unbiased estimate may."""
    x, y = _centred(x), _centred(y)
    k, l = x @ x.T, y @ y.T
    xy, xx, yy = unbiased_hsic(k, l), unbiased_hsic(k, k), unbiased_hsic(l, l)
    return float(xy / math.sqrt(xx * yy)) if xx > 0 and yy > 0 else float("nan")
