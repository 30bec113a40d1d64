"""Trial schedulers in-process: successive halving (ASHA semantics) and PBT over p, on the simulator (no Ray).

Known right answers come from the simulator: the mixture whose full run has the lowest final validation
loss is what an unpruned grid search finds; pruning must keep it at a fraction of the steps, and PBT must
reach a final model at least as good.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest

from raymix.errors import ConfigError, MethodError
from raymix.methods import MixingProblem, get_method, run_method
from raymix.methods.base import Phase
from raymix.methods.driver import BackendSpec, LocalExecutor, RunDriver, build_backend
from raymix.methods.handoff import static_run
from raymix.methods.runs import RoundReport, RunResult
from raymix.methods.schedules import Population, Pruning, perturb_mixture

GROUPS = ("github", "c4")


def prob(**kw) -> MixingProblem:
    return MixingProblem(groups=kw.pop("groups", GROUPS), total_steps=kw.pop("total_steps", 5000), **kw)


# ------------------------------------------------------------------------------------------- pruning
def test_rungs_and_cut_follow_asha():
    pr = Pruning(grace_rounds=1, reduction_factor=3)
    assert pr.rungs(9) == [1, 3] and pr.rungs(27) == [1, 3, 9] and pr.rungs(1) == []
    assert Pruning(grace_rounds=2, reduction_factor=2).rungs(16) == [2, 4, 8]
    # the cut keeps the best 1/rf: of 9 values, those <= the 33rd percentile (3 of them), order preserved
    vals = {f"r{i}": float(v) for i, v in enumerate([5, 1, 9, 3, 7, 2, 8, 4, 6])}
    assert pr.survivors(1, vals) == ["r1", "r3", "r5"]
    # values recorded by earlier phases of the same search take part in the cut (sequential searchers)
    seeded = Pruning(grace_rounds=1, reduction_factor=3, prior={"1": [0.5, 0.6, 0.7, 0.8]})
    assert seeded.survivors(1, {"a": 0.9, "b": 0.55}) == ["b"]


def test_asha_cutoff_is_the_1_over_rf_percentile_of_the_finite_values():
    pr = Pruning(reduction_factor=2)
    assert pr.cutoff([4.0, 1.0, 3.0, 2.0]) == 2.5  # the median for rf = 2
    assert pr.cutoff([3.0, float("nan")]) == 3.0  # one finite value is its own cut
    assert pr.cutoff([float("nan"), float("inf")]) is None
    # nothing finite to rank: the cut cannot choose, every run goes on
    assert pr.survivors(1, {"a": float("nan"), "b": float("nan")}) == ["a", "b"]


class _Curve:
    """A stand-in SteppedRun: ``total`` rounds, each reporting the same validation loss."""

    def __init__(self, loss: float, total: int) -> None:
        self.loss, self.total, self.history = loss, total, []

    @property
    def done(self) -> bool:
        return len(self.history) >= self.total

    def round(self) -> None:
        self.history.append(RoundReport(step=len(self.history) + 1, mixture=[0.5, 0.5], train_loss=[0.0, 0.0],
                                        val_loss=[self.loss, self.loss]))


def test_successive_halving_returns_the_rung_of_each_stopped_run_and_cuts_with_that_rungs_prior():
    from raymix.methods.schedules import run_successive_halving

    runs = {"a": _Curve(1.0, 9), "b": _Curve(2.0, 9), "c": _Curve(3.0, 9)}
    # an earlier phase recorded six better values at rung 3 (none at rung 1)
    pr = Pruning(grace_rounds=1, reduction_factor=3, prior={"3": [0.5] * 6})
    stopped = run_successive_halving(runs, pr, max_rounds=9)
    # rung 1 keeps the best third (a); at rung 3, a is cut against the prior's values
    assert stopped == {"b": 1, "c": 1, "a": 3}
    assert [len(r.history) for r in runs.values()] == [3, 1, 1]


def test_rung_tables_and_the_deepest_common_rung():
    from raymix.methods.schedules import deepest_common_rung, round_value, rung_table

    results = [_search_result(f"r{i}", [0.5, 0.5], [3.0 + i, 2.0 + i, 1.0 + i][:n]) for i, n in enumerate([3, 2, 1])]
    reached, L = rung_table(results, 2)
    assert [r.spec.name for r in reached] == ["r0", "r1"]
    np.testing.assert_array_equal(L, [[2.0, 2.0], [3.0, 3.0]])  # round 2's losses, one row per run
    # a round without an evaluation does not stop the next round from counting
    gap = _search_result("gap", [0.5, 0.5], [1.0, 1.0])
    gap.history[0] = RoundReport(step=100, mixture=[0.5, 0.5], train_loss=[1.0, 1.0], val_loss=None)
    assert [r.spec.name for r in rung_table([gap], 2)[0]] == ["gap"]
    none, empty = rung_table([gap], 1)
    assert none == [] and empty.shape == (0, 2)
    assert rung_table([], 1)[1].shape == (0, 0)
    assert math.isnan(round_value(gap.history[0]))
    # depths 3, 2, 1: the deepest round that 1, 2, 3 runs reached; 0 when there are fewer runs than asked
    assert [deepest_common_rung(results, k) for k in (1, 2, 3, 4)] == [3, 2, 1, 0]


def test_successive_halving_stops_runs_at_rungs_and_keeps_their_curves():
    problem = prob(total_steps=900)
    points = [[0.1, 0.9], [0.3, 0.7], [0.5, 0.5], [0.7, 0.3], [0.9, 0.1], [0.2, 0.8]]
    runs = [static_run(f"r{i}", p, problem, role="search", rounds=9, eval_examples=None) for i, p in enumerate(points)]
    phase = Phase("sh", runs, pruning=Pruning(grace_rounds=1, reduction_factor=3))
    ex = LocalExecutor(BackendSpec())
    results = ex.run_phase(phase, problem)
    stopped = [r for r in results if r.pruned]
    assert 0 < len(stopped) < len(results)
    for r in stopped:
        # a stopped run has trained exactly to a rung (rounds 1 or 3 of 9 = steps 100 or 300) and kept its curve
        assert r.stopped_at in (100, 300) and r.trained_steps == r.stopped_at == r.history[-1].step
        assert len(r.history) in (1, 3) and np.all(np.isnan(r.test_loss)) and np.all(np.isfinite(r.val_loss))
        assert ex.states[r.spec.name]["backend"] is not None  # its checkpoint is kept
    for r in results:
        if not r.pruned:
            assert r.trained_steps == 900 and len(r.history) == 9 and np.all(np.isfinite(r.test_loss))
    # every run that passed rung 1 was among the best third at round 1
    at1 = {r.spec.name: np.mean(r.history[0].val_loss) for r in results}
    passed = [r.spec.name for r in results if len(r.history) > 1]
    assert max(at1[n] for n in passed) <= min(at1[n] for n in at1 if n not in passed)


def test_scheduled_phases_need_comparable_fresh_static_runs():
    problem = prob(total_steps=900)
    a = static_run("a", [0.5, 0.5], problem, rounds=9)
    b = static_run("b", [0.5, 0.5], problem, rounds=3)
    with pytest.raises(MethodError, match="pruned phase 'x'.*common round boundaries"):
        Phase("x", [a, b], pruning=Pruning())
    with pytest.raises(MethodError, match="population phase 'x'.*start fresh"):
        Phase("x", [static_run("c", [0.5, 0.5], problem, rounds=9, resume_from="a")], population=Population())


@pytest.mark.parametrize("scenario,groups", [("two_group_interacting", GROUPS),
                                             ("three_group", ("arxiv", "books", "stackexchange"))])
def test_pruned_grid_search_keeps_the_best_mixture_at_a_fraction_of_the_steps(scenario, groups):
    ex = LocalExecutor(BackendSpec(scenario=scenario))
    full = run_method(get_method("grid_search"), prob(groups=groups), ex)
    pruned = run_method(get_method("grid_search_asha"), prob(groups=groups), ex)
    # the known best of the cover: the sweep run with the lowest final validation loss
    sweep = [r for r in full.runs if r.spec.role == "search"]
    best = min(sweep, key=lambda r: np.mean(r.val_loss)).spec.tags["mixture"]
    np.testing.assert_allclose(full.mixture, best)
    np.testing.assert_allclose(pruned.mixture, best)
    # the same mixture trained with more reporting rounds (the simulator's noise follows the round chunks)
    assert pruned.final.avg_test_ppl == pytest.approx(full.final.avg_test_ppl, rel=1e-3)
    assert pruned.extra_steps < 0.4 * full.extra_steps
    stopped = [r for r in pruned.runs if r.pruned]
    assert stopped and pruned.extra_steps == sum(r.trained_steps for r in pruned.runs if r.spec.role == "search")


def test_pruned_dml_fits_its_law_at_a_common_step_and_stays_close_to_dml():
    ex = LocalExecutor(BackendSpec())
    dml = run_method(get_method("dml", {"restarts": 3}), prob(), ex)
    pruned = run_method(get_method("dml_asha", {"restarts": 3}), prob(), ex)
    assert pruned.extra_steps < 0.7 * dml.extra_steps
    assert any(r.pruned for r in pruned.runs)
    # within 2% of the unpruned law's final model (the simulator's losses at S/3 rank mixtures like at S)
    assert pruned.final.avg_test_ppl <= dml.final.avg_test_ppl * 1.02


def test_pruned_optuna_cuts_later_batches_against_earlier_trials():
    res = run_method(get_method("optuna_asha", {"runs": 8, "batch": 2}), prob(total_steps=2000),
                     LocalExecutor(BackendSpec()))
    search = [r for r in res.runs if r.spec.role == "search"]
    assert len(search) == 8 and any(r.pruned for r in search[2:])
    assert res.extra_steps == sum(r.trained_steps for r in search) < 8 * 2000



def test_pruned_optuna_takes_the_sampler_of_its_config(monkeypatch):
    import raymix.methods.pruned as pruned

    seen, real = [], pruned.simplex_study
    monkeypatch.setattr(pruned, "simplex_study", lambda seed, runs, sampler="tpe": seen.append(sampler) or real(seed, runs))
    run_method(get_method("optuna_asha", {"runs": 2, "batch": 2, "sampler": "gp"}), prob(total_steps=500),
               LocalExecutor(BackendSpec()))
    assert seen == ["gp"]


def _search_result(name: str, p: list[float], losses: list[float], stopped_at: int | None = None) -> RunResult:
    """A sweep run's result with one round per loss in ``losses`` (its final val loss is the last one)."""
    spec = static_run(name, p, prob(total_steps=1000), steps=1000, role="search", rounds=10)
    history = [RoundReport(step=100 * (k + 1), mixture=p, train_loss=[v, v], val_loss=[v, v])
               for k, v in enumerate(losses)]
    return RunResult(spec=spec, groups=list(GROUPS), val_loss=[losses[-1]] * 2,
                     test_loss=[float("nan")] * 2 if stopped_at else [losses[-1]] * 2, history=history,
                     stopped_at=stopped_at)


def test_pruned_selection_never_takes_a_stopped_run():
    """A stopped run's last value is a partial-run loss on its round subset: it can be lower than a finished
    run's by chance and must still not be chosen (nor resumed)."""
    from raymix.methods.pruned import best_finished

    stopped = _search_result("s-00", [0.9, 0.1], [3.0, 1.0], stopped_at=200)
    good = _search_result("s-01", [0.5, 0.5], [3.0, 2.5, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0])
    bad = _search_result("s-02", [0.1, 0.9], [3.0, 2.9, 2.8, 2.7, 2.6, 2.5, 2.5, 2.5, 2.5, 2.5])
    plan = best_finished(prob(total_steps=1000), [stopped, good, bad])
    with pytest.raises(StopIteration) as done:
        next(plan)
    final = done.value.value
    assert final.tags["mixture"] == [0.5, 0.5] and final.resume_from == "s-01"
    with pytest.raises(MethodError, match="every run of the pruned sweep was stopped early"):
        next(best_finished(prob(total_steps=1000), [stopped]))


def test_optuna_is_told_the_losses_asha_saw():
    """The study minimises the finished runs' average validation loss; stopped runs are PRUNED with their
    curve as intermediate values; the rung values become the prior of later batches."""
    import optuna
    from optuna.trial import TrialState

    from raymix.methods.pruned import tell_study

    study = optuna.create_study(direction="minimize")
    trials = [study.ask() for _ in range(3)]
    results = [_search_result("o-00", [0.5, 0.5], [3.0, 2.6, 2.4]),
               _search_result("o-01", [0.2, 0.8], [3.1, 2.2, 2.1]),
               _search_result("o-02", [0.8, 0.2], [3.3], stopped_at=100)]
    prior: dict[str, list[float]] = {}
    tell_study(study, trials, results, [1, 3], prior)
    assert study.best_trial.number == trials[1].number and study.best_value == pytest.approx(2.1)
    states = [t.state for t in study.trials]
    assert states == [TrialState.COMPLETE, TrialState.COMPLETE, TrialState.PRUNED]
    assert study.trials[2].intermediate_values == {1: 3.3}
    assert study.trials[0].intermediate_values == {1: 3.0, 2: 2.6, 3: 2.4}
    assert prior == {"1": [3.0, 3.1, 3.3], "3": [2.4, 2.1]}


def test_a_scheduled_run_is_shared_only_under_the_same_schedule():
    """What a scheduled run becomes depends on the scheduler and on the other runs of its phase, so both are
    part of its identity: grid_search_asha's sweep (grace 1) is not dml_asha's (grace 3) although their
    static runs are the same specs; an independent run's identity has no schedule entry (stored results of
    earlier versions keep their identity)."""
    from raymix.methods.driver import identity_key

    problem = prob(total_steps=900)
    runs = [static_run(f"s-{i}", p, problem, steps=900, role="search", rounds=9)
            for i, p in enumerate([[0.2, 0.8], [0.5, 0.5], [0.8, 0.2]])]
    grace1 = Phase("gs-asha", runs, pruning=Pruning(grace_rounds=1, reduction_factor=3))
    again = Phase("gs-asha", list(runs), pruning=Pruning(grace_rounds=1, reduction_factor=3))
    grace3 = Phase("dml-asha", runs, pruning=Pruning(grace_rounds=3, reduction_factor=3))
    fewer = Phase("gs-asha", runs[:2], pruning=Pruning(grace_rounds=1, reduction_factor=3))
    population = Phase("pbt", runs, population=Population(interval_rounds=2))

    def keys(phase):
        return [identity_key(r) for r in phase.runs]

    assert keys(grace1) == keys(again)  # X and aioli+X still share one pruned sweep
    assert all(r.schedule.startswith("asha:") for r in grace1.runs)
    assert population.runs[0].schedule.startswith("pbt:")
    for other in (grace3, population):
        assert not set(keys(grace1)) & set(keys(other))
    assert keys(fewer)[0] != keys(grace1)[0]  # the cut at a rung compares a run with the others
    assert "schedule" not in runs[0].identity() and runs[0].schedule is None
    assert identity_key(runs[0]) not in keys(grace1)  # nor with a run trained without a scheduler


# ----------------------------------------------------------------------------------------------- PBT
def test_perturbation_stays_on_the_simplex_and_moves():
    rng = np.random.default_rng(0)
    p = np.array([0.7, 0.2, 0.1])
    for _ in range(200):
        q = perturb_mixture(p, rng, resample_probability=0.25, min_share=0.05)
        assert np.isclose(q.sum(), 1.0) and q.min() >= 0.05 - 1e-12
        assert not np.allclose(q, p)  # a common factor (undone by renormalisation) is never drawn


def _driver(p, steps=1000, rounds=10, seed=0) -> RunDriver:
    spec = static_run("m", p, prob(total_steps=steps, seed=seed), rounds=rounds, role="search")
    return RunDriver(spec, build_backend(BackendSpec(), spec))


def test_exploited_member_resumes_the_donor_exactly():
    donor = _driver([0.3, 0.7])
    for _ in range(4):
        donor.round()
    member = _driver([0.8, 0.2])
    member.round()
    state = copy.deepcopy(donor.state_dict())
    # exploit without perturbation: the member must continue exactly as the donor does
    copied = LocalExecutor(BackendSpec())._exploit(member, donor, [0.3, 0.7])
    assert copied.backend.step == donor.backend.step == 400 and len(copied.history) == 4
    while not donor.done:
        donor.round()
        copied.round()
        assert copied.history[-1].step == donor.history[-1].step
        np.testing.assert_array_equal(copied.history[-1].train_loss, donor.history[-1].train_loss)
        np.testing.assert_array_equal(copied.history[-1].val_loss, donor.history[-1].val_loss)
    np.testing.assert_array_equal(copied.final_losses()[1], donor.final_losses()[1])
    # explore: same model, optimizer, sampler and step counter, new p from the next round on
    moved = _driver([0.5, 0.5])
    moved.load_state_dict(copy.deepcopy(state), exploit=True)
    assert moved.backend.step == 400 and moved.spec.name == "m"
    moved.round()
    assert moved.history[-1].mixture == pytest.approx([0.5, 0.5]) and moved.history[-1].step == 500


def test_population_exploits_the_best_and_counts_the_population():
    p = prob(total_steps=2000)
    res = run_method(get_method("pbt", {"population": 4, "rounds": 8}), p, LocalExecutor(BackendSpec()))
    members = [r for r in res.runs if r.spec.role == "search"]
    assert len(members) == 4 and res.extra_steps == 4 * 2000
    # at least one member changed its p mid-run (it copied a better member and perturbed its p)
    assert any(np.ptp([h.mixture[0] for h in r.history]) > 0 for r in members)
    best = min(members, key=lambda r: np.mean(r.val_loss))
    assert res.final.spec.resume_from == best.spec.name and res.final.avg_test_ppl == pytest.approx(best.avg_test_ppl)
    assert Population(quantile=0.25).exploit_pairs({"a": 1.0, "b": 3.0, "c": 2.0, "d": 0.5},
                                                   np.random.default_rng(0)) == [("b", "d")]


@pytest.mark.parametrize("seed", [0, 1])
def test_pbt_finds_the_best_static_mixture_on_the_simulator(seed):
    ex = LocalExecutor(BackendSpec())
    gs = run_method(get_method("grid_search"), prob(seed=seed), ex)
    strat = run_method(get_method("stratified"), prob(seed=seed), ex)
    pbt = run_method(get_method("pbt"), prob(seed=seed), ex)  # 8 members: fewer extra steps than the 9-run grid
    assert pbt.extra_steps < gs.extra_steps
    # the best of the grid is p = (0.3, 0.7) (far from stratified); PBT closes >= 90% of the gap to it ...
    gap = strat.final.avg_test_ppl - gs.final.avg_test_ppl
    assert gap > 2 and strat.final.avg_test_ppl - pbt.final.avg_test_ppl >= 0.9 * gap
    # ... and ends on proportions near it
    assert abs(pbt.mixture[0] - gs.mixture[0]) <= 0.06


# ------------------------------------------------------------------------- decisions on the decision set
class _EvalSpy:
    """A backend that records the subset size of every validation evaluation, by the step it was taken at."""

    def __init__(self, inner) -> None:
        self._inner = inner
        self.val_calls: list[tuple[int, int | None]] = []

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def evaluate(self, split, max_examples=None):
        if split == "val":
            self.val_calls.append((int(self._inner.step), max_examples))
        return self._inner.evaluate(split, max_examples=max_examples)


def test_static_run_evaluates_decision_rounds_on_the_decision_set():
    problem = prob(total_steps=900)
    spec = static_run("r", [0.4, 0.6], problem, role="search", rounds=9, eval_examples=8, decisions=([1, 3], None))
    spy = _EvalSpy(build_backend(BackendSpec(), spec))
    RunDriver(spec, spy).run_to_end()
    # rounds 1 and 3 (steps 100, 300) on the whole cached set, the others on 8; then the final full evaluation
    assert spy.val_calls == [(100, None), (200, 8), (300, None), *[(s, 8) for s in range(400, 1000, 100)], (900, None)]
    with pytest.raises(ConfigError, match=r"decision_rounds must be rounds 1\.\.3, got \[4\]"):
        RunDriver(static_run("bad", [0.5, 0.5], problem, rounds=3, decisions=([4], None)), build_backend(BackendSpec(), spec))


@pytest.mark.parametrize("method", ["grid_search_asha", "dml_asha", "regmix_asha"])
def test_pruned_sweeps_decide_on_rungs_evaluated_on_the_whole_set(method):
    phase = next(get_method(method, {"rounds": 9}).plan(prob(total_steps=900)))
    rungs = phase.pruning.rungs(9)
    assert rungs and all(r.policy_config["decision_rounds"] == rungs and r.policy_config["decision_examples"] is None
                         and r.policy_config["eval_examples"] == 8 for r in phase.runs)
    alike = next(get_method(method, {"rounds": 9, "curve_examples": None}).plan(prob(total_steps=900)))
    assert all(r.policy_config["eval_examples"] is None and "decision_rounds" not in r.policy_config
               for r in alike.runs)


def test_successive_halving_cuts_on_the_whole_set_values(monkeypatch):
    """The in-process cut reads each rung's value from the whole-set evaluation, never the per-round subset."""
    spies: dict[str, _EvalSpy] = {}

    def build(self, spec):
        spies[spec.name] = _EvalSpy(build_backend(self.backend_spec, spec))
        return spies[spec.name]

    monkeypatch.setattr(LocalExecutor, "build_backend", build)
    problem = prob(total_steps=900)
    res = run_method(get_method("grid_search_asha", {"rounds": 9, "runs": 6}), problem, LocalExecutor(BackendSpec()))
    search = [r for r in res.runs if r.spec.role == "search"]
    assert any(r.pruned for r in search)
    for r in search:
        calls = dict(spies[r.spec.name].val_calls[: len(r.history)])
        assert [calls[s] for s in (100, 300) if s in calls] == [None] * len([s for s in (100, 300) if s in calls])
        assert all(n == 8 for s, n in calls.items() if s not in (100, 300))


@pytest.mark.parametrize("steps,rounds,every,expected", [
    (1000, 20, 2, [2, 4, 6, 8, 10, 12, 14, 16, 18]),   # 50-step rounds: every second round
    (50, 20, 2, [2, 4, 6, 8, 10, 12, 14, 16, 18]),     # 3- and 2-step rounds, interval 4 steps
    (30, 20, 2, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 14, 16, 18]),  # 2-step rounds already span the 2-step interval
    (5, 5, 4, [4]),
])
def test_pbt_exploit_rounds_follow_tunes_step_interval(steps, rounds, every, expected):
    assert Population(interval_rounds=every).exploit_rounds(steps, rounds) == expected


def test_pbt_interval_in_steps_is_the_shortest_span_of_its_rounds():
    from raymix.methods.schedules import interval_steps

    assert interval_steps(1000, 10, 2) == 200
    assert interval_steps(1009, 10, 2) == 200  # the larger rounds come first: the shortest span counts
    assert interval_steps(5, 10, 1) == 1  # rounds shorter than a step still perturb, never every 0 steps
