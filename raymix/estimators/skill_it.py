"""Skill-It's skills graph and online update (paper §3.2 / Prop. 1, Table 1; Chen et al. 2023, Online Skill-It).

Skills graph from m extra runs, each trained on one group only (ALGORITHMS.md):
``A^SG_ij = (L_val,i(start of run j) − L_val,i(end of run j)) / L_val,i(start of run j)``
— row i is the evaluated group, column j the group the run trained on (the paper's A_ij convention:
how much training on j helps i).  Groups are matched **by name**: the authors' code used positional order
and, by their own note, transposed the matrix by accident.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from raymix.errors import ConfigError, FitError, MixtureError

LossTable = Mapping[str, Mapping[str, float]]


def _lookup(table: LossTable, what: str, run: str, group: str) -> float:
    if run not in table:
        raise ConfigError(f"{what} has no run trained on group {run!r}; runs given: {sorted(table)}; "
                          "give one single-group run per group")
    row = table[run]
    if group not in row:
        raise ConfigError(f"{what}[{run!r}] has no loss for group {group!r}; groups given: {sorted(row)}")
    v = float(row[group])
    if not np.isfinite(v):
        raise FitError(f"{what}[{run!r}][{group!r}] = {v!r} is not finite")
    return v


def skills_graph(losses_start: LossTable, losses_end: LossTable, groups: Sequence[str]) -> np.ndarray:
    """``A^SG`` ``(m, m)`` in the order of ``groups`` (paper Table 1 / Prop. 1).

    Args:
        losses_start: ``{trained_group: {evaluated_group: L_val at step 0 of that run}}``.
        losses_end: the same at the end of each run.
        groups: the group order of the returned matrix; every name must appear as a run and as an
            evaluated group in both tables.

    Returns:
        ``A[i, j] = (start[j][i] − end[j][i]) / start[j][i]``.

    Raises:
        ConfigError: a run or group is missing, or the tables name groups not in ``groups``.
        FitError: a loss is not finite or a start loss is not positive.
    """
    groups = tuple(groups)
    if not groups or len(set(groups)) != len(groups):
        raise ConfigError(f"groups must be a non-empty list of unique names, got {list(groups)}")
    for what, table in (("losses_start", losses_start), ("losses_end", losses_end)):
        extra = sorted(set(table) - set(groups))
        if extra:
            raise ConfigError(f"{what} has runs for unknown groups {extra}; expected runs for {list(groups)}")
    m = len(groups)
    A = np.empty((m, m))
    for j, run in enumerate(groups):
        for i, g in enumerate(groups):
            start = _lookup(losses_start, "losses_start", run, g)
            end = _lookup(losses_end, "losses_end", run, g)
            if start <= 0:
                raise FitError(f"losses_start[{run!r}][{g!r}] = {start!r}; a loss must be > 0 to normalize by it")
            A[i, j] = (start - end) / start
    return A


class SkillItUpdater:
    """Online Skill-It proportions (Chen et al. 2023, Alg. 1; paper Prop. 1 with EGD).

    ``p^{t+1}_j ∝ p^0_j · exp(η · Σ_i A^SG_ij · Σ_{τ in last window} L^τ_val,i)``.

    What we chose and why: the paper writes the rule as ``p^{t+1} ∝ p^t·exp(η Σ_i A^SG_ij L^t_val,i)``
    (Prop. 1), but Skill-It's own online algorithm — and its ``window`` hyperparameter (paper Table 12,
    "multiplicative weights window") — re-derives p each round from the **sum of the last ``window``
    evaluated loss vectors**, relative to the initial distribution (uniform there; p^0 here, so a restricted
    hand-off can start elsewhere).  Accumulating ``p^t`` as well would count each loss vector ``window``
    times over.  We implement ALGORITHMS.md / Skill-It: multiplicative weights over a sliding window.

    Args:
        graph: ``(m, m)`` skills graph from :func:`skills_graph`.
        eta: step size η ≥ 0 (paper: 0.2; 0.1/0.8 in some settings).
        window: number of most recent loss vectors summed (paper: 3).
        p0: ``(m,)`` initial proportions (default uniform).
    """

    def __init__(self, graph: np.ndarray, eta: float, window: int = 3, *, p0: np.ndarray | None = None) -> None:
        A = np.asarray(graph, dtype=float)
        if A.ndim != 2 or A.shape[0] != A.shape[1] or not np.isfinite(A).all():
            raise FitError(f"skills graph must be a finite square (m, m) matrix, got shape {A.shape}")
        if not np.isfinite(eta) or eta < 0:
            raise ConfigError(f"eta must be a finite number >= 0, got {eta!r}")
        if isinstance(window, bool) or int(window) != window or window < 1:
            raise ConfigError(f"window must be a positive integer, got {window!r}")
        self.graph = A
        self.eta = float(eta)
        self.window = int(window)
        m = A.shape[0]
        p0 = np.full(m, 1.0 / m) if p0 is None else np.asarray(p0, dtype=float)
        if p0.shape != (m,) or np.any(p0 < 0) or abs(p0.sum() - 1) > 1e-6:
            raise MixtureError(f"p0 must be a point of the {m}-simplex, got {p0.tolist()}")
        self.p0 = p0 / p0.sum()
        self.p = self.p0.copy()
        self._losses: deque[np.ndarray] = deque(maxlen=self.window)

    @property
    def m(self) -> int:
        return self.graph.shape[0]

    def update(self, val_loss: np.ndarray) -> np.ndarray:
        """Add this round's ``(m,)`` validation losses (nats/token) and return the next ``p`` ``(m,)``."""
        L = np.asarray(val_loss, dtype=float)
        if L.shape != (self.m,) or not np.isfinite(L).all():
            raise FitError(f"val_loss must be a finite ({self.m},) vector, got {L.tolist()}")
        self._losses.append(L)
        score = self.graph.T @ np.sum(self._losses, axis=0)  # score_j = Σ_i A_ij · Σ_τ L_i
        with np.errstate(divide="ignore"):
            logits = np.log(self.p0) + self.eta * score
        logits -= logits.max()
        w = np.exp(logits)
        self.p = w / w.sum()
        return self.p.copy()

    def state_dict(self) -> dict[str, Any]:
        return {"graph": self.graph.tolist(), "eta": self.eta, "window": self.window, "p0": self.p0.tolist(),
                "p": self.p.tolist(), "losses": [x.tolist() for x in self._losses]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        graph = np.asarray(state["graph"], dtype=float)
        if graph.shape != self.graph.shape:
            raise ConfigError(f"state has a {graph.shape} skills graph, this updater has {self.graph.shape}")
        self.graph = graph
        self.eta = float(state["eta"])
        self.window = int(state["window"])
        self.p0 = np.asarray(state["p0"], dtype=float)
        self.p = np.asarray(state["p"], dtype=float)
        self._losses = deque((np.asarray(x, dtype=float) for x in state["losses"]), maxlen=self.window)
