"""A mixing-law simulator with a known right answer (DESIGN.md "sim"; paper §4, App. B–C).

Every mixing method drives a :class:`~raymix.backend.TrainingBackend`.  :class:`SimBackend` is one whose
per-group losses follow a *known* linear dynamic mixing law (paper eq. 2, Table 1), so a method's estimates
can be compared with the true ``A*`` (paper §4.3, ``sim(Ã, A*)``) and whole methods run end to end in
milliseconds.

Model of training (:class:`LinearDynamicSimulator`).  Each group i has a latent progress ``z_i`` and loss

    L_i = floor_i + g_i · exp(−z_i / g_i),        g_i = L0_i − floor_i,

so losses start at ``L0`` and can never go below ``floor``.  One optimizer step on proportions ``p^t``:

    z^{t+1} = z^t + dt · lr(t) · (A(t) p^t − forget · relu(1 − e^t / p_floor)) + σ_train · ξ^t
    A(t) = A0 + (t/S) · A_drift,    dt = 1/S,    ξ^t ~ N(0, I),
    e^{t+1} = (1 − ρ) e^t + ρ p^t                        (exposure: recent share of the data, ρ = 1/memory)

Linearizing the loss gives exactly the linear dynamic law ``L^{t+1} = L^t − A*(t) p^t`` with the true matrix

    A*_ij(t) = dt · lr(t) · exp(−z_i / g_i) · A_ij(t),

a full, non-diagonal, time-varying matrix: it shrinks with the learning-rate schedule ``lr(t)`` (warm-up, then
cosine to ``min_lr_ratio``) and with each group's remaining gap, and its column sums can change order over time
through ``A_drift`` (paper eq. 10).  Near the simplex edge the law stops being linear (App. C.3, Fig. 5): a
group whose recent exposure ``e_i`` falls below ``p_floor`` is *forgotten* — its loss rises — so a solver
that jumps to a vertex is punished relative to what the linear law predicts.

:class:`LogLinearStaticSimulator` gives final losses of static runs following the log-linear static law
``L_i(p) = c_i + b_i·exp(−Σ_j A_ij p_j)`` (paper eq. 2 / DML) plus noise, with a computable optimum.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import minimize
from scipy.signal import lfilter

from raymix.backend import SPLITS, ProxySignals, TrainingBackend, TrainStats, WeightRule
from raymix.errors import CheckpointError, ConfigError, MixtureError


def _simplex(p: Any, m: int, what: str) -> np.ndarray:
    arr = np.asarray(p, dtype=float)
    ok = arr.shape[-1:] == (m,) and np.isfinite(arr).all() and not np.any(arr < 0)
    if not ok or not np.allclose(arr.sum(axis=-1), 1.0, atol=1e-6):
        raise MixtureError(f"{what} must be non-negative ({m},) proportions summing to 1, got {np.asarray(p).tolist()}")
    return arr


def _pos_int(name: str, v: Any, lo: int = 1) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
        raise ConfigError(f"{name} must be an integer >= {lo}, got {v!r}")
    return int(v)


class LinearDynamicSimulator:
    """Per-group losses under a known linear dynamic law with saturation and forgetting (module docstring).

    Args:
        A0: ``(m, m)`` base interaction matrix, in units of latent progress per whole run at peak lr;
            ``A0[i, j]`` = how much training on group j helps group i.
        L0: ``(m,)`` initial losses (nats/token).
        floor: ``(m,)`` irreducible losses, ``floor < L0``.
        total_steps: run length S (lr schedule horizon; ``dt = 1/S``).
        A_drift: ``(m, m)`` change of the interaction matrix over the run (``A(S) = A0 + A_drift``).
        warmup_steps: linear lr warm-up length.
        min_lr_ratio: lr at the end of the cosine schedule, relative to the peak.
        forget: ``(m,)`` or scalar forgetting rate of a starved group (same units as A0).
        p_floor: exposure below which a group starts to be forgotten.
        memory_steps: horizon 1/ρ of the exposure average, in steps.
        train_noise: σ_train, std of the per-step random walk of z (loss units at the start).
        seed: seed of the training noise.
    """

    def __init__(self, A0: np.ndarray, L0: np.ndarray, floor: np.ndarray, total_steps: int, *,
                 A_drift: np.ndarray | None = None, warmup_steps: int = 0, min_lr_ratio: float = 0.1,
                 forget: float | np.ndarray = 1.0, p_floor: float | None = None, memory_steps: int = 50,
                 train_noise: float = 0.0, seed: int = 0) -> None:
        A0 = np.asarray(A0, dtype=float)
        if A0.ndim != 2 or A0.shape[0] != A0.shape[1] or not np.isfinite(A0).all():
            raise ConfigError(f"A0 must be a finite square (m, m) matrix, got {A0.tolist()}")
        m = A0.shape[0]
        self.A0 = A0
        self.A_drift = np.zeros_like(A0) if A_drift is None else np.asarray(A_drift, dtype=float)
        if self.A_drift.shape != A0.shape or not np.isfinite(self.A_drift).all():
            raise ConfigError(f"A_drift must be a finite ({m}, {m}) matrix, got {np.asarray(A_drift).tolist()}")
        self.L0 = np.asarray(L0, dtype=float)
        self.floor = np.asarray(floor, dtype=float)
        if self.L0.shape != (m,) or self.floor.shape != (m,) or not np.all(self.floor < self.L0):
            raise ConfigError(f"need L0 and floor of shape ({m},) with floor < L0, got L0={self.L0.tolist()}, "
                              f"floor={np.asarray(floor).tolist()}")
        self.total_steps = _pos_int("total_steps", total_steps)
        self.warmup_steps = _pos_int("warmup_steps", warmup_steps, lo=0)
        if not 0.0 <= min_lr_ratio <= 1.0:
            raise ConfigError(f"min_lr_ratio must lie in [0, 1], got {min_lr_ratio!r}")
        self.min_lr_ratio = float(min_lr_ratio)
        self.forget = np.broadcast_to(np.asarray(forget, dtype=float), (m,)).copy()
        if np.any(self.forget < 0) or not np.isfinite(self.forget).all():
            raise ConfigError(f"forget must be finite and >= 0, got {np.asarray(forget).tolist()}")
        self.p_floor = 0.5 / m if p_floor is None else float(p_floor)
        if not 0.0 < self.p_floor <= 1.0 / m:
            raise ConfigError(f"p_floor must lie in (0, 1/m] = (0, {1 / m:.4g}], got {p_floor!r}")
        self.memory_steps = _pos_int("memory_steps", memory_steps)
        if not np.isfinite(train_noise) or train_noise < 0:
            raise ConfigError(f"train_noise must be a finite number >= 0, got {train_noise!r}")
        self.train_noise = float(train_noise)
        self.seed = seed
        self.gap = self.L0 - self.floor
        self.rng = np.random.default_rng(seed)
        self.step_count = 0
        self.z = np.zeros(m)
        self.exposure = np.full(m, 1.0 / m)

    @property
    def m(self) -> int:
        return self.A0.shape[0]

    @property
    def dt(self) -> float:
        return 1.0 / self.total_steps

    # --- the law ----------------------------------------------------------------------------------
    def lr_scale(self, steps: np.ndarray | int) -> np.ndarray:
        """lr(t)/lr_peak: linear warm-up, then cosine from 1 to ``min_lr_ratio`` at S (constant after)."""
        t = np.asarray(steps, dtype=float)
        S, W = self.total_steps, self.warmup_steps
        frac = np.clip((t - W) / max(S - W, 1), 0.0, 1.0)
        cos = self.min_lr_ratio + (1 - self.min_lr_ratio) * 0.5 * (1 + np.cos(np.pi * frac))
        return np.where(t < W, (t + 1) / max(W, 1), cos) if W > 0 else cos

    def A_base(self, step: int | None = None) -> np.ndarray:
        """``A(t) = A0 + (t/S)·A_drift`` ``(m, m)``: the interaction structure before lr and gap scaling."""
        t = self.step_count if step is None else step
        return self.A0 + (t / self.total_steps) * self.A_drift

    def A_star(self, step: int | None = None) -> np.ndarray:
        """True matrix ``A*(t)`` ``(m, m)`` of ``L^{t+1} = L^t − A*(t) p^t`` (per step, loss units).

        ``A*_ij = dt·lr(t)·exp(−z_i/g_i)·A_ij(t)``, using the current progress ``z`` (the only state known)
        and the lr / drift of ``step`` (default: the current step).  Exact to first order while every
        group's exposure stays above ``p_floor``.
        """
        t = self.step_count if step is None else step
        row = np.exp(-self.z / self.gap)
        return self.dt * float(self.lr_scale(t)) * row[:, None] * self.A_base(t)

    def losses_of(self, z: np.ndarray) -> np.ndarray:
        """``floor + g·exp(−z/g)`` for progress ``z`` ``(..., m)``."""
        return self.floor + self.gap * np.exp(-np.asarray(z) / self.gap)

    def expected_losses(self) -> np.ndarray:
        """``(m,)`` current true (noise-free given the trajectory so far) per-group losses."""
        return self.losses_of(self.z)

    # --- training ---------------------------------------------------------------------------------
    def _advance(self, P: np.ndarray, noise: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Vectorized n steps from the current state; returns (z trajectory (n, m), final exposure, steps)."""
        n = P.shape[0]
        ts = self.step_count + np.arange(n)
        lr = self.lr_scale(ts)[:, None]
        drive = P @ self.A0.T + (ts / self.total_steps)[:, None] * (P @ self.A_drift.T)
        rho = 1.0 / self.memory_steps
        # e_k = (1−ρ)e_{k−1} + ρ p_k, as one IIR filter over the steps (zi carries the state in).
        E, _ = lfilter([rho], [1.0, -(1.0 - rho)], P, axis=0, zi=((1.0 - rho) * self.exposure)[None, :])
        starve = self.forget * np.maximum(1.0 - E / self.p_floor, 0.0)
        dz = self.dt * lr * (drive - starve)
        if noise and self.train_noise > 0:
            dz = dz + self.train_noise * self.rng.standard_normal(dz.shape)
        return self.z + np.cumsum(dz, axis=0), E[-1], ts

    def train(self, P: np.ndarray) -> np.ndarray:
        """Take ``n`` steps on per-step proportions ``P`` ``(n, m)``; returns losses after each step ``(n, m)``."""
        P = _simplex(np.atleast_2d(P), self.m, "per-step proportions")
        if P.shape[0] == 0:
            return np.empty((0, self.m))
        Z, e, _ = self._advance(P, noise=True)
        self.z, self.exposure = Z[-1].copy(), e
        self.step_count += P.shape[0]
        return self.losses_of(Z)

    def step(self, p: np.ndarray) -> np.ndarray:
        """One optimizer step on proportions ``p`` ``(m,)``; returns the losses after it ``(m,)``."""
        return self.train(np.asarray(p, dtype=float)[None, :])[0]

    def predict(self, p: np.ndarray, steps: int) -> np.ndarray:
        """Noise-free losses ``(m,)`` after ``steps`` more steps on static ``p``, without changing the state."""
        p = _simplex(p, self.m, "p")
        steps = _pos_int("steps", steps)
        Z, _, _ = self._advance(np.broadcast_to(p, (steps, self.m)), noise=False)
        return self.losses_of(Z[-1])

    # --- state --------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"step": self.step_count, "z": self.z.tolist(), "exposure": self.exposure.tolist(),
                "rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        try:
            z = np.asarray(state["z"], dtype=float)
            exposure = np.asarray(state["exposure"], dtype=float)
            step = int(state["step"])
            rng_state = state["rng"]
        except (KeyError, TypeError, ValueError) as e:
            raise CheckpointError(f"not a LinearDynamicSimulator state ({e!r}); keys: {sorted(state)}") from None
        if z.shape != (self.m,) or exposure.shape != (self.m,):
            raise CheckpointError(f"state is for {z.size} groups, this simulator has m={self.m}")
        self.z, self.exposure, self.step_count = z, exposure, step
        self.rng.bit_generator.state = rng_state

    # --- scenarios ----------------------------------------------------------------------------------
    @classmethod
    def from_preset(cls, name: str, seed: int = 0, *, total_steps: int | None = None,
                    **overrides: Any) -> LinearDynamicSimulator:
        """A named scenario of :data:`PRESETS` (``overrides`` replace its simulator arguments)."""
        sc = get_preset(name)
        kw = dict(sc.sim_kwargs)
        kw.update(overrides)
        return cls(total_steps=total_steps or sc.total_steps, seed=seed, **kw)


@dataclass(frozen=True)
class Scenario:
    """A named simulator setting: group names, simulator arguments, default run length and batch size."""

    groups: tuple[str, ...]
    sim_kwargs: dict[str, Any]
    total_steps: int
    batch_size: int
    eval_noise: float
    description: str


def _seven_group_matrix() -> np.ndarray:
    # Fixed construction (own seed, independent of the run seed): a strong diagonal, mostly positive transfer,
    # and a few harmful pairs, like the SlimPajama groups.
    g = np.random.default_rng(7)
    A = g.normal(0.15, 0.25, size=(7, 7))
    np.fill_diagonal(A, g.uniform(1.0, 2.6, size=7))
    return A


#: Named scenarios.  Matrices are in progress-per-run units; see :class:`LinearDynamicSimulator`.
PRESETS: dict[str, Scenario] = {
    "two_group_interacting": Scenario(
        groups=("github", "c4"),
        # Shaped like the GitHub/C4 fit of paper eq. (12) (×20): the full matrix favours C4 (column sums
        # 2.18 < 2.62) while its diagonal favours GitHub (2.38 > 2.08).
        sim_kwargs=dict(A0=[[2.38, 0.54], [-0.20, 2.08]], A_drift=[[-0.4, 0.1], [0.0, 0.2]],
                        L0=[3.2, 4.4], floor=[0.9, 2.6], forget=2.0, train_noise=2e-5, warmup_steps=0),
        total_steps=5000, batch_size=8, eval_noise=1e-4,
        description="m=2, GitHub/C4-like: strong off-diagonal interactions; diagonal and full A disagree",
    ),
    "three_group": Scenario(
        groups=("arxiv", "books", "stackexchange"),
        sim_kwargs=dict(A0=[[1.8, 0.1, 0.6], [0.05, 1.4, 0.3], [0.5, 0.2, 2.2]],
                        A_drift=[[-0.3, 0.0, 0.1], [0.0, 0.3, 0.0], [0.1, 0.0, -0.5]],
                        L0=[3.6, 4.2, 3.9], floor=[1.6, 2.9, 2.0], forget=2.0, train_noise=2e-5),
        total_steps=5000, batch_size=8, eval_noise=1e-4,
        description="m=3, ArXiv/Books/StackExchange-like",
    ),
    "seven_group": Scenario(
        groups=("arxiv", "book", "c4", "commoncrawl", "github", "stackexchange", "wikipedia"),
        sim_kwargs=dict(A0=_seven_group_matrix(), A_drift=0.3 * (_seven_group_matrix() - _seven_group_matrix().T),
                        L0=[3.7, 4.3, 4.6, 4.5, 2.9, 3.8, 4.0], floor=[1.7, 2.9, 3.1, 3.0, 0.9, 2.0, 2.3],
                        forget=2.0, train_noise=5e-6),
        # 8× more steps than m=2, 3 make every step's loss change 8× smaller; the noise is scaled down with it.
        total_steps=40000, batch_size=8, eval_noise=5e-5,
        description="m=7, SlimPajama-like",
    ),
}


def get_preset(name: str) -> Scenario:
    """The :class:`Scenario` called ``name``; an unknown name raises ConfigError listing the valid ones."""
    try:
        return PRESETS[name]
    except (KeyError, TypeError):
        raise ConfigError(f"unknown simulator preset {name!r}; valid names: {sorted(PRESETS)}") from None


class SimBackend(TrainingBackend):
    """A :class:`TrainingBackend` whose model is a :class:`LinearDynamicSimulator` (DESIGN.md "sim").

    * ``train``: batches composed per example — counts ``~ Multinomial(B, p)`` per step from the backend's RNG
      (so sampling noise exists) — or fixed ``counts``; the simulator steps on ``counts/B``.
    * ``evaluate``: the current true losses + evaluation noise.  The noise of an evaluation set of n sequences
      per group is a fixed offset of that set (std ``eval_noise·sqrt(E/n)``, E = ``eval_examples``) plus a
      jitter of the same size / 4, both drawn deterministically from (seed, split, n) and (seed, step, split, n),
      so repeated evaluations at the same step agree and smaller subsets are noisier.
    * ``proxy_train``: per-step :class:`~raymix.backend.ProxySignals`.  Train and reference losses share the
      batch's noise (the same batch is scored by both models).  Gradient alignment is the first-order analogue
      of DoGE's ⟨∇L_j, ∇L_val⟩: one step on group j lowers group i's loss by ``lr·⟨∇L_i, ∇L_j⟩``, which the
      simulator says is ``A*_ij``; so with a stratified validation batch
      ``alignment_j = Σ_i A*_ij/(dt·lr(t)) / m`` (+ noise shrinking with the validation batch), and
      ``grad_norm_j = sqrt(|A*_jj|/(dt·lr(t)))``.  The model then steps on the returned weights (Lemma 3:
      a weighted objective over a uniform batch equals training on that mixture in expectation).

    Args:
        sim: the simulator (its ``total_steps`` is the run length S).
        groups: group names (default ``g0..g{m-1}``).
        batch_size: sequences per step.
        eval_examples: cached evaluation sequences per group per split.
        eval_noise: std of the evaluation noise on the full cached set (loss units).
        batch_noise: std of a one-sequence training loss around the true loss.
        lr: peak learning rate reported in ProxySignals.
        seed: seed of batch sampling and evaluation noise.
    """

    def __init__(self, sim: LinearDynamicSimulator, *, groups: Sequence[str] | None = None, batch_size: int = 8,
                 eval_examples: int = 64, eval_noise: float = 1e-4, batch_noise: float = 0.3,
                 lr: float = 5e-4, seed: int = 0) -> None:
        self.sim = sim
        self.groups = tuple(groups) if groups is not None else tuple(f"g{i}" for i in range(sim.m))
        if len(self.groups) != sim.m or len(set(self.groups)) != sim.m:
            raise ConfigError(f"need {sim.m} unique group names for this simulator, got {list(self.groups)}")
        self._batch_size = _pos_int("batch_size", batch_size)
        self.eval_examples = _pos_int("eval_examples", eval_examples)
        for name, v in (("eval_noise", eval_noise), ("batch_noise", batch_noise), ("lr", lr)):
            if not np.isfinite(v) or v < 0:
                raise ConfigError(f"{name} must be a finite number >= 0, got {v!r}")
        self.eval_noise = float(eval_noise)
        self.batch_noise = float(batch_noise)
        self.lr = float(lr)
        self.seed = int(seed)
        self.rng = np.random.default_rng([self.seed, 1])
        self._reference: np.ndarray | None = None

    @classmethod
    def from_preset(cls, name: str, seed: int = 0, *, total_steps: int | None = None, batch_size: int | None = None,
                    eval_noise: float | None = None, **sim_overrides: Any) -> SimBackend:
        """Backend on the scenario ``name`` of :data:`PRESETS` (e.g. ``"two_group_interacting"``)."""
        sc = get_preset(name)
        sim = LinearDynamicSimulator.from_preset(name, seed, total_steps=total_steps, **sim_overrides)
        return cls(sim, groups=sc.groups, batch_size=batch_size or sc.batch_size,
                   eval_noise=sc.eval_noise if eval_noise is None else eval_noise, seed=seed)

    # --- TrainingBackend properties -----------------------------------------------------------------
    @property
    def step(self) -> int:
        return self.sim.step_count

    @property
    def total_steps(self) -> int:
        return self.sim.total_steps

    @property
    def batch_size(self) -> int:
        return self._batch_size

    def A_star(self, step: int | None = None) -> np.ndarray:
        """The simulator's true interaction matrix now (see :meth:`LinearDynamicSimulator.A_star`)."""
        return self.sim.A_star(step)

    # --- training -----------------------------------------------------------------------------------
    def _check_counts(self, counts: Any) -> np.ndarray:
        c = np.asarray(counts)
        if c.shape != (self.m,) or not np.issubdtype(c.dtype, np.number) or np.any(c < 0) or np.any(c != np.round(c)) \
                or int(c.sum()) != self._batch_size:
            raise MixtureError(f"counts must be {self.m} non-negative integers summing to batch_size="
                               f"{self._batch_size}, got {np.asarray(counts).tolist()}; see segment_counts()")
        return c.astype(np.int64)

    def train(self, steps: int, mixture: np.ndarray | None = None, *, counts: np.ndarray | None = None) -> TrainStats:
        steps = _pos_int("steps", steps, lo=0)
        if (mixture is None) == (counts is None):
            raise ConfigError("train() takes exactly one of mixture=(m,) proportions or counts=(m,) integer counts")
        B = self._batch_size
        if mixture is not None:
            p = _simplex(mixture, self.m, "mixture")
            C = self.rng.multinomial(B, p / p.sum(), size=steps)
        else:
            C = np.broadcast_to(self._check_counts(counts), (steps, self.m))
        if steps == 0:
            return TrainStats(0, np.full(self.m, np.nan), np.zeros(self.m, dtype=np.int64))
        start = self.sim.expected_losses()
        after = self.sim.train(C / B)
        before = np.vstack([start, after[:-1]])  # a batch's loss is measured before its step
        noise = self.batch_noise * self.rng.standard_normal(C.shape) / np.sqrt(np.maximum(C, 1))
        n = C.sum(axis=0)
        with np.errstate(invalid="ignore"):
            mean = ((before + noise) * C).sum(axis=0) / n
        return TrainStats(steps, np.where(n > 0, mean, np.nan), n.astype(np.int64))

    def proxy_train(self, steps: int, rule: WeightRule, *, reference: bool = False, alignment: bool = False,
                    val_fraction: float = 0.0) -> TrainStats:
        steps = _pos_int("steps", steps, lo=0)
        if not 0.0 <= val_fraction < 1.0:
            raise ConfigError(f"val_fraction must lie in [0, 1), got {val_fraction!r}")
        if reference and self._reference is None:
            raise ConfigError("proxy_train(reference=True) needs set_reference(state) with the reference model first")
        B = self._batch_size
        n_val = int(round(val_fraction * B))
        if alignment and n_val < 1:
            raise ConfigError(f"alignment needs a validation part of the batch; val_fraction={val_fraction} of "
                              f"batch_size={B} rounds to 0 sequences (DoGE: 0.25 for m=2, 0.5 for m>=3)")
        n_train = B - n_val
        sums = np.zeros(self.m)
        n_ex = np.zeros(self.m, dtype=np.int64)
        for _ in range(steps):
            t = self.sim.step_count
            # Stratified batch; the groups that get the remainder rotate so no group is favoured.
            c = np.full(self.m, n_train // self.m)
            c[(t + np.arange(n_train % self.m)) % self.m] += 1
            with np.errstate(divide="ignore"):
                shared = self.batch_noise * self.rng.standard_normal(self.m) / np.sqrt(np.maximum(c, 1))
            L = self.sim.expected_losses()
            train_loss = np.where(c > 0, L + shared, np.nan)
            ref = None
            if reference:
                own = 0.1 * self.batch_noise * self.rng.standard_normal(self.m) / np.sqrt(np.maximum(c, 1))
                ref = np.where(c > 0, self._reference + shared + own, np.nan)
            align = norm = None
            if alignment:
                K = self.sim.A_star(t) / (self.sim.dt * max(float(self.sim.lr_scale(t)), 1e-12))
                scale = float(np.abs(K).mean())
                align = K.mean(axis=0) + scale * self.rng.standard_normal(self.m) / np.sqrt(n_val)
                norm = np.sqrt(np.abs(np.diag(K)))
            signals = ProxySignals(step=t, lr=self.lr * float(self.sim.lr_scale(t)), train_loss=train_loss,
                                   reference_loss=ref, alignment=align, grad_norm=norm)
            w = _simplex(rule(signals), self.m, "weights returned by the proxy rule")
            self.sim.step(w / w.sum())
            present = c > 0
            sums[present] += train_loss[present] * c[present]
            n_ex += c
        with np.errstate(invalid="ignore"):
            mean = np.where(n_ex > 0, sums / np.maximum(n_ex, 1), np.nan)
        return TrainStats(steps, mean, n_ex)

    def set_reference(self, state: dict[str, Any]) -> None:
        """Freeze the model of another SimBackend's ``state_dict()`` as DoReMi's reference (its losses)."""
        try:
            sim_state = state["sim"]
            z = np.asarray(sim_state["z"], dtype=float)
        except (KeyError, TypeError) as e:
            raise CheckpointError(f"set_reference needs a SimBackend.state_dict(), got keys "
                                  f"{sorted(state) if isinstance(state, dict) else type(state).__name__} ({e!r})") from None
        if tuple(state.get("groups", self.groups)) != self.groups or z.shape != (self.m,):
            raise CheckpointError(f"reference state has groups {state.get('groups')}, this backend {list(self.groups)}")
        self._reference = self.sim.losses_of(z)

    # --- evaluation ---------------------------------------------------------------------------------
    def evaluate(self, split: str = "val", *, max_examples: int | None = None) -> np.ndarray:
        if split not in SPLITS:
            raise ConfigError(f"unknown split {split!r}; valid splits: {list(SPLITS)}")
        n = self.eval_examples if max_examples is None else min(_pos_int("max_examples", max_examples),
                                                               self.eval_examples)
        s = SPLITS.index(split)
        sd = self.eval_noise * np.sqrt(self.eval_examples / n)
        offset = np.random.default_rng([self.seed, 2, s, n]).standard_normal(self.m)
        jitter = np.random.default_rng([self.seed, 3, self.sim.step_count, s, n]).standard_normal(self.m)
        return self.sim.expected_losses() + sd * (offset + 0.25 * jitter)

    # --- state --------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"groups": list(self.groups), "batch_size": self._batch_size, "sim": self.sim.state_dict(),
                "rng": self.rng.bit_generator.state,
                "reference": None if self._reference is None else self._reference.tolist()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        try:
            groups, sim_state, rng_state, ref = state["groups"], state["sim"], state["rng"], state["reference"]
        except (KeyError, TypeError) as e:
            raise CheckpointError(f"not a SimBackend state ({e!r})") from None
        if tuple(groups) != self.groups or int(state["batch_size"]) != self._batch_size:
            raise CheckpointError(f"state is for groups {list(groups)} / batch_size {state['batch_size']}, this "
                                  f"backend has {list(self.groups)} / {self._batch_size}; build a matching backend")
        self.sim.load_state_dict(sim_state)
        self.rng.bit_generator.state = rng_state
        self._reference = None if ref is None else np.asarray(ref, dtype=float)


class LogLinearStaticSimulator:
    """Final losses of static runs: ``L_i(p) = c_i + b_i·exp(−Σ_j A_ij p_j) + noise`` (paper Table 1, DML).

    Args:
        c: ``(m,)`` irreducible losses.
        b: ``(m,)`` positive scales.
        A: ``(m, m)`` interaction matrix.
        noise: std of the Gaussian noise of one run's final loss.
        seed: seed of that noise.
    """

    def __init__(self, c: np.ndarray, b: np.ndarray, A: np.ndarray, *, noise: float = 0.0, seed: int = 0) -> None:
        self.A = np.asarray(A, dtype=float)
        m = self.A.shape[0]
        self.c = np.asarray(c, dtype=float)
        self.b = np.asarray(b, dtype=float)
        if self.A.shape != (m, m) or self.c.shape != (m,) or self.b.shape != (m,) or np.any(self.b <= 0):
            raise ConfigError(f"need c, b of shape (m,) with b > 0 and A of shape (m, m); got c={self.c.tolist()}, "
                              f"b={self.b.tolist()}, A shape {self.A.shape}")
        if not np.isfinite(noise) or noise < 0:
            raise ConfigError(f"noise must be a finite number >= 0, got {noise!r}")
        self.noise = float(noise)
        self.rng = np.random.default_rng(seed)

    @property
    def m(self) -> int:
        return self.A.shape[0]

    @classmethod
    def random(cls, m: int, seed: int = 0, *, noise: float = 0.0) -> LogLinearStaticSimulator:
        """A random instance with a positive-dominant A (so more data of a group helps it most)."""
        m = _pos_int("m", m)
        g = np.random.default_rng([seed, 11])
        A = g.normal(0.2, 0.3, size=(m, m))
        np.fill_diagonal(A, g.uniform(1.0, 3.0, size=m))
        return cls(g.uniform(1.5, 3.0, size=m), g.uniform(0.5, 1.5, size=m), A, noise=noise, seed=seed)

    def expected_losses(self, P: np.ndarray) -> np.ndarray:
        """Noise-free losses ``(n, m)`` for mixtures ``P`` ``(n, m)`` (or ``(m,)`` → ``(m,)``)."""
        P = _simplex(P, self.m, "mixtures P")
        return self.c + self.b * np.exp(-(P @ self.A.T))

    def run(self, P: np.ndarray) -> np.ndarray:
        """Noisy final losses of static runs on mixtures ``P`` ``(n, m)`` (or ``(m,)``)."""
        L = self.expected_losses(P)
        return L + self.noise * self.rng.standard_normal(L.shape) if self.noise > 0 else L

    def optimal_mixture(self, restarts: int = 8) -> np.ndarray:
        """Minimizer ``(m,)`` of the summed expected loss over the simplex (softmax parameterization + restarts)."""
        def f(x: np.ndarray) -> float:
            w = np.exp(x - x.max())
            return float(self.expected_losses(w / w.sum()).sum())

        g = np.random.default_rng(0)
        best = min((minimize(f, g.normal(size=self.m) if r else np.zeros(self.m), method="L-BFGS-B")
                    for r in range(restarts)), key=lambda r: r.fun)
        w = np.exp(best.x - best.x.max())
        return w / w.sum()
