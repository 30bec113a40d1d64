"""Running one :class:`RunSpec`: build its backend and policy, step rounds, checkpoint, hand off.

:class:`RunDriver` is the one place that knows how a run proceeds; the in-process
:class:`LocalExecutor` and the Ray Tune trainable (``raymix.tune.trainable``) both use it, so a run
behaves identically with and without Ray.

Checkpoint semantics:
  * ``state_dict()`` holds the backend's state (model, optimizer, schedule, sampler, RNGs, own step
    counter), the policy's state, the spec and the round history: ``load_state_dict`` resumes the *same*
    run exactly (Tune restore, fault tolerance).
  * ``handoff_state`` (constructor) takes only the backend's state from another run's checkpoint: the run
    continues that model and step counter with a *new* policy (restricted "Aioli+method").
"""

from __future__ import annotations

import copy
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from raymix.backend import FiniteGuard, TrainingBackend
from raymix.config import Config, check
from raymix.errors import CheckpointError, ConfigError, NonFiniteError
from raymix.methods.base import Executor, MixingProblem, Phase
from raymix.methods.handoff import ROUND_EVAL_EXAMPLES
from raymix.methods.policies import build_policy
from raymix.methods.runs import PARENT_FIELDS, RoundReport, RunResult, RunSpec
from raymix.methods.schedules import phase_rounds, run_population, run_successive_halving


@dataclass
class BackendSpec(Config):
    """Which backend every run of an experiment trains on.

    ``kind="sim"``: the mixing-law simulator (``raymix.sim``), scenario by name.
    ``kind="model"``: a GPT-NeoX model (``raymix.train.ModelBackend``) on the token shards at ``shards``.
    """

    kind: str = "sim"
    scenario: str = "two_group_interacting"
    sim_options: dict[str, Any] = field(default_factory=dict)
    shards: str | None = None
    model: str = "tiny"
    model_options: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)
    streaming: str = "local"

    def __post_init__(self) -> None:
        # Trials run in other processes (other working directories, other nodes): pin relative paths now.
        if self.shards and "://" not in str(self.shards):
            self.shards = os.path.abspath(os.path.expanduser(str(self.shards)))
        super().__post_init__()

    def validate(self) -> None:
        check(self.kind in ("sim", "model"), f"backend kind must be 'sim' or 'model', got {self.kind!r}")
        check(self.streaming in ("local", "ray"), f"streaming must be 'local' or 'ray', got {self.streaming!r}")
        if self.kind == "model":
            check(bool(self.shards), "a model backend needs the path of a shard directory (shards=...); "
                                     "build one with `raymix data build`")


def build_backend(spec: BackendSpec, run: RunSpec) -> TrainingBackend:
    """A fresh backend for ``run``: seeded with ``run.seed``, LR horizon ``run.total_steps``."""
    if spec.kind == "sim":
        from raymix.sim import SimBackend

        return SimBackend.from_preset(spec.scenario, seed=run.seed, total_steps=run.total_steps, **spec.sim_options)
    from raymix.model.presets import ModelConfig
    from raymix.train.config import TrainConfig
    from raymix.train.model_backend import from_shards

    train = TrainConfig.from_dict({**spec.train, "total_steps": run.total_steps, "seed": run.seed})
    mcfg = ModelConfig.from_preset(spec.model).replace(**spec.model_options)
    return from_shards(spec.shards, mcfg, train, streaming=spec.streaming)


def backend_groups(spec: BackendSpec) -> tuple[str, ...]:
    """Group names of the data the backend trains on (without building a model)."""
    if spec.kind == "sim":
        from raymix.sim import get_preset

        return tuple(get_preset(spec.scenario).groups)
    from raymix.data.manifest import load_manifest

    return tuple(load_manifest(spec.shards).groups)


def reference_model_state(spec: BackendSpec, state: dict[str, Any]) -> dict[str, Any]:
    """What ``backend.set_reference`` needs, from a finished run's checkpoint state (DoReMi's reference)."""
    run = RunSpec.from_dict(state["spec"])
    backend = build_backend(spec, run)
    backend.load_state_dict(state["backend"])
    return backend.model_state()


class RunDriver:
    """Drives one run: ``round()`` until ``done``, then ``result()``."""

    def __init__(self, spec: RunSpec, backend: TrainingBackend, *, handoff_state: dict[str, Any] | None = None,
                 reference_state: dict[str, Any] | None = None) -> None:
        self.spec = spec
        # Every loss the run sees is checked: a NaN/inf stops the run with NonFiniteError instead of reaching p.
        self.backend = backend if isinstance(backend, FiniteGuard) else FiniteGuard(backend)
        if handoff_state is not None:
            self.backend.load_state_dict(handoff_state["backend"])
            if self.backend.step > spec.steps:
                raise CheckpointError(f"run {spec.name!r} resumes {spec.resume_from!r} at step {self.backend.step}, "
                                      f"past its own stop step {spec.steps}")
        if reference_state is not None:
            self.backend.set_reference(reference_state)
        self.policy = build_policy(spec.policy, spec.policy_config, tuple(backend.groups), spec.steps, seed=spec.seed)
        self.history: list[RoundReport] = []
        if handoff_state is not None and self.done and handoff_state.get("history"):
            # the resumed run already reached this run's stop step (PBT's best member, unrestricted grid search's
            # winner): its result is this run's result, its curve included
            self.history = [RoundReport.from_dict(h) for h in handoff_state["history"]]
        self.wall_time_s = 0.0
        self._final: tuple[list[float], list[float]] | None = None

    @property
    def done(self) -> bool:
        return self.policy.done(self.backend)

    def round(self) -> RoundReport:
        if self.done:
            raise ConfigError(f"run {self.spec.name!r} is already complete at step {self.backend.step}")
        t0 = time.perf_counter()
        try:
            report = self.policy.run_round(self.backend)
        except NonFiniteError as e:
            raise NonFiniteError(f"run {self.spec.name!r} stopped: {e}") from None
        if report.val_loss is None:
            # Schedulers (ASHA, PBT) compare runs at every round boundary: a round that did not evaluate
            # (Aioli's S_init prefix) is evaluated on the usual per-round subset.
            report.val_loss = [float(x) for x in self.backend.evaluate("val", max_examples=ROUND_EVAL_EXAMPLES)]
        self.history.append(report)
        self.wall_time_s += time.perf_counter() - t0
        return report

    def run_to_end(self, on_round: Callable[[RoundReport], None] | None = None) -> RunResult:
        while not self.done:
            report = self.round()
            if on_round is not None:
                on_round(report)
        return self.result()

    def final_losses(self) -> tuple[list[float], list[float]]:
        """Final (val, test) per-group losses on the full cached evaluation sets (computed once)."""
        if self._final is None:
            t0 = time.perf_counter()
            try:
                val = self.backend.evaluate("val")
                test = self.backend.evaluate("test")
            except NonFiniteError as e:
                raise NonFiniteError(f"run {self.spec.name!r} stopped: {e}") from None
            self.wall_time_s += time.perf_counter() - t0
            self._final = ([float(x) for x in val], [float(x) for x in test])
        return self._final

    def result(self, checkpoint: str | None = None) -> RunResult:
        val, test = self.final_losses()
        return RunResult(spec=self.spec, groups=list(self.backend.groups), val_loss=val, test_loss=test,
                         history=list(self.history), summary=self.policy.summary(), checkpoint=checkpoint,
                         wall_time_s=self.wall_time_s)

    def partial_result(self, checkpoint: str | None = None) -> RunResult:
        """The result of a run that a trial scheduler stopped before its end: its round history so far, the last
        round's validation losses, NaN test losses (never evaluated) and ``stopped_at`` = the current step."""
        last = next((h.val_loss for h in reversed(self.history) if h.val_loss is not None), None)
        m = len(self.backend.groups)
        val = [float("nan")] * m if last is None else [float(x) for x in last]
        return RunResult(spec=self.spec, groups=list(self.backend.groups), val_loss=val, test_loss=[float("nan")] * m,
                         history=list(self.history), summary=self.policy.summary(), checkpoint=checkpoint,
                         wall_time_s=self.wall_time_s, stopped_at=int(self.backend.step))

    def state_dict(self) -> dict[str, Any]:
        return {"spec": self.spec.to_dict(), "backend": self.backend.state_dict(),
                "policy": self.policy.state_dict(), "history": [h.to_dict() for h in self.history],
                "wall_time_s": self.wall_time_s, "final": self._final}

    def load_state_dict(self, state: dict[str, Any], *, exploit: bool = False) -> None:
        """Restore this run from its own checkpoint; with ``exploit=True`` (population-based training), continue
        *another member's* checkpoint — its model, optimizer, schedule, sampler position, policy state, step
        counter and round history — under this run's spec (its own, perturbed, mixture)."""
        saved = RunSpec.from_dict(state["spec"])
        if exploit:
            if saved.policy != self.spec.policy or saved.total_steps != self.spec.total_steps:
                raise CheckpointError(f"run {self.spec.name!r} ({self.spec.policy}, S={self.spec.total_steps}) cannot "
                                      f"exploit {saved.name!r} ({saved.policy}, S={saved.total_steps}): members of a "
                                      "population share the policy and the LR horizon")
        elif saved.name != self.spec.name or saved.policy != self.spec.policy:
            raise CheckpointError(f"checkpoint of run {saved.name!r} ({saved.policy}) cannot restore run "
                                  f"{self.spec.name!r} ({self.spec.policy}); use resume_from for a hand-off")
        self.backend.load_state_dict(state["backend"])
        self.policy.load_state_dict(state["policy"])
        self.history = [RoundReport.from_dict(h) for h in state["history"]]
        self.wall_time_s = float(state["wall_time_s"])
        self._final = None if exploit else state.get("final")


def identity_key(spec: RunSpec, parents: dict[str, str] | None = None) -> str:
    """A run's :meth:`~raymix.methods.runs.RunSpec.identity` as a hashable key.  ``parents`` maps run names to
    the keys of the runs now known under them: a run that resumes (or takes as reference) a run named X is
    then keyed by *which* X it starts from, not by the name alone (two methods may each have a run called
    "final")."""
    d = spec.identity()
    for field_ in PARENT_FIELDS:
        if d[field_] is not None and parents is not None and d[field_] in parents:
            d[field_] = {"run": parents[d[field_]]}
    return json.dumps(d, sort_keys=True, default=str)


class LocalExecutor(Executor):
    """Trains runs one after another in this process (no Ray): simulator studies, tests, tiny CPU runs.

    Final states of finished runs are kept in memory so later phases can resume them (hand-off) or use
    them as references.  A run whose spec equals one already trained (same name, policy, mixture, steps,
    seed, …) is not trained again: methods sharing an executor share identical runs, as "X" and
    "aioli+X" share X's short sweep in the restricted setting.
    """

    def __init__(self, backend: BackendSpec | None = None) -> None:
        self.backend_spec = backend or BackendSpec()
        self.states: dict[str, dict[str, Any]] = {}
        self.results: dict[str, RunResult] = {}
        #: every trained run by its identity (``RunSpec.identity``): result and final state
        self.trained: dict[str, tuple[RunResult, dict[str, Any]]] = {}
        #: run name → identity key of the run last trained (or shared) under that name
        self.keys: dict[str, str] = {}

    def data_groups(self) -> tuple[str, ...]:
        return backend_groups(self.backend_spec)

    def build_backend(self, spec: RunSpec) -> TrainingBackend:
        """A fresh backend for ``spec`` (overridden by the plan check, which trains a stand-in)."""
        return build_backend(self.backend_spec, spec)

    def reference_state(self, state: dict[str, Any]) -> dict[str, Any]:
        """What ``set_reference`` needs from a finished run's stored state."""
        return reference_model_state(self.backend_spec, state)

    def run_phase(self, phase: Phase, problem: MixingProblem) -> list[RunResult]:
        if phase.pruning is not None or phase.population is not None:
            return self._run_scheduled(phase)
        out = []
        todo = [s for s in phase.runs if self._trained(s) is None]
        if self.progress is not None and todo:
            self.progress.phase_started(phase.name, [(s.name, start_step(s, self.results), s.steps) for s in todo])
        for spec in phase.runs:
            shared = self._trained(spec)
            if shared is not None:
                # the same run, already trained for an earlier method (e.g. X and aioli+X, grid search and DML)
                result, state = shared
                result = result if result.spec == spec else result.as_run(spec)
                self.states[spec.name], self.results[spec.name] = state, result
                self.keys[spec.name] = self._key(spec)
                out.append(result)
                continue
            if spec.resume_from is not None and spec.resume_from not in self.states:
                raise CheckpointError(f"run {spec.name!r} resumes unknown run {spec.resume_from!r}; "
                                      f"finished runs: {sorted(self.states)}")
            if spec.reference_from is not None and spec.reference_from not in self.states:
                raise CheckpointError(f"run {spec.name!r} needs reference run {spec.reference_from!r}, "
                                      f"which has not finished; finished runs: {sorted(self.states)}")
            backend = self.build_backend(spec)
            ref = None
            if spec.reference_from is not None:
                ref = self.reference_state(self.states[spec.reference_from])
            handoff = self.states.get(spec.resume_from) if spec.resume_from else None
            driver = RunDriver(spec, backend, handoff_state=handoff, reference_state=ref)
            if handoff is not None and driver.done:
                # The resumed run already reached this run's stop step: its result is this run's result.
                prev = self.results[spec.resume_from]
                result = RunResult(spec=spec, groups=prev.groups, val_loss=prev.val_loss, test_loss=prev.test_loss,
                                   history=list(prev.history), summary=prev.summary, checkpoint=prev.checkpoint)
            else:
                report = None if self.progress is None else (
                    lambda r, name=spec.name: self.progress.run_round(name, r.step, r.mixture))
                result = driver.run_to_end(report)
            self.states[spec.name] = {"spec": spec.to_dict(), "backend": driver.backend.state_dict()}
            self.results[spec.name] = result
            self.trained[self._key(spec)] = (result, self.states[spec.name])
            self.keys[spec.name] = self._key(spec)
            out.append(result)
        if self.progress is not None and todo:
            self.progress.phase_finished()
        return out

    def _trained(self, spec: RunSpec) -> tuple[RunResult, dict[str, Any]] | None:
        """A run this executor trained that is identical to ``spec`` (its result and final state), or None."""
        return self.trained.get(self._key(spec))

    def _key(self, spec: RunSpec) -> str:
        return identity_key(spec, self.keys)

    def _run_scheduled(self, phase: Phase) -> list[RunResult]:
        """A phase under successive halving or population-based training (raymix.methods.schedules), in-process."""
        cached = [self.results.get(spec.name) for spec in phase.runs]
        if all(c is not None and c.spec == spec for c, spec in zip(cached, phase.runs)):
            return cached  # the same scheduled phase, already run for an earlier method (e.g. X and aioli+X)
        if self.progress is not None:
            self.progress.phase_started(phase.name, [(s.name, 0, s.steps) for s in phase.runs])
        drivers = {spec.name: RunDriver(spec, self.build_backend(spec)) for spec in phase.runs}
        rounds = phase_rounds(phase)
        stopped: dict[str, int] = {}
        try:
            if phase.pruning is not None:
                stopped = run_successive_halving(drivers, phase.pruning, rounds)
            else:
                drivers = run_population(drivers, phase.population, rounds, self._exploit,
                                         exploit_at=phase.population.exploit_rounds(phase.runs[0].steps, rounds))
        finally:
            if self.progress is not None:
                self.progress.phase_finished()
        out = []
        for spec in phase.runs:
            d = drivers[spec.name]
            result = d.partial_result() if spec.name in stopped else d.result()
            self.states[spec.name] = {"spec": spec.to_dict(), "backend": d.backend.state_dict()}
            self.results[spec.name] = result
            out.append(result)
        return out

    def _exploit(self, member: RunDriver, donor: RunDriver, mixture: list[float]) -> RunDriver:
        """PBT exploit + explore in-process: ``member`` continues ``donor``'s state on ``mixture``."""
        cfg = {**member.spec.policy_config, "mixture": [float(x) for x in mixture]}
        spec = RunSpec.from_dict({**member.spec.to_dict(), "policy_config": cfg,
                                  "tags": {**member.spec.tags, "mixture": cfg["mixture"]}})
        # the member's own backend object takes the donor's state (no new model is built)
        new = RunDriver(spec, member.backend)
        new.load_state_dict(copy.deepcopy(donor.state_dict()), exploit=True)
        return new


def start_step(spec: RunSpec, finished: dict[str, RunResult]) -> int:
    """The step a run starts training from: a hand-off continues the resumed run's last step."""
    if spec.resume_from is not None and spec.resume_from in finished:
        return int(finished[spec.resume_from].spec.steps)
    return 0
