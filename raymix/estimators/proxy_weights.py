"""The weight bookkeeping shared by the proxy methods DoReMi and DoGE.

Both keep log-space multiplicative weights over the m groups (an EGD step, paper Lemma 1), mix the
softmax with uniform (smoothing c), and average the weights over all proxy steps into the static
mixture of their final run.  Only the per-step increment differs (excess loss; alignment score).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from raymix.errors import ConfigError


class AveragedProxyWeights:
    """``w ← (1−c)·softmax(log w + increment) + c/m`` per step, with the running average of w."""

    def __init__(self, m: int, smoothing: float) -> None:
        if isinstance(m, bool) or int(m) != m or m < 1:
            raise ConfigError(f"number of groups m must be a positive integer, got {m!r}")
        if not 0.0 <= smoothing <= 1.0:
            raise ConfigError(f"smoothing c must lie in [0, 1], got {smoothing!r}")
        self.m = int(m)
        self.smoothing = float(smoothing)
        self.weights = np.full(self.m, 1.0 / self.m)
        self._weight_sum = np.zeros(self.m)
        self.steps = 0

    def _step(self, increment: np.ndarray) -> np.ndarray:
        """Apply one log-space increment ``(m,)``; returns this step's weights."""
        logits = np.log(self.weights) + increment
        logits -= logits.max()
        w = np.exp(logits)
        w /= w.sum()
        w = (1.0 - self.smoothing) * w + self.smoothing / self.m
        self.weights = w / w.sum()
        self._weight_sum += self.weights
        self.steps += 1
        return self.weights.copy()

    def average(self) -> np.ndarray:
        """The final static mixture: mean of the weights over all steps ``(m,)`` (uniform before any step)."""
        if self.steps == 0:
            return np.full(self.m, 1.0 / self.m)
        return self._weight_sum / self.steps

    def _weights_state(self) -> dict[str, Any]:
        return {"m": self.m, "smoothing": self.smoothing, "weights": self.weights.tolist(),
                "weight_sum": self._weight_sum.tolist(), "steps": self.steps}

    def _load_weights_state(self, state: dict[str, Any]) -> None:
        if int(state["m"]) != self.m:
            raise ConfigError(f"state is for m={state['m']} groups, these weights have m={self.m}")
        self.smoothing = float(state["smoothing"])
        self.weights = np.asarray(state["weights"], dtype=float)
        self._weight_sum = np.asarray(state["weight_sum"], dtype=float)
        self.steps = int(state["steps"])
