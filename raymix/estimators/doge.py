"""DoGE domain weights from gradient alignment (paper Table 1 / Prop. 3; Fan et al. 2024).

Per proxy step, with per-group training gradients g_i and the gradient g_val of the validation part of the
batch: ``score_i = lr·⟨g_i, g_val⟩ / mean_l ‖g_l‖``, clipped to ``[dw_min·lr, dw_max·lr]`` (0 and 5 by
default), ``log w += score/μ``, ``w = softmax``.  The final static mixture is the average of w.  In LMO terms
``A^t_ij = ⟨∇L_train,j, ∇L_val,i⟩`` (Prop. 3).

About μ and the paper's η: Tables 13–18 list an "EGD learning rate η" of 0.01–0.1 for DoGE.  The authors'
scripts pass that value as ``--doge_mu`` (e.g. ``scripts/arxiv_stackexchange/doge/run_proxy.sh``:
``--doge_mu 0.01``) and the update divides by it, so the table's η *is* μ and the EGD step on the scores is
1/μ.  A multiplier of 0.01 on scores of order lr ≈ 5e-4 would leave the weights uniform, contradicting the
far-from-uniform DoGE mixtures of Table 19.  This class therefore takes ``mu`` (the tables' value).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from raymix.errors import ConfigError, FitError
from raymix.estimators.proxy_weights import AveragedProxyWeights


def alignment_scores(G_train: np.ndarray, g_val: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(⟨g_i, g_val⟩ for each i, ‖g_i‖ for each i)`` from flattened gradients.

    Args:
        G_train: ``(m, d)`` per-group training gradients, one row per group.
        g_val: ``(d,)`` gradient of the validation loss.

    Returns:
        ``alignment (m,)``, ``grad_norm (m,)``.
    """
    G = np.asarray(G_train, dtype=float)
    v = np.asarray(g_val, dtype=float)
    if G.ndim != 2 or v.shape != (G.shape[1],):
        raise FitError(f"need G_train of shape (m, d) and g_val of shape (d,), got {G.shape} and {v.shape}")
    if not (np.isfinite(G).all() and np.isfinite(v).all()):
        raise FitError("gradients must be finite; a nan/inf gradient usually means the loss diverged")
    return G @ v, np.linalg.norm(G, axis=1)


class DoGEWeights(AveragedProxyWeights):
    """Online DoGE weights with a running average.

    Args:
        m: number of groups.
        mu: μ > 0, the divisor of the scores (the tables' DoGE "η"; authors' default 0.01).
        dw_min, dw_max: the score is clipped to ``[dw_min·lr, dw_max·lr]`` (DoGE: 0 and 5).
        smoothing: optional mix with uniform after the softmax (DoGE's ``reweight_eps``, default 0).
    """

    def __init__(self, m: int, mu: float = 0.01, *, dw_min: float = 0.0, dw_max: float = 5.0,
                 smoothing: float = 0.0) -> None:
        if not np.isfinite(mu) or mu <= 0:
            raise ConfigError(f"DoGE mu must be a finite number > 0 (the tables' eta, e.g. 0.01), got {mu!r}")
        if not (np.isfinite(dw_min) and np.isfinite(dw_max)) or dw_min > dw_max:
            raise ConfigError(f"need finite dw_min <= dw_max, got dw_min={dw_min!r}, dw_max={dw_max!r}")
        super().__init__(m, smoothing)
        self.mu = float(mu)
        self.dw_min = float(dw_min)
        self.dw_max = float(dw_max)

    def scores(self, alignment: np.ndarray, grad_norm: np.ndarray, lr: float) -> np.ndarray:
        """``clip(lr·⟨g_i, g_val⟩ / mean‖g‖, dw_min·lr, dw_max·lr)`` ``(m,)``."""
        a = np.asarray(alignment, dtype=float)
        n = np.asarray(grad_norm, dtype=float)
        if a.shape != (self.m,) or n.shape != (self.m,):
            raise FitError(f"alignment and grad_norm must have shape ({self.m},), got {a.shape} and {n.shape}")
        if not (np.isfinite(a).all() and np.isfinite(n).all()) or np.any(n < 0):
            raise FitError(f"alignment {a.tolist()} / grad_norm {n.tolist()} must be finite, norms >= 0")
        if not np.isfinite(lr) or lr < 0:
            raise ConfigError(f"learning rate must be a finite number >= 0, got {lr!r}")
        s = lr * a / (n.mean() + 1e-6)  # 1e-6 as DoGE: all-zero gradients give zero scores, not nan
        return np.clip(s, self.dw_min * lr, self.dw_max * lr)

    def update(self, alignment: np.ndarray, grad_norm: np.ndarray, lr: float) -> np.ndarray:
        """One proxy step; returns this step's weights ``(m,)``."""
        return self._step(self.scores(alignment, grad_norm, lr) / self.mu)

    def state_dict(self) -> dict[str, Any]:
        return {**self._weights_state(), "mu": self.mu, "dw_min": self.dw_min, "dw_max": self.dw_max}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._load_weights_state(state)
        self.mu = float(state["mu"])
        self.dw_min = float(state["dw_min"])
        self.dw_max = float(state["dw_max"])
