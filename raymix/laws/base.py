"""Common machinery of the mixing laws (paper eq. 2): input checks, fitted-ness, regression scores.

A mixing law is an sklearn-style estimator: hyperparameters go to ``__init__``; ``fit`` learns attributes
whose names end in ``_`` and returns ``self``; ``predict`` before ``fit`` raises
:class:`~raymix.errors.NotFittedError`.  Laws do not change during training, but their fitted state
round-trips through ``state_dict()`` / ``load_state_dict()`` so a method can checkpoint the laws it fitted.

Lifecycle::

    law = SomeLaw(**hyperparameters)      # no data yet
    law.fit(...)                          # validates shapes / NaN, learns A_, ... ; returns self
    law.predict(...); law.score(...)      # any number of times
    state = law.state_dict(); SomeLaw().load_state_dict(state)
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from raymix.errors import FitError, NotFittedError

#: Tolerance on ``Σ_j p_j = 1`` for proportion rows handed to a static law.
SIMPLEX_TOLERANCE = 1e-4


def as_matrix(name: str, X: Any, *, n_cols: int | None = None, n_rows: int | None = None) -> np.ndarray:
    """``X`` as a finite float64 array of shape ``(n, k)``; raises :class:`FitError` quoting the shape.

    Args:
        name: what ``X`` is, used in messages (e.g. ``"P"``).
        X: array-like of shape ``(n, k)``.
        n_cols: required ``k`` (e.g. the number of groups ``m``), or ``None``.
        n_rows: required ``n`` (to match another array), or ``None``.
    """
    try:
        arr = np.asarray(X, dtype=float)
    except (TypeError, ValueError):
        raise FitError(f"{name} must be a numeric array of shape (n_runs, m), got {X!r}") from None
    if arr.ndim != 2:
        raise FitError(f"{name} must be 2-D of shape (n_runs, m), got shape {arr.shape}; reshape it")
    if n_cols is not None and arr.shape[1] != n_cols:
        raise FitError(f"{name} has shape {arr.shape} but the law has m={n_cols} groups; give {n_cols} columns")
    if n_rows is not None and arr.shape[0] != n_rows:
        raise FitError(f"{name} has shape {arr.shape} but {n_rows} rows are needed (one per run, as in the others)")
    if arr.size == 0:
        raise FitError(f"{name} is empty (shape {arr.shape}); give at least one run")
    if not np.isfinite(arr).all():
        bad = np.argwhere(~np.isfinite(arr))[:5].tolist()
        raise FitError(f"{name} of shape {arr.shape} has NaN/inf entries at (row, col) {bad}; drop those runs")
    return arr


def check_proportions(name: str, P: np.ndarray, *, simplex: bool) -> np.ndarray:
    """Check rows of ``P`` ``(n, m)`` are non-negative and (if ``simplex``) sum to one."""
    if np.any(P < 0):
        row = int(np.argwhere(P < 0)[0][0])
        raise FitError(f"{name} has negative proportions in row {row}: {P[row].tolist()}; proportions are >= 0")
    if simplex:
        sums = P.sum(axis=1)
        bad = np.nonzero(np.abs(sums - 1.0) > SIMPLEX_TOLERANCE)[0]
        if bad.size:
            r = int(bad[0])
            raise FitError(
                f"{name} row {r} = {P[r].tolist()} sums to {sums[r]:.6g}, not 1; each run's proportions must lie "
                f"on the simplex (normalize the rows)"
            )
    return P


def regression_scores(Y: np.ndarray, Y_hat: np.ndarray) -> dict[str, Any]:
    """Per-group and group-averaged MSE and R² (the metrics of the paper's Table 5).

    Args:
        Y: ``(n, m)`` observed values.
        Y_hat: ``(n, m)`` predictions.

    Returns:
        ``{"mse": float, "r2": float, "mse_per_group": list[m], "r2_per_group": list[m]}`` where
        ``mse``/``r2`` are averages over groups.  R²_i = 1 − SS_res,i / SS_tot,i; when a group's observations
        are constant (SS_tot = 0) R² is 1.0 for a perfect prediction and 0.0 otherwise (sklearn's convention),
        so the average stays finite.
    """
    Y = np.asarray(Y, dtype=float)
    Y_hat = np.asarray(Y_hat, dtype=float)
    if Y.shape != Y_hat.shape or Y.ndim != 2:
        raise FitError(f"scores need two (n, m) arrays of equal shape, got {Y.shape} and {Y_hat.shape}")
    resid = Y - Y_hat
    mse = np.mean(resid**2, axis=0)
    ss_res = np.sum(resid**2, axis=0)
    ss_tot = np.sum((Y - Y.mean(axis=0)) ** 2, axis=0)
    r2 = np.empty(Y.shape[1])
    for i in range(Y.shape[1]):
        if ss_tot[i] > 0:
            r2[i] = 1.0 - ss_res[i] / ss_tot[i]
        else:
            r2[i] = 1.0 if ss_res[i] == 0 else 0.0
    return {
        "mse": float(mse.mean()),
        "r2": float(r2.mean()),
        "mse_per_group": [float(x) for x in mse],
        "r2_per_group": [float(x) for x in r2],
    }


class MixingLaw(ABC):
    """Abstract base of the laws: fitted-state bookkeeping and serialization.

    Subclasses list their learned attributes in ``_fitted_attributes`` (names ending in ``_``) and their
    constructor hyperparameters in ``_hyperparameters``.  ``n_groups_`` (m) is set by every ``fit``.
    """

    _fitted_attributes: tuple[str, ...] = ("n_groups_",)
    _hyperparameters: tuple[str, ...] = ()

    @abstractmethod
    def fit(self, *arrays: Any) -> MixingLaw:
        """Learn the ``_``-suffixed attributes from observation arrays; return ``self``."""

    @abstractmethod
    def predict(self, *arrays: Any) -> np.ndarray:
        """Predicted per-group losses ``(n, m)``; :class:`NotFittedError` before :meth:`fit`."""

    @abstractmethod
    def score(self, *arrays: Any) -> dict[str, Any]:
        """``{"mse", "r2", "mse_per_group", "r2_per_group"}`` of :meth:`predict` (see :func:`regression_scores`)."""

    def _check_fitted(self) -> None:
        missing = [a for a in self._fitted_attributes if not hasattr(self, a)]
        if missing:
            raise NotFittedError(
                f"{type(self).__name__} is not fitted (missing {missing}); call .fit(...) before using it"
            )

    @property
    def is_fitted(self) -> bool:
        return all(hasattr(self, a) for a in self._fitted_attributes)

    def get_params(self) -> dict[str, Any]:
        """Constructor hyperparameters (sklearn convention)."""
        return {k: getattr(self, k) for k in self._hyperparameters}

    def state_dict(self) -> dict[str, Any]:
        """Hyperparameters and (when fitted) learned attributes as plain JSON-friendly values."""
        fitted = {}
        if self.is_fitted:
            for a in self._fitted_attributes:
                v = getattr(self, a)
                fitted[a] = v.tolist() if isinstance(v, np.ndarray) else v
        return {"law": type(self).__name__, "params": self.get_params(), "fitted": fitted}

    def load_state_dict(self, state: dict[str, Any]) -> MixingLaw:
        """Restore from :meth:`state_dict`; returns ``self``.

        The whole state is checked before anything is set: a state that is refused leaves the law as it was.
        A state without fitted attributes leaves the law unfitted.
        """
        if not isinstance(state, dict) or state.get("law") != type(self).__name__:
            got = state.get("law") if isinstance(state, dict) else state
            raise FitError(f"state_dict is for law {got!r}, not {type(self).__name__}; load it into the right law")
        params = state.get("params", {})
        unknown = [k for k in params if k not in self._hyperparameters]
        if unknown:
            raise FitError(
                f"unknown hyperparameter {unknown[0]!r} for {type(self).__name__}; valid: {self._hyperparameters}"
            )
        fitted = state.get("fitted", {})
        missing = [a for a in self._fitted_attributes if a not in fitted]
        if fitted and missing:
            raise FitError(f"state_dict of {type(self).__name__} lacks fitted attributes {missing}")
        for k, v in params.items():
            setattr(self, k, v)
        for a in self._fitted_attributes:
            if hasattr(self, a):
                delattr(self, a)
            if fitted:
                v = fitted[a]
                setattr(self, a, np.asarray(v, dtype=float) if isinstance(v, list) else v)
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"
