"""Every registered method *chooses well* on the simulator, whose right answer is known (``raymix.sim``).

The simulator's static objective is ``F(p) = mean_i L_i(p; S)``: the noise-free per-group losses after a
static run of S steps on p (:meth:`LinearDynamicSimulator.predict`), the quantity every sweep method
minimises through its validation losses.  ``p*`` minimises F on a fine grid; ``regret(p) = F(p) − F(p*)``.
Static choices are judged by the regret of the chosen p (noise-free: the noise only enters the *choice*);
online methods by their final run's test loss against stratified's on the same seed.

Noise (why the tolerances): a run's final per-group loss carries the training noise of the simulator (a
random walk of the progress z with σ = 2e-5 per step: 2e-5·√5000 = 1.4e-3, times exp(−z/g) ≤ 0.75 at S,
so ≤ 1.1e-3 per group) and evaluation noise (1e-4).  The measured std of a run's mean final loss over 20
seeds is 1.0e-3 (two groups) and 0.9e-3 (three groups); :data:`SIGMA` = 1.5e-3 bounds it.  Two runs'
losses then differ by noise of at most √2·SIGMA, so a selection among runs is wrong only between candidates
whose F differ by less than a few √2·SIGMA: ``SELECT_TOL = 3·√2·SIGMA``.

| method | claim (scenario) | why it must hold |
|---|---|---|
| stratified | p = 1/m; final loss = F(1/m) ± 4σ | definition |
| grid_search | regret ≤ min regret over its cover + SELECT_TOL; m=2: \\|p − p*\\| ≤ h/2 + grid step | picks the best cover point |
| dml | regret ≤ 2σ on the law-exact two-group scenario (forget = 0) | there the static losses *are* log-linear (below) |
| regmix, optuna | regret ≤ min regret over their sweep points + SELECT_TOL | the regressor / TPE keep the best |
| doremi | \\|p − 1/m\\|∞ ≤ 0.05 | its minimax fixed point is its reference's (uniform) mixture |
| doge | favours argmax colsum A*; closer to p* than 1/m (two groups) | it climbs the gradient alignment = colsum A* |
| skill_it | final loss < stratified − SELECT_TOL | its graph favours C4, as p* does |
| aioli | mean final loss over 3 seeds < stratified − 3σ√(2/3) | Algorithm 1 on a law it estimates well |
| aioli_static | 1/2 < p_c4 ≤ e^η/(1+e^η) | one EGD step on column sums in [0, 1] |
| aioli_diagonal | p_github > 1/2 and loses to aioli | the scenario's diagonal favours GitHub (paper eq. 12) |
| grid_search_asha | as grid_search, at fewer extra steps | pruning stops runs worse at a rung; the winner finishes |
| optuna_asha | regret ≤ min regret over its finished runs + SELECT_TOL; < uniform's | TPE keeps the best finished run |
| dml_asha | law exact: minimises the loss at its fit step (regret there ≤ 2σ) | it fits DML's law at one common step |
| regmix_asha | regret < uniform's | its regressor, fitted at a common step, leans to p* |
| pbt | final loss < stratified − SELECT_TOL and ≤ its best initial member + SELECT_TOL (two groups) | the best member is never replaced |

Law-exact scenario: with ``forget = 0`` the progress after S steps is ``z_i = Σ_t dt·lr(t)·(A(t)p)_i``,
linear in p, so ``L_i = floor_i + g_i·exp(−z_i/g_i)`` is exactly DML's law with c = floor, b = g.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest

from raymix.methods import MixingProblem, available_methods, get_method, run_method
from raymix.methods.base import MixingMethod
from raymix.methods.driver import BackendSpec, LocalExecutor
from raymix.methods.runs import RunResult, RunSpec
from raymix.sim import LinearDynamicSimulator, get_preset
from raymix.simplex import default_cover

S = 5000
SIGMA = 1.5e-3
SELECT_TOL = 3 * math.sqrt(2) * SIGMA
TWO, THREE = "two_group_interacting", "three_group"


class Objective:
    """F(p), p* and regret on one simulator scenario (noise-free static runs of S steps)."""

    def __init__(self, scenario: str, steps: int = S, **sim_options) -> None:
        self.steps = steps
        self.sim = LinearDynamicSimulator.from_preset(scenario, total_steps=steps, **sim_options)
        self.groups = get_preset(scenario).groups
        m = self.sim.m
        if m == 2:
            x = np.linspace(0.0, 1.0, 201)
            self.grid_step = x[1] - x[0]
            grid = np.stack([x, 1 - x], axis=1)
        else:  # every point of the simplex with coordinates in steps of 1/50
            k = 50
            self.grid_step = 1 / k
            grid = np.array([(a / k, b / k, (k - a - b) / k) for a in range(k + 1) for b in range(k + 1 - a)])
        self.grid = grid
        values = self(grid)
        self.p_star = grid[int(np.argmin(values))]
        self.F_star = float(values.min())

    def __call__(self, P) -> np.ndarray | float:
        P = np.asarray(P, dtype=float)
        out = np.array([self.sim.predict(p, self.steps).mean() for p in np.atleast_2d(P)])
        return out if P.ndim == 2 else float(out[0])

    def regret(self, P) -> np.ndarray | float:
        return self(P) - self.F_star


_OBJECTIVES: dict[tuple, Objective] = {}


def objective(scenario: str, steps: int = S, **sim_options) -> Objective:
    key = (scenario, steps, tuple(sorted(sim_options.items())))
    if key not in _OBJECTIVES:
        _OBJECTIVES[key] = Objective(scenario, steps, **sim_options)
    return _OBJECTIVES[key]


@functools.cache
def _run(name: str, scenario: str, seed: int, steps: int, sim_options: tuple):
    problem = MixingProblem(groups=get_preset(scenario).groups, total_steps=steps, seed=seed)
    ex = LocalExecutor(BackendSpec(scenario=scenario, sim_options=dict(sim_options)))
    return run_method(get_method(name), problem, ex)


def run(name: str, scenario: str = TWO, seed: int = 0, steps: int = S, sim_options: dict | None = None):
    """``name`` with its default (paper) configuration on ``scenario``; results are shared between tests."""
    return _run(name, scenario, seed, steps, tuple(sorted((sim_options or {}).items())))


def final_loss(res) -> float:
    return float(np.mean(res.final.test_loss))


def searched_points(res) -> np.ndarray:
    return np.array([r.spec.tags["mixture"] for r in res.runs if r.spec.role == "search"])


# --- static choices ------------------------------------------------------------------------------------------


def test_stratified_trains_the_uniform_mixture():
    obj = objective(TWO)
    res = run("stratified")
    assert res.mixture == pytest.approx([0.5, 0.5], abs=1e-12)
    assert abs(final_loss(res) - obj([0.5, 0.5])) <= 4 * SIGMA


@pytest.mark.parametrize("scenario,seed", [(TWO, 0), (TWO, 1), (THREE, 0), (THREE, 1)])
def test_grid_search_picks_the_best_point_of_its_cover(scenario, seed):
    obj = objective(scenario)
    res = run("grid_search", scenario, seed)
    cover = searched_points(res)
    np.testing.assert_allclose(cover, default_cover(obj.sim.m, None, seed=seed))
    regrets = obj.regret(cover)
    # the chosen p is the cover point with the least regret, up to the noise of comparing two runs
    assert obj.regret(res.mixture) <= regrets.min() + SELECT_TOL, (res.mixture, cover[np.argmin(regrets)])
    if obj.sim.m == 2:
        # the paper grid {0.1, …, 0.9} has spacing h = 0.1: the best point lies within h/2 of p*
        h = 0.1
        assert abs(res.mixture[0] - obj.p_star[0]) <= h / 2 + obj.grid_step + 1e-9, (res.mixture, obj.p_star)
        # the scenario separates the two grid points around p* by more than the selection noise
        assert np.sort(regrets)[1] - regrets.min() > SELECT_TOL


def test_dml_finds_the_optimum_where_its_law_is_exact():
    obj = objective(TWO, forget=0.0)
    res = run("dml", TWO, sim_options={"forget": 0.0})
    # law exact: the fitted optimum is p* up to the noise of the sweep runs
    assert obj.regret(res.mixture) <= 2 * SIGMA, (res.mixture, obj.p_star)
    assert obj.regret(res.mixture) < obj.regret(searched_points(res)).min()  # better than any sweep point


@pytest.mark.parametrize("name", ["regmix", "optuna"])
def test_search_methods_keep_their_best_point(name):
    obj = objective(TWO)
    res = run(name)
    pts = searched_points(res)
    assert obj.regret(res.mixture) <= obj.regret(pts).min() + SELECT_TOL, (res.mixture, obj.p_star)
    assert obj.regret(res.mixture) < obj.regret([0.5, 0.5])


def test_doremi_stays_at_its_reference_mixture():
    # The reference is trained on 1/m; at w = 1/m the proxy equals the reference, so no excess loss builds up
    # and any drift of w makes the starved groups' excess loss pull it back: 1/m is the fixed point.
    # (Proxy runs step one at a time in Python: S = 2000 keeps this test short; the claim does not depend on S.)
    for scenario in (TWO, THREE):
        res = run("doremi", scenario, steps=2000)
        m = len(res.mixture)
        assert np.max(np.abs(np.asarray(res.mixture) - 1 / m)) <= 0.05, (scenario, res.mixture)


def test_doge_climbs_the_gradient_alignment():
    # On the simulator DoGE's alignment of group j is colsum_j A*/m (+ noise): it must favour the group whose
    # data helps all groups most, which here is also the side of p*.
    for scenario in (TWO, THREE):
        sim = LinearDynamicSimulator.from_preset(scenario, total_steps=2000)
        res = run("doge", scenario, steps=2000)
        assert int(np.argmax(res.mixture)) == int(np.argmax(sim.A_star(0).sum(axis=0))), res.mixture
    obj = objective(TWO, steps=2000)
    p = np.asarray(run("doge", TWO, steps=2000).mixture)  # the run above (cached)
    assert np.abs(p - obj.p_star).max() < np.abs(0.5 - obj.p_star).max()


# --- online methods: the final run against stratified on the same seed ---------------------------------------


def test_skill_it_beats_stratified_on_interacting_groups():
    for seed in (0, 1):
        assert final_loss(run("skill_it", seed=seed)) < final_loss(run("stratified", seed=seed)) - SELECT_TOL


def test_aioli_beats_stratified_and_the_ablations_go_where_the_scenario_says():
    seeds = (0, 1, 2)
    strat = np.array([final_loss(run("stratified", seed=s)) for s in seeds])
    aioli_runs = [run("aioli", seed=s) for s in seeds]
    aioli = np.array([final_loss(r) for r in aioli_runs])
    assert aioli.mean() < strat.mean() - 3 * SIGMA * math.sqrt(2 / len(seeds)), (aioli, strat)
    # Aioli's average mixture leans to C4, the side of p* (p*_c4 = 0.75)
    assert all(r.mixture[1] > 0.5 for r in aioli_runs)

    eta = get_method("aioli_static").config.overrides.get("eta", 0.2)
    for s in seeds:
        # T = 1: one EGD step on normalised column sums in [0, 1] moves p_c4 at most to e^η/(1+e^η)
        p = run("aioli_static", seed=s).mixture
        assert 0.5 < p[1] <= math.exp(eta) / (1 + math.exp(eta)) + 1e-9, p
        diag = run("aioli_diagonal", seed=s)
        # the scenario's diagonal favours GitHub while the full matrix favours C4 (paper eq. 12)
        assert diag.mixture[0] > 0.5, diag.mixture
        assert final_loss(diag) > aioli[s] + SELECT_TOL


# --- trial-scheduler methods (ASHA-pruned sweeps, PBT; in-process: synchronous halving, lockstep population) ---


def finished_points(res) -> np.ndarray:
    return np.array([r.spec.tags["mixture"] for r in res.runs if r.spec.role == "search" and not r.pruned])


@pytest.mark.parametrize("scenario,seed", [(TWO, 0), (TWO, 1), (THREE, 0), (THREE, 1)])
def test_pruned_grid_search_keeps_the_best_point_of_its_cover(scenario, seed):
    obj = objective(scenario)
    res, full = run("grid_search_asha", scenario, seed), run("grid_search", scenario, seed)
    cover = searched_points(res)
    np.testing.assert_allclose(cover, default_cover(obj.sim.m, None, seed=seed))
    assert obj.regret(res.mixture) <= obj.regret(cover).min() + SELECT_TOL, (res.mixture, obj.p_star)
    pruned = [r for r in res.runs if r.spec.role == "search" and r.pruned]
    assert len(pruned) >= len(cover) // 2 and res.extra_steps < full.extra_steps


@pytest.mark.parametrize("scenario", [TWO, THREE])
def test_pruned_optuna_keeps_its_best_finished_run(scenario):
    obj = objective(scenario)
    res = run("optuna_asha", scenario)
    done = finished_points(res)
    assert len(done) < len(searched_points(res))  # something was pruned
    assert obj.regret(res.mixture) <= obj.regret(done).min() + SELECT_TOL, (res.mixture, done)
    assert obj.regret(res.mixture) < obj.regret(np.full(obj.sim.m, 1 / obj.sim.m))


@pytest.mark.parametrize("scenario", [TWO, THREE])
def test_pruned_dml_minimises_the_loss_at_the_step_it_fitted(scenario):
    # forget = 0: DML's law is exact at every step, so the law fitted on the losses at the deepest common rung
    # has that step's optimum; dml_asha (9 rounds, grace 3) fits where all its runs were, at round 3.
    obj = objective(scenario, forget=0.0)
    res = run("dml_asha", scenario, sim_options={"forget": 0.0})
    stops = {r.stopped_at for r in res.runs if r.spec.role == "search" and r.pruned}
    assert len(stops) == 1, stops
    at = stops.pop()
    values = np.array([obj.sim.predict(p, at).mean() for p in obj.grid])  # the static losses at step `at`
    regret_at_fit = obj.sim.predict(np.asarray(res.mixture), at).mean() - values.min()
    assert regret_at_fit <= 2 * SIGMA, (res.mixture, obj.grid[np.argmin(values)])
    assert obj.regret(res.mixture) < obj.regret(np.full(obj.sim.m, 1 / obj.sim.m))


@pytest.mark.parametrize("scenario,seed", [(TWO, 0), (TWO, 1), (THREE, 0), (THREE, 1)])
def test_pruned_regmix_leans_to_the_optimum(scenario, seed):
    obj = objective(scenario)
    res = run("regmix_asha", scenario, seed)
    assert obj.regret(res.mixture) < obj.regret(np.full(obj.sim.m, 1 / obj.sim.m)), (res.mixture, obj.p_star)


@pytest.mark.parametrize("seed", [0, 1])
def test_pbt_beats_stratified_and_keeps_up_with_its_best_member(seed):
    obj = objective(TWO)
    res = run("pbt", TWO, seed)
    assert final_loss(res) < final_loss(run("stratified", TWO, seed)) - SELECT_TOL
    # the best member is never overwritten (only the bottom quantile copies), so the winner is at least as good
    # as a static run on the best starting point, up to the noise of comparing two runs
    assert final_loss(res) <= obj.F_star + obj.regret(searched_points(res)).min() + SELECT_TOL


def test_every_registered_method_has_a_choosing_well_test():
    tested = {"stratified", "grid_search", "dml", "regmix", "optuna", "doremi", "doge", "skill_it", "aioli",
              "aioli_static", "aioli_diagonal", "grid_search_asha", "dml_asha", "regmix_asha", "optuna_asha",
              "pbt"}
    assert set(available_methods()) <= tested, set(available_methods()) - tested


# --- a diverged sweep run is never chosen ---------------------------------------------------------------------


def _drive_with_losses(method: MixingMethod, problem: MixingProblem, losses) -> RunSpec:
    """Drive ``method.plan`` with fake sweep results (``losses(i, p)`` → per-group val losses)."""
    gen = method.plan(problem)
    phase = next(gen)
    try:
        while True:
            results = [RunResult(spec=spec, groups=list(problem.groups), val_loss=list(losses(i, spec)),
                                 test_loss=list(losses(i, spec))) for i, spec in enumerate(phase.runs)]
            phase = gen.send(results)
    except StopIteration as stop:
        return stop.value


@pytest.mark.parametrize("name", ["grid_search", "dml", "regmix", "optuna"])
def test_a_diverged_sweep_run_is_never_chosen(name):
    obj = objective(TWO, forget=0.0)  # noise-free losses that follow DML's law exactly
    problem = MixingProblem(groups=obj.groups, total_steps=S)
    diverged = []

    def losses(i, spec):
        p = np.asarray(spec.tags["mixture"])
        L = obj.sim.predict(p, S)
        if i == 0:  # the first run of each sweep phase diverged
            diverged.append(p)
            return [float("nan"), float(L[1])]
        return L

    cfg = {"runs": 9} if name == "regmix" else None
    final = _drive_with_losses(get_method(name, cfg), problem, losses)
    p = np.asarray(final.tags["mixture"])
    assert np.all(np.isfinite(p)) and not any(np.allclose(p, q) for q in diverged)
    assert obj.regret(p) < obj.regret([0.5, 0.5])

    from raymix.errors import MethodError

    with pytest.raises(MethodError, match="diverged"):
        _drive_with_losses(get_method(name, cfg), problem, lambda i, spec: [float("nan"), 1.0])
