"""sim(Ã, A*): how well a method's interaction matrix points p the right way (paper §4.3, App. C.2).

``similarity`` compares normalized column sums; ``fit_scale`` / ``fit_scale_to_dynamics`` fit the scalar
``b^t`` of ``Ã = b^t·A^t``.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import spearmanr

from raymix.errors import FitError
from raymix.estimators.normalization import check_interaction_matrix


def normalized_column_sums(A: np.ndarray) -> np.ndarray:
    """``1ᵀA / ‖1ᵀA‖₂`` — the direction in which EGD (Lemma 1) moves p."""
    A = check_interaction_matrix(A)
    s = A.sum(axis=0)
    n = np.linalg.norm(s)
    if n == 0:
        raise FitError(f"column sums of {A.tolist()} are all zero; similarity is undefined")
    return s / n


def _direction(A: np.ndarray) -> np.ndarray:
    """Normalized column sums of an (m, m) matrix, or an (m,) vector taken as the column sums themselves."""
    v = np.asarray(A, dtype=float)
    if v.ndim != 1:
        return normalized_column_sums(v)
    if not np.isfinite(v).all() or np.linalg.norm(v) == 0:
        raise FitError(f"column sums {v.tolist()} must be finite and not all zero; similarity is undefined")
    return v / np.linalg.norm(v)


def similarity(A_tilde: np.ndarray, A_star: np.ndarray) -> float:
    """``0.5·cos(ã, a*) + 0.5·Spearman(ã, a*)`` of normalized column sums (paper §4.3).

    Either argument may be an ``(m, m)`` matrix or its ``(m,)`` column sums (a method such as DoGE whose A^t
    is only observed through them).  In [-1, 1]; 1 when ã = a*.  Spearman of two constant vectors (or m=1)
    is taken as 1 when the vectors are equal and 0 otherwise, so the score stays defined for degenerate inputs.
    """
    a = _direction(A_tilde)
    b = _direction(A_star)
    if a.shape != b.shape:
        raise FitError(f"matrices differ in size: {A_tilde.shape} vs {A_star.shape}")
    cos = float(np.dot(a, b))
    if a.size < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        rho = 1.0 if np.allclose(a, b) else 0.0
    else:
        rho = float(spearmanr(a, b).statistic)
    return 0.5 * cos + 0.5 * rho


def fit_scale(A: np.ndarray, A_star: np.ndarray) -> float:
    """Least-squares scalar ``b = argmin_b ‖b·A − A*‖_F² = ⟨A, A*⟩_F / ‖A‖_F²`` (paper App. C.2).

    A shortcut for when the method's ``A`` ``(m, m)`` and the fitted ``A*`` ``(m, m)`` are both at hand.  The
    paper instead fits ``b^t`` to the sweep's losses — see :func:`fit_scale_to_dynamics`, which weighs the
    entries of ``A`` by how much the swept mixtures actually use them.  ``b`` can be negative (``A`` points
    the wrong way); it does not change ``sim`` up to sign but matters for ``Ã = b·A``.
    """
    A = np.asarray(A, dtype=float)
    A_star = np.asarray(A_star, dtype=float)
    if A.ndim != 2 or A.shape != A_star.shape or A.shape[0] != A.shape[1]:
        raise FitError(f"fit_scale needs two (m, m) matrices of the same shape, got {A.shape} and {A_star.shape}")
    if not (np.isfinite(A).all() and np.isfinite(A_star).all()):
        raise FitError(f"fit_scale needs finite matrices, got A={A.tolist()} and A*={A_star.tolist()}")
    denom = float(np.sum(A * A))
    if denom == 0:
        raise FitError(f"A is all zeros ({A.tolist()}); no scale b makes b·A match A*")
    return float(np.sum(A * A_star)) / denom


def fit_scale_to_dynamics(A: np.ndarray, P_t: np.ndarray, L_t: np.ndarray, L_next: np.ndarray) -> float:
    """One scalar ``b^t`` across all groups with ``L^{t+1} ≈ L^t − b^t·A p^t`` (paper App. C.2).

    Closed-form least squares over all runs and groups: with ``X = P_t Aᵀ`` ``(n, m)`` and
    ``Y = L_t − L_next`` ``(n, m)``, ``b = ⟨X, Y⟩ / ⟨X, X⟩``.  ``Ã = b·A`` is then compared with ``A*`` by
    :func:`similarity`.

    Args:
        A: ``(m, m)`` the method's interaction matrix at step t.
        P_t: ``(n, m)`` mixtures of the sweep's runs for the round after t.
        L_t: ``(n, m)`` per-group losses at t (the shared checkpoint).
        L_next: ``(n, m)`` per-group losses after the round.
    """
    A = np.asarray(A, dtype=float)
    P_t, L_t, L_next = (np.asarray(x, dtype=float) for x in (P_t, L_t, L_next))
    if A.ndim != 2 or A.shape[0] != A.shape[1]:
        raise FitError(f"A must be square (m, m), got shape {A.shape}")
    m = A.shape[0]
    for name, X in (("P_t", P_t), ("L_t", L_t), ("L_next", L_next)):
        if X.ndim != 2 or X.shape[1] != m or X.shape[0] != P_t.shape[0] or X.shape[0] == 0:
            raise FitError(f"{name} must have shape (n, {m}) like P_t {P_t.shape}, got {X.shape}")
        if not np.isfinite(X).all():
            raise FitError(f"{name} of shape {X.shape} contains NaN/inf; drop those runs")
    if not np.isfinite(A).all():
        raise FitError(f"A must be finite, got {A.tolist()}")
    X = P_t @ A.T
    denom = float(np.sum(X * X))
    if denom == 0:
        raise FitError(f"A p^t is zero for every run (A={A.tolist()}); b^t is undefined")
    return float(np.sum(X * (L_t - L_next))) / denom
