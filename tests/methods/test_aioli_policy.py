"""Aioli as a policy (Algorithm 1): gains on the simulator, ablations, S_init/p_init, schedule errors."""

from __future__ import annotations

import numpy as np
import pytest

from raymix.errors import ConfigError
from raymix.estimators import colsum_sign_agreement
from raymix.methods import MixingProblem, get_method, run_method
from raymix.methods.driver import BackendSpec, LocalExecutor, RunDriver, build_backend
from raymix.methods.policies import START_FLOOR, AioliConfig, AioliPolicy, aioli_schedule
from raymix.methods.runs import RunSpec
from raymix.sim import LinearDynamicSimulator, SimBackend


def avg_ppl(name: str, seeds=(0, 1, 2), **cfg) -> float:
    out = []
    for s in seeds:
        prob = MixingProblem(groups=("github", "c4"), total_steps=5000, seed=s)
        out.append(run_method(get_method(name, **cfg), prob, LocalExecutor(BackendSpec())).final.avg_test_ppl)
    return float(np.mean(out))


def test_aioli_beats_stratified_and_its_diagonal_ablation_on_interacting_groups():
    strat, aioli, diag = avg_ppl("stratified"), avg_ppl("aioli"), avg_ppl("aioli_diagonal")
    assert aioli < strat - 0.1
    # the scenario's full A favours C4 while its diagonal favours GitHub (paper eq. 12)
    assert diag > aioli + 0.1


def _aioli_driver(cfg: dict, steps=2000, handoff=None) -> RunDriver:
    spec = RunSpec(name="a", policy="aioli", policy_config=cfg, steps=steps, total_steps=steps)
    return RunDriver(spec, build_backend(BackendSpec(), spec), handoff_state=handoff)


def test_init_phase_trains_p_init_then_dynamic_phase_starts_uniform():
    d = _aioli_driver({"rounds": 4, "init_steps": 500, "init_mixture": [0.2, 0.8], "eta": 0.0})
    first = d.round()
    assert first.info["phase"] == "init" and first.step == 500 and first.mixture == pytest.approx([0.2, 0.8])
    # eta = 0: EGD keeps p^t = p^0 = Unif(m) (Algorithm 1, line 3), not p_init
    assert d.round().mixture == pytest.approx([0.5, 0.5])


def test_start_p_init_floors_p_init_away_from_the_faces():
    f = START_FLOOR
    d = _aioli_driver({"rounds": 4, "init_steps": 500, "init_mixture": [0.2, 0.8], "eta": 0.0, "start": "p_init"})
    d.round()
    assert d.round().mixture == pytest.approx([(1 - f) * 0.2 + f / 2, (1 - f) * 0.8 + f / 2])
    # A p_method on a vertex (DML's m = 2 closed form) keeps f/m for the starved group, so EGD can move it.
    d = _aioli_driver({"rounds": 4, "init_steps": 500, "init_mixture": [0.0, 1.0], "eta": 0.3, "start": "p_init"})
    d.round()
    mixes = [d.round().mixture for _ in range(4)]
    assert min(p[0] for p in mixes) > 0 and max(p[0] for p in mixes) > f / 2 + 1e-3
    with pytest.raises(ConfigError, match="start"):
        get_method("aioli", start="p_method")


def test_schedule_has_equal_segments_and_gives_the_remainder_to_the_mixture_phase():
    # The demo's shape: m = 3, k = 2 (K = 6), δ·(round length) = 17 steps → 6 segments of 2, 5 steps to p^t.
    cfg = AioliConfig(rounds=10, sweeps=2, delta=0.288)
    plans = aioli_schedule(cfg, 3, 10, 600)
    assert [p.start for p in plans[1:]] == [p.end for p in plans[:-1]] and plans[0].start == 10
    assert plans[-1].end == 600
    for p in plans:
        assert p.segments == 6 and p.segment_steps == round(0.288 * p.length) // 6
        assert p.learn_steps + p.mixture_steps == p.length and p.mixture_steps > (1 - 0.288) * p.length
    assert plans[0].length == 59 and plans[0].segment_steps == 2


class _Recording(SimBackend):
    """A SimBackend that records the length of every fixed-counts (LearnParams segment) call of train()."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.segments: list[int] = []

    def train(self, steps, mixture=None, *, counts=None):
        if counts is not None:
            self.segments.append(int(steps))
        return super().train(steps, mixture, counts=counts)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_learnparams_estimate_is_unbiased_for_a_symmetric_A_star(seed):
    # Exchangeable groups (symmetric A*, equal losses), constant lr, no noise: the true column sums are equal,
    # so Â's must be too.  A round of 59 steps with δ = 0.288 gives 17 LearnParams steps for K = 6 segments;
    # cut as [3, 3, 3, 3, 3, 2] the last segment's group had its drops under-counted by a third.
    A0 = np.full((3, 3), 0.5) + 1.5 * np.eye(3)
    sim = LinearDynamicSimulator(A0, L0=np.full(3, 4.0), floor=np.full(3, 1.0), total_steps=5900,
                                 min_lr_ratio=1.0, forget=0.0)
    backend = _Recording(sim, eval_noise=0.0, seed=seed)
    policy = AioliPolicy(AioliConfig(rounds=1, sweeps=2, delta=0.288), backend.groups, 59, seed=seed)
    report = policy.run_round(backend)
    assert backend.segments == [2] * 6 and backend.step == 59
    colsums = np.asarray(report.interactions).sum(axis=0)
    assert np.ptp(colsums) < 0.01 * colsums.mean(), colsums


def test_handoff_continues_step_counter_and_skips_init():
    short = RunSpec(name="s", policy="static", policy_config={"mixture": [0.3, 0.7], "rounds": 1}, steps=250,
                    total_steps=2000)
    ds = RunDriver(short, build_backend(BackendSpec(), short))
    ds.run_to_end()
    state = {"backend": ds.backend.state_dict()}
    d = _aioli_driver({"rounds": 4, "init_steps": 250, "init_mixture": [0.3, 0.7]}, handoff=state)
    assert d.backend.step == 250
    rep = d.round()
    assert rep.info["phase"] == "dynamic" and rep.step > 250


def test_too_short_rounds_raise_a_clear_error():
    d = _aioli_driver({"rounds": 20, "sweeps": 4, "delta": 0.128}, steps=300)
    with pytest.raises(ConfigError, match="segments"):
        d.round()


def test_aioli_rejects_bad_fields():
    with pytest.raises(ConfigError):
        get_method("aioli", eta=-1)
    with pytest.raises(ConfigError, match="no field"):
        get_method("aioli", etaa=0.2)


def test_round_reports_carry_sign_agreement_and_the_reachable_range_of_p():
    d = _aioli_driver({"rounds": 4, "ema": 0.5, "eta": 0.2})
    with pytest.warns(UserWarning, match="can only reach"):
        reps = [d.round() for _ in range(4)]
    colsums = np.array([r.info["colsums"] for r in reps])
    np.testing.assert_allclose(colsums.sum(axis=1), 1.0)  # shift_sum: Ā^t's entries sum to 1
    np.testing.assert_allclose(reps[-1].info["sign_agreement"], colsum_sign_agreement(colsums))
    # EMA + shift_sum, m = 2, η = 0.2: p can never leave [0.4502, 0.5498] (ALGORITHMS.md)
    bound = reps[0].info["p_bound"]
    np.testing.assert_allclose(bound["lo"], [0.4502, 0.4502], atol=1e-4)
    np.testing.assert_allclose(bound["hi"], [0.5498, 0.5498], atol=1e-4)
    summary = d.policy.summary()
    assert summary["sign_agreement"] == reps[-1].info["sign_agreement"] and summary["p_bound"] == bound
