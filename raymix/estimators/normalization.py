"""Normalizations A^t → Ā^t of Aioli's learned interaction matrix (paper Algorithm 1, line 5).

The paper normalizes A^t before the EGD step "otherwise A^t decreases along with loss over time, resulting in
the first few p^t updates being much larger in magnitude than others".  It does not say how; the authors'
code shifts by the minimum and divides by the total ("shift_sum").  raymix makes the choice a named option
(registry :data:`NORMALIZATIONS`) and exposes the consequence of each choice for how far p can move
(:func:`reachable_range`).

Every normalization except ``"none"`` is scale-invariant: ``normalize(c·A) == normalize(A)`` for ``c > 0``,
which is exactly the property that removes the shrinking-loss effect.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from raymix.errors import ConfigError, FitError


def check_interaction_matrix(A: np.ndarray) -> np.ndarray:
    """``A`` as a float array, or :class:`FitError` unless it is a finite square ``(m, m)`` matrix."""
    A = np.asarray(A, dtype=float)
    if A.ndim != 2 or A.shape[0] != A.shape[1]:
        raise FitError(f"an interaction matrix must be square (m, m), got shape {A.shape}")
    if not np.isfinite(A).all():
        raise FitError(f"interaction matrix must be finite, got {A.tolist()}; check the losses it was learned from")
    return A


def shift_sum(A: np.ndarray) -> np.ndarray:
    """The authors' normalization: if ``min(A) < 0`` subtract ``min(A)`` from every entry, then divide by the sum.

    Afterwards every entry is in [0, 1] and all entries sum to 1, so the column sums ``1ᵀĀ`` lie on the
    simplex.  A matrix that is constant after the shift (all entries equal and ≤ 0) carries no direction and
    maps to zeros, i.e. no EGD move.
    """
    A = check_interaction_matrix(A)
    lo = A.min()
    if lo < 0:
        A = A - lo
    total = A.sum()
    return A / total if total > 0 else np.zeros_like(A)


def abs_sum(A: np.ndarray) -> np.ndarray:
    """Divide by ``Σ|A_ij|``: keeps signs (a harmful group stays harmful); column sums satisfy ``Σ_j |s_j| ≤ 1``."""
    A = check_interaction_matrix(A)
    total = np.abs(A).sum()
    return A / total if total > 0 else np.zeros_like(A)


def frobenius(A: np.ndarray) -> np.ndarray:
    """Divide by ``‖A‖_F``: keeps signs; any two column sums differ by at most ``sqrt(2m)``."""
    A = check_interaction_matrix(A)
    n = float(np.linalg.norm(A))
    return A / n if n > 0 else np.zeros_like(A)


def identity(A: np.ndarray) -> np.ndarray:
    """No normalization (the raw A^t; its scale shrinks with the loss, paper §5)."""
    return check_interaction_matrix(A).copy()


#: name → function ``(m, m) -> (m, m)``.
NORMALIZATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "shift_sum": shift_sum,
    "abs_sum": abs_sum,
    "frobenius": frobenius,
    "none": identity,
}


def _get(method: str) -> Callable[[np.ndarray], np.ndarray]:
    try:
        return NORMALIZATIONS[method]
    except (KeyError, TypeError):
        raise ConfigError(
            f"unknown normalization {method!r}; valid names: {sorted(NORMALIZATIONS)}"
        ) from None


def normalize(A: np.ndarray, method: str = "shift_sum") -> np.ndarray:
    """Ā^t = normalization ``method`` of ``A`` ``(m, m)`` (paper Algorithm 1, line 5).

    Raises:
        ConfigError: unknown ``method`` (the message lists the valid names).
        FitError: ``A`` not square or not finite.
    """
    return _get(method)(A)


def max_colsum_spread(method: str, m: int) -> float:
    """Upper bound D on ``s_j − s_l`` for the column sums ``s = 1ᵀĀ`` of a normalized matrix.

    ``shift_sum``: s is on the simplex, D = 1.  ``abs_sum``: ``Σ|s_j| ≤ 1``, D = 1.  ``frobenius``:
    ``s_j − s_l = Σ_i (Ā_ij − Ā_il) ≤ sqrt(m)·sqrt(2)`` by Cauchy–Schwarz, D = sqrt(2m).  ``none``: ∞.
    """
    _get(method)
    if m < 1:
        raise ConfigError(f"number of groups m must be >= 1, got {m!r}")
    return {"shift_sum": 1.0, "abs_sum": 1.0, "frobenius": float(np.sqrt(2 * m)), "none": float("inf")}[method]


def reachable_range(p0: np.ndarray, eta: float, method: str = "shift_sum", *, gamma: float | None = 0.5,
                    rounds: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Interval each ``p_j`` can reach under Aioli's update, whatever A^t is learned (ALGORITHMS.md note).

    With EMA (``gamma`` not None, paper App. D) ``p^t ∝ p^0·exp(η·1ᵀE^t)`` and ``E^t`` is a convex
    combination of normalized matrices, so its column sums obey the same bound D as one Ā
    (:func:`max_colsum_spread`): ``p_j/p_l ≤ (p0_j/p0_l)·e^{ηD}``.  Without EMA the exponents add up over
    ``rounds`` rounds, so the bound uses ``η·D·rounds``.  From the ratio bound R = e^{ηD(·rounds)}:

        lo_j = p0_j / (p0_j + R·(1 − p0_j)),   hi_j = R·p0_j / (R·p0_j + 1 − p0_j).

    The bound is tight for m = 2 with ``shift_sum``: for p0 = (½, ½), η = 0.2 under EMA the mixture can never
    leave [0.4502, 0.5498] — the trainer should warn when that range excludes the mixtures it needs.

    Args:
        p0: ``(m,)`` initial proportions.
        eta: EGD step size η ≥ 0.
        method: normalization name.
        gamma: EMA weight γ, or None for the plain multiplicative update.
        rounds: number of rounds T (only used without EMA).

    Returns:
        ``(lo, hi)``, two ``(m,)`` arrays with ``0 ≤ lo ≤ p0 ≤ hi ≤ 1``.
    """
    p0 = np.asarray(p0, dtype=float)
    if p0.ndim != 1 or np.any(p0 < 0) or abs(p0.sum() - 1) > 1e-6:
        raise ConfigError(f"p0 must be a point of the simplex, got {p0.tolist()}")
    if not np.isfinite(eta) or eta < 0:
        raise ConfigError(f"eta must be a finite number >= 0, got {eta!r}")
    if int(rounds) != rounds or rounds < 1:
        raise ConfigError(f"rounds must be a positive integer, got {rounds!r}")
    D = max_colsum_spread(method, p0.size)
    expo = eta * D * (1 if gamma is not None else rounds)
    if not np.isfinite(expo):
        return np.zeros_like(p0), np.where(p0 > 0, 1.0, 0.0)
    R = float(np.exp(expo))
    with np.errstate(invalid="ignore", divide="ignore"):
        lo = np.where(p0 > 0, p0 / (p0 + R * (1 - p0)), 0.0)
        hi = np.where(p0 > 0, R * p0 / (R * p0 + 1 - p0), 0.0)
    return lo, hi
