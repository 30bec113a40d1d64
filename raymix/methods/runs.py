"""Runs: the unit of work a mixing method asks for, and what comes back.

A method (``raymix.methods.base.MixingMethod``) plans *phases* of :class:`RunSpec`; an executor
(in-process: :class:`raymix.methods.executor.LocalExecutor`; on Ray Tune:
:class:`raymix.tune.executor.TuneExecutor`) trains each run on a fresh
:class:`~raymix.backend.TrainingBackend` driven by the run's mixing policy, one round per Tune
``step()``, and returns a :class:`RunResult`.  Both are plain data that round-trip through dicts, so
they travel inside Tune's ``param_space`` and results.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from raymix.errors import ConfigError

#: Roles a run can play in a method's plan.
ROLES = ("final", "search", "graph", "reference", "proxy", "truncated")


#: the RunSpec fields naming the runs a run starts from (its hand-off checkpoint, its reference)
PARENT_FIELDS = ("resume_from", "reference_from")


@dataclass
class RunSpec:
    """One training run.

    Attributes:
        name: unique within a method's plan (e.g. "gs-03", "doremi-reference", "final").
        policy: registry name of the mixing policy that drives the run (``raymix.methods.policies``).
        policy_config: the policy's config as a plain dict.
        steps: optimizer step at which the run stops (≤ total_steps; < total_steps = a truncated run).
        total_steps: the horizon S of the run's LR schedule.  Truncated search runs keep the full run's
            horizon so that resuming them continues the same schedule (see docs/DECISIONS.md).
        seed: model-initialisation and data-order seed.
        role: one of :data:`ROLES`.
        resume_from: name of an earlier run whose final checkpoint this run continues (a *hand-off*: the
            model, optimizer, schedule, sampler and step counter are taken over; the policy is new).
        reference_from: name of an earlier run whose final model is the frozen reference (DoReMi).
        tags: free-form labels (e.g. {"mixture": [...]}) copied into results.
        schedule: for a run of a scheduled phase (ASHA pruning, a PBT population), a digest of the trial
            scheduler and of every run of the phase (:func:`raymix.methods.schedules.schedule_digest`): such a
            run's outcome — where it was stopped, which checkpoints it took over — depends on both, so it is
            part of the run's identity.  None for an independent run.
    """

    name: str
    policy: str
    policy_config: dict[str, Any]
    steps: int
    total_steps: int
    seed: int = 0
    role: str = "final"
    resume_from: str | None = None
    reference_from: str | None = None
    tags: dict[str, Any] = field(default_factory=dict)
    schedule: str | None = None

    def __post_init__(self) -> None:
        if not self.name:
            raise ConfigError("RunSpec.name must be a non-empty string")
        if int(self.total_steps) < 1 or not 0 < int(self.steps) <= int(self.total_steps):
            raise ConfigError(
                f"run {self.name!r}: need 0 < steps <= total_steps, got steps={self.steps!r}, "
                f"total_steps={self.total_steps!r}"
            )
        if self.role not in ROLES:
            raise ConfigError(f"run {self.name!r}: role must be one of {ROLES}, got {self.role!r}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunSpec:
        return cls(**d)

    def identity(self) -> dict[str, Any]:
        """What determines the trained model: the spec without its labels (``name``, ``role``, ``tags``).

        Two runs with the same identity train bit-identically (same policy and mixture, steps, horizon,
        seed and starting checkpoints), so an executor trains one and hands its result to the other: grid
        search and DML share their sweep (the same cover of the simplex), DoReMi's reference is the
        stratified run.  ``resume_from`` / ``reference_from`` stay in: they name the starting checkpoints.
        ``schedule`` stays in when set: a run pruned by one ASHA schedule is not the run another would
        have trained (it is left out when None, so independent runs keep the identity they always had)."""
        d = self.to_dict()
        for label in ("name", "role", "tags"):
            d.pop(label)
        if d["schedule"] is None:
            d.pop("schedule")
        return d

    def own_identity(self) -> dict[str, Any]:
        """:meth:`identity` without the names of the runs it starts from (:data:`PARENT_FIELDS`): what an
        executor compares once it has checked that those runs are the same ones (by key or checkpoint)."""
        return {k: v for k, v in self.identity().items() if k not in PARENT_FIELDS}


@dataclass
class RoundReport:
    """What one mixing round (one Tune ``step()``) reports.  Arrays are ``(m,)`` in group order."""

    step: int
    mixture: list[float]
    train_loss: list[float]
    val_loss: list[float] | None = None
    interactions: list[list[float]] | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RoundReport:
        return cls(**d)


@dataclass
class RunResult:
    """A finished run.

    Attributes:
        spec: the run.
        groups: group names (order of every array).
        val_loss / test_loss: final per-group mean token loss on the fixed evaluation sets.
        history: one :class:`RoundReport` per round, in order (a hand-off run starts its own history).
        summary: the policy's summary (e.g. averaged proxy weights, skills-graph losses, final p).
        checkpoint: where the final state lives (a directory path or URI), or None.
        wall_time_s: seconds spent training and evaluating this run.
        stopped_at: the step at which a trial scheduler (ASHA / successive halving) stopped the run early,
            or None when it ran to ``spec.steps``.  A stopped run keeps its checkpoint and round history
            (its partial curve); its ``val_loss`` is the last round's and its ``test_loss`` is NaN (never
            evaluated).
    """

    spec: RunSpec
    groups: list[str]
    val_loss: list[float]
    test_loss: list[float]
    history: list[RoundReport] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    checkpoint: str | None = None
    wall_time_s: float = 0.0
    stopped_at: int | None = None

    def as_run(self, spec: RunSpec) -> RunResult:
        """This result handed to another run with the same :meth:`RunSpec.identity` (trained once, used twice).
        The runs they start from may be named differently: the executor has checked that they are the same
        runs (it keys a run by the run it continues, not by that run's name)."""
        if spec.own_identity() != self.spec.own_identity():
            raise ConfigError(f"run {spec.name!r} is not identical to run {self.spec.name!r}: cannot share its result")
        return dataclasses.replace(self, spec=spec, history=list(self.history), summary=dict(self.summary))

    @property
    def pruned(self) -> bool:
        """Whether a trial scheduler stopped this run before ``spec.steps``."""
        return self.stopped_at is not None

    @property
    def trained_steps(self) -> int:
        """Steps this run's own trial trained (a pruned run counts only the steps it trained)."""
        return int(self.spec.steps if self.stopped_at is None else self.stopped_at)

    @property
    def test_ppl(self) -> np.ndarray:
        return np.exp(np.asarray(self.test_loss, dtype=float))

    @property
    def avg_test_ppl(self) -> float:
        """The paper's metric: average over groups of per-group test perplexity."""
        return float(np.mean(self.test_ppl))

    @property
    def avg_val_loss(self) -> float:
        return float(np.mean(self.val_loss))

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["spec"] = self.spec.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunResult:
        d = dict(d)
        d["spec"] = RunSpec.from_dict(d["spec"])
        d["history"] = [RoundReport.from_dict(h) for h in d.get("history", [])]
        return cls(**d)
