"""The mixing-law simulator: known law, exact resume, and the estimators run end to end on it."""

from __future__ import annotations

import numpy as np
import pytest

from raymix.analysis.similarity import similarity
from raymix.backend import ProxySignals, TrainingBackend
from raymix.errors import CheckpointError, ConfigError, MixtureError
from raymix.estimators import DoGEWeights, DoReMiWeights, learn_params, run_aioli
from raymix.sim import PRESETS, LinearDynamicSimulator, LogLinearStaticSimulator, SimBackend


def uniform(m: int) -> np.ndarray:
    return np.full(m, 1.0 / m)


# --- the law itself ------------------------------------------------------------------------------------


def test_presets_build_and_unknown_name():
    for name, sc in PRESETS.items():
        b = SimBackend.from_preset(name, seed=0, total_steps=200)
        assert isinstance(b, TrainingBackend)
        assert b.groups == sc.groups and b.total_steps == 200
        A = b.A_star()
        assert A.shape == (b.m, b.m) and np.count_nonzero(A - np.diag(np.diag(A))) > 0  # full matrix
    with pytest.raises(ConfigError, match="valid names"):
        SimBackend.from_preset("four_group")


def test_A_star_is_the_first_order_law():
    sim = LinearDynamicSimulator.from_preset("three_group", total_steps=1000, train_noise=0.0)
    sim.train(np.tile(uniform(3), (300, 1)))
    p = np.array([0.5, 0.2, 0.3])
    L0 = sim.expected_losses()
    A = sim.A_star()
    L1 = sim.step(p)
    np.testing.assert_allclose(L0 - L1, A @ p, rtol=1e-3)


def test_time_variation_and_shrinking_progress():
    sim = LinearDynamicSimulator.from_preset("two_group_interacting", total_steps=5000, train_noise=0.0)
    drops = []
    for _ in range(5):
        before = sim.expected_losses().sum()
        sim.train(np.tile(uniform(2), (1000, 1)))
        drops.append(before - sim.expected_losses().sum())
    assert all(a > b > 0 for a, b in zip(drops, drops[1:], strict=False))  # lr schedule + saturation: returns diminish
    assert np.all(sim.expected_losses() > sim.floor)
    assert not np.allclose(sim.A_base(0), sim.A_base(5000))  # A*(t) drifts


def test_vertex_is_punished_by_forgetting():
    def final(p):
        sim = LinearDynamicSimulator.from_preset("two_group_interacting", total_steps=2000, train_noise=0.0)
        sim.train(np.tile(p, (2000, 1)))
        return sim.expected_losses()

    vertex, mid = final(np.array([0.0, 1.0])), final(uniform(2))
    assert vertex[0] > LinearDynamicSimulator.from_preset("two_group_interacting").L0[0]  # starved group got worse
    assert vertex.sum() > mid.sum()
    # The linear law (A0 only) would have predicted progress for the starved group through A0[0, 1] > 0.
    assert PRESETS["two_group_interacting"].sim_kwargs["A0"][0][1] > 0


def test_simulator_errors():
    with pytest.raises(ConfigError, match="floor < L0"):
        LinearDynamicSimulator(np.eye(2), [1.0, 1.0], [2.0, 0.5], 100)
    with pytest.raises(ConfigError, match="p_floor"):
        LinearDynamicSimulator(np.eye(2), [3.0, 3.0], [1.0, 1.0], 100, p_floor=0.9)
    sim = LinearDynamicSimulator(np.eye(2), [3.0, 3.0], [1.0, 1.0], 100)
    with pytest.raises(MixtureError, match="summing to 1"):
        sim.step([0.3, 0.3])


# --- backend ---------------------------------------------------------------------------------------------


def test_train_mixture_is_multinomial_and_counts_are_exact():
    b = SimBackend.from_preset("three_group", seed=1, total_steps=1000)
    st = b.train(200, np.array([0.2, 0.3, 0.5]))
    assert st.steps == 200 and b.step == 200
    assert st.group_examples.sum() == 200 * b.batch_size
    np.testing.assert_allclose(st.group_examples / st.group_examples.sum(), [0.2, 0.3, 0.5], atol=0.05)
    st = b.train(10, counts=np.array([2, 0, 6]))
    np.testing.assert_array_equal(st.group_examples, [20, 0, 60])
    assert np.isnan(st.group_train_loss[1]) and np.isfinite(st.group_train_loss[[0, 2]]).all()
    assert b.train(0, uniform(3)).steps == 0
    with pytest.raises(ConfigError, match="exactly one"):
        b.train(5, uniform(3), counts=np.array([3, 3, 2]))
    with pytest.raises(MixtureError, match="segment_counts"):
        b.train(5, counts=np.array([3, 3, 3]))
    with pytest.raises(MixtureError, match="summing to 1"):
        b.train(5, np.array([0.5, 0.5, 0.5]))


def test_evaluate_deterministic_and_noisier_on_subsets():
    b = SimBackend.from_preset("two_group_interacting", seed=0, total_steps=500)
    b.train(50, uniform(2))
    np.testing.assert_array_equal(b.evaluate("val"), b.evaluate("val"))
    assert not np.array_equal(b.evaluate("val"), b.evaluate("test"))
    res = {64: [], 4: []}
    for seed in range(60):
        bb = SimBackend.from_preset("two_group_interacting", seed=seed, total_steps=500)
        for n in res:
            res[n].append(bb.evaluate("val", max_examples=n) - bb.sim.expected_losses())
    ratio = np.std(res[4]) / np.std(res[64])
    assert 2.5 < ratio < 6  # sqrt(64/4) = 4
    with pytest.raises(ConfigError, match="valid splits"):
        b.evaluate("dev")
    with pytest.raises(ConfigError, match="max_examples"):
        b.evaluate("val", max_examples=0)


def _drive(b: SimBackend) -> list[np.ndarray]:
    out = [b.train(37, np.array([0.3, 0.7])).group_train_loss, b.evaluate("val")]
    d = DoReMiWeights(2)
    out.append(b.proxy_train(5, lambda s: d.update(s.train_loss, s.reference_loss), reference=True).group_train_loss)
    g = DoGEWeights(2)
    out.append(b.proxy_train(5, lambda s: g.update(s.alignment, s.grad_norm, s.lr), alignment=True,
                             val_fraction=0.25).group_train_loss)
    out.append(b.evaluate("test", max_examples=8))
    return out


def test_state_dict_roundtrip_is_exact():
    a = SimBackend.from_preset("two_group_interacting", seed=3, total_steps=1000)
    a.train(100, uniform(2))
    a.set_reference(a.state_dict())
    a.train(40, np.array([0.6, 0.4]))
    state = a.state_dict()
    b = SimBackend.from_preset("two_group_interacting", seed=3, total_steps=1000)
    b.train(7, np.array([0.9, 0.1]))  # a different history, overwritten by the load
    b.load_state_dict(state)
    assert b.step == a.step
    for x, y in zip(_drive(a), _drive(b), strict=True):
        np.testing.assert_array_equal(x, y)
    other = SimBackend.from_preset("three_group", total_steps=1000)
    with pytest.raises(CheckpointError, match="groups"):
        other.load_state_dict(state)
    with pytest.raises(CheckpointError, match="not a SimBackend state"):
        b.load_state_dict({"sim": {}})


def test_proxy_signals_and_errors():
    b = SimBackend.from_preset("three_group", seed=0, total_steps=2000)
    with pytest.raises(ConfigError, match="set_reference"):
        b.proxy_train(1, lambda s: uniform(3), reference=True)
    with pytest.raises(ConfigError, match="val_fraction"):
        b.proxy_train(1, lambda s: uniform(3), alignment=True)
    with pytest.raises(MixtureError, match="proxy rule"):
        b.proxy_train(1, lambda s: np.array([1.0, 1.0, 1.0]))
    seen: list[ProxySignals] = []
    kernels: list[np.ndarray] = []  # K_t = A*(t)/(dt·lr(t)) at the step each signal was measured

    def rule(s: ProxySignals) -> np.ndarray:
        seen.append(s)
        kernels.append(b.sim.A_star(s.step) / (b.sim.dt * b.sim.lr_scale(s.step)))
        return uniform(3)

    b.set_reference(b.state_dict())  # reference = the untrained model
    b.proxy_train(200, rule, reference=True, alignment=True, val_fraction=0.5)
    assert [s.step for s in seen] == list(range(200)) and b.step == 200
    # The proxy learns, the frozen reference does not: excess loss turns negative on average.
    assert np.mean([s.train_loss - s.reference_loss for s in seen[-20:]]) < 0
    # Alignment is centred on the column means of the kernel K_t = A*/(dt·lr): alignment_t = colmean K_t + noise
    # of std mean|K_t|/√n_val per step (n_val = 0.5·8 = 4 validation sequences), independent across steps, so
    # the mean over the 200 steps deviates from the mean of colmean K_t by 4σ at most, σ = mean|K|/√(4·200).
    K = np.array(kernels)
    sigma = np.abs(K).mean() / np.sqrt(4 * len(seen))
    err = np.mean([s.alignment for s in seen], axis=0) - K.mean(axis=1).mean(axis=0)
    assert np.all(np.abs(err) <= 4 * sigma), (err, sigma)
    assert all(s.lr <= b.lr for s in seen) and seen[-1].lr < seen[0].lr


# --- LearnParams on the simulator recovers A* ------------------------------------------------------------


def _learnparams_round(b: SimBackend, k: int, seg: int, eps: float, rng) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    A_star = b.A_star()
    acc, _ = learn_params(b, k, eps, rng, seg)
    return acc.solve(), acc.solve(diagonal=True), A_star


def test_learnparams_recovers_A_star_noise_free():
    b = SimBackend.from_preset("three_group", seed=0, eval_noise=0.0, train_noise=0.0)
    b.train(1000, uniform(3))
    A_hat, _, A_star = _learnparams_round(b, k=4, seg=6, eps=0.75, rng=np.random.default_rng(0))
    # Six steps per segment: Â ≈ 6·A*, up to the drift of A* within the 72-step round.
    np.testing.assert_allclose(A_hat / 6, A_star, rtol=0.03, atol=0.03 * np.abs(A_star).max())
    assert similarity(A_hat, A_star) > 0.99


@pytest.mark.parametrize("name, k, seg", [("two_group_interacting", 4, 4), ("three_group", 4, 6)])
def test_learnparams_recovers_A_star_with_noise(name, k, seg):
    # Paper settings: S=5000, T=20; δ=0.128 (m=2) / 0.288 (m=3) → 4 / 6 steps per segment.
    for seed in range(3):
        b = SimBackend.from_preset(name, seed=seed)
        rng = np.random.default_rng(seed)
        sims, sims_diag = [], []
        for _ in range(5):
            b.train(250 - seg * b.m * k, uniform(b.m))
            A_hat, A_diag, A_star = _learnparams_round(b, k, seg, 0.75, rng)
            sims.append(similarity(A_hat, A_star))
            sims_diag.append(similarity(A_diag, A_star))
        assert np.median(sims) >= 0.9, sims
        if name == "two_group_interacting":  # the diagonal estimate points the wrong way here (eq. 12)
            assert np.median(sims_diag) < 0.5


# --- Aioli end to end --------------------------------------------------------------------------------------


def _final_loss(name: str, seed: int, **kw) -> float:
    b = SimBackend.from_preset(name, seed=seed)
    if kw.pop("stratified", False):
        b.train(b.total_steps, uniform(b.m))
    else:
        run_aioli(b, rounds=20, k=4, delta=0.128, eps=0.75, eta=0.3, seed=seed, **kw)
    return float(b.evaluate("test").sum())


def test_aioli_beats_stratified_and_diagonal_ablation():
    seeds = range(3)
    full = np.array([_final_loss("two_group_interacting", s) for s in seeds])
    strat = np.array([_final_loss("two_group_interacting", s, stratified=True) for s in seeds])
    diag = np.array([_final_loss("two_group_interacting", s, diagonal=True) for s in seeds])
    assert np.all(full < strat - 0.005), (full, strat)
    assert np.all(diag > full + 0.01), (diag, full)


def test_aioli_run_records():
    # (its speed is measured by benchmarks/bench_sim_speed.py, not asserted here)
    b = SimBackend.from_preset("three_group", seed=0, total_steps=2000)
    run = run_aioli(b, rounds=20, k=2, delta=0.3, eps=0.75, eta=0.2)
    assert b.step == 2000
    assert run.proportions.shape == (21, 3) and len(run.matrices) == 20
    np.testing.assert_allclose(run.proportions.sum(axis=1), 1.0)
    with pytest.raises(ConfigError, match="segments"):
        run_aioli(SimBackend.from_preset("three_group", total_steps=100), rounds=20, k=4, delta=0.1)


# --- log-linear static ---------------------------------------------------------------------------------------


def test_log_linear_static_simulator():
    sim = LogLinearStaticSimulator.random(3, seed=0)
    p = np.array([0.2, 0.3, 0.5])
    np.testing.assert_allclose(sim.expected_losses(p), sim.c + sim.b * np.exp(-(sim.A @ p)))
    np.testing.assert_array_equal(sim.run(p), sim.expected_losses(p))  # noise 0
    opt = sim.optimal_mixture()
    grid = np.random.default_rng(1).dirichlet(np.ones(3), size=500)
    assert sim.expected_losses(opt).sum() <= sim.expected_losses(grid).sum(axis=1).min() + 1e-9
    noisy = LogLinearStaticSimulator(sim.c, sim.b, sim.A, noise=0.01, seed=1)
    r = noisy.run(np.tile(p, (400, 1))) - sim.expected_losses(p)
    assert 0.008 < r.std() < 0.012
    with pytest.raises(ConfigError, match="b > 0"):
        LogLinearStaticSimulator(sim.c, -sim.b, sim.A)


def test_run_aioli_passes_its_update_options_through():
    """EMA (γ) bounds p by the reachable range; the same run without EMA leaves it; the normalisation and the
    segment order reach the updater and LearnParams (each changes the trajectory)."""
    from raymix.estimators.normalization import reachable_range

    def props(**kw):
        b = SimBackend.from_preset("two_group_interacting", seed=0, total_steps=2000)
        return run_aioli(b, rounds=10, k=2, delta=0.2, eps=0.75, eta=1.0, seed=0, **kw).proportions

    lo, hi = reachable_range(np.full(2, 0.5), 1.0, "shift_sum", gamma=0.5)
    ema, free = props(gamma=0.5), props()
    assert (ema >= lo - 1e-9).all() and (ema <= hi + 1e-9).all()
    assert not ((free >= lo - 1e-9).all() and (free <= hi + 1e-9).all())
    assert not np.allclose(props(normalization="frobenius"), free)
    assert not np.allclose(props(order_mode="permutations"), free)
