"""Solvers for p in the LMO problem (paper §3.1, eq. 1).

Three ways of turning mixing-law parameters into proportions, matching the "solver" column of the
paper's Table 1:

* :func:`egd_update` — the exponentiated-gradient step of Lemma 1 used by every online method;
* :func:`greedy_optimum` — the exact one-step optimum of the linear dynamic law (App. C.3), a vertex;
* :func:`minimize_on_simplex` — direct minimization of a smooth objective over Δ^m (DML's solver),
  with :func:`two_group_closed_form` for the m=2 log-linear static law and :func:`project_to_simplex`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.optimize import minimize

from raymix.errors import ConfigError, FitError, MixtureError

__all__ = [
    "egd_update",
    "greedy_optimum",
    "minimize_on_simplex",
    "project_to_simplex",
    "two_group_closed_form",
]


def egd_update(p: np.ndarray, A: np.ndarray, eta: float) -> np.ndarray:
    """One exponentiated-gradient-descent step on the simplex (paper Lemma 1, eq. 3).

    ``p_next_j ∝ p_j · exp(η · Σ_i A_ij)`` — column sums of the interaction matrix ``A`` (``b^t`` absorbed
    into ``A``).  Computed in log space (shifted by the max) so large ``η·ΣA`` cannot overflow.

    Args:
        p: ``(m,)`` current proportions on the simplex.
        A: ``(m, m)`` interaction matrix, ``A[i, j]`` = how much training on group j lowers group i's loss.
        eta: step size η > 0.

    Returns:
        ``(m,)`` next proportions (sums to 1).
    """
    p = np.asarray(p, dtype=float)
    A = np.asarray(A, dtype=float)
    if p.ndim != 1 or A.shape != (p.size, p.size):
        raise MixtureError(f"egd_update needs p of shape (m,) and A of shape (m, m); got {p.shape} and {A.shape}")
    if not np.isfinite(eta) or eta < 0:
        raise ConfigError(f"EGD step size eta must be a finite number >= 0, got {eta!r}")
    if np.any(p < 0) or not np.isfinite(p).all() or abs(p.sum() - 1) > 1e-6:
        raise MixtureError(f"egd_update needs p on the simplex, got {p.tolist()}")
    if not np.isfinite(A).all():
        raise MixtureError(f"interaction matrix A must be finite, got {A.tolist()}")
    with np.errstate(divide="ignore"):
        logits = np.log(p) + eta * A.sum(axis=0)
    logits -= np.max(logits)
    w = np.exp(logits)
    return w / w.sum()


def _square_matrix(A: np.ndarray, what: str) -> np.ndarray:
    A = np.asarray(A, dtype=float)
    if A.ndim != 2 or A.shape[0] != A.shape[1] or A.shape[0] < 1:
        raise FitError(f"{what} must be a square (m, m) matrix with m >= 1, got shape {A.shape}")
    if not np.isfinite(A).all():
        raise FitError(f"{what} must be finite, got {A.tolist()}")
    return A


def greedy_optimum(A: np.ndarray) -> np.ndarray:
    """Exact one-step optimum of the linear dynamic law (paper App. C.3).

    Minimizing ``Σ_i L^{t+1}_i = Σ_i L^t_i − 1ᵀ A p`` over the simplex is a linear program whose optimum is
    the vertex ``1_j`` with ``j = argmax_j Σ_i A_ij``.  Ties go to the lowest index (``np.argmax``).  The
    paper notes the law is misspecified at the vertices, which is why online methods use EGD instead;
    this is the reference point, not a recommended mixture.

    Args:
        A: ``(m, m)`` interaction matrix.

    Returns:
        ``(m,)`` one-hot proportions.
    """
    A = _square_matrix(A, "greedy_optimum's interaction matrix A")
    p = np.zeros(A.shape[0])
    p[int(np.argmax(A.sum(axis=0)))] = 1.0
    return p


def project_to_simplex(v: np.ndarray) -> np.ndarray:
    """Euclidean projection of ``v`` ``(m,)`` onto the probability simplex (sort-based, O(m log m)).

    Algorithm of Held et al. (1974) / Duchi et al. (2008): find the threshold τ with
    ``Σ_j max(v_j − τ, 0) = 1``.
    """
    v = np.asarray(v, dtype=float)
    if v.ndim != 1 or v.size < 1 or not np.isfinite(v).all():
        raise MixtureError(f"project_to_simplex needs a finite vector of shape (m,), got {np.asarray(v).tolist()}")
    u = np.sort(v)[::-1]
    css = np.cumsum(u) - 1.0
    k = np.arange(1, v.size + 1)
    rho = int(np.nonzero(u - css / k > 0)[0][-1])
    tau = css[rho] / (rho + 1)
    w = np.maximum(v - tau, 0.0)
    return w / w.sum()


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - np.max(z)
    e = np.exp(z)
    return e / e.sum()


def minimize_on_simplex(
    f: Callable[[np.ndarray], float],
    m: int,
    *,
    grad: Callable[[np.ndarray], np.ndarray] | None = None,
    n_restarts: int = 8,
    seed: int = 0,
    init: np.ndarray | None = None,
    max_iter: int = 500,
    polish_steps: int = 200,
) -> tuple[np.ndarray, float]:
    """Minimize a smooth ``f: Δ^m → R`` directly (DML's "direct" solver, paper Table 1).

    Strategy: softmax reparameterization ``p = softmax(z)`` minimized with L-BFGS-B from the uniform point,
    ``init`` (when given) and ``n_restarts`` random logits ``z ~ N(0, 2²)``; the vertices are checked too,
    because the softmax can only approach the boundary.  When ``grad`` is given, the best point is then
    polished by projected gradient descent with backtracking (the "projected check"), which can land exactly
    on a face of the simplex.

    Args:
        f: objective, called with ``p`` of shape ``(m,)`` on the simplex; must return a finite float.
        m: number of groups (≥ 1).
        grad: optional ``∂f/∂p`` of shape ``(m,)``; finite differences on ``z`` are used without it.
        n_restarts: random restarts in addition to the uniform start (≥ 0).
        seed: seed of the restart draws (the result is deterministic for a seed).
        init: optional ``(m,)`` starting proportions (e.g. the previous solution).
        max_iter: L-BFGS-B iterations per start.
        polish_steps: projected-gradient iterations (only with ``grad``).

    Returns:
        ``(p, value)``: ``p`` of shape ``(m,)`` on the simplex and ``f(p)``.
    """
    if not isinstance(m, (int, np.integer)) or isinstance(m, bool) or m < 1:
        raise ConfigError(f"minimize_on_simplex needs the number of groups m as an int >= 1, got {m!r}")
    if not isinstance(n_restarts, (int, np.integer)) or n_restarts < 0:
        raise ConfigError(f"n_restarts must be an int >= 0, got {n_restarts!r}")
    if not callable(f):
        raise ConfigError(f"minimize_on_simplex needs a callable objective f, got {f!r}")
    m = int(m)

    def value(p: np.ndarray) -> float:
        v = float(f(p))
        if not np.isfinite(v):
            raise FitError(f"objective returned {v!r} at p={p.tolist()}; it must be finite on the simplex")
        return v

    if m == 1:
        p = np.ones(1)
        return p, value(p)

    def fz(z: np.ndarray):
        p = _softmax(z)
        v = value(p)
        if grad is None:
            return v
        g = np.asarray(grad(p), dtype=float)
        # Chain rule through the softmax Jacobian diag(p) − p pᵀ.
        return v, p * (g - np.dot(p, g))

    rng = np.random.default_rng(seed)
    starts = [np.zeros(m)]
    if init is not None:
        p0 = np.asarray(init, dtype=float)
        if p0.shape != (m,) or not np.isfinite(p0).all() or np.any(p0 < 0) or not p0.sum() > 0:
            raise MixtureError(
                f"init must be (m,)=({m},) non-negative proportions with a positive sum, got {np.asarray(init).tolist()}"
            )
        starts.append(np.log(np.clip(p0 / p0.sum(), 1e-12, None)))
    starts += [rng.normal(0.0, 2.0, size=m) for _ in range(int(n_restarts))]

    best_p, best_v = None, np.inf
    for z0 in starts:
        res = minimize(fz, z0, jac=grad is not None, method="L-BFGS-B", options={"maxiter": max_iter})
        p = _softmax(res.x)
        v = value(p)
        if v < best_v:
            best_p, best_v = p, v
    for j in range(m):
        e = np.zeros(m)
        e[j] = 1.0
        v = value(e)
        if v < best_v:
            best_p, best_v = e, v

    if grad is not None and polish_steps > 0:
        best_p, best_v = _projected_gradient(value, grad, best_p, best_v, polish_steps)
    return best_p, best_v


def _projected_gradient(value, grad, p, v, steps: int) -> tuple[np.ndarray, float]:
    """Projected gradient descent with backtracking; never returns a worse point than ``p``."""
    lr = 1.0
    for _ in range(steps):
        g = np.asarray(grad(p), dtype=float)
        improved = False
        while lr > 1e-12:
            q = project_to_simplex(p - lr * g)
            vq = value(q)
            if vq < v - 1e-15:
                p, v, improved = q, vq, True
                lr *= 2.0  # be optimistic again after a success
                break
            lr *= 0.5
        if not improved:
            break
    return p, v


def two_group_closed_form(A: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Exact minimizer of the m=2 log-linear static law's summed loss (DML solver, paper eq. 2 with σ=exp).

    With ``x = p_1`` and ``s_i = A_i1 − A_i2``, ``Σ_i L_i = Σ c_i + Σ_i b_i·exp(−A_i2 − s_i x)`` is convex in
    ``x`` (``b_i > 0``).  Its stationary point solves ``b_1 s_1 e^{−A_12 − s_1 x} = −b_2 s_2 e^{−A_22 − s_2 x}``,
    which exists only when ``s_1`` and ``s_2`` have opposite signs::

        x* = [log(b_1 s_1) − A_12 − log(−b_2 s_2) + A_22] / (s_1 − s_2)

    Otherwise the objective is monotone and the optimum is a vertex.  By convexity clipping ``x*`` to
    ``[0, 1]`` gives the constrained optimum.  ``c`` does not affect the minimizer.

    Args:
        A: ``(2, 2)`` interaction matrix of the static law.
        b: ``(2,)`` positive scales ``b_i``.

    Returns:
        ``(2,)`` proportions ``[x*, 1 − x*]``.
    """
    A = _square_matrix(A, "two_group_closed_form's A")
    b = np.asarray(b, dtype=float)
    if A.shape != (2, 2):
        raise FitError(f"two_group_closed_form is for m=2 only, got A of shape {A.shape}; use minimize_on_simplex")
    if b.shape != (2,) or not np.isfinite(b).all() or np.any(b <= 0):
        raise FitError(f"two_group_closed_form needs b of shape (2,) with positive entries, got {b.tolist()}")
    s = A[:, 0] - A[:, 1]
    # d/dx of the summed loss: −Σ_i b_i s_i exp(−A_i2 − s_i x); sign at the two ends decides monotone cases.
    if s[0] * s[1] < 0:
        i, k = (0, 1) if s[0] > 0 else (1, 0)
        x = (np.log(b[i] * s[i]) - A[i, 1] - np.log(-b[k] * s[k]) + A[k, 1]) / (s[i] - s[k])
        x = float(np.clip(x, 0.0, 1.0))
    else:
        # Monotone (or flat): the derivative has one sign on [0, 1]; compare the two vertices.
        f0 = float(np.sum(b * np.exp(-A[:, 1])))
        f1 = float(np.sum(b * np.exp(-A[:, 0])))
        x = 1.0 if f1 < f0 else 0.0
    return np.array([x, 1.0 - x])
