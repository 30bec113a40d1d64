"""What the methods' plans and policies hand on, checked field by field: PBT's population and hand-off,
its explore step, Skill-It's rounds and reports, and the configuration checks at their boundaries.

Each test here kills mutants that survived `mutmut run "raymix.methods*"` (docs/TESTING.md): behaviours no
other test pinned down, such as a plan passing its own seed, evaluation size or population settings on.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from raymix.errors import ConfigError
from raymix.methods import MixingProblem, get_method
from raymix.methods.handoff import ROUND_EVAL_EXAMPLES
from raymix.methods.policies import (
    AioliConfig,
    DoGEConfig,
    DoReMiConfig,
    SkillItConfig,
    SkillItPolicy,
    StaticConfig,
)
from raymix.methods.population import PBTConfig
from raymix.methods.runs import RoundReport, RunResult
from raymix.methods.schedules import Population, Pruning, perturb_mixture
from raymix.sim import SimBackend
from raymix.simplex import default_cover

GROUPS = ("a", "b", "c")


# ------------------------------------------------------------------------------------------- config bounds
@pytest.mark.parametrize("cls, key, good, bad", [
    (Population, "interval_rounds", 1, 0),
    (Population, "quantile", 0.5, 0.0),
    (Population, "quantile", 0.5, 0.51),
    (Population, "factors", (1e-9,), (0.0,)),
    (Population, "factors", (1.0,), ()),
    (Population, "resample_probability", 0.0, -0.01),
    (Population, "resample_probability", 1.0, 1.01),
    (PBTConfig, "population", 2, 1),
    (PBTConfig, "quantile", 0.5, 0.6),
    (SkillItConfig, "rounds", 1, 0),
    (SkillItConfig, "eta", 0.0, -0.1),
    (SkillItConfig, "window", 1, 0),
    # DoReMi's and DoGE's estimators need η (μ) > 0: the plan check refuses 0 before anything trains
    (DoReMiConfig, "eta", 1e-9, 0.0),
    (DoReMiConfig, "smoothing", 0.0, -0.01),
    (DoReMiConfig, "smoothing", 1.0, 1.01),
    (DoReMiConfig, "rounds", 1, 0),
    (DoGEConfig, "eta", 1e-9, 0.0),
    (DoGEConfig, "val_fraction", 0.01, 0.0),
    (DoGEConfig, "val_fraction", 0.99, 1.0),
    (DoGEConfig, "rounds", 1, 0),
    (Pruning, "grace_rounds", 1, 0),
    (Pruning, "reduction_factor", 1.01, 1.0),
    (AioliConfig, "rounds", 1, 0),
    (AioliConfig, "sweeps", 1, 0),
    (AioliConfig, "delta", 0.001, 0.0),
    (AioliConfig, "delta", 0.999, 1.0),
    (AioliConfig, "eps", 0.0, -0.01),
    (AioliConfig, "eps", 0.99, 1.0),
    (AioliConfig, "eta", 0.0, -0.01),
    (AioliConfig, "ema", 0.0, -0.01),
    (AioliConfig, "ema", 0.99, 1.0),
    (AioliConfig, "normalization", "abs_sum", "l2"),
    (AioliConfig, "segment_order", "permutations", "sorted"),
    (AioliConfig, "eval_examples", 1, 0),
    (AioliConfig, "init_steps", 0, -1),
    (AioliConfig, "start", "p_init", "p_method"),
    (StaticConfig, "rounds", 1, 0),
    (StaticConfig, "decision_rounds", [1, 10], [11]),  # rounds = 10 by default
    (StaticConfig, "eval_examples", 1, 0),
    (StaticConfig, "decision_examples", 1, 0),
])
def test_configs_take_the_boundary_and_refuse_the_next_value(cls, key, good, bad):
    assert getattr(cls(**{key: good}), key) == good
    with pytest.raises(ConfigError, match=rf"{key}\b.*{re.escape(repr(bad)) if bad != () else ''}"):
        cls(**{key: bad})


def test_aioli_takes_the_tables_values_of_its_setting():
    # Tables 13–18 differ by setting only for m = 7 (η 0.2 restricted, 0.3 unrestricted; γ = 0.1 in both)
    from raymix.methods.handoff import aioli_config

    groups = tuple(f"g{i}" for i in range(7))
    restricted = aioli_config(MixingProblem(groups=groups, total_steps=40000, setting="restricted"))
    unrestricted = aioli_config(MixingProblem(groups=groups, total_steps=40000))
    assert (restricted.eta, restricted.ema) == (0.2, 0.1)
    assert (unrestricted.eta, unrestricted.ema) == (0.3, 0.1)


def test_pbt_interval_must_leave_a_round_to_act_on():
    assert PBTConfig(rounds=2, interval_rounds=1).rounds == 2
    with pytest.raises(ConfigError, match=r"rounds must be >= 2 .*got 1"):
        PBTConfig(rounds=1, interval_rounds=0)
    assert PBTConfig(rounds=3, interval_rounds=2).interval_rounds == 2
    with pytest.raises(ConfigError, match=r"interval_rounds \(3\) must be < rounds \(3\)"):
        PBTConfig(rounds=3, interval_rounds=3)


# ------------------------------------------------------------------------------------------ PBT's explore
def test_explore_multiplies_each_share_by_one_of_the_factors():
    rng = np.random.default_rng(0)
    p = np.array([0.2, 0.3, 0.5])
    for _ in range(50):
        q = Population(factors=(1.0, 4.0), resample_probability=0.0, min_share=0.0).explore(p, rng)
        ratio = q / p
        # two distinct ratios (never one: a common factor would be undone), exactly 4 apart
        levels = np.unique(np.round(ratio / ratio.min(), 9))
        np.testing.assert_allclose(levels, [1.0, 4.0])
        assert q.sum() == pytest.approx(1.0)


def test_explore_resamples_with_its_probability_and_floors_every_share():
    rng = np.random.default_rng(1)
    p = np.array([0.2, 0.3, 0.5])
    always = [Population(factors=(1.0, 4.0), resample_probability=1.0, min_share=0.0).explore(p, rng)
              for _ in range(20)]
    # a Dirichlet(1) draw is not p scaled by two levels
    assert all(np.unique(np.round(q / p / (q / p).min(), 6)).size == 3 for q in always)
    floored = Population(factors=(1e-6, 1.0), resample_probability=0.0, min_share=0.2).explore(p, rng)
    assert floored.min() == pytest.approx(0.2) and floored.sum() == pytest.approx(1.0)
    # one factor: nothing to perturb with, p comes back (no attempt to find a different factor)
    np.testing.assert_allclose(perturb_mixture(p, rng, factors=(1.0,), resample_probability=0.0), p)


def test_perturb_defaults_are_the_pbt_defaults():
    import inspect

    params = inspect.signature(perturb_mixture).parameters
    cfg = PBTConfig()
    for key in ("factors", "resample_probability", "min_share"):
        assert params[key].default == getattr(cfg, key), key


def test_exploit_pairs_take_the_quantile_of_the_population_at_most_half():
    rng = np.random.default_rng(0)
    scores = {f"m{i}": float(i) for i in range(5)}  # m0 best … m4 worst
    pairs = Population(quantile=0.5).exploit_pairs(scores, rng)
    assert sorted(b for b, _ in pairs) == ["m3", "m4"] and {t for _, t in pairs} <= {"m0", "m1"}
    assert len(Population(quantile=0.25).exploit_pairs({f"m{i}": float(i) for i in range(4)}, rng)) == 1


# --------------------------------------------------------------------------------------------- PBT's plan
def _report(step: int, p) -> RoundReport:
    return RoundReport(step=step, mixture=[float(x) for x in p], train_loss=[1.0] * len(p), val_loss=[1.0] * len(p))


def _finished(spec, val: float, last_p=None) -> RunResult:
    p = spec.tags["mixture"]
    hist = [_report(spec.steps // 2, p), _report(spec.steps, p if last_p is None else last_p)]
    return RunResult(spec=spec, groups=GROUPS, val_loss=[val] * 3, test_loss=[val] * 3, history=hist)


def test_pbt_plan_hands_its_settings_to_the_population_and_runs():
    cfg = {"population": 4, "rounds": 20, "interval_rounds": 10, "quantile": 0.5, "factors": (0.5, 2.0),
           "resample_probability": 0.1, "min_share": 0.05, "eval_examples": 5}
    problem = MixingProblem(groups=GROUPS, total_steps=100, seed=7, setting="restricted")
    phase = next(get_method("pbt", cfg).plan(problem))
    assert phase.name == "pbt" and [r.steps for r in phase.runs] == [5] * 4  # S/20 in the restricted setting
    np.testing.assert_allclose([r.tags["mixture"] for r in phase.runs], default_cover(3, 4, seed=7))
    pop = phase.population
    # rounds are capped by the 5 steps; the interval by the rounds − 1 that leave a round to act on
    assert pop.interval_rounds == 4
    # the exploit round is evaluated on eval_examples (the decision), the others on the per-round subset
    assert all((r.policy_config["decision_rounds"], r.policy_config["decision_examples"],
                r.policy_config["eval_examples"]) == ([4], 5, ROUND_EVAL_EXAMPLES) for r in phase.runs)
    alike = next(get_method("pbt", {**cfg, "curve_examples": 5}).plan(problem))
    assert all(r.policy_config["eval_examples"] == 5 and "decision_rounds" not in r.policy_config
               for r in alike.runs)
    assert (pop.quantile, tuple(pop.factors), pop.resample_probability, pop.min_share, pop.seed) == \
        (0.5, (0.5, 2.0), 0.1, 0.05, 7)
    other = next(get_method("pbt", cfg).plan(MixingProblem(groups=GROUPS, total_steps=100, seed=8,
                                                           setting="restricted")))
    assert not np.allclose([r.tags["mixture"] for r in other.runs], [r.tags["mixture"] for r in phase.runs])
    tiny = next(get_method("pbt", {"population": 2}).plan(MixingProblem(groups=GROUPS, total_steps=10, seed=0,
                                                                         setting="restricted")))
    assert [r.steps for r in tiny.runs] == [1, 1] and tiny.population.interval_rounds == 1
    big = next(get_method("pbt", {"population": 2}).plan(MixingProblem(groups=GROUPS, total_steps=1000, seed=0,
                                                                        setting="restricted")))
    assert [r.steps for r in big.runs] == [50, 50]


def test_aioli_plus_pbt_starts_from_the_best_members_last_mixture():
    problem = MixingProblem(groups=GROUPS, total_steps=1000, seed=0, setting="restricted", with_aioli=True)
    plan = get_method("pbt", {"population": 3}).plan(problem)
    phase = next(plan)
    last = [0.6, 0.3, 0.1]  # the best member was exploited: its last p is not the p it started on
    results = [_finished(s, v, last if v == 1.0 else None) for s, v in zip(phase.runs, (3.0, 1.0, 2.0))]
    truncated = plan.send(results)
    # no run trained on p_last: Aioli+PBT first trains a truncated trial there, as long as the members ran
    assert truncated.name == "truncated" and truncated.runs[0].steps == phase.runs[1].steps == 50
    np.testing.assert_allclose(truncated.runs[0].tags["mixture"], last)


# ------------------------------------------------------------------------------------- Skill-It's rounds
class _Spy:
    """A backend wrapper recording every evaluate() and train() call and what it returned."""

    def __init__(self, inner: SimBackend) -> None:
        self.inner, self.evals, self.trains = inner, [], []

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def evaluate(self, split="val", *, max_examples=None):
        out = self.inner.evaluate(split, max_examples=max_examples)
        self.evals.append((split, max_examples, out))
        return out

    def train(self, steps, mixture=None, *, counts=None):
        stats = self.inner.train(steps, mixture, counts=counts)
        self.trains.append((steps, np.asarray(mixture), stats))
        return stats


def test_skill_it_rounds_start_where_the_run_is_and_report_their_signal():
    sim = SimBackend.from_preset("three_group", total_steps=1000)
    sim.train(100, mixture=np.full(3, 1 / 3))  # the policy takes over a run at step 100 (a resumed trial)
    graph = np.array([[1.0, 0.2, 0.0], [0.0, 1.0, 0.3], [0.1, 0.0, 1.0]])
    policy = SkillItPolicy(SkillItConfig(graph=graph.tolist(), rounds=4, eta=0.2, window=3, eval_examples=5),
                           sim.groups, 1000)
    spy = _Spy(sim)
    reports = []
    while sim.step < 1000:
        reports.append(policy.run_round(spy))
    assert [r.step for r in reports] == [325, 550, 775, 1000] and policy.round == 4
    assert [(s, n) for s, n, _ in spy.evals] == [("val", 5)] * 4
    for r, (_, _, val), (_, p, stats) in zip(reports, spy.evals, spy.trains, strict=True):
        np.testing.assert_allclose(r.val_loss, val)
        np.testing.assert_allclose(r.mixture, p)
        np.testing.assert_allclose(r.train_loss, stats.group_train_loss)
        np.testing.assert_allclose(r.interactions, graph * np.asarray(val)[:, None])  # A^t = L^t_i·A^SG_ij
    assert policy.summary()["mixture"] == reports[-1].mixture
    np.testing.assert_allclose(policy.summary()["average_mixture"], np.mean([r.mixture for r in reports], axis=0))


@pytest.mark.parametrize("name", ["grid_search", "grid_search_asha", "dml", "dml_asha", "regmix", "regmix_asha"])
def test_sweeps_plan_as_many_runs_as_configured(name):
    # (mutation testing: the cover's size dropped, i.e. the default 10 whatever `runs` says, survived)
    phase = next(get_method(name, {"runs": 6}).plan(MixingProblem(groups=GROUPS, total_steps=100, seed=0)))
    assert len(phase.runs) == 6 and len({tuple(r.tags["mixture"]) for r in phase.runs}) == 6


@pytest.mark.parametrize("key, good, bad", [("min_share", 0.0, -0.01), ("min_share", 0.49, 0.5)])
def test_population_min_share_bounds(key, good, bad):
    assert getattr(Population(**{key: good}), key) == good
    with pytest.raises(ConfigError, match=rf"^{key}\b.*{re.escape(repr(bad))}"):
        Population(**{key: bad})


@pytest.mark.parametrize("change", [{"interval_rounds": 0}, {"factors": (0.0,)}, {"resample_probability": 1.5},
                                    {"min_share": 0.5}])
def test_pbt_config_checks_its_population_settings(change):
    with pytest.raises(ConfigError, match=next(iter(change))):
        PBTConfig(rounds=4, **change)


class _Member:
    """A stand-in RunDriver: ``rounds`` rounds, each reporting its p and a fixed validation loss."""

    def __init__(self, name: str, loss: float, p, rounds: int) -> None:
        self.name, self.loss, self.p, self.total, self.history = name, loss, list(p), rounds, []
        self.schedule: list[list[float]] | None = None

    @property
    def done(self) -> bool:
        return len(self.history) >= self.total

    def round(self) -> None:
        p = self.schedule[len(self.history) % 2] if self.schedule else self.p
        self.history.append(RoundReport(step=len(self.history) + 1, mixture=list(p), train_loss=[0.0],
                                        val_loss=[self.loss]))


@pytest.mark.parametrize("max_rounds", [5, 6])
def test_run_population_exploits_between_intervals_from_the_donors_last_p(max_rounds):
    """Exploit every ``interval_rounds`` rounds until ``max_rounds`` rounds are done, never after them (the
    members here could train longer: the round budget alone must stop the exploits)."""
    from raymix.methods.schedules import run_population

    events = []

    def exploit(member, donor, p):
        assert donor.history[-1].mixture != donor.history[-2].mixture
        events.append((member.name, donor.name, len(donor.history), p, donor.history[-1].mixture))
        new = _Member(member.name, member.loss, p, member.total)
        new.history = list(member.history)
        return new

    members = {f"m{i}": _Member(f"m{i}", float(i), np.eye(3)[i % 3], 8) for i in range(4)}
    # the donor reports a different p every round (as a member exploited itself would): explore from its last
    members["m0"].schedule = [[0.5, 0.3, 0.2], [0.2, 0.3, 0.5]]
    members["m0"].history.append(RoundReport(step=0, mixture=[1.0, 0.0, 0.0], train_loss=[0.0], val_loss=[0.0]))
    members["m0"].total = 9
    pop = Population(interval_rounds=2, quantile=0.25, factors=(1.0,), resample_probability=0.0, min_share=0.0)
    out = run_population(members, pop, max_rounds=max_rounds, exploit=exploit)
    # exploit after rounds 2 and 4, not once the budget is reached; the worst member (m3) copies the best (m0)
    assert [(m, d, n) for m, d, n, *_ in events] == [("m3", "m0", 3), ("m3", "m0", 5)]
    for *_, p, last in events:
        np.testing.assert_allclose(p, last)  # one factor, no resampling, no floor: explore returns its input
    assert all(r.done for r in out.values()) and out["m3"].p == events[-1][3]


def test_run_population_exploits_after_the_rounds_it_is_given():
    """The driver passes Tune's exploit rounds (``Population.exploit_rounds``): they replace the interval rule,
    in order and once each, and a round at or past the budget is never an exploit point."""
    from raymix.methods.schedules import run_population

    after: list[int] = []

    def exploit(member, donor, p):
        after.append(len(donor.history))
        new = _Member(member.name, member.loss, p, member.total)
        new.history = list(member.history)
        return new

    # members that could train 8 rounds: the budget of 6 alone must stop the exploits
    members = {f"m{i}": _Member(f"m{i}", float(i), np.eye(3)[i % 3], 8) for i in range(4)}
    pop = Population(interval_rounds=2, quantile=0.25, factors=(1.0,), resample_probability=0.0, min_share=0.0)
    out = run_population(members, pop, max_rounds=6, exploit=exploit, exploit_at=[3, 1, 3, 6, 9])
    assert after == [1, 3]  # not 2 and 4 (the interval rule), nor 6 and 9 (the budget)
    assert all(len(r.history) == 8 for r in out.values())  # then every member trains to its end


def test_stick_breaking_clips_u_into_the_unit_cube():
    from raymix.methods.optuna_search import stick_breaking

    np.testing.assert_allclose(stick_breaking([0.5]), [0.5, 0.5])
    np.testing.assert_allclose(stick_breaking([1.7]), [1.0, 0.0])
    np.testing.assert_allclose(stick_breaking([-0.4]), [0.0, 1.0])
    np.testing.assert_allclose(stick_breaking([1.0, 0.3]), [1.0, 0.0, 0.0])
    np.testing.assert_allclose(stick_breaking([1.7, 0.3]), [1.0, 0.0, 0.0])  # unclipped: a NaN break


def test_aioli_state_keeps_the_column_sums_of_past_rounds():
    # (mutation testing: the diagnostics' key renamed in state_dict or load_state_dict survived; a resumed
    # run then reported sign agreement over its own rounds only)
    import copy

    from raymix.methods.policies import AioliConfig, AioliPolicy

    sim = SimBackend.from_preset("three_group", total_steps=600)
    cfg = AioliConfig(rounds=6, sweeps=2, delta=0.288)
    policy = AioliPolicy(cfg, sim.groups, 600, seed=0)
    for _ in range(2):
        policy.run_round(sim)
    resumed = AioliPolicy(cfg, sim.groups, 600, seed=1)
    resumed.load_state_dict(copy.deepcopy(policy.state_dict()))
    assert len(policy.colsums) == 2 and resumed.colsums == policy.colsums
    assert resumed.summary() == policy.summary()


def test_aioli_state_without_diagnostics_loads():
    # a checkpoint written before the diagnostics existed has no "colsums": it loads with none recorded
    import copy

    from raymix.methods.policies import AioliConfig, AioliPolicy

    sim = SimBackend.from_preset("three_group", total_steps=600)
    policy = AioliPolicy(AioliConfig(rounds=6, sweeps=2, delta=0.288), sim.groups, 600, seed=0)
    policy.run_round(sim)
    old = copy.deepcopy(policy.state_dict())
    del old["colsums"]
    fresh = AioliPolicy(AioliConfig(rounds=6, sweeps=2, delta=0.288), sim.groups, 600, seed=0)
    fresh.load_state_dict(old)
    assert fresh.colsums == [] and fresh.round == 1


def test_aioli_warns_once_with_the_range_p_can_reach():
    import warnings

    from raymix.errors import RaymixWarning
    from raymix.estimators.normalization import reachable_range
    from raymix.methods.policies import AioliConfig, AioliPolicy

    def run(**cfg) -> list[str]:
        sim = SimBackend.from_preset("three_group", total_steps=600)
        policy = AioliPolicy(AioliConfig(rounds=6, sweeps=2, delta=0.288, **cfg), sim.groups, 600, seed=0)
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            policy.run_round(sim)
            policy.run_round(sim)
        return [str(w.message) for w in seen if issubclass(w.category, RaymixWarning) and "reach" in str(w.message)]

    (msg,) = run(ema=0.1, eta=0.3)  # once, not every round
    lo, hi = reachable_range(np.full(3, 1 / 3), 0.3, "shift_sum", gamma=0.1)
    assert f"[{np.round(lo, 3).tolist()}, {np.round(hi, 3).tolist()}]" in msg and "e^η = 1.350" in msg
    assert msg.endswith("use ema=None or another normalization for a wider range")
    assert run(ema=0.1, eta=0.3, normalization="abs_sum") == [] and run(eta=0.3) == []


@pytest.mark.parametrize("p, expected", [
    ([0.02, 0.03, 0.95], [0.1, 0.1, 0.8]),                    # two groups lifted to the floor at once
    ([0.02, 0.105, 0.875], [0.1, 0.1, 0.8]),                  # lifting one pushes a second under: both floored
    ([0.02, 0.18, 0.80], [0.1, 0.18 / 0.98 * 0.9, 0.8 / 0.98 * 0.9]),  # the rest share 1 − floor pro rata
])
def test_explore_floor_is_water_filling(p, expected):
    q = perturb_mixture(np.array(p), np.random.default_rng(0), factors=(1.0,), resample_probability=0.0,
                        min_share=0.1)
    np.testing.assert_allclose(q, expected, atol=1e-12)


def test_explore_floors_the_renormalised_mixture():
    # a common factor of 2 is undone by the renormalisation, so the floor sees p itself: 0.06 < 0.1 is lifted
    q = perturb_mixture(np.array([0.06, 0.47, 0.47]), np.random.default_rng(0), factors=(2.0,),
                        resample_probability=0.0, min_share=0.1)
    np.testing.assert_allclose(q, [0.1, 0.45, 0.45], atol=1e-12)


def test_optuna_search_plans_its_runs_in_batches_of_the_configured_length():
    from raymix.methods.base import run_method
    from raymix.methods.driver import BackendSpec, LocalExecutor

    for name, prefix in (("optuna", "optuna-"), ("optuna_asha", "optuna-asha-")):
        seen: list = []

        class Recording(LocalExecutor):
            def run_phase(self, phase, problem, seen=seen):
                seen.append(phase)
                return super().run_phase(phase, problem)

        ex = Recording(BackendSpec(kind="sim", scenario="three_group"))
        problem = MixingProblem(groups=("arxiv", "books", "stackexchange"), total_steps=200, seed=0)
        run_method(get_method(name, {"runs": 5, "batch": 2, "steps": 7}), problem, ex)
        sweeps = [ph for ph in seen if ph.name.startswith(prefix)]
        assert [len(ph.runs) for ph in sweeps] == [2, 2, 1], name  # 5 trials: the last batch holds one
        assert [ph.name for ph in sweeps] == [f"{prefix}00", f"{prefix}01", f"{prefix}02"]
        assert all(r.steps == 7 for ph in sweeps for r in ph.runs)
        # one trial per batch: one phase per trial, each its own name (a phase name is a Tune experiment name)
        seen.clear()
        run_method(get_method(name, {"runs": 3, "batch": 1, "steps": 7}), problem, ex)
        assert [ph.name for ph in seen if ph.name.startswith(prefix)] == [f"{prefix}00", f"{prefix}01", f"{prefix}02"]


@pytest.mark.parametrize("runs,fits", [(3, False), (4, True)])
def test_regmix_fits_from_four_sweep_runs_and_refuses_fewer(runs, fits):
    from raymix.errors import MethodError
    from raymix.methods.base import run_method
    from raymix.methods.driver import BackendSpec, LocalExecutor

    problem = MixingProblem(groups=("arxiv", "books", "stackexchange"), total_steps=200, seed=0)
    ex = LocalExecutor(BackendSpec(kind="sim", scenario="three_group"))
    method = get_method("regmix", {"runs": runs, "steps": 7})
    if fits:
        assert run_method(method, problem, ex).final.spec.role == "final"
    else:
        with pytest.raises(MethodError, match="at least 4 sweep runs to fit a regressor, got 3"):
            run_method(method, problem, ex)


@pytest.mark.parametrize("sampler", ["tpe", "gp"])
def test_optuna_samplers_are_seeded_by_the_problem(sampler):
    pytest.importorskip("optuna")
    from raymix.methods.optuna_search import simplex_study

    def first_trials(seed):
        study = simplex_study(seed, 6, sampler)
        out = []
        for _ in range(3):
            t = study.ask()
            out.append(t.suggest_float("u0", 0.0, 1.0))
            study.tell(t, out[-1])
        return out, type(study.sampler).__name__, study.direction.name

    a, kind, direction = first_trials(1)
    assert a == first_trials(1)[0] and a != first_trials(2)[0]
    assert kind == {"tpe": "TPESampler", "gp": "GPSampler"}[sampler] and direction == "MINIMIZE"
