"""Mixing policies: the online controllers that drive one training run, one round at a time.

A policy owns the proportions schedule of a run; the backend owns the model.  The Tune trainable
(``raymix.tune.trainable.MixingTrainable``) calls :meth:`MixingPolicy.run_round` once per ``step()``
and checkpoints ``backend.state_dict()`` together with ``policy.state_dict()``.

Lifecycle: ``policy = build_policy(name, config, groups, stop_step)`` → ``while not policy.done(backend):
report = policy.run_round(backend)`` → ``policy.summary()``.  ``state_dict``/``load_state_dict`` may be
called between rounds.  A policy never counts steps itself: progress is ``backend.step`` (the backend's
own counter, which survives checkpoints and hand-offs between trials).

Policies (each a composition of law × parameter estimator × solver of the LMO framework, paper Table 1):

* ``static``   — fixed p (stratified, grid-search/DML/RegMix runs, final runs of offline methods);
* ``aioli``    — Algorithm 1 + 2 (LearnParams → normalise → EGD, optional EMA, S_init/p_init prefix);
* ``skill_it`` — EGD with A^t = skills graph ⊙ current validation loss (Thm. 1);
* ``doremi``   — DoReMi proxy: excess-loss weights on a reweighted objective (Thm. 1, Lemma 3);
* ``doge``     — DoGE proxy: gradient-alignment weights on a reweighted objective (Thm. 1, Lemma 3).
"""

from __future__ import annotations

import math
import warnings
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from raymix.backend import ProxySignals, TrainingBackend
from raymix.config import Config, check, check_int, check_range, field
from raymix.errors import ConfigError, MethodError, RaymixWarning
from raymix.estimators import aioli as aioli_est
from raymix.estimators.doge import DoGEWeights
from raymix.estimators.doremi import DoReMiWeights
from raymix.estimators.normalization import NORMALIZATIONS, normalize, reachable_range
from raymix.estimators.skill_it import SkillItUpdater
from raymix.methods.runs import RoundReport
from raymix.mixture import as_weights


def _split_evenly(total: int, parts: int) -> list[int]:
    """``total`` steps split into ``parts`` integer chunks differing by at most one (larger first)."""
    base, rem = divmod(int(total), int(parts))
    return [base + (1 if i < rem else 0) for i in range(parts)]


def _floats(x: np.ndarray | None) -> list[float] | None:
    return None if x is None else [float(v) for v in np.asarray(x, dtype=float).ravel()]


class MixingPolicy(ABC):
    """Base class; see the module docstring for the lifecycle."""

    name: ClassVar[str]
    config_cls: ClassVar[type[Config]]

    def __init__(self, config: Config, groups: tuple[str, ...], stop_step: int) -> None:
        self.config = config
        self.groups = tuple(groups)
        self.stop_step = int(stop_step)

    @property
    def m(self) -> int:
        return len(self.groups)

    def done(self, backend: TrainingBackend) -> bool:
        return backend.step >= self.stop_step

    def _check_backend(self, backend: TrainingBackend) -> None:
        if tuple(backend.groups) != self.groups:
            raise MethodError(f"policy {self.name!r} was built for groups {list(self.groups)}, "
                              f"backend has {list(backend.groups)}")
        if self.stop_step > backend.total_steps:
            raise ConfigError(f"policy {self.name!r} stops at step {self.stop_step} but the backend's run has only "
                              f"total_steps={backend.total_steps}")

    @abstractmethod
    def run_round(self, backend: TrainingBackend) -> RoundReport:
        """Train one mixing round on ``backend`` and report it."""

    def summary(self) -> dict[str, Any]:
        """What later phases of a method need from this run (e.g. averaged proxy weights)."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""


# --------------------------------------------------------------------------------------------------- static
@dataclass
class StaticConfig(Config):
    """A fixed mixture for the whole run (stratified, grid search, DML, the final run of offline methods)."""

    mixture: list[float] | None = field(None, help="proportions (m,); None = stratified 1/m")
    rounds: int = field(10, help="reporting rounds over the run (one Tune step each); evaluation after each")
    eval_examples: int | None = field(None, help="per-group validation examples evaluated after each round")
    eval_start: bool = field(False, help="also evaluate before the first step (Skill-It's graph runs need it)")
    decision_rounds: list[int] | None = field(None, help="rounds (1-based) whose evaluation a trial scheduler "
                                                         "decides on (ASHA rungs, PBT exploit points): evaluated on "
                                                         "decision_examples instead of eval_examples")
    decision_examples: int | None = field(None, help="per-group validation examples at decision_rounds "
                                                     "(None = the whole cached set)")

    def validate(self) -> None:
        check(int(self.rounds) >= 1, f"rounds must be >= 1, got {self.rounds!r}")
        if self.mixture is not None:
            as_weights(self.mixture)
        for name in ("eval_examples", "decision_examples"):
            if getattr(self, name) is not None:
                check_int(name, getattr(self, name), 1)
        if self.decision_rounds is not None:
            check(all(isinstance(r, int) and 1 <= r <= int(self.rounds) for r in self.decision_rounds),
                  f"decision_rounds must be rounds 1..{self.rounds}, got {self.decision_rounds!r}")


class StaticPolicy(MixingPolicy):
    """Train on one fixed p (paper §3.3.1: offline methods choose p once; stratified sets p = 1/m)."""

    name = "static"
    config_cls = StaticConfig

    def __init__(self, config: StaticConfig, groups: tuple[str, ...], stop_step: int) -> None:
        super().__init__(config, groups, stop_step)
        m = len(groups)
        self.p = np.full(m, 1.0 / m) if config.mixture is None else as_weights(config.mixture)
        if self.p.size != m:
            raise ConfigError(f"static mixture {config.mixture!r} has {self.p.size} entries for {m} groups {groups}")
        self.val_start: list[float] | None = None
        self.val_end: list[float] | None = None
        self.start_step: int | None = None

    def run_round(self, backend: TrainingBackend) -> RoundReport:
        self._check_backend(backend)
        cfg: StaticConfig = self.config
        if self.start_step is None:
            self.start_step = backend.step
            if cfg.eval_start:
                # Skill-It's skills graph needs the loss before training (paper Table 1: L^1_val,i(1_j)).
                self.val_start = _floats(backend.evaluate("val", max_examples=cfg.eval_examples))
        span = self.stop_step - self.start_step
        boundaries = np.cumsum([0, *_split_evenly(span, min(cfg.rounds, span))]) + self.start_step
        this_round = int(np.searchsorted(boundaries, backend.step, side="right"))  # 1-based
        nxt = int(boundaries[this_round])
        stats = backend.train(nxt - backend.step, mixture=self.p)
        # a scheduler's decision reads this round's value: evaluate it on the decision set, the others on the
        # (smaller) per-round set — the curve between decisions
        decides = cfg.decision_rounds is not None and this_round in cfg.decision_rounds
        val = backend.evaluate("val", max_examples=cfg.decision_examples if decides else cfg.eval_examples)
        self.val_end = _floats(val)
        return RoundReport(step=backend.step, mixture=_floats(self.p), train_loss=_floats(stats.group_train_loss),
                           val_loss=_floats(val))

    def summary(self) -> dict[str, Any]:
        return {"mixture": _floats(self.p), "val_start": self.val_start, "val_end": self.val_end}

    def state_dict(self) -> dict[str, Any]:
        return {"val_start": self.val_start, "val_end": self.val_end, "start_step": self.start_step}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.val_start, self.val_end = state["val_start"], state["val_end"]
        self.start_step = state["start_step"]


# ---------------------------------------------------------------------------------------------------- aioli
#: Starting points of Aioli's dynamic phase (``AioliConfig.start``).
AIOLI_STARTS = ("uniform", "p_init")

#: ``start="p_init"`` trains from ``p^0 = (1 − f)·p_init + f/m`` with this f: every group keeps at least f/m.
#: EGD is multiplicative, so a group at 0 (DML's m = 2 closed form clips to a vertex) would stay starved for
#: ever, and one near 0 needs ln(1/p) / (η·D) rounds to recover.  f = 0.2 keeps ≥ 0.1 per group for m = 2, the
#: smallest share on the paper's m = 2 grid, and moves an interior p_init by at most 0.2·|p_init − 1/m|.
START_FLOOR = 0.2


@dataclass
class AioliConfig(Config):
    """Aioli (paper Algorithm 1 + 2, App. D, Tables 13–18).  Defaults: m=2 restricted-setting values."""

    rounds: int = field(20, help="T: rounds over the S − S_init dynamic steps (aioli_static: 1)")
    sweeps: int = field(4, help="k: LearnParams visits each group k times per round (K = m·k segments)")
    delta: float = field(0.128, help="δ: fraction of each round spent in LearnParams (0.128 m=2, 0.288 m=3, 0.07 m=7)")
    eps: float = field(0.75, help="ε: one-hot smoothing, p^{t,j} = (1−ε)·1_j + ε/m")
    eta: float = field(0.2, help="η: EGD step size")
    ema: float | None = field(None, help="γ: EMA over Ā^t (App. D); None = plain EGD from p^{t−1}")
    normalization: str = field("shift_sum", help=f"Ā^t normalisation, one of {sorted(NORMALIZATIONS)}")
    diagonal: bool = field(False, help="Aioli-diagonal ablation: A_ii = β_ii / p^{t,i}_i, off-diagonal 0")
    segment_order: str = field("shuffle", help="'shuffle' (paper Alg. 2) or 'permutations' (authors' code)")
    eval_examples: int | None = field(8, help="per-group cached validation examples per LearnParams evaluation")
    init_steps: int = field(0, help="S_init: steps trained on init_mixture before the dynamic phase")
    init_mixture: list[float] | None = field(None, help="p_init (None = uniform), trained for the S_init steps")
    start: str = field("uniform", help="p^0 of the dynamic phase: 'uniform' (Algorithm 1, line 3) or 'p_init' "
                                       f"(p^0 = (1 − f)·p_init + f/m, f = {START_FLOOR}: every group keeps >= f/m)")

    def validate(self) -> None:
        check_int("rounds (T)", self.rounds, 1)
        check_int("sweeps (k)", self.sweeps, 1)
        check_range("delta", self.delta, 0.0, 1.0, lo_open=True, hi_open=True)
        check_range("eps", self.eps, 0.0, 1.0, hi_open=True)
        check_range("eta", self.eta, 0.0)
        if self.ema is not None:
            check_range("ema", self.ema, 0.0, 1.0, hi_open=True)
        check(self.normalization in NORMALIZATIONS,
              f"normalization must be one of {sorted(NORMALIZATIONS)}, got {self.normalization!r}")
        check(self.segment_order in ("shuffle", "permutations"),
              f"segment_order must be 'shuffle' or 'permutations', got {self.segment_order!r}")
        if self.eval_examples is not None:
            check_int("eval_examples", self.eval_examples, 1)
        check_int("init_steps (S_init)", self.init_steps, 0)
        check(self.start in AIOLI_STARTS, f"start must be one of {list(AIOLI_STARTS)}, got {self.start!r}")
        if self.init_mixture is not None:
            as_weights(self.init_mixture)


def aioli_start(config: AioliConfig, m: int) -> np.ndarray:
    """``(m,)`` p^0 of the dynamic phase: uniform (Algorithm 1, line 3) or the floored p_init (see
    :data:`START_FLOOR`)."""
    if config.start == "uniform" or config.init_mixture is None:
        return np.full(m, 1.0 / m)
    p = as_weights(config.init_mixture)
    if p.size != m:
        raise ConfigError(f"init_mixture {config.init_mixture!r} has {p.size} entries for {m} groups")
    return (1.0 - START_FLOOR) * p + START_FLOOR / m


def aioli_schedule(config: AioliConfig, m: int, start_step: int, stop_step: int) -> list[aioli_est.RoundPlan]:
    """The rounds of an Aioli run's dynamic phase (:func:`raymix.estimators.aioli.round_schedule`).

    ``start_step`` is where the dynamic phase begins: ``max(config.init_steps, step the run starts at)`` —
    a run that resumes a truncated trial already past S_init starts at the trial's step.  Plan checks call
    this without a backend; it raises :class:`ConfigError` for rounds too short for K equal segments.
    """
    return aioli_est.round_schedule(start_step, stop_step, rounds=int(config.rounds), delta=float(config.delta),
                                    m=m, k=int(config.sweeps))


class AioliPolicy(MixingPolicy):
    """Aioli: learn A^t online with LearnParams and move p by EGD (paper Algorithm 1).

    Round 0 (only if S_init > backend.step): train on p_init up to S_init (Alg. 1 line 2); a run that
    resumes a truncated trial already past S_init skips it.  Rounds 1..T (:func:`aioli_schedule`) each:
    LearnParams on the first δ of the round (K = m·k equal segments on smoothed one-hots p^{t,j},
    validation loss on a cached subset before/after each segment; Alg. 2), solve A^t = β P⁻¹, normalise to
    Ā^t, update p^t ∝ p^{t−1}·exp(η·1ᵀĀ^t) (or the EMA form of App. D from p^0), train the rest of the
    round on p^t.  p^0 = Unif(m) (Alg. 1 line 3, as the authors' code); ``start="p_init"`` starts from the
    floored p_init instead (:func:`aioli_start`).
    """

    name = "aioli"
    config_cls = AioliConfig

    def __init__(self, config: AioliConfig, groups: tuple[str, ...], stop_step: int, seed: int = 0) -> None:
        super().__init__(config, groups, stop_step)
        m = self.m
        self.p_init = np.full(m, 1.0 / m) if config.init_mixture is None else as_weights(config.init_mixture)
        if self.p_init.size != m:
            raise ConfigError(f"init_mixture {config.init_mixture!r} has {self.p_init.size} entries for {m} groups")
        p0 = aioli_start(config, m)
        self.updater = aioli_est.AioliUpdater(p0, config.eta, gamma=config.ema, normalization=config.normalization)
        self.rng = np.random.default_rng(seed)
        self.round = 0  # dynamic rounds completed
        self.dyn_start: int | None = None  # step at which the dynamic phase began
        self.history_p: list[list[float]] = []
        self.colsums: list[list[float]] = []  # 1ᵀĀ^t of every round (diagnostics)
        self._warned_bound = False
        lo, hi = reachable_range(p0, config.eta, config.normalization, gamma=config.ema, rounds=int(config.rounds))
        #: where p can go at all, whatever A^t is learned (EMA / normalisation bound, ALGORITHMS.md)
        self.p_bound = {"lo": _floats(lo), "hi": _floats(hi)}

    # -- schedule -----------------------------------------------------------------------------------
    def schedule(self) -> list[aioli_est.RoundPlan]:
        """The dynamic phase's rounds (known once the phase has started, i.e. after the first round)."""
        if self.dyn_start is None:
            raise MethodError("the Aioli schedule is known once the dynamic phase starts; call aioli_schedule() "
                              "with the step it starts at to plan ahead")
        return aioli_schedule(self.config, self.m, self.dyn_start, self.stop_step)

    # -- one round -----------------------------------------------------------------------------------
    def run_round(self, backend: TrainingBackend) -> RoundReport:
        self._check_backend(backend)
        cfg: AioliConfig = self.config
        if self.dyn_start is None:
            if backend.step < cfg.init_steps:
                # Alg. 1 line 2: the S_init prefix on p_init, reported as its own round.
                stats = backend.train(int(cfg.init_steps) - backend.step, mixture=self.p_init)
                return RoundReport(step=backend.step, mixture=_floats(self.p_init),
                                   train_loss=_floats(stats.group_train_loss), info={"phase": "init"})
            self.dyn_start = backend.step
        plan = self.schedule()[self.round]

        A, beta, seg_loss = self._learn_params(backend, plan.segment_steps)
        p = self.updater.update(A)  # raises on a non-finite A^t before anything is recorded
        self.colsums.append(_floats(normalize(A, cfg.normalization).sum(axis=0)))
        if cfg.ema is not None:
            self._warn_ema_bound()
        stats = backend.train(plan.end - backend.step, mixture=p)
        self.round += 1
        self.history_p.append(_floats(p))
        return RoundReport(step=backend.step, mixture=_floats(p), train_loss=_floats(stats.group_train_loss),
                           val_loss=_floats(seg_loss), interactions=[_floats(r) for r in A],
                           info={"phase": "dynamic", "round": self.round, "beta": [_floats(r) for r in beta],
                                 "segment_steps": plan.segment_steps, **self.diagnostics()})

    def diagnostics(self) -> dict[str, Any]:
        """Per-round diagnostics: the column sums 1ᵀĀ^t of the latest round, their sign agreement across the
        rounds so far (:func:`~raymix.estimators.aioli.colsum_sign_agreement`) and the reachable range of p."""
        if not self.colsums:
            return {"p_bound": self.p_bound}
        return {"colsums": self.colsums[-1],
                "sign_agreement": _floats(aioli_est.colsum_sign_agreement(np.asarray(self.colsums))),
                "p_bound": self.p_bound}

    def _learn_params(self, backend: TrainingBackend, segment_steps: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Algorithm 2 (LearnParams): returns (A^t, β, last validation loss)."""
        cfg: AioliConfig = self.config
        acc, last = aioli_est.learn_params(backend, int(cfg.sweeps), cfg.eps, self.rng, segment_steps,
                                           order_mode=cfg.segment_order, eval_examples=cfg.eval_examples)
        return acc.solve(diagonal=cfg.diagonal), acc.beta(), last

    def _warn_ema_bound(self) -> None:
        # ALGORITHMS.md: with shift_sum normalisation colsums lie in [0, 1], so under EMA p_j/p_l ≤ e^η·p0_j/p0_l.
        if self._warned_bound or self.config.normalization != "shift_sum":
            return
        self._warned_bound = True
        lo, hi = reachable_range(self.updater.p0, self.config.eta, self.config.normalization, gamma=self.config.ema)
        warnings.warn(
            f"Aioli with EMA and 'shift_sum' normalisation can only reach p in [{np.round(lo, 3).tolist()}, "
            f"{np.round(hi, 3).tolist()}] (p_j/p_l ≤ e^η = {math.exp(self.config.eta):.3f} relative to p^0); "
            "use ema=None or another normalization for a wider range",
            RaymixWarning,
            stacklevel=3,
        )

    def summary(self) -> dict[str, Any]:
        traj = np.asarray(self.history_p) if self.history_p else self.updater.p[None, :]
        return {"mixture": _floats(self.updater.p), "average_mixture": _floats(traj.mean(axis=0)),
                "p_init": _floats(self.p_init), "p0": _floats(self.updater.p0), "rounds_done": self.round,
                **self.diagnostics()}

    def state_dict(self) -> dict[str, Any]:
        return {"updater": self.updater.state_dict(), "round": self.round, "dyn_start": self.dyn_start,
                "rng": self.rng.bit_generator.state, "history_p": self.history_p, "colsums": self.colsums}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.updater.load_state_dict(state["updater"])
        self.round, self.dyn_start = int(state["round"]), state["dyn_start"]
        self.rng.bit_generator.state = state["rng"]
        self.history_p = [list(x) for x in state["history_p"]]
        self.colsums = [list(x) for x in state.get("colsums", [])]


# ------------------------------------------------------------------------------------------------- skill-it
@dataclass
class SkillItConfig(Config):
    """Skill-It online phase (paper §3.3.2, Thm. 1; Tables 13–18)."""

    graph: list[list[float]] | None = field(None, help="skills graph A^SG (m, m), rows/cols in group order")
    rounds: int = field(10, help="T: rounds (p updated at the start of each)")
    eta: float = field(0.2, help="η: multiplicative-weights step size")
    window: int = field(3, help="number of most recent evaluated loss vectors summed in the update")
    eval_examples: int | None = field(None, help="per-group validation examples per evaluation")

    def validate(self) -> None:
        check(int(self.rounds) >= 1, f"rounds must be >= 1, got {self.rounds!r}")
        check_range("eta", self.eta, 0.0)
        check(int(self.window) >= 1, f"window must be >= 1, got {self.window!r}")


class SkillItPolicy(MixingPolicy):
    """Skill-It: p^{t+1}_j ∝ p^t_j·exp(η Σ_i A^SG_ij L^t_val,i) with a loss window (paper Table 1)."""

    name = "skill_it"
    config_cls = SkillItConfig

    def __init__(self, config: SkillItConfig, groups: tuple[str, ...], stop_step: int) -> None:
        super().__init__(config, groups, stop_step)
        if config.graph is None:
            raise ConfigError("skill_it policy needs the skills graph (config 'graph'); "
                              "the skill_it method builds it from m one-group runs")
        graph = np.asarray(config.graph, dtype=float)
        if graph.shape != (self.m, self.m):
            raise ConfigError(f"skills graph must be ({self.m}, {self.m}) for groups {list(groups)}, got {graph.shape}")
        self.updater = SkillItUpdater(graph, eta=config.eta, window=config.window)
        self.start_step: int | None = None
        self.round = 0
        self.history_p: list[list[float]] = []

    def run_round(self, backend: TrainingBackend) -> RoundReport:
        self._check_backend(backend)
        cfg: SkillItConfig = self.config
        if self.start_step is None:
            self.start_step = backend.step
        lengths = _split_evenly(self.stop_step - self.start_step, min(cfg.rounds, self.stop_step - self.start_step))
        val = backend.evaluate("val", max_examples=cfg.eval_examples)
        p = self.updater.update(val)
        end = self.start_step + sum(lengths[: self.round + 1])
        stats = backend.train(end - backend.step, mixture=p)
        self.round += 1
        self.history_p.append(_floats(p))
        A = np.asarray(self.updater.graph) * np.asarray(val)[:, None]  # A^t = L^t_val,i · A^SG_ij (Thm. 1)
        return RoundReport(step=backend.step, mixture=_floats(p), train_loss=_floats(stats.group_train_loss),
                           val_loss=_floats(val), interactions=[_floats(r) for r in A])

    def summary(self) -> dict[str, Any]:
        traj = np.asarray(self.history_p)
        return {"mixture": self.history_p[-1] if self.history_p else None,
                "average_mixture": _floats(traj.mean(axis=0)) if self.history_p else None}

    def state_dict(self) -> dict[str, Any]:
        return {"updater": self.updater.state_dict(), "start_step": self.start_step, "round": self.round,
                "history_p": self.history_p}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.updater.load_state_dict(state["updater"])
        self.start_step, self.round = state["start_step"], int(state["round"])
        self.history_p = [list(x) for x in state["history_p"]]


# --------------------------------------------------------------------------------------------- DoReMi / DoGE
@dataclass
class DoReMiConfig(Config):
    """DoReMi proxy run (paper §3.3.2; η = 0.01, smoothing c = 1e-3)."""

    eta: float = field(0.01, help="η: step size of the excess-loss log-weight update")
    smoothing: float = field(1e-3, help="c: w ← (1−c)·w + c/m")
    rounds: int = field(10, help="reporting rounds over the proxy run")
    eval_examples: int | None = field(8, help="per-group validation examples evaluated after each round")

    def validate(self) -> None:
        check_range("eta", self.eta, 0.0, lo_open=True)  # DoReMiWeights needs η > 0
        check_range("smoothing", self.smoothing, 0.0, 1.0)
        check(int(self.rounds) >= 1, f"rounds must be >= 1, got {self.rounds!r}")


@dataclass
class DoGEConfig(Config):
    """DoGE proxy run (paper §3.3.2; η per Tables 13–18, validation share 0.25 for m=2, 0.5 for m≥3)."""

    eta: float = field(0.01, help="η (= 1/μ): step size of the alignment log-weight update")
    val_fraction: float | None = field(None, help="share of each batch drawn from validation; None = paper rule")
    rounds: int = field(10, help="reporting rounds over the proxy run")
    eval_examples: int | None = field(8, help="per-group validation examples evaluated after each round")

    def validate(self) -> None:
        check_range("eta", self.eta, 0.0, lo_open=True)  # DoGEWeights needs μ > 0
        if self.val_fraction is not None:
            check_range("val_fraction", self.val_fraction, 0.0, 1.0, lo_open=True, hi_open=True)
        check(int(self.rounds) >= 1, f"rounds must be >= 1, got {self.rounds!r}")


class _ProxyPolicy(MixingPolicy):
    """Common round structure of the proxy runs of DoReMi and DoGE: per-step weights, averaged at the end.

    Each round also reports the method's A^t in the LMO framework (paper App. B.2, Props. 2–3) averaged over
    the last :attr:`SIGNAL_WINDOW` steps, as the paper smooths these batch-level estimates for Fig. 3 (App. C.2):
    ``info["A_colsums"]`` (its column sums, the direction EGD moves p) and, where the matrix itself is
    observed (DoReMi: diagonal), ``interactions``."""

    #: steps over which the per-step A^t is averaged in round reports (paper App. C.2: 100)
    SIGNAL_WINDOW = 100

    def __init__(self, config: Config, groups: tuple[str, ...], stop_step: int) -> None:
        super().__init__(config, groups, stop_step)
        self.start_step: int | None = None
        self.round = 0
        self.tracker: Any = None  # DoReMiWeights / DoGEWeights
        self.signal: list[list[float]] = []  # the last SIGNAL_WINDOW per-step column sums of A^t

    def _note(self, colsums: np.ndarray) -> None:
        self.signal = [*self.signal, _floats(colsums)][-self.SIGNAL_WINDOW:]

    def _smoothed_colsums(self) -> np.ndarray | None:
        if not self.signal:
            return None
        return np.nanmean(np.asarray(self.signal, dtype=float), axis=0)

    def _interactions(self, colsums: np.ndarray) -> list[list[float]] | None:
        """The (m, m) A^t when the method defines it entry by entry; None when only its column sums are seen."""
        return None

    @abstractmethod
    def _rule(self, signals: ProxySignals) -> np.ndarray: ...

    @abstractmethod
    def _train(self, backend: TrainingBackend, steps: int): ...

    def run_round(self, backend: TrainingBackend) -> RoundReport:
        self._check_backend(backend)
        if self.start_step is None:
            self.start_step = backend.step
        span = self.stop_step - self.start_step
        lengths = _split_evenly(span, min(int(self.config.rounds), span))
        end = self.start_step + sum(lengths[: self.round + 1])
        stats = self._train(backend, end - backend.step)
        self.round += 1
        val = backend.evaluate("val", max_examples=self.config.eval_examples)
        info: dict[str, Any] = {"average_weights": _floats(self.tracker.average())}
        colsums = self._smoothed_colsums()
        if colsums is not None:
            info["A_colsums"] = _floats(colsums)
        return RoundReport(step=backend.step, mixture=_floats(self.tracker.weights),
                           train_loss=_floats(stats.group_train_loss), val_loss=_floats(val),
                           interactions=None if colsums is None else self._interactions(colsums), info=info)

    def summary(self) -> dict[str, Any]:
        return {"mixture": _floats(self.tracker.average()), "last_weights": _floats(self.tracker.weights)}

    def state_dict(self) -> dict[str, Any]:
        return {"weights": self.tracker.state_dict(), "start_step": self.start_step, "round": self.round,
                "signal": self.signal}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.tracker.load_state_dict(state["weights"])
        self.start_step, self.round = state["start_step"], int(state["round"])
        self.signal = [list(map(float, v)) for v in state.get("signal", [])]


class DoReMiPolicy(_ProxyPolicy):
    """DoReMi proxy: λ_i = max(L_proxy,i − L_ref,i, 0), log w += η·λ, smoothed softmax (paper Thm. 1)."""

    name = "doremi"
    config_cls = DoReMiConfig

    def __init__(self, config: DoReMiConfig, groups: tuple[str, ...], stop_step: int) -> None:
        super().__init__(config, groups, stop_step)
        self.tracker = DoReMiWeights(self.m, eta=config.eta, smoothing=config.smoothing)

    def _rule(self, signals: ProxySignals) -> np.ndarray:
        if signals.reference_loss is None:
            raise MethodError("DoReMi's proxy run needs a reference model (RunSpec.reference_from)")
        w = self.tracker.update(signals.train_loss, signals.reference_loss)
        self._note(self.tracker.excess)  # A^t_jj = max(L_train,j − L_ref,j, 0), off-diagonal 0 (Prop. 2)
        return w

    def _interactions(self, colsums: np.ndarray) -> list[list[float]]:
        return [_floats(r) for r in np.diag(colsums)]

    def _train(self, backend: TrainingBackend, steps: int):
        return backend.proxy_train(steps, self._rule, reference=True)


class DoGEPolicy(_ProxyPolicy):
    """DoGE proxy: score_i = lr·⟨g_i, g_val⟩/mean‖g‖ clipped, log w += η·score (paper Thm. 1)."""

    name = "doge"
    config_cls = DoGEConfig

    def __init__(self, config: DoGEConfig, groups: tuple[str, ...], stop_step: int) -> None:
        super().__init__(config, groups, stop_step)
        self.tracker = DoGEWeights(self.m, mu=config.eta)
        self.val_fraction = config.val_fraction if config.val_fraction is not None else (0.25 if self.m == 2 else 0.5)

    def _rule(self, signals: ProxySignals) -> np.ndarray:
        # 1ᵀA^t_j = Σ_i ⟨∇L_val,i, ∇L_train,j⟩ = ⟨g_val, g_j⟩ up to the validation batch's averaging (Prop. 3);
        # the matrix itself would need one validation gradient per group, which DoGE never computes
        self._note(signals.alignment)
        return self.tracker.update(signals.alignment, signals.grad_norm, signals.lr)

    def _train(self, backend: TrainingBackend, steps: int):
        return backend.proxy_train(steps, self._rule, alignment=True, val_fraction=self.val_fraction)


POLICIES: dict[str, type[MixingPolicy]] = {
    cls.name: cls for cls in (StaticPolicy, AioliPolicy, SkillItPolicy, DoReMiPolicy, DoGEPolicy)
}


def build_policy(name: str, config: dict[str, Any] | Config | None, groups: tuple[str, ...], stop_step: int,
                 seed: int = 0) -> MixingPolicy:
    """Instantiate a registered policy; unknown names raise :class:`ConfigError` listing the valid ones."""
    try:
        cls = POLICIES[name]
    except KeyError:
        raise ConfigError(f"unknown mixing policy {name!r}; valid: {sorted(POLICIES)}") from None
    cfg = config if isinstance(config, Config) else cls.config_cls.from_dict(config or {})
    if cls is AioliPolicy:
        return AioliPolicy(cfg, tuple(groups), stop_step, seed=seed)
    return cls(cfg, tuple(groups), stop_step)
