"""Mixing methods as short, declarative plans of training runs.

A method is a generator of *phases*: ``plan(problem)`` yields :class:`Phase` objects (sets of
independent :class:`RunSpec`, which an executor trains — in-process or as Ray Tune trials), receives
the list of :class:`RunResult` back, and finally *returns* the :class:`RunSpec` of the final run.
:func:`run_method` drives that generator with any :class:`Executor`.

Lifecycle of a method object: ``method = get_method(name, **config)`` → ``result = run_method(method,
problem, executor)``; a method keeps no state between plans, so one object can plan many problems.
"""

from __future__ import annotations

import dataclasses
import time
from abc import ABC, abstractmethod
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any, ClassVar

from raymix.config import Config, check, check_int
from raymix.errors import MethodError
from raymix.methods.policies import AioliConfig
from raymix.methods.runs import RunResult, RunSpec
from raymix.methods.schedules import Population, Pruning, check_scheduled_runs, schedule_digest

SETTINGS = ("unrestricted", "restricted")


@dataclass
class MixingProblem(Config):
    """What every method is asked to solve: m groups, a final run of S steps, a budget setting."""

    groups: tuple[str, ...] = ()
    total_steps: int = 5000
    seed: int = 0
    setting: str = "unrestricted"
    with_aioli: bool = False
    rounds: int = 10
    aioli: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        check(len(self.groups) >= 2, f"a mixing problem needs at least 2 groups, got {list(self.groups)!r}")
        check(len(set(self.groups)) == len(self.groups), f"group names must be unique, got {list(self.groups)!r}")
        check_int("total_steps (S)", self.total_steps, 1)
        check_int("seed", self.seed, 0)
        check(self.setting in SETTINGS, f"setting must be one of {SETTINGS}, got {self.setting!r}")
        check_int("rounds", self.rounds, 1)
        check(not self.with_aioli or self.setting == "restricted",
              "with_aioli (Aioli+method) belongs to the restricted setting (paper §6.2); set setting='restricted'")
        AioliConfig.from_dict(self.aioli)  # validate early: a bad handoff config must not surface after the sweep

    @property
    def m(self) -> int:
        return len(self.groups)

    @property
    def restricted(self) -> bool:
        return self.setting == "restricted"


@dataclass
class Phase:
    """A set of runs (one Tune experiment when run on Ray).

    Runs are independent unless the phase names a trial scheduler: ``pruning`` (successive halving on
    the average validation loss at round boundaries — Tune's ``ASHAScheduler``) or ``population``
    (population-based training over the mixture — Tune's ``PopulationBasedTraining``); see
    :mod:`raymix.methods.schedules`.  Every executor implements both with the same semantics.
    """

    name: str
    runs: list[RunSpec]
    pruning: Pruning | None = None
    population: Population | None = None

    def __post_init__(self) -> None:
        if self.pruning is not None and self.population is not None:
            raise MethodError(f"phase {self.name!r}: a phase runs under one trial scheduler, not pruning and a "
                              "population at once")
        if self.pruning is not None or self.population is not None:
            check_scheduled_runs(self)
            # a scheduled run is only ever shared with the same run of the same schedule (RunSpec.schedule)
            digest = schedule_digest(self)
            self.runs = [dataclasses.replace(r, schedule=digest) for r in self.runs]


@dataclass
class MethodResult:
    """Outcome of a method: the final run, every extra run it used, and the proportions it chose."""

    method: str
    problem: MixingProblem
    final: RunResult
    runs: list[RunResult]
    mixture: list[float] | None
    wall_time_s: float = 0.0

    @property
    def extra_runs(self) -> list[RunResult]:
        return [r for r in self.runs if r.spec.role not in ("final", "truncated")]

    @property
    def extra_steps(self) -> int:
        """Training steps spent learning p outside the final run (paper Table 11 budget); a run that a trial
        scheduler stopped early counts only the steps it trained."""
        return int(sum(r.trained_steps for r in self.runs if r.spec.role not in ("final", "truncated")))

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "problem": self.problem.to_dict(), "final": self.final.to_dict(),
                "runs": [r.to_dict() for r in self.runs], "mixture": self.mixture, "wall_time_s": self.wall_time_s,
                "extra_steps": self.extra_steps,
                # the headline numbers, for readers of the file (recomputed from "final" when loaded)
                "avg_test_ppl": self.final.avg_test_ppl, "avg_val_loss": self.final.avg_val_loss}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MethodResult:
        return cls(method=d["method"], problem=MixingProblem.from_dict(d["problem"]),
                   final=RunResult.from_dict(d["final"]), runs=[RunResult.from_dict(r) for r in d["runs"]],
                   mixture=d["mixture"], wall_time_s=d.get("wall_time_s", 0.0))


Plan = Generator[Phase, list[RunResult], RunSpec]


class Executor(ABC):
    """Trains the runs of a phase.  Lifecycle: ``run_phase`` once per phase, in plan order; a later phase
    may name earlier runs in ``resume_from`` / ``reference_from``, so the executor keeps their checkpoints.

    ``progress`` (an :class:`raymix.progress.ExperimentProgress` or None) is told, per phase, which runs are
    trained and, per round, each run's step and proportions."""

    progress: Any = None

    @abstractmethod
    def run_phase(self, phase: Phase, problem: MixingProblem) -> list[RunResult]:
        """Train every run of ``phase``; results in the order of ``phase.runs``."""

    def data_groups(self) -> tuple[str, ...] | None:
        """The groups of the data this executor trains on (None: unknown, not checked)."""
        return None


class MixingMethod(ABC):
    """A data-mixing method of the LMO framework (paper Table 1) as a plan of runs."""

    name: ClassVar[str]
    config_cls: ClassVar[type[Config]]
    #: extra training runs used in the unrestricted setting, as in the paper's Table 2 ("10", "m", ...)
    extra_runs: ClassVar[str] = "0"

    def __init__(self, config: Config | dict[str, Any] | None = None, **overrides: Any) -> None:
        if isinstance(config, Config):
            config = config.to_dict()
        self.config = self.config_cls.from_dict({**(config or {}), **overrides})

    @abstractmethod
    def plan(self, problem: MixingProblem) -> Plan:
        """Yield phases, receive their results, return the final run's spec."""

    def for_plan_check(self) -> MixingMethod:
        """The method as the plan check (:mod:`raymix.preflight`) dry-runs it: planning exactly the same runs,
        but allowed to estimate more cheaply (e.g. fewer restarts of a law fit).  Default: the method itself."""
        return self

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config.to_dict()})"


def run_method(method: MixingMethod, problem: MixingProblem, executor: Executor) -> MethodResult:
    """Drive ``method.plan(problem)`` to completion on ``executor``."""
    t0 = time.perf_counter()
    have = executor.data_groups()
    if have is not None and tuple(have) != tuple(problem.groups):
        raise MethodError(f"the problem names groups {list(problem.groups)} but the backend has groups {list(have)}; "
                          "a problem must name exactly the data's groups, in the data's order")
    gen = method.plan(problem)
    runs: list[RunResult] = []
    names: set[str] = set()
    try:
        phase = next(gen)
        while True:
            for spec in phase.runs:
                if spec.name in names:
                    raise MethodError(f"method {method.name!r} planned two runs named {spec.name!r}")
                names.add(spec.name)
            results = executor.run_phase(phase, problem)
            runs.extend(results)
            phase = gen.send(results)
    except StopIteration as stop:
        final_spec = stop.value
    if not isinstance(final_spec, RunSpec):
        raise MethodError(f"method {method.name!r} must return the final RunSpec, got {final_spec!r}")
    final = executor.run_phase(Phase("final", [final_spec]), problem)[0]
    runs.append(final)
    # The learned static p of offline/proxy methods; for dynamic final runs the average over rounds (Table 19).
    mixture = final_spec.tags.get("mixture", final.summary.get("average_mixture"))
    return MethodResult(method=method.name, problem=problem, final=final, runs=runs,
                        mixture=None if mixture is None else [float(x) for x in mixture],
                        wall_time_s=time.perf_counter() - t0)

