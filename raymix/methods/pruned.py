"""Pruned sweeps: grid search, DML, RegMix and Optuna whose sweep runs run under successive halving (ASHA).

The sweep is the same as the unpruned method's (:mod:`raymix.methods.sweeps`), but its runs report the
average validation loss on the whole cached validation set at ``rounds`` round boundaries, and a trial
scheduler (:class:`~raymix.methods.schedules.Pruning`: ``ASHAScheduler`` on Ray Tune, synchronous
successive halving in-process) stops the worst ones at the rungs.  A stopped run keeps its checkpoint
and round history; the method's budget counts only the steps each run actually trained
(:attr:`RunResult.trained_steps <raymix.methods.runs.RunResult.trained_steps>`).

How each method chooses p from a pruned sweep:

* ``grid_search_asha`` / ``optuna_asha`` — the lowest final average validation loss among the runs that
  finished (pruning only removes runs that were worse at a rung);
* ``dml_asha`` / ``regmix_asha`` — the law / regressor is fitted on the per-group validation losses *at a
  common step*: the deepest rung that at least ``fit_min_runs`` runs reached (DML: max(m+1, half the
  sweep); the final step when enough runs finished).  Mixing losses of different steps would confound p with
  training length, and the runs that finish are too few to fit m+1-parameter laws (docs/DECISIONS.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from raymix.config import check, field
from raymix.errors import MethodError
from raymix.laws import LogLinearStaticLaw
from raymix.methods.base import MixingMethod, MixingProblem, Phase, Plan
from raymix.methods.handoff import ROUND_EVAL_EXAMPLES, static_run
from raymix.methods.hparams import short_run_steps
from raymix.methods.optuna_search import OptunaConfig, simplex_study, stick_breaking
from raymix.methods.runs import RunResult
from raymix.methods.schedules import Pruning, deepest_common_rung, round_value, rung_table
from raymix.methods.sweeps import DMLConfig, RegMixConfig, SweepConfig, finish_with, regmix_optimum, sweep_table
from raymix.simplex import default_cover, dirichlet_cover


@dataclass
class PrunedSweepConfig(SweepConfig):
    """A static sweep under successive halving (ASHA): rungs at ``grace_rounds·reduction_factor^k`` rounds."""

    rounds: int = field(9, help="round boundaries of each sweep run (evaluation + possible cut at each rung)")
    grace_rounds: int = field(1, help="rounds before a run can be stopped (ASHA grace_period)")
    reduction_factor: float = field(3.0, help="rung spacing; 1/reduction_factor of the runs pass a rung")
    eval_examples: int | None = field(None, help="per-group validation examples of the evaluations at rungs, "
                                                 "which the cut reads (None = the whole cached set)")
    curve_examples: int | None = field(ROUND_EVAL_EXAMPLES, help="per-group validation examples of the other "
                                                                 "rounds' evaluations (the curve between rungs); "
                                                                 "= eval_examples evaluates every round alike")

    def validate(self) -> None:
        super().validate()
        check(int(self.rounds) >= 1, f"rounds must be >= 1, got {self.rounds!r}")
        Pruning(grace_rounds=self.grace_rounds, reduction_factor=self.reduction_factor)

    def pruning(self, prior: dict[str, list[float]] | None = None) -> Pruning:
        return Pruning(grace_rounds=self.grace_rounds, reduction_factor=self.reduction_factor, prior=prior or {})


def pruned_sweep_phase(name: str, base_method: str, points: np.ndarray, problem: MixingProblem,
                       cfg: PrunedSweepConfig, *, start: int = 0, prior: dict[str, list[float]] | None = None) -> Phase:
    steps = int(cfg.steps) if cfg.steps else short_run_steps(base_method, problem.m, problem.total_steps,
                                                             problem.setting)
    steps = min(steps, int(problem.total_steps))
    rounds = min(int(cfg.rounds), steps)
    pruning = cfg.pruning(prior)
    # only the rungs are decisions: the rounds between them are evaluated on the small per-round subset
    runs = [static_run(f"{name}-{start + i:02d}", p, problem, steps=steps, role="search", rounds=rounds,
                       eval_examples=cfg.curve_examples, decisions=(pruning.rungs(rounds), cfg.eval_examples))
            for i, p in enumerate(points)]
    return Phase(name, runs, pruning=pruning)


def finished(results: list[RunResult]) -> list[RunResult]:
    """The runs of a pruned sweep that trained to their end."""
    done = [r for r in results if not r.pruned]
    if not done:
        raise MethodError("every run of the pruned sweep was stopped early; at least one must finish")
    return done


def best_finished(problem: MixingProblem, results: list[RunResult]) -> Plan:
    """Final run at the finished run with the lowest final average validation loss (resumed where it can be)."""
    done = finished(results)
    best = min(done, key=lambda r: float(np.mean(r.val_loss)))
    return (yield from finish_with(problem, np.asarray(best.spec.tags["mixture"]), done, best.spec.steps))


def common_step_table(results: list[RunResult], min_runs: int) -> tuple[np.ndarray, np.ndarray, int]:
    """(P, L, rung): proportions and per-group validation losses of every run at the deepest rung reached by at
    least ``min_runs`` runs.  When that is the final round, the final full-set losses of the finished runs."""
    rung = deepest_common_rung(results, min_runs)
    if rung == 0:
        raise MethodError(f"a law fit needs {min_runs} runs at a common step; the pruned sweep has {len(results)} "
                          "runs (raise runs, or lower reduction_factor / raise grace_rounds)")
    done = [r for r in results if not r.pruned]
    if len(done) >= min_runs and all(len(r.history) == rung for r in done):
        P, L = sweep_table(done)
        return P, L, rung
    reached, L = rung_table(results, rung)
    return np.array([r.spec.tags["mixture"] for r in reached], dtype=float), L, rung


class GridSearchASHA(MixingMethod):
    """Grid search with ASHA-pruned sweep runs: the cover of ``grid_search``, worst runs stopped at rungs."""

    name = "grid_search_asha"
    config_cls = PrunedSweepConfig
    extra_runs = "10 pruned"

    def plan(self, problem: MixingProblem) -> Plan:
        points = default_cover(problem.m, self.config.runs, seed=problem.seed)
        results = yield pruned_sweep_phase("gs-asha", "grid_search", points, problem, self.config)
        return (yield from best_finished(problem, results))


@dataclass
class PrunedDMLConfig(PrunedSweepConfig, DMLConfig):
    """DML on an ASHA-pruned sweep; the law is fitted on losses at a common step (module docstring)."""

    grace_rounds: int = field(3, help="rounds before a run can be stopped (ASHA grace_period)")
    fit_min_runs: int | None = field(None, help="runs the law is fitted on, at the deepest rung that many reached; "
                                                "None = max(m+1, half the sweep): the survivors of a late rung "
                                                "cluster where the sweep was best and extrapolate badly")

    def validate(self) -> None:
        PrunedSweepConfig.validate(self)
        DMLConfig.validate(self)
        check(self.fit_min_runs is None or int(self.fit_min_runs) >= 2,
              f"fit_min_runs must be None or >= 2, got {self.fit_min_runs!r}")


class DataMixingLawsASHA(MixingMethod):
    """DML with ASHA-pruned sweep runs: log-linear static law fitted at a rung that most runs reached."""

    name = "dml_asha"
    config_cls = PrunedDMLConfig
    extra_runs = "10 pruned"

    def for_plan_check(self) -> DataMixingLawsASHA:
        # as DML: one L-BFGS start; the fit moves only the final run's p, never which runs are trained
        return type(self)(self.config.replace(restarts=1))

    def plan(self, problem: MixingProblem) -> Plan:
        cfg: PrunedDMLConfig = self.config
        n = None if cfg.runs is None else max(int(cfg.runs), problem.m + 1)
        points = default_cover(problem.m, n, seed=problem.seed)
        results = yield pruned_sweep_phase("dml-asha", "dml", points, problem, cfg)
        need = max(problem.m + 1, -(-len(results) // 2)) if cfg.fit_min_runs is None else int(cfg.fit_min_runs)
        P, L, _ = common_step_table(results, max(need, problem.m + 1))
        law = LogLinearStaticLaw(delta=cfg.huber_delta, n_restarts=cfg.restarts, seed=problem.seed).fit(P, L)
        p = np.asarray(law.optimal_mixture(), dtype=float)
        return (yield from finish_with(problem, p, finished(results), results[0].spec.steps))


@dataclass
class PrunedRegMixConfig(PrunedSweepConfig, RegMixConfig):
    """RegMix on an ASHA-pruned sweep; the regressor is fitted on losses at a common step."""

    runs: int = field(32, help="number of sweep runs")
    fit_min_runs: int = field(8, help="runs the regressor needs at a common step (the fit uses the deepest rung "
                                      "that many runs reached)")

    def validate(self) -> None:
        PrunedSweepConfig.validate(self)
        RegMixConfig.validate(self)
        check(int(self.fit_min_runs) >= 4, f"fit_min_runs must be >= 4, got {self.fit_min_runs!r}")


class RegMixASHA(MixingMethod):
    """RegMix with ASHA-pruned sweep runs: LightGBM fitted at the deepest rung with >= fit_min_runs runs."""

    name = "regmix_asha"
    config_cls = PrunedRegMixConfig
    extra_runs = "32 short pruned"

    def plan(self, problem: MixingProblem) -> Plan:
        cfg: PrunedRegMixConfig = self.config
        points = dirichlet_cover(problem.m, int(cfg.runs), alpha=cfg.alpha, seed=problem.seed)
        results = yield pruned_sweep_phase("regmix-asha", "regmix", points, problem, cfg)
        P, L, _ = common_step_table(results, min(int(cfg.fit_min_runs), len(results)))
        p = regmix_optimum(P, L, problem, cfg)
        return (yield from finish_with(problem, p, finished(results), results[0].spec.steps))


@dataclass
class PrunedOptunaConfig(PrunedSweepConfig, OptunaConfig):
    """Optuna (TPE or GP) over the simplex, each batch of trials pruned against every rung value recorded so far."""

    runs: int = field(10, help="number of trials")  # PrunedSweepConfig's inherited None would win otherwise

    def validate(self) -> None:
        PrunedSweepConfig.validate(self)
        OptunaConfig.validate(self)


class OptunaASHA(MixingMethod):
    """Optuna TPE over p with ASHA: a batch's runs are cut against the rung values of all earlier trials."""

    name = "optuna_asha"
    config_cls = PrunedOptunaConfig
    extra_runs = "10 pruned"

    def plan(self, problem: MixingProblem) -> Plan:
        cfg: PrunedOptunaConfig = self.config
        study = simplex_study(problem.seed, int(cfg.runs), cfg.sampler)
        prior: dict[str, list[float]] = {}
        all_results: list[RunResult] = []
        done = 0
        while done < int(cfg.runs):
            n = min(int(cfg.batch), int(cfg.runs) - done)
            trials = [study.ask() for _ in range(n)]
            points = [stick_breaking([t.suggest_float(f"u{k}", 0.0, 1.0) for k in range(problem.m - 1)])
                      for t in trials]
            phase = pruned_sweep_phase(f"optuna-asha-{done // max(1, int(cfg.batch)):02d}", "optuna",
                                       np.asarray(points), problem, cfg, start=done, prior=prior)
            rungs = phase.pruning.rungs(int(phase.runs[0].policy_config["rounds"]))
            results = yield phase
            tell_study(study, trials, results, rungs, prior)
            all_results.extend(results)
            done += n
        return (yield from best_finished(problem, all_results))


def tell_study(study: Any, trials: list[Any], results: list[RunResult], rungs: list[int],
               prior: dict[str, list[float]]) -> None:
    """Hand a batch's runs back to Optuna as the same curves ASHA saw: each round's value as an intermediate
    value, a finished run's average final validation loss as its value (the study minimises it), a stopped
    run as PRUNED; and record every run's value at each rung it reached in ``prior`` (the cut of later
    batches)."""
    from optuna.trial import TrialState

    for t, r in zip(trials, results):
        for k, h in enumerate(r.history):
            t.report(round_value(h), k + 1)
        if r.pruned:
            study.tell(t, state=TrialState.PRUNED)
        else:
            study.tell(t, float(np.mean(r.val_loss)))
        for rung in rungs:
            if len(r.history) >= rung:
                prior.setdefault(str(rung), []).append(round_value(r.history[rung - 1]))
