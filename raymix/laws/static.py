"""Log-linear static mixing law of Data Mixing Laws (paper eq. 2 with T=1, σ=exp; §3.3.1, App. C.1).

``L_i(p) = c_i + b_i · exp(−Σ_j A_ij p_j)`` for every group ``i``, fitted from ≥ m+1 static runs and
minimized directly over the simplex to pick DML's mixture.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
import torch

from raymix.errors import ConfigError, FitError
from raymix.laws.base import MixingLaw, as_matrix, check_proportions, regression_scores
from raymix.solvers import minimize_on_simplex, two_group_closed_form

#: Fractions of a group's smallest observed loss tried as initial ``c_i`` (the irreducible loss).
_C_FRACTIONS = (1e-3, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.995)

#: Exponents are clamped here inside the fit so that a wild start cannot overflow to inf/NaN.
_MAX_EXPONENT = 60.0


class LogLinearStaticLaw(MixingLaw):
    """``L_i(p) = c_i + b_i·exp(−A_i·p)``, fitted per group with Huber loss and L-BFGS (paper App. C.1).

    Parameterization (why): each group is fitted on ``θ_i = (u_i, β_i, a_i)`` with ``c_i = exp(u_i)`` and
    ``b_i = exp(β_i)``, so the irreducible loss ``c_i`` stays positive and the reducible part ``b_i`` stays
    positive (the law then decreases in the direction of ``A_i``), exactly like the log-parameters of
    Ye et al.'s code.  Because every ``p`` on the simplex has ``Σ_j p_j = 1``, adding ``k`` to a whole row
    ``A_i`` and multiplying ``b_i`` by ``e^k`` predicts the same losses: ``A`` and ``b`` are only defined up
    to this gauge.  After fitting, rows of ``A_`` are reported with zero mean (``Σ_j A_ij = 0``) and ``b_``
    absorbs the shift, which makes the fitted parameters unique and comparable across fits.

    Fitting (why many starts): the Huber objective is non-convex in ``c``.  For each group, initial points
    come from (a) least squares of ``log(L_i − c)`` on ``p`` for a ladder of ``c`` values below the smallest
    observed loss and (b) random perturbations of those; all ``n_restarts`` candidates are scored at once
    and the ``n_refine`` best are refined by ``torch.optim.LBFGS`` (strong-Wolfe line search, float64).  The
    best refined point is kept, as in Data Mixing Laws / the paper.

    Args:
        delta: Huber threshold δ in loss units (nats); residuals above δ count linearly (robust to outliers).
        n_restarts: initializations screened per group (≥ 1).
        n_refine: best initializations refined with L-BFGS per group (≥ 1; capped at ``n_restarts``).
        max_iter: L-BFGS iterations per refinement.
        seed: seed of the random initializations and of the simplex solver's restarts.

    Fitted attributes:
        ``A_`` ``(m, m)`` (rows with zero mean), ``b_`` ``(m,)`` > 0, ``c_`` ``(m,)`` > 0,
        ``huber_loss_`` ``(m,)`` final mean Huber loss per group, ``n_groups_`` = m.
    """

    _fitted_attributes = ("n_groups_", "A_", "b_", "c_", "huber_loss_")
    _hyperparameters = ("delta", "n_restarts", "n_refine", "max_iter", "seed")

    def __init__(
        self, delta: float = 0.02, n_restarts: int = 64, n_refine: int = 4, max_iter: int = 300, seed: int = 0
    ) -> None:
        self.delta = delta
        self.n_restarts = n_restarts
        self.n_refine = n_refine
        self.max_iter = max_iter
        self.seed = seed

    def _validate_params(self) -> None:
        if not (isinstance(self.delta, numbers.Real) and not isinstance(self.delta, bool)
                and np.isfinite(self.delta) and self.delta > 0):
            raise ConfigError(f"Huber delta must be a finite number > 0 (paper: 0.02), got {self.delta!r}")
        for name, lo in (("n_restarts", 1), ("n_refine", 1), ("max_iter", 1)):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < lo:
                raise ConfigError(f"{name} must be an int >= {lo}, got {v!r}")

    # ------------------------------------------------------------------ fit
    def fit(self, P: Any, L: Any) -> LogLinearStaticLaw:
        """Fit on static runs.

        Args:
            P: ``(n_runs, m)`` proportions of each run (rows on the simplex).
            L: ``(n_runs, m)`` final per-group validation losses (> 0, nats).

        Returns:
            ``self``.  Needs ``n_runs ≥ m + 1`` (Ye et al.: otherwise the law is underdetermined).
        """
        self._validate_params()
        P = check_proportions("P", as_matrix("P", P), simplex=True)
        n, m = P.shape
        L = as_matrix("L", L, n_cols=m, n_rows=n)
        if n < m + 1:
            raise FitError(
                f"the log-linear static law needs at least m+1={m + 1} runs for m={m} groups, got {n} runs "
                f"(P shape {P.shape}); add static runs over the simplex"
            )
        if np.any(L <= 0):
            r, c = (int(x) for x in np.argwhere(L <= 0)[0])
            raise FitError(f"losses must be > 0 for a log-linear law, got L[{r}, {c}] = {float(L[r, c])!r}")
        rng = np.random.default_rng(self.seed)
        A = np.empty((m, m))
        b = np.empty(m)
        c = np.empty(m)
        hub = np.empty(m)
        for i in range(m):
            theta, hub[i] = self._fit_group(P, L[:, i], rng)
            u, beta, a = theta[0], theta[1], theta[2:]
            shift = a.mean()
            A[i] = a - shift
            b[i] = np.exp(beta - shift)
            c[i] = np.exp(u)
        self.A_, self.b_, self.c_, self.huber_loss_ = A, b, c, hub
        self.n_groups_ = m
        return self

    def _initial_points(self, P: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """``(n_restarts, m+2)`` candidate ``θ = (u, β, a)`` for one group."""
        m = P.shape[1]
        base = []
        for f in _C_FRACTIONS:
            c0 = f * y.min()
            z = np.log(y - c0)
            # z ≈ β − P a; on the simplex the intercept is absorbed, so regress on P alone (min-norm).
            w, *_ = np.linalg.lstsq(P, z, rcond=None)
            base.append(np.concatenate([[np.log(c0), w.mean()], w.mean() - w]))
        base = np.asarray(base)
        out = list(base[: self.n_restarts])
        spread = max(float(np.ptp(base[:, 2:])), 1.0)
        while len(out) < self.n_restarts:
            theta = base[rng.integers(len(base))].copy()
            frac = rng.uniform(0.0, 0.995)
            theta[0] = np.log(max(frac * y.min(), 1e-12))
            theta[2:] += rng.normal(0.0, 0.5 * spread, size=m)
            # Re-centre β so the start matches the mean observed reducible loss.
            red = np.clip(y - np.exp(theta[0]), 1e-12, None)
            theta[1] = float(np.mean(np.log(red) + P @ theta[2:]))
            out.append(theta)
        return np.asarray(out)

    def _huber_np(self, thetas: np.ndarray, P: np.ndarray, y: np.ndarray) -> np.ndarray:
        expo = np.clip(thetas[:, 1:2] - thetas[:, 2:] @ P.T, None, _MAX_EXPONENT)
        pred = np.exp(thetas[:, :1]) + np.exp(expo)
        r = np.abs(pred - y[None, :])
        d = self.delta
        h = np.where(r <= d, 0.5 * r**2, d * (r - 0.5 * d))
        return np.nan_to_num(h.mean(axis=1), nan=np.inf)

    def _fit_group(self, P: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, float]:
        thetas = self._initial_points(P, y, rng)
        scores = self._huber_np(thetas, P, y)
        order = np.argsort(scores, kind="stable")[: min(self.n_refine, self.n_restarts)]
        Pt = torch.as_tensor(P, dtype=torch.float64)
        yt = torch.as_tensor(y, dtype=torch.float64)
        # huber(r/s; δ/s) = huber(r; δ)/s²: same minimizer, but an objective of order 1 keeps L-BFGS's
        # absolute tolerances meaningful when the losses vary by only ~0.01 nats across runs.
        scale = max(float(np.std(y)), 1e-8)
        best_theta, best_val = thetas[order[0]], float(scores[order[0]])
        for k in order:
            theta = torch.tensor(thetas[k], dtype=torch.float64, requires_grad=True)
            opt = torch.optim.LBFGS(
                [theta],
                lr=1.0,
                max_iter=self.max_iter,
                tolerance_grad=1e-12,
                tolerance_change=1e-15,
                history_size=20,
                line_search_fn="strong_wolfe",
            )

            def closure(theta=theta, opt=opt):
                opt.zero_grad()
                loss = self._huber_torch(theta, Pt, yt, scale)
                loss.backward()
                return loss

            opt.step(closure)
            with torch.no_grad():
                val = float(self._huber_torch(theta, Pt, yt, scale)) * scale**2
            if np.isfinite(val) and val < best_val and torch.isfinite(theta).all():
                best_theta, best_val = theta.detach().numpy().copy(), val
        return best_theta, best_val

    def _huber_torch(self, theta: torch.Tensor, P: torch.Tensor, y: torch.Tensor, scale: float) -> torch.Tensor:
        """Mean Huber loss of group-``y`` predictions, divided by ``scale²`` (residuals in units of ``scale``)."""
        expo = torch.clamp(theta[1] - P @ theta[2:], max=_MAX_EXPONENT)
        pred = torch.exp(theta[0]) + torch.exp(expo)
        return torch.nn.functional.huber_loss(pred / scale, y / scale, delta=float(self.delta) / scale, reduction="mean")

    # ------------------------------------------------------------------ use
    def predict(self, P: Any) -> np.ndarray:
        """Predicted per-group losses ``(n, m)`` for proportions ``P`` ``(n, m)`` (rows on the simplex)."""
        self._check_fitted()
        P = check_proportions("P", as_matrix("P", P, n_cols=self.n_groups_), simplex=True)
        return self.c_[None, :] + self.b_[None, :] * np.exp(-P @ self.A_.T)

    def score(self, P: Any, L: Any) -> dict[str, Any]:
        """MSE and R² of :meth:`predict` against observed ``L`` ``(n, m)`` (see ``regression_scores``)."""
        L_hat = self.predict(P)
        L = as_matrix("L", L, n_cols=self.n_groups_, n_rows=L_hat.shape[0])
        return regression_scores(L, L_hat)

    def total_loss(self, p: Any) -> float:
        """``Σ_i L_i(p)`` for one ``(m,)`` mixture — the quantity DML minimizes."""
        return float(self.predict(np.asarray(p, dtype=float)[None, :]).sum())

    def optimal_mixture(self) -> np.ndarray:
        """Minimizer ``(m,)`` of ``Σ_i L_i(p)`` over the simplex (DML's solver, paper Table 1 "Direct").

        The objective is convex (a positive sum of exponentials of affine functions), so a local optimum
        is global: m=2 uses :func:`~raymix.solvers.two_group_closed_form`; m ≥ 3 uses
        :func:`~raymix.solvers.minimize_on_simplex` with the analytic gradient
        ``∂/∂p_j = −Σ_i b_i A_ij exp(−A_i·p)`` and a projected-gradient polish.
        """
        self._check_fitted()
        m = self.n_groups_
        if m == 1:
            return np.ones(1)
        if m == 2:
            return two_group_closed_form(self.A_, self.b_)
        A, b, c = self.A_, self.b_, self.c_

        def f(p: np.ndarray) -> float:
            return float(np.sum(c + b * np.exp(-A @ p)))

        def grad(p: np.ndarray) -> np.ndarray:
            return -(b * np.exp(-A @ p)) @ A

        p, _ = minimize_on_simplex(f, m, grad=grad, n_restarts=4, seed=int(self.seed))
        return p
