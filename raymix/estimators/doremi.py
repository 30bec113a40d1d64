"""DoReMi domain weights from excess loss (paper Table 1 / Prop. 2; Xie et al. 2023, Algorithm 1).

Per proxy step: ``λ_i = max(L_proxy,i − L_ref,i, 0)`` on the groups present in the batch (an absent group keeps
its previous λ, ALGORITHMS.md), ``α' = α_{t−1} ⊙ exp(η·λ)`` (in log space), ``α = (1−c)·α'/Σα' + c/m``.
The final static mixture is the average of α over all proxy steps.  In LMO terms A^t is diagonal
(``A_ii ∝ λ_i``), which is why DoReMi cannot see cross-group transfer (paper App. C.2.1).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from raymix.errors import ConfigError, FitError
from raymix.estimators.proxy_weights import AveragedProxyWeights


class DoReMiWeights(AveragedProxyWeights):
    """Online DoReMi weights with smoothing and a running average.

    The multiplicative step is applied to the previous *smoothed* weights, as in DoReMi's Algorithm 1 and
    its reference code (``log α_{t−1} + η·λ``, softmax, then mix with uniform); the smoothing therefore also
    acts as a floor that keeps every log-weight finite.

    Args:
        m: number of groups.
        eta: step size η > 0 (paper: 0.01).
        smoothing: c in [0, 1] (paper: 1e-3).
    """

    def __init__(self, m: int, eta: float = 0.01, smoothing: float = 1e-3) -> None:
        if not np.isfinite(eta) or eta <= 0:
            raise ConfigError(f"DoReMi eta must be a finite number > 0, got {eta!r}")
        super().__init__(m, smoothing)
        self.eta = float(eta)
        self.excess = np.zeros(self.m)

    def update(self, train_loss: np.ndarray, ref_loss: np.ndarray) -> np.ndarray:
        """One proxy step; returns the smoothed weights ``(m,)`` for this step's objective.

        Args:
            train_loss: ``(m,)`` proxy per-group training loss on the batch, ``nan`` for absent groups.
            ref_loss: ``(m,)`` reference model's loss on the same batch (``nan`` allowed where absent).
        """
        L = np.asarray(train_loss, dtype=float)
        R = np.asarray(ref_loss, dtype=float)
        if L.shape != (self.m,) or R.shape != (self.m,):
            raise FitError(f"train_loss and ref_loss must have shape ({self.m},), got {L.shape} and {R.shape}")
        present = np.isfinite(L)
        if not np.isfinite(R[present]).all():
            raise FitError(f"ref_loss {R.tolist()} is not finite for a group present in the batch {L.tolist()}")
        if np.isinf(L).any():
            raise FitError(f"train_loss must be finite or nan (absent group), got {L.tolist()}")
        self.excess[present] = np.maximum(L[present] - R[present], 0.0)
        return self._step(self.eta * self.excess)

    def state_dict(self) -> dict[str, Any]:
        return {**self._weights_state(), "eta": self.eta, "excess": self.excess.tolist()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._load_weights_state(state)
        self.eta = float(state["eta"])
        self.excess = np.asarray(state["excess"], dtype=float)
