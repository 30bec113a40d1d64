"""Dynamic mixing laws: one round of training moves each group's loss by a linear function of p^t.

* :class:`LinearDynamicLaw` — ``L^{t+1}_i = L^t_i − Σ_j A_ij p^t_j`` (paper eq. 2 with σ=Id; the law behind
  Skill-It, DoReMi, DoGE and Aioli, Theorem 1).
* :class:`LogLinearDynamicLaw` — ``log L^{t+1}_i = log L^t_i − Σ_j A_ij p^t_j`` (paper App. C.1.2, a
  piecewise version of the log-linear static law).

Both are fitted per group by ordinary least squares from a sweep: runs resumed from one checkpoint at
step t with different ``p^t`` (App. C.1, C.2), with an explicit rank check.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from raymix.errors import ConfigError, FitError
from raymix.laws.base import MixingLaw, as_matrix, check_proportions, regression_scores
from raymix.solvers import egd_update, greedy_optimum, minimize_on_simplex

#: Relative singular-value threshold below which the design matrix counts as rank deficient.
_RANK_RTOL = 1e-10


class _DynamicLaw(MixingLaw):
    """Shared fit / predict / score of the dynamic laws.

    Subclasses define the per-group response ``y = g(L^t) − g(L^{t+1})`` (``g`` = identity or log) and
    its inverse.  ``P_t`` rows are non-negative allocations; they are usually proportions on the simplex
    but need not be (e.g. per-group token counts), which is the only case where ``fit_intercept`` can be
    identified — on the simplex a constant drift ``d_i`` is indistinguishable from adding ``d_i`` to the
    whole row ``A_i`` (``Σ_j p_j = 1``), and the rank check refuses it with a message saying so.

    Fitted attributes: ``A_`` ``(m, m)``, ``intercept_`` ``(m,)`` (zeros unless ``fit_intercept``),
    ``rank_`` (rank of the design), ``n_groups_``.
    """

    _fitted_attributes = ("n_groups_", "A_", "intercept_", "rank_")
    _hyperparameters = ("fit_intercept",)

    def __init__(self, fit_intercept: bool = False) -> None:
        self.fit_intercept = fit_intercept

    # response transform -------------------------------------------------
    def _response(self, L_t: np.ndarray, L_next: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _apply(self, L_t: np.ndarray, decrease: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _check_losses(self, name: str, L: np.ndarray) -> None:
        """Hook for laws that need positive losses."""

    # fit ----------------------------------------------------------------
    def _inputs(self, P_t: Any, L_t: Any, m: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        P_t = check_proportions("P_t", as_matrix("P_t", P_t, n_cols=m), simplex=False)
        L_t = as_matrix("L_t", L_t, n_cols=P_t.shape[1], n_rows=P_t.shape[0])
        self._check_losses("L_t", L_t)
        return P_t, L_t

    def fit(self, P_t: Any, L_t: Any, L_next: Any) -> _DynamicLaw:
        """Least-squares fit of ``A`` from one round of a sweep.

        Args:
            P_t: ``(n, m)`` proportions used during the round for each run.
            L_t: ``(n, m)`` per-group validation losses at the start of the round (often identical rows:
                every run resumed from the same checkpoint).
            L_next: ``(n, m)`` per-group validation losses at the end of the round.

        Returns:
            ``self``.  Raises :class:`FitError` when the design ``P_t`` (plus an intercept column) has
            rank below its number of columns — e.g. fewer than m distinct mixtures.
        """
        if not isinstance(self.fit_intercept, (bool, np.bool_)):
            raise ConfigError(f"fit_intercept must be True or False, got {self.fit_intercept!r}")
        P_t, L_t = self._inputs(P_t, L_t)
        n, m = P_t.shape
        L_next = as_matrix("L_next", L_next, n_cols=m, n_rows=n)
        self._check_losses("L_next", L_next)
        X = np.hstack([P_t, np.ones((n, 1))]) if self.fit_intercept else P_t
        sv = np.linalg.svd(X, compute_uv=False)
        rank = int(np.sum(sv > _RANK_RTOL * max(sv.max(), 1e-300)))
        if rank < X.shape[1]:
            hint = (
                "; with fit_intercept=True and rows on the simplex the intercept is collinear with P_t "
                "(Σ_j p_j = 1) — use fit_intercept=False, the drift is absorbed into A"
                if self.fit_intercept and np.allclose(P_t.sum(axis=1), 1.0)
                else "; sweep at least m linearly independent mixtures p^t"
            )
            raise FitError(
                f"{type(self).__name__} design matrix of shape {X.shape} has rank {rank} < {X.shape[1]}{hint}"
            )
        Y = self._response(L_t, L_next)
        coef, *_ = np.linalg.lstsq(X, Y, rcond=None)  # (k, m): column i holds group i's coefficients
        self.A_ = np.ascontiguousarray(coef[:m].T)
        self.intercept_ = coef[m].copy() if self.fit_intercept else np.zeros(m)
        self.rank_ = rank
        self.n_groups_ = m
        return self

    # use ----------------------------------------------------------------
    def predict(self, P_t: Any, L_t: Any) -> np.ndarray:
        """Predicted ``L^{t+1}`` ``(n, m)`` from ``P_t`` and ``L_t`` ``(n, m)``."""
        self._check_fitted()
        P_t, L_t = self._inputs(P_t, L_t, m=self.n_groups_)
        decrease = P_t @ self.A_.T + self.intercept_[None, :]
        return self._apply(L_t, decrease)

    def score(self, P_t: Any, L_t: Any, L_next: Any) -> dict[str, Any]:
        """MSE and R² of the predicted ``L^{t+1}`` against the observed ``L_next`` (paper Table 5)."""
        L_hat = self.predict(P_t, L_t)
        L_next = as_matrix("L_next", L_next, n_cols=self.n_groups_, n_rows=L_hat.shape[0])
        return regression_scores(L_next, L_hat)


class LinearDynamicLaw(_DynamicLaw):
    """``L^{t+1}_i = L^t_i − Σ_j A_ij p^t_j`` (paper eq. 2, σ=Id, ``b^t`` absorbed into ``A^t``).

    ``A_[i, j]`` is how much one round on group j lowers group i's loss (nats per round at p_j = 1).
    """

    def _response(self, L_t: np.ndarray, L_next: np.ndarray) -> np.ndarray:
        return L_t - L_next

    def _apply(self, L_t: np.ndarray, decrease: np.ndarray) -> np.ndarray:
        return L_t - decrease

    def greedy_mixture(self, L_t: Any = None) -> np.ndarray:
        """Exact one-step optimum: vertex ``1_j``, ``j = argmax_j Σ_i A_ij`` (App. C.3); ``L_t`` is unused."""
        self._check_fitted()
        return greedy_optimum(self.A_)

    def egd_step(self, p: Any, eta: float, L_t: Any = None) -> np.ndarray:
        """Lemma 1 update ``p_j ∝ p_j exp(η Σ_i A_ij)`` with the fitted ``A_`` (``L_t`` is unused)."""
        self._check_fitted()
        return egd_update(np.asarray(p, dtype=float), self.A_, eta)


class LogLinearDynamicLaw(_DynamicLaw):
    """``log L^{t+1}_i = log L^t_i − Σ_j A_ij p^t_j`` (paper App. C.1.2); needs positive losses.

    Here the next-round total ``Σ_i L^t_i exp(−A_i·p)`` depends on ``L^t``, so :meth:`greedy_mixture` and
    :meth:`egd_step` need the current losses.
    """

    def _check_losses(self, name: str, L: np.ndarray) -> None:
        if np.any(L <= 0):
            r, c = (int(x) for x in np.argwhere(L <= 0)[0])
            raise FitError(f"{name}[{r}, {c}] = {float(L[r, c])!r}; the log-linear dynamic law needs losses > 0")

    def _response(self, L_t: np.ndarray, L_next: np.ndarray) -> np.ndarray:
        return np.log(L_t) - np.log(L_next)

    def _apply(self, L_t: np.ndarray, decrease: np.ndarray) -> np.ndarray:
        return L_t * np.exp(-decrease)

    def _current_losses(self, L_t: Any) -> np.ndarray:
        if L_t is None:
            raise ConfigError(
                "LogLinearDynamicLaw needs the current per-group losses L_t (shape (m,)) for this; pass L_t=..."
            )
        return self._inputs(np.full((1, self.n_groups_), 1.0 / self.n_groups_), np.atleast_2d(L_t))[1][0]

    def greedy_mixture(self, L_t: Any = None) -> np.ndarray:
        """Minimizer ``(m,)`` of ``Σ_i L^t_i exp(−A_i·p − d_i)`` over the simplex (convex; direct solver)."""
        self._check_fitted()
        w = self._current_losses(L_t) * np.exp(-self.intercept_)
        A = self.A_

        def f(p: np.ndarray) -> float:
            return float(np.sum(w * np.exp(-A @ p)))

        def grad(p: np.ndarray) -> np.ndarray:
            return -(w * np.exp(-A @ p)) @ A

        p, _ = minimize_on_simplex(f, self.n_groups_, grad=grad, n_restarts=2)
        return p

    def egd_step(self, p: Any, eta: float, L_t: Any = None) -> np.ndarray:
        """EGD step on ``Σ_i L^{t+1}_i(p)``: ``p_j ∝ p_j exp(η Σ_i L^t_i e^{−A_i·p−d_i} A_ij)``.

        This is Lemma 1 with ``A`` reweighted by each group's predicted next loss (the gradient of the
        log-linear law at ``p``).
        """
        self._check_fitted()
        p = check_proportions("p", as_matrix("p", np.atleast_2d(p), n_cols=self.n_groups_), simplex=True)[0]
        w = self._current_losses(L_t) * np.exp(-self.A_ @ p - self.intercept_)
        return egd_update(p, w[:, None] * self.A_, eta)
