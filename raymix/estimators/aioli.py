"""Aioli's parameter estimation (paper Algorithm 2, LEARNPARAMS) and proportion update (Algorithm 1, App. D).

Pure maths: the trainer (``raymix.methods``) trains the segments and measures the losses; this module turns
the measured loss drops into the interaction matrix A^t and A^t into the next proportions p^t.  A small
reference loop, :func:`run_aioli`, drives any :class:`~raymix.backend.TrainingBackend` end to end and is what
the simulator tests use to check that the estimates point p the right way.

Notation (paper §5): m groups, k sweeps, K = m·k segments per round, smoothing ε,
``p^{t,j} = (1−ε)·1_j + ε/m`` (column j of ``P``), ``β[i, j]`` = summed drop of group i's validation loss
over the segments trained on ``p^{t,j}``.  The linear dynamic law ``L^{t+1}_i = L^t_i − Σ_l A_il p_l`` gives
``β̄ = A·P`` after averaging, hence ``A = β̄·P^{-1}`` (row i: ``A_i = P^{-1} β̄_i``; P is symmetric).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from raymix.backend import TrainingBackend
from raymix.errors import ConfigError, FitError, MixtureError, NonFiniteError
from raymix.estimators.normalization import NORMALIZATIONS, normalize
from raymix.solvers import egd_update

#: P with a condition number above this is treated as singular (ε → 1 makes every column uniform).
MAX_CONDITION = 1e10


def _check_m(m: Any) -> int:
    if isinstance(m, bool) or int(m) != m or m < 1:
        raise ConfigError(f"number of groups m must be a positive integer, got {m!r}")
    return int(m)


def _check_eps(eps: float) -> float:
    try:
        e = float(eps)
    except (TypeError, ValueError):
        raise ConfigError(f"one-hot smoothing eps must be a number in [0, 1), got {eps!r}") from None
    if not 0.0 <= e < 1.0:
        raise ConfigError(
            f"one-hot smoothing eps must lie in [0, 1), got {eps!r}; eps = 1 makes every segment mixture uniform "
            "and the system P·A = β unsolvable (the paper uses 0.75)"
        )
    return e


def _check_simplex(p: Any, what: str) -> np.ndarray:
    arr = np.asarray(p, dtype=float)
    if arr.ndim != 1 or arr.size == 0 or not np.isfinite(arr).all() or np.any(arr < 0) or abs(arr.sum() - 1) > 1e-6:
        raise MixtureError(f"{what} must be a finite non-negative (m,) vector summing to 1, got {np.asarray(p).tolist()}")
    return arr / arr.sum()


def smoothed_onehots(m: int, eps: float) -> np.ndarray:
    """``P`` ``(m, m)`` whose column j is ``p^{t,j} = (1−ε)·1_j + ε/m`` (Algorithm 2, line 4).

    P is symmetric, every column is on the simplex, and it is invertible for ``0 ≤ ε < 1``.
    """
    m = _check_m(m)
    eps = _check_eps(eps)
    return (1.0 - eps) * np.eye(m) + eps / m


def segment_order(m: int, k: int, rng: np.random.Generator, mode: str = "shuffle") -> np.ndarray:
    """Order ``I`` ``(m·k,)`` of the segment mixtures to train on (Algorithm 2, line 5).

    ``"shuffle"``: k copies of each index in ``0..m−1``, shuffled together (the paper's wording).
    ``"permutations"``: k random permutations of ``0..m−1`` concatenated (the authors' code), which also
    spreads every group evenly over the round.
    """
    m = _check_m(m)
    if isinstance(k, bool) or int(k) != k or k < 1:
        raise ConfigError(f"number of sweeps k must be a positive integer, got {k!r}")
    k = int(k)
    if mode == "shuffle":
        order = np.repeat(np.arange(m), k)
        rng.shuffle(order)
        return order
    if mode == "permutations":
        return np.concatenate([rng.permutation(m) for _ in range(k)])
    raise ConfigError(f"unknown segment order mode {mode!r}; valid modes: ['permutations', 'shuffle']")


def segment_counts(p: np.ndarray, batch_size: int) -> np.ndarray:
    """Integer per-batch group counts ``(m,)`` for a segment mixture ``p`` (ALGORITHMS.md, "Segment batches").

    Largest-remainder rounding of ``p·B`` (ties to the lower index), then every group with positive mass that
    was rounded to 0 takes one example from the group whose count most exceeds its quota.  The result is
    never negative, sums exactly to ``batch_size`` and starves no group with ``p_j > 0`` — unlike the authors'
    7-group config, which produced counts ``[6, 1, 1, 1, 1, 1, −3]``.

    Raises:
        MixtureError: ``p`` is not on the simplex.
        ConfigError: ``batch_size`` is not an integer ≥ m (then some group must get 0 examples).
    """
    p = _check_simplex(p, "segment mixture p")
    m = p.size
    if isinstance(batch_size, bool) or int(batch_size) != batch_size:
        raise ConfigError(f"batch_size must be an integer, got {batch_size!r}")
    B = int(batch_size)
    if B < m:
        raise ConfigError(
            f"batch_size {B} is smaller than the number of groups m={m}: a LearnParams segment batch cannot "
            f"contain every group; use batch_size >= {m} (e.g. with gradient accumulation)"
        )
    raw = p * B
    counts = np.floor(raw).astype(np.int64)
    rem = B - int(counts.sum())
    frac = raw - counts
    counts[np.argsort(-frac, kind="stable")[:rem]] += 1
    # Starved groups: donors are groups with >= 2 examples; B >= m guarantees one exists while any group is 0.
    for i in np.flatnonzero((p > 0) & (counts == 0)):
        excess = np.where(counts >= 2, counts - raw, -np.inf)
        donor = int(np.argmax(excess))
        counts[donor] -= 1
        counts[i] += 1
    return counts


@dataclass(frozen=True)
class RoundPlan:
    """One Aioli round of the dynamic phase (Algorithm 1, lines 4–7), in global optimizer steps.

    Attributes:
        index: round number t − 1 (0-based).
        start, end: first step of the round and the step after its last one.
        segments: K = m·k LearnParams segments.
        segment_steps: steps of every segment (all K segments are equally long, Algorithm 2 line 2).
    """

    index: int
    start: int
    end: int
    segments: int
    segment_steps: int

    @property
    def length(self) -> int:
        return self.end - self.start

    @property
    def learn_steps(self) -> int:
        """Steps spent in LearnParams: K·segment_steps ≤ round(δ·length)."""
        return self.segments * self.segment_steps

    @property
    def mixture_steps(self) -> int:
        """Steps trained on p^t after LearnParams (the rest of the round, floor remainder included)."""
        return self.length - self.learn_steps


def round_schedule(start_step: int, stop_step: int, *, rounds: int, delta: float, m: int, k: int) -> list[RoundPlan]:
    """The rounds of Aioli's dynamic phase from ``start_step`` to ``stop_step`` — the one schedule computation
    shared by the policy (``raymix.methods.policies.AioliPolicy``), :func:`run_aioli` and plan checks.

    The span is split into T rounds whose lengths differ by at most one step (longer first).  Each round
    gives ``round(δ·length)`` steps to LearnParams, cut into K = m·k segments of **equal** length
    ``⌊round(δ·length)/K⌋`` (Algorithm 2, line 2); the floor remainder goes to the p^t phase.  Unequal
    segments would bias β: a segment one step shorter drops every loss less, and Algorithm 2 adds the
    drops unscaled (docs/DECISIONS.md, "LearnParams segments are equally long").

    Raises:
        ConfigError: fewer than T steps in the span, or fewer LearnParams steps than K segments in a round.
    """
    m = _check_m(m)
    for name, v in (("rounds T", rounds), ("sweeps k", k)):
        if isinstance(v, bool) or int(v) != v or v < 1:
            raise ConfigError(f"{name} must be a positive integer, got {v!r}")
    if not 0.0 < float(delta) < 1.0:
        raise ConfigError(f"delta (LearnParams fraction of a round) must lie in (0, 1), got {delta!r}")
    T, K = int(rounds), m * int(k)
    span = int(stop_step) - int(start_step)
    if span < T:
        raise ConfigError(f"Aioli needs at least T={T} steps in its dynamic phase, but only {span} remain "
                          f"(from step {start_step} to {stop_step}); lower rounds or train longer")
    base, rem = divmod(span, T)
    plans, at = [], int(start_step)
    for t in range(T):
        length = base + (1 if t < rem else 0)
        budget = int(round(float(delta) * length))
        if budget < K:
            raise ConfigError(
                f"LearnParams needs ≥ 1 step per segment: δ·(round length) = {delta}·{length} = {budget} steps "
                f"< K = m·k = {K} segments; raise delta, lower rounds/sweeps, or train longer"
            )
        plans.append(RoundPlan(index=t, start=at, end=at + length, segments=K, segment_steps=budget // K))
        at += length
    return plans


class LearnParamsAccumulator:
    """Accumulates one round of LEARNPARAMS (Algorithm 2, lines 3–11) and solves for A^t.

    Lifecycle per round: construct (or :meth:`reset`) → ``m·k`` calls of :meth:`record` (one per segment,
    in any order, each group exactly k times) → :meth:`solve`.

    Args:
        m: number of groups.
        k: sweeps per round (each segment mixture is trained k times).
        eps: one-hot smoothing ε.
        segment_mixtures: optional ``(m, m)`` matrix whose column j is the mixture *actually* trained in
            segment j — e.g. ``segment_counts(p^{t,j}, B) / B`` once batches are rounded to integer counts.
            Solving with the realized mixtures instead of the nominal :func:`smoothed_onehots` removes the
            rounding bias from A^t.  Default: the nominal ``smoothed_onehots(m, eps)``.
    """

    def __init__(self, m: int, k: int, eps: float, *, segment_mixtures: np.ndarray | None = None) -> None:
        self.m = _check_m(m)
        if isinstance(k, bool) or int(k) != k or k < 1:
            raise ConfigError(f"number of sweeps k must be a positive integer, got {k!r}")
        self.k = int(k)
        self.eps = _check_eps(eps)
        if segment_mixtures is None:
            P = smoothed_onehots(self.m, self.eps)
        else:
            P = np.asarray(segment_mixtures, dtype=float)
            if P.shape != (self.m, self.m):
                raise ConfigError(f"segment_mixtures must have shape ({self.m}, {self.m}), got {P.shape}")
            for j in range(self.m):
                _check_simplex(P[:, j], f"segment_mixtures column {j}")
        if np.linalg.cond(P) > MAX_CONDITION:
            raise FitError(f"segment mixture matrix P={P.tolist()} is singular; use eps < 1 and distinct mixtures")
        self.P = P
        self.reset()

    def reset(self) -> None:
        """Start a new round: β = 0 and no segments recorded."""
        self._beta = np.zeros((self.m, self.m))
        self._counts = np.zeros(self.m, dtype=np.int64)

    @property
    def counts(self) -> np.ndarray:
        """``(m,)`` segments recorded so far per segment mixture."""
        return self._counts.copy()

    @property
    def complete(self) -> bool:
        return bool(np.all(self._counts == self.k))

    def record(self, j: int, loss_before: np.ndarray, loss_after: np.ndarray) -> None:
        """Algorithm 2, line 9: ``β[:, j] += L_val(before segment) − L_val(after segment)``.

        Args:
            j: index of the segment mixture ``p^{t,j}`` that was trained.
            loss_before: ``(m,)`` per-group validation loss (nats/token) before the segment.
            loss_after: ``(m,)`` the same after the segment.
        """
        if isinstance(j, bool) or int(j) != j or not 0 <= j < self.m:
            raise ConfigError(f"segment group j must be an integer in [0, {self.m}), got {j!r}")
        j = int(j)
        before = np.asarray(loss_before, dtype=float)
        after = np.asarray(loss_after, dtype=float)
        for name, arr in (("loss_before", before), ("loss_after", after)):
            if arr.shape != (self.m,) or not np.isfinite(arr).all():
                raise FitError(f"{name} must be a finite ({self.m},) vector of per-group losses, got {arr.tolist()}")
        if self._counts[j] >= self.k:
            raise FitError(
                f"segment mixture {j} was already recorded k={self.k} times this round; call reset() before a new round"
            )
        self._beta[:, j] += before - after
        self._counts[j] += 1

    def beta(self) -> np.ndarray:
        """``β / k`` ``(m, m)`` (Algorithm 2, line 10): mean loss drop of group i per segment on ``p^{t,j}``."""
        return self._beta / self.k

    def solve(self, diagonal: bool = False) -> np.ndarray:
        """A^t ``(m, m)`` from the averaged drops (Algorithm 2, line 11).

        ``diagonal=False``: ``A_i = P^{-1} β̄_i`` for every row i, i.e. ``A = β̄·P^{-1}`` (P symmetric).
        ``diagonal=True`` (Aioli-diagonal ablation, paper App. E.2): ``A_ii = β̄_ii / p^{t,i}_i``, off-diagonal 0.

        Raises:
            FitError: some segment mixture was not recorded exactly k times.
        """
        if not self.complete:
            raise FitError(
                f"LearnParams round incomplete: segments recorded per mixture {self._counts.tolist()}, "
                f"expected k={self.k} each; train and record every segment of the order before solve()"
            )
        b = self.beta()
        if diagonal:
            return np.diag(np.diag(b) / np.diag(self.P))
        # β̄ = A·P  ⇒  Pᵀ·Aᵀ = β̄ᵀ.
        return np.linalg.solve(self.P.T, b.T).T

    def state_dict(self) -> dict[str, Any]:
        return {"m": self.m, "k": self.k, "eps": self.eps, "P": self.P.tolist(), "beta_sum": self._beta.tolist(),
                "counts": self._counts.tolist()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if (state["m"], state["k"]) != (self.m, self.k):
            raise ConfigError(f"state is for m={state['m']}, k={state['k']}; this accumulator has m={self.m}, k={self.k}")
        self.eps = float(state["eps"])
        self.P = np.asarray(state["P"], dtype=float)
        self._beta = np.asarray(state["beta_sum"], dtype=float).reshape(self.m, self.m)
        self._counts = np.asarray(state["counts"], dtype=np.int64)


class AioliUpdater:
    """Aioli's proportion update from successive A^t (Algorithm 1 line 6; EMA variant of App. D).

    Without EMA (``gamma=None``): ``p^t ∝ p^{t−1}·exp(η·1ᵀĀ^t)`` — unrolled, ``p^t ∝ p^0·exp(η Σ_τ 1ᵀĀ^τ)``.
    With EMA γ: ``E^1 = Ā^1``, ``E^t = (1−γ)·Ā^t + γ·E^{t−1}``, ``p^t ∝ p^0·exp(η·1ᵀE^t)``.

    With ``normalization="shift_sum"`` and EMA the reachable mixtures are bounded
    (:func:`raymix.estimators.normalization.reachable_range`): p_j/p_l ≤ (p0_j/p0_l)·e^η.

    Args:
        p0: ``(m,)`` starting proportions (uniform in Algorithm 1; p_init for a restricted hand-off).
        eta: EGD step size η ≥ 0.
        gamma: EMA weight γ in [0, 1), or None.
        normalization: a name in :data:`~raymix.estimators.normalization.NORMALIZATIONS`.
    """

    def __init__(self, p0: np.ndarray, eta: float, *, gamma: float | None = None,
                 normalization: str = "shift_sum") -> None:
        self.p0 = _check_simplex(p0, "initial proportions p0")
        if not np.isfinite(eta) or eta < 0:
            raise ConfigError(f"eta must be a finite number >= 0, got {eta!r}")
        if gamma is not None and not 0.0 <= float(gamma) < 1.0:
            raise ConfigError(f"EMA gamma must be None or lie in [0, 1), got {gamma!r}")
        if normalization not in NORMALIZATIONS:
            raise ConfigError(f"unknown normalization {normalization!r}; valid names: {sorted(NORMALIZATIONS)}")
        self.eta = float(eta)
        self.gamma = None if gamma is None else float(gamma)
        self.normalization = normalization
        self.p = self.p0.copy()
        self.ema: np.ndarray | None = None
        self.rounds = 0

    @property
    def m(self) -> int:
        return self.p0.size

    def update(self, A: np.ndarray) -> np.ndarray:
        """Normalize ``A`` ``(m, m)`` to Ā^t, apply the update, return the new ``p^t`` ``(m,)``."""
        A = np.asarray(A, dtype=float)
        if A.shape != (self.m, self.m):
            raise FitError(f"A must have shape ({self.m}, {self.m}), got {A.shape}")
        if not np.isfinite(A).all():
            raise NonFiniteError(f"the learned interaction matrix A^t is not finite ({A.tolist()}); the LearnParams "
                                 "losses diverged — lower the learning rate; p is left at its last value")
        A_bar = normalize(A, self.normalization)
        if self.gamma is None:
            p = egd_update(self.p, A_bar, self.eta)
        else:
            ema = A_bar if self.ema is None else (1.0 - self.gamma) * A_bar + self.gamma * self.ema
            p = egd_update(self.p0, ema, self.eta)
        if not np.isfinite(p).all():
            raise NonFiniteError(f"the proportion update gave a non-finite p ({p.tolist()}) from A^t = {A.tolist()}; "
                                 "lower eta or the learning rate")
        if self.gamma is not None:
            self.ema = ema
        self.p = p
        self.rounds += 1
        return self.p.copy()

    def state_dict(self) -> dict[str, Any]:
        return {"p0": self.p0.tolist(), "p": self.p.tolist(), "eta": self.eta, "gamma": self.gamma,
                "normalization": self.normalization, "rounds": self.rounds,
                "ema": None if self.ema is None else self.ema.tolist()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if len(state["p0"]) != self.m:
            raise ConfigError(f"state has {len(state['p0'])} groups, this updater has m={self.m}")
        self.p0 = np.asarray(state["p0"], dtype=float)
        self.p = np.asarray(state["p"], dtype=float)
        self.eta = float(state["eta"])
        self.gamma = None if state["gamma"] is None else float(state["gamma"])
        self.normalization = state["normalization"]
        self.rounds = int(state["rounds"])
        self.ema = None if state["ema"] is None else np.asarray(state["ema"], dtype=float)


def colsum_sign_agreement(colsums: np.ndarray) -> np.ndarray:
    """``(m,)`` how consistently each group is pushed the same way across rounds, in [0, 1].

    ``colsums`` ``(T, m)``: the column sums ``1ᵀĀ^t`` of each round.  EGD moves p_j up in round t when
    ``1ᵀĀ^t_j`` is above the round's mean column sum (only differences between columns move p), so the
    direction is ``sign(s^t_j − mean_l s^t_l)`` and the agreement is ``|mean_t direction_j|``: 1 when group j
    went the same way in every round, 0 when it went up as often as down (the estimate is noise there).
    """
    c = np.asarray(colsums, dtype=float)
    if c.ndim != 2 or c.shape[0] == 0:
        raise FitError(f"colsums must be a (T, m) array with T >= 1 rounds, got shape {c.shape}")
    return np.abs(np.sign(c - c.mean(axis=1, keepdims=True)).mean(axis=0))


def learn_params(backend: TrainingBackend, k: int, eps: float, rng: np.random.Generator,
                 seg_steps: int, *, order_mode: str = "shuffle",
                 eval_examples: int | None = None) -> tuple[LearnParamsAccumulator, np.ndarray]:
    """Algorithm 2 (LEARNPARAMS) on a backend: K = m·k segments on the smoothed one-hots, in a random order.

    Every segment trains the same ``seg_steps`` steps (Algorithm 2, line 2: β adds the loss drops unscaled,
    so a shorter segment would under-count its mixture; :func:`round_schedule` gives the equal length) on
    whole-example counts (:func:`segment_counts`) and records the change of every group's validation loss
    (on at most ``eval_examples`` cached sequences per group) — K+1 evaluations in all.  The accumulator
    solves with the mixtures actually trained, so rounding p^{t,j} to counts does not bias A^t.

    Returns:
        the filled :class:`LearnParamsAccumulator` (``.solve(diagonal=...)`` gives A^t) and the ``(m,)``
        validation loss after the last segment.
    """
    m = backend.m
    P = smoothed_onehots(m, eps)
    counts = np.stack([segment_counts(P[:, j], backend.batch_size) for j in range(m)], axis=1)
    acc = LearnParamsAccumulator(m, k, eps, segment_mixtures=counts / backend.batch_size)
    order = segment_order(m, k, rng, order_mode)
    if isinstance(seg_steps, bool) or not isinstance(seg_steps, (int, np.integer)) or seg_steps < 1:
        raise ConfigError(f"LearnParams needs one segment length of at least one step for all {order.size} "
                          f"segments (m·k; equal lengths keep β unbiased), got {seg_steps!r}")
    before = backend.evaluate("val", max_examples=eval_examples)
    for j in order:
        backend.train(int(seg_steps), counts=counts[:, j])
        after = backend.evaluate("val", max_examples=eval_examples)
        acc.record(int(j), before, after)
        before = after
    return acc, before


@dataclass
class AioliRun:
    """What :func:`run_aioli` did.

    Attributes:
        proportions: ``(T+1, m)`` p^0 … p^T.
        matrices: the T raw A^t ``(m, m)`` learned by LearnParams (before normalization).
        learn_steps: steps spent in LearnParams segments per round (the rest trained on p^t).
        final_val_loss: ``(m,)`` validation losses after the last step.
    """

    proportions: np.ndarray
    matrices: list[np.ndarray] = field(default_factory=list)
    learn_steps: int = 0
    final_val_loss: np.ndarray | None = None


def run_aioli(backend: TrainingBackend, *, rounds: int = 20, k: int = 4, delta: float = 0.128, eps: float = 0.75,
              eta: float = 0.2, gamma: float | None = None, normalization: str = "shift_sum",
              diagonal: bool = False, eval_examples: int | None = None, p0: np.ndarray | None = None,
              order_mode: str = "shuffle", seed: int = 0) -> AioliRun:
    """Reference Aioli loop (Algorithm 1 with Algorithm 2) over the backend's remaining steps.

    Each of the T rounds (:func:`round_schedule`) spends ``δ`` of its steps in K = m·k LearnParams segments of
    equal length (batches composed with :func:`segment_counts`, validation loss measured before and after each
    segment on at most ``eval_examples`` sequences per group), solves A^t, updates p with :class:`AioliUpdater`, and trains the
    rest of the round on p^t.  The production policy with checkpointing lives in ``raymix.methods``; this loop
    exists so the estimators can be checked end to end against a known A* (``raymix.sim.SimBackend``).

    Raises:
        ConfigError: a round is too short for K segments of at least one step.
    """
    m = backend.m
    plans = round_schedule(backend.step, backend.total_steps, rounds=rounds, delta=delta, m=m, k=k)
    rng = np.random.default_rng(seed)
    updater = AioliUpdater(np.full(m, 1.0 / m) if p0 is None else p0, eta, gamma=gamma, normalization=normalization)
    props = [updater.p.copy()]
    mats: list[np.ndarray] = []
    for plan in plans:
        acc, _ = learn_params(backend, k, eps, rng, plan.segment_steps, order_mode=order_mode,
                              eval_examples=eval_examples)
        A = acc.solve(diagonal=diagonal)
        mats.append(A)
        p = updater.update(A)
        props.append(p)
        if plan.mixture_steps > 0:
            backend.train(plan.mixture_steps, p)
    return AioliRun(np.asarray(props), mats, plans[0].learn_steps, backend.evaluate("val"))
