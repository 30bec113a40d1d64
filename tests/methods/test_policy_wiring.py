"""What each online policy hands its estimator, and what its round reports carry.

The methods' quality tests (test_choosing_well.py, test_conformance_sim.py) run the policies at their default
settings, where a setting the policy forgot to forward (Aioli's EMA γ, its normalisation, LearnParams's
evaluation subset and segment order, DoReMi's η and smoothing, DoGE's η, Skill-It's window) changes nothing.
`mutmut run "raymix.methods.policies*"` (docs/TESTING.md) showed each of these, and the round reports that
Fig. 3, Fig. 6 and the resume logic read (steps, losses, A^t, EGD's column sums, the proxy's averaged weights),
could be dropped without a test noticing.  Each test below runs a policy at non-default settings on the
simulator and compares it with its estimator driven by hand, or checks a report field against its definition.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from raymix.errors import RaymixWarning
from raymix.estimators.aioli import AioliUpdater
from raymix.estimators.doremi import DoReMiWeights
from raymix.estimators.normalization import normalize, reachable_range
from raymix.estimators.skill_it import SkillItUpdater
from raymix.methods.policies import (
    AioliConfig,
    AioliPolicy,
    DoGEConfig,
    DoGEPolicy,
    DoReMiConfig,
    DoReMiPolicy,
    SkillItConfig,
    SkillItPolicy,
    StaticConfig,
    StaticPolicy,
    aioli_schedule,
)
from raymix.sim import SimBackend


class SpyBackend(SimBackend):
    """The simulator, recording the calls a policy makes (evaluation sizes, training counts/mixtures)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.evals: list[tuple[str, int | None]] = []
        self.trains: list[tuple[int, str, list[float]]] = []  # (steps, "counts" | "mixture", values)
        self.proxy_calls: list[dict] = []

    @classmethod
    def preset(cls, name: str, steps: int, seed: int = 0) -> SpyBackend:
        base = SimBackend.from_preset(name, seed, total_steps=steps)
        return cls(base.sim, groups=base.groups, batch_size=base.batch_size, eval_noise=base.eval_noise, seed=seed)

    def evaluate(self, split: str = "val", *, max_examples: int | None = None) -> np.ndarray:
        self.evals.append((split, max_examples))
        return super().evaluate(split, max_examples=max_examples)

    def train(self, steps, mixture=None, *, counts=None):
        kind, values = ("counts", counts) if counts is not None else ("mixture", mixture)
        self.trains.append((int(steps), kind, np.asarray(values, dtype=float).tolist()))
        return super().train(steps, mixture, counts=counts)

    def proxy_train(self, steps, rule, **kwargs):
        self.proxy_calls.append({"steps": int(steps), **kwargs})
        return super().proxy_train(steps, rule, **kwargs)


def _finite(x, m: int) -> bool:
    return x is not None and len(x) == m and bool(np.isfinite(x).all())


# ------------------------------------------------------------------------------------------------- Aioli
@pytest.mark.parametrize("ema, normalization", [(None, "abs_sum"), (0.5, "frobenius"), (0.3, "shift_sum")])
def test_aioli_moves_p_exactly_as_its_updater_does_with_the_configured_ema_and_normalisation(ema, normalization):
    cfg = AioliConfig(rounds=4, sweeps=2, delta=0.3, eta=0.4, ema=ema, normalization=normalization)
    policy = AioliPolicy(cfg, ("github", "c4"), stop_step=2000, seed=3)
    backend = SpyBackend.preset("two_group_interacting", 2000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RaymixWarning)  # EMA + shift_sum warns of its bound (tested below)
        reports = [policy.run_round(backend) for _ in range(4)]
    # the same A^t through a hand-built updater with the configured γ, normalisation and η
    ref = AioliUpdater(np.full(2, 0.5), 0.4, gamma=ema, normalization=normalization)
    for r in reports:
        A = np.asarray(r.interactions)
        np.testing.assert_allclose(r.mixture, ref.update(A), rtol=1e-12)
        np.testing.assert_allclose(r.info["colsums"], normalize(A, normalization).sum(axis=0), rtol=1e-12)
    # the reachable range of p is that of this η, normalisation, EMA and number of rounds
    lo, hi = reachable_range(np.full(2, 0.5), 0.4, normalization, gamma=ema, rounds=4)
    assert reports[0].info["p_bound"] == {"lo": lo.tolist(), "hi": hi.tolist()}
    assert policy.summary()["p_bound"] == reports[0].info["p_bound"]


def test_aioli_ema_warning_quotes_the_range_the_round_reports():
    policy = AioliPolicy(AioliConfig(rounds=4, sweeps=2, delta=0.3, eta=0.7, ema=0.5), ("github", "c4"), 2000)
    backend = SpyBackend.preset("two_group_interacting", 2000)
    with pytest.warns(UserWarning, match="can only reach") as record:
        report = policy.run_round(backend)
        policy.run_round(backend)
    assert len(record) == 1  # once per run, not per round
    lo, hi = report.info["p_bound"]["lo"], report.info["p_bound"]["hi"]
    assert f"[{np.round(lo, 3).tolist()}, {np.round(hi, 3).tolist()}]" in str(record[0].message)
    assert f"e^η = {np.exp(0.7):.3f}" in str(record[0].message)


def test_aioli_learnparams_evaluates_the_configured_subset_in_the_configured_segment_order():
    m, k = 3, 3
    groups = ("arxiv", "books", "stackexchange")
    for order in ("permutations", "shuffle"):
        cfg = AioliConfig(rounds=2, sweeps=k, delta=0.45, eta=0.2, eval_examples=5, segment_order=order)
        backend = SpyBackend.preset("three_group", 1000)
        AioliPolicy(cfg, groups, stop_step=1000, seed=0).run_round(backend)
        # K + 1 = m·k + 1 evaluations of the validation split, each on the configured 5 examples per group
        assert backend.evals == [("val", 5)] * (m * k + 1)
        plan = aioli_schedule(cfg, m, 0, 1000)[0]
        segments = [t for t in backend.trains if t[1] == "counts"]
        assert [t[0] for t in segments] == [plan.segment_steps] * (m * k)
        # each segment trains the smoothed one-hot of one group: its largest count names the group
        visited = [int(np.argmax(t[2])) for t in segments]
        assert sorted(visited) == sorted(list(range(m)) * k)
        blocks = [sorted(visited[i:i + m]) for i in range(0, m * k, m)]
        if order == "permutations":  # the authors' order: every block of m visits each group once
            assert blocks == [list(range(m))] * k
        else:  # Algorithm 2's shuffle over all K segments (seed 0 gives a block that repeats a group)
            assert blocks != [list(range(m))] * k


def test_aioli_reports_what_each_round_trained_and_measured():
    cfg = AioliConfig(rounds=3, sweeps=2, delta=0.3, eta=0.3, init_steps=200)
    policy = AioliPolicy(cfg, ("github", "c4"), stop_step=2000)
    backend = SpyBackend.preset("two_group_interacting", 2000)
    before = policy.summary()
    # nothing learned yet: p is p^0 and its average is p^0
    assert before["mixture"] == before["average_mixture"] == before["p0"] == [0.5, 0.5]
    assert before["rounds_done"] == 0
    assert before["p_bound"] == policy.p_bound  # the reachable range is known before the first round

    init = policy.run_round(backend)
    # S_init on p_init, which defaults to uniform
    assert init.info == {"phase": "init"} and init.step == 200 and init.mixture == [0.5, 0.5]
    assert _finite(init.train_loss, 2)
    plans = aioli_schedule(cfg, 2, 200, 2000)
    reports = []
    for t, plan in enumerate(plans, start=1):
        n_evals = len(backend.evals)
        r = policy.run_round(backend)
        reports.append(r)
        assert r.step == backend.step == plan.end
        assert r.info["phase"] == "dynamic" and r.info["round"] == t
        assert r.info["segment_steps"] == plan.segment_steps
        assert _finite(r.train_loss, 2)
        # val_loss is the last LearnParams evaluation, i.e. the loss after the last segment
        assert len(backend.evals) == n_evals + 2 * cfg.sweeps + 1
        assert np.shape(r.info["beta"]) == (2, 2) and _finite(r.val_loss, 2)
    after = policy.summary()
    assert after["rounds_done"] == 3
    assert after["mixture"] == reports[-1].mixture
    np.testing.assert_allclose(after["average_mixture"], np.mean([r.mixture for r in reports], axis=0))
    assert after["average_mixture"] != after["mixture"]
    assert after["p_init"] == [0.5, 0.5] and after["p0"] == [0.5, 0.5]


def test_aioli_resumed_inside_s_init_trains_only_the_rest_of_it():
    cfg = AioliConfig(rounds=3, sweeps=2, delta=0.3, init_steps=300, init_mixture=[0.8, 0.2])
    backend = SpyBackend.preset("two_group_interacting", 2000)
    backend.train(120, mixture=[0.8, 0.2])  # a run stopped 120 steps into its S_init prefix
    policy = AioliPolicy(cfg, ("github", "c4"), stop_step=2000)
    report = policy.run_round(backend)
    assert report.info["phase"] == "init" and report.step == 300
    assert backend.trains[-1][:2] == (180, "mixture")


# ------------------------------------------------------------------------------------------------- static
def test_static_policy_hands_on_its_mixture_and_the_losses_before_and_after():
    # Skill-It's skills graph reads val_start / val_end of its one-group runs; offline methods read "mixture"
    policy = StaticPolicy(StaticConfig(mixture=[0.75, 0.25], rounds=2, eval_start=True, eval_examples=7),
                          ("github", "c4"), stop_step=200)
    assert policy.summary() == {"mixture": [0.75, 0.25], "val_start": None, "val_end": None}
    backend = SpyBackend.preset("two_group_interacting", 200)
    start = backend.evaluate("val", max_examples=7).tolist()
    first = policy.run_round(backend)
    last = policy.run_round(backend)
    assert backend.evals[1:] == [("val", 7)] * 3  # before the first step, then after each round
    assert policy.summary() == {"mixture": [0.75, 0.25], "val_start": start, "val_end": last.val_loss}
    assert first.mixture == last.mixture == [0.75, 0.25] and [first.step, last.step] == [100, 200]
    assert _finite(first.train_loss, 2) and _finite(last.train_loss, 2)


def test_static_policy_taking_over_a_run_splits_the_steps_left_into_its_rounds():
    # a PBT member continuing a donor's checkpoint, or a final run resuming a sweep run, starts past step 0
    backend = SpyBackend.preset("two_group_interacting", 300)
    backend.train(100, mixture=[0.5, 0.5])
    policy = StaticPolicy(StaticConfig(rounds=2), ("github", "c4"), stop_step=300)
    assert [policy.run_round(backend).step for _ in range(2)] == [200, 300]


def test_build_policy_uses_a_given_config_as_is_and_passes_the_run_seed_to_aioli():
    from raymix.methods.policies import build_policy

    cfg = AioliConfig(rounds=2, sweeps=1, delta=0.2)
    policy = build_policy("aioli", cfg, ("github", "c4"), 1000, seed=5)
    assert policy.config is cfg
    # the seed drives LearnParams's segment order: the same seed, the same stream
    assert policy.rng.bit_generator.state == np.random.default_rng(5).bit_generator.state
    assert build_policy("aioli", {"rounds": 2}, ("github", "c4"), 1000).config.rounds == 2


# ----------------------------------------------------------------------------------------------- Skill-It
def test_skill_it_moves_p_as_its_updater_does_with_the_configured_window():
    graph = [[1.0, 0.3, 0.0], [0.2, 1.0, 0.1], [0.0, 0.4, 1.0]]
    cfg = SkillItConfig(graph=graph, rounds=6, eta=0.5, window=1, eval_examples=4)
    policy = SkillItPolicy(cfg, ("arxiv", "books", "stackexchange"), stop_step=600)
    backend = SpyBackend.preset("three_group", 600)
    assert policy.summary() == {"mixture": None, "average_mixture": None}
    reports = [policy.run_round(backend) for _ in range(6)]
    assert backend.evals == [("val", 4)] * 6
    ref = SkillItUpdater(np.asarray(graph), eta=0.5, window=1)
    for r in reports:
        np.testing.assert_allclose(r.mixture, ref.update(np.asarray(r.val_loss)), rtol=1e-12)
    # window = 1 forgets earlier losses; the default window of 3 would not give these mixtures
    ref3 = SkillItUpdater(np.asarray(graph), eta=0.5, window=3)
    assert not np.allclose([ref3.update(np.asarray(r.val_loss)) for r in reports][-1], reports[-1].mixture)
    assert [r.step for r in reports] == [100, 200, 300, 400, 500, 600]
    assert policy.summary()["mixture"] == reports[-1].mixture


def test_skill_it_with_fewer_steps_left_than_rounds_takes_one_step_per_round():
    cfg = SkillItConfig(graph=np.eye(2).tolist(), rounds=10)
    backend = SpyBackend.preset("two_group_interacting", 1000)
    backend.train(995, mixture=[0.5, 0.5])
    policy = SkillItPolicy(cfg, ("github", "c4"), stop_step=1000)
    steps = []
    while not policy.done(backend):
        steps.append(policy.run_round(backend).step)
    assert steps == [996, 997, 998, 999, 1000]


# ------------------------------------------------------------------------------------------ DoReMi / DoGE
def _reference_backend(name: str, steps: int) -> SpyBackend:
    backend = SpyBackend.preset(name, steps)
    ref = SimBackend.from_preset(name, 0, total_steps=steps)
    ref.train(steps, mixture=np.full(ref.sim.m, 1 / ref.sim.m))
    backend.set_reference(ref.state_dict())
    return backend


def test_proxy_rounds_split_the_steps_left_and_report_the_averaged_weights_and_signal():
    backend = _reference_backend("three_group", 1000)
    backend.train(200, mixture=[1 / 3] * 3)  # the proxy run starts where its trial is, at step 200
    policy = DoReMiPolicy(DoReMiConfig(rounds=4, eval_examples=6, eta=0.05), ("arxiv", "books", "stackexchange"),
                          stop_step=1000)
    reports = []
    while not policy.done(backend):
        reports.append(policy.run_round(backend))
        # each round reports the running average of the per-step weights (what the final run will train on)
        assert reports[-1].info["average_weights"] == policy.tracker.average().tolist()
    assert [r.step for r in reports] == [400, 600, 800, 1000]
    assert [c["steps"] for c in backend.proxy_calls] == [200] * 4
    assert backend.evals == [("val", 6)] * 4
    for r in reports:
        assert _finite(r.train_loss, 3) and _finite(r.val_loss, 3)
        # DoReMi's A^t is diagonal (paper Prop. 2): its column sums sit on the diagonal of the report
        assert r.interactions == np.diag(r.info["A_colsums"]).tolist()
        assert _finite(r.info["A_colsums"], 3)
    # the signal is the mean of the last SIGNAL_WINDOW per-step excess losses
    np.testing.assert_allclose(reports[-1].info["A_colsums"], np.nanmean(policy.signal, axis=0))
    assert len(policy.signal) == policy.SIGNAL_WINDOW
    summary = policy.summary()
    assert summary["mixture"] == reports[-1].info["average_weights"]
    assert summary["last_weights"] == reports[-1].mixture == policy.tracker.weights.tolist()
    assert summary["mixture"] != summary["last_weights"]


def test_doremi_uses_the_configured_step_size_and_smoothing():
    groups = ("arxiv", "books", "stackexchange")
    # a vanishing η or full smoothing keep the weights uniform; the default η and smoothing would move them
    for cfg, moves in ((DoReMiConfig(rounds=2, eta=1e-9), False), (DoReMiConfig(rounds=2, smoothing=1.0), False),
                       (DoReMiConfig(rounds=2), True)):
        backend = _reference_backend("three_group", 400)
        policy = DoReMiPolicy(cfg, groups, stop_step=400)
        while not policy.done(backend):
            report = policy.run_round(backend)
        uniform = np.allclose(report.mixture, 1 / 3, atol=1e-6)
        assert uniform is not moves, cfg
    # the tracker is the estimator with these settings: same weights from the same losses
    a, b = DoReMiWeights(3, eta=0.05, smoothing=0.0), DoReMiPolicy(DoReMiConfig(eta=0.05, smoothing=0.0), groups, 10)
    loss, ref = np.array([3.0, 2.5, 4.0]), np.array([2.0, 2.4, 3.0])
    np.testing.assert_allclose(b.tracker.update(loss, ref), a.update(loss, ref))


def test_doge_uses_its_step_size_and_the_papers_validation_share():
    for name, groups, fraction, share in (("two_group_interacting", ("github", "c4"), None, 0.25),
                                          ("three_group", ("arxiv", "books", "stackexchange"), None, 0.5),
                                          ("three_group", ("arxiv", "books", "stackexchange"), 0.75, 0.75)):
        backend = SpyBackend.preset(name, 400)
        policy = DoGEPolicy(DoGEConfig(rounds=2, eta=1e9, val_fraction=fraction), groups, stop_step=400)
        while not policy.done(backend):
            report = policy.run_round(backend)
        assert {c["val_fraction"] for c in backend.proxy_calls} == {share}
        assert all(c["alignment"] for c in backend.proxy_calls)
        # the tables' η is DoGE's μ, the divisor of the scores: a huge μ leaves the weights uniform, the
        # default μ = 0.01 moves them (below)
        np.testing.assert_allclose(report.mixture, 1 / len(groups), atol=1e-6)
        assert report.interactions is None and _finite(report.info["A_colsums"], len(groups))
    backend = SpyBackend.preset("three_group", 400)
    policy = DoGEPolicy(DoGEConfig(rounds=2), ("arxiv", "books", "stackexchange"), stop_step=400)
    while not policy.done(backend):
        report = policy.run_round(backend)
    assert not np.allclose(report.mixture, 1 / 3, atol=1e-3)


def test_proxy_state_from_before_the_signal_was_kept_still_loads():
    groups = ("arxiv", "books", "stackexchange")
    backend = _reference_backend("three_group", 400)
    policy = DoReMiPolicy(DoReMiConfig(rounds=4), groups, stop_step=400)
    policy.run_round(backend)
    state = policy.state_dict()
    assert state["signal"]
    old = {k: v for k, v in state.items() if k != "signal"}  # checkpoints written before the signal existed
    fresh = DoReMiPolicy(DoReMiConfig(rounds=4), groups, stop_step=400)
    fresh.load_state_dict(old)
    assert fresh.signal == [] and fresh.round == 1 and fresh.start_step == 0
    assert fresh.tracker.weights.tolist() == policy.tracker.weights.tolist()
