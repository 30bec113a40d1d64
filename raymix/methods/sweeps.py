"""Offline sweep methods: grid search, Data Mixing Laws (DML) and RegMix (paper §3.3.1, App. D).

Each trains static runs over a cover of the simplex (10 runs of S, or of S/20 in the restricted
setting; paper Table 11), then picks p from their *validation* losses (never test: the authors' grid
search read test losses), then trains the final run (:mod:`raymix.methods.handoff`).  Sweep runs keep the
final run's LR horizon S, so a truncated sweep run is exactly the first S/20 steps of a full run at
its p, and "Aioli+method" resumes it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from raymix.config import Config, check, field
from raymix.errors import MethodError
from raymix.laws import LogLinearStaticLaw
from raymix.methods.base import MixingMethod, MixingProblem, Phase, Plan
from raymix.methods.handoff import final_run, needs_truncated_run, static_run
from raymix.methods.hparams import short_run_steps
from raymix.methods.runs import RunResult
from raymix.simplex import default_cover, dirichlet_cover


@dataclass
class SweepConfig(Config):
    """A static sweep over the simplex."""

    runs: int | None = field(None, help="sweep runs; None = paper: p1 in {0.1..0.9} for m=2, 10 points for m>=3")
    steps: int | None = field(None, help="steps per sweep run; None = paper rule (S, or S/20 restricted)")
    eval_examples: int | None = field(8, help="per-group validation examples of the per-round evaluation "
                                             "(selection uses the final evaluation on the whole cached set)")

    def validate(self) -> None:
        check(self.runs is None or int(self.runs) >= 1, f"runs must be None or >= 1, got {self.runs!r}")
        check(self.steps is None or int(self.steps) >= 1, f"steps must be None or >= 1, got {self.steps!r}")


def sweep_phase(name: str, method: str, points: np.ndarray, problem: MixingProblem, cfg: SweepConfig) -> Phase:
    steps = int(cfg.steps) if cfg.steps else short_run_steps(method, problem.m, problem.total_steps, problem.setting)
    steps = min(steps, int(problem.total_steps))
    # One round: only a sweep run's final validation loss is used (a truncated run may be resumed later).
    runs = [static_run(f"{name}-{i:02d}", p, problem, steps=steps, role="search", eval_examples=cfg.eval_examples,
                       rounds=1) for i, p in enumerate(points)]
    return Phase(name, runs)


def sweep_table(results: list[RunResult]) -> tuple[np.ndarray, np.ndarray]:
    """(P, L): the sweep's proportions (n, m) and final per-group validation losses (n, m)."""
    P = np.array([r.spec.tags["mixture"] for r in results], dtype=float)
    L = np.array([r.val_loss for r in results], dtype=float)
    return P, L


def finite_runs(results: list[RunResult], method: str) -> list[RunResult]:
    """The sweep runs whose validation losses are all finite: a diverged run (NaN/inf loss) is never chosen
    nor fitted.  ``np.argmin`` over a column holding NaN returns the NaN row, so every selection and law fit
    goes through here.  Raises :class:`MethodError` when no run is left."""
    _, L = sweep_table(results)
    ok = np.isfinite(L).all(axis=1) if L.ndim == 2 and L.size else np.zeros(len(results), dtype=bool)
    if not ok.any():
        raise MethodError(f"{method}: every sweep run diverged (non-finite validation loss in "
                          f"{[r.spec.name for r in results]}); lower the learning rate or check the data")
    return [r for r, keep in zip(results, ok) if keep]


def best_run(results: list[RunResult], method: str) -> RunResult:
    """The run with the lowest average validation loss among the runs that did not diverge."""
    kept = finite_runs(results, method)
    _, L = sweep_table(kept)
    return kept[int(np.argmin(L.mean(axis=1)))]


def finish_with(problem: MixingProblem, p: np.ndarray, results: list[RunResult], steps: int) -> Plan:
    """Final run at ``p``: resume the sweep run that trained on ``p`` when there is one (or, for Aioli+method,
    first train a truncated trial at ``p`` and resume it)."""
    match = next((r for r in results if np.allclose(r.spec.tags["mixture"], p, atol=1e-9)), None)
    if match is None and needs_truncated_run(problem):
        (match,) = yield Phase("truncated", [static_run("truncated", p, problem, steps=steps, role="truncated")])
    if match is None:
        return final_run(problem, p, s_method=steps)
    if not problem.restricted and not problem.with_aioli:
        # Unrestricted grid search: the winning full run *is* the final run; resuming it trains nothing more.
        return final_run(problem, p, truncated_run=match.spec.name)
    return final_run(problem, p, s_method=match.spec.steps, truncated_run=match.spec.name)


class GridSearch(MixingMethod):
    """Grid search (GS): sweep a cover of the simplex, keep the lowest average validation loss."""

    name = "grid_search"
    config_cls = SweepConfig
    extra_runs = "10"

    def plan(self, problem: MixingProblem) -> Plan:
        points = default_cover(problem.m, self.config.runs, seed=problem.seed)
        results = yield sweep_phase("gs", self.name, points, problem, self.config)
        best = best_run(results, self.name)
        return (yield from finish_with(problem, np.asarray(best.spec.tags["mixture"]), results, best.spec.steps))


@dataclass
class DMLConfig(SweepConfig):
    """Data Mixing Laws (Ye et al.): fit the log-linear static law on the sweep, take its optimum."""

    huber_delta: float = field(0.02, help="δ of the Huber loss of the law fit")
    restarts: int = field(20, help="random initialisations of the L-BFGS law fit")

    def validate(self) -> None:
        super().validate()
        check(float(self.huber_delta) > 0, f"huber_delta must be > 0, got {self.huber_delta!r}")
        check(int(self.restarts) >= 1, f"restarts must be >= 1, got {self.restarts!r}")


class DataMixingLaws(MixingMethod):
    """DML (paper §3.3.1, Table 1): log-linear static law L_i(p) = c_i + b_i·exp(−Σ_j A_ij p_j), direct solve."""

    name = "dml"
    config_cls = DMLConfig
    extra_runs = "10"

    def for_plan_check(self) -> DataMixingLaws:
        # One L-BFGS start instead of 20: the fit only moves the final run's p, never which runs are trained.
        return type(self)(self.config.replace(restarts=1))

    def plan(self, problem: MixingProblem) -> Plan:
        n = None if self.config.runs is None else max(int(self.config.runs), problem.m + 1)
        points = default_cover(problem.m, n, seed=problem.seed)
        results = yield sweep_phase("dml", self.name, points, problem, self.config)
        results = finite_runs(results, self.name)  # a diverged run is neither fitted nor resumed
        P, L = sweep_table(results)
        law = LogLinearStaticLaw(delta=self.config.huber_delta, n_restarts=self.config.restarts, seed=problem.seed)
        law.fit(P, L)
        p = np.asarray(law.optimal_mixture(), dtype=float)
        return (yield from finish_with(problem, p, results, results[0].spec.steps))


@dataclass
class RegMixConfig(SweepConfig):
    """RegMix: many short static runs, a LightGBM regressor p → average validation loss, its argmin."""

    runs: int = field(32, help="number of sweep runs")
    alpha: float = field(1.0, help="Dirichlet concentration of the sweep points")
    candidates: int = field(20000, help="random simplex points scored by the regressor")

    def validate(self) -> None:
        super().validate()
        check(float(self.alpha) > 0, f"alpha must be > 0, got {self.alpha!r}")
        check(int(self.candidates) >= 1, f"candidates must be >= 1, got {self.candidates!r}")


class RegMix(MixingMethod):
    """RegMix (Liu et al. 2024; not in the paper's tables): regression from proportions to loss."""

    name = "regmix"
    config_cls = RegMixConfig
    extra_runs = "32 short"

    def plan(self, problem: MixingProblem) -> Plan:
        cfg: RegMixConfig = self.config
        points = dirichlet_cover(problem.m, int(cfg.runs), alpha=cfg.alpha, seed=problem.seed)
        results = yield sweep_phase("regmix", self.name, points, problem, cfg)
        results = finite_runs(results, self.name)  # a diverged run is neither fitted nor resumed
        P, L = sweep_table(results)
        if len(P) < 4:
            raise MethodError(f"RegMix needs at least 4 sweep runs to fit a regressor, got {len(P)}")
        p = regmix_optimum(P, L, problem, cfg)
        return (yield from finish_with(problem, p, results, results[0].spec.steps))


def regmix_optimum(P: np.ndarray, L: np.ndarray, problem: MixingProblem, cfg: RegMixConfig) -> np.ndarray:
    """RegMix's choice: LightGBM from p (n, m) to the average loss of L (n, m), minimised over ``cfg.candidates``
    Dirichlet(α) points plus the swept ones (shared by ``regmix`` and ``regmix_asha``)."""
    import lightgbm as lgb

    params = {"objective": "regression", "learning_rate": 0.05, "num_leaves": 8, "min_data_in_leaf": 2,
              "min_data_in_bin": 1, "seed": problem.seed, "verbose": -1, "num_threads": 1}
    model = lgb.train(params, lgb.Dataset(P, L.mean(axis=1), params={"min_data_in_bin": 1}), num_boost_round=200)
    rng = np.random.default_rng(problem.seed)
    cand = np.vstack([rng.dirichlet(np.full(problem.m, cfg.alpha), size=int(cfg.candidates)), P])
    return cand[int(np.argmin(model.predict(cand)))]
