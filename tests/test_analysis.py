"""Fidelity analysis: sim(Ã, A*) and b^t, law-fit tables (Table 5), greedy vs optimal (Table 10)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from raymix.analysis import (
    GreedyVsOptimal,
    dynamic_law_fit_table,
    fit_scale,
    fit_scale_to_dynamics,
    greedy_vs_optimal,
    leave_one_out,
    similarity,
    static_law_fit_table,
)
from raymix.errors import ConfigError, FitError
from raymix.laws import LogLinearStaticLaw
from raymix.simplex import default_cover


# ----------------------------------------------------------------------------- similarity and b^t
def test_similarity_is_reexported_and_scale_free():
    A_star = np.array([[0.148, 0.011], [-0.013, 0.087]])
    assert similarity(A_star, A_star) == pytest.approx(1.0)
    assert similarity(5.0 * A_star, A_star) == pytest.approx(1.0)
    assert similarity(-A_star, A_star) == pytest.approx(-1.0)
    # Diagonal approximation of eq. (12) ranks the groups the other way round -> Spearman -1.
    full = np.array([[0.119, 0.027], [-0.010, 0.104]])
    diag = np.diag([0.135, 0.098])
    assert similarity(diag, full) < 0.5


def test_fit_scale_from_matrices():
    A_star = np.array([[0.2, 0.05], [0.01, 0.1]])
    assert fit_scale(A_star / 4, A_star) == pytest.approx(4.0)
    assert fit_scale(-A_star, A_star) == pytest.approx(-1.0)
    # Hand value: <A, A*> / <A, A> with A = I.
    assert fit_scale(np.eye(2), A_star) == pytest.approx((0.2 + 0.1) / 2)
    with pytest.raises(FitError, match="all zeros"):
        fit_scale(np.zeros((2, 2)), A_star)
    with pytest.raises(FitError, match=r"\(2, 2\) and \(3, 3\)"):
        fit_scale(np.eye(2), np.eye(3))


def test_fit_scale_to_dynamics_recovers_b_from_a_sweep():
    rng = np.random.default_rng(0)
    A_star = np.array([[0.2, 0.05, 0.0], [0.01, 0.1, 0.02], [0.0, 0.03, 0.15]])
    A_method = A_star / 7.0  # e.g. normalized Aioli estimate or DoGE gradient products in other units
    P = default_cover(3, seed=0)
    L_t = np.tile([3.2, 2.9, 3.5], (len(P), 1))
    L_next = L_t - P @ A_star.T
    b = fit_scale_to_dynamics(A_method, P, L_t, L_next)
    assert b == pytest.approx(7.0)
    assert similarity(b * A_method, A_star) == pytest.approx(1.0)
    noisy = L_next + rng.normal(0, 1e-3, L_next.shape)
    assert fit_scale_to_dynamics(A_method, P, L_t, noisy) == pytest.approx(7.0, rel=0.1)
    with pytest.raises(FitError, match=r"\(10, 2\)"):
        fit_scale_to_dynamics(A_method, P, L_t, L_next[:, :2])
    with pytest.raises(FitError, match="NaN"):
        fit_scale_to_dynamics(A_method, P, L_t, np.full_like(L_next, np.nan))
    with pytest.raises(FitError, match="zero"):
        fit_scale_to_dynamics(np.zeros((3, 3)), P, L_t, L_next)


# ----------------------------------------------------------------------------- fit tables
def static_records(setting, A, b, c, seeds, rng, noise=1e-3, curve=None):
    rows = []
    m = len(b)
    for seed in seeds:
        for p in default_cover(m, seed=seed):
            loss = c + b * np.exp(-A @ p) if curve is None else curve(p)
            rows.append({"setting": setting, "seed": seed, "p": p.tolist(),
                         "loss": (loss + rng.normal(0, noise, m)).tolist()})
    return rows


def test_static_law_fit_table_reports_per_setting_metrics():
    rng = np.random.default_rng(1)
    A2 = np.array([[2.5, 0.4], [0.3, 2.0]])
    A3 = np.array([[2.0, 0.3, 0.1], [0.2, 2.5, 0.4], [0.0, 0.3, 3.0]])
    runs = static_records("gh/c4", A2, np.array([1.0, 0.8]), np.array([2.0, 2.5]), [0, 1], rng)
    runs += static_records("ax/bk/se", A3, np.array([1.0, 0.7, 1.2]), np.array([1.8, 2.2, 2.0]), [0], rng)
    # A setting the law cannot represent (paper App. C.1.1, Books/C4): loss rises again past p = 0.5.
    runs += static_records("books/c4", A2, np.ones(2), np.ones(2), [0], rng, noise=0.0,
                           curve=lambda p: np.array([3.0 + 4 * (p[0] - 0.5) ** 2, 3.0 + 4 * (p[1] - 0.5) ** 2]))
    table = static_law_fit_table(pd.DataFrame(runs), law_factory=lambda: LogLinearStaticLaw(n_restarts=16))
    assert list(table["setting"]) == ["gh/c4", "ax/bk/se", "books/c4"]
    assert set(table["law"]) == {"log_linear_static"}
    good = table.set_index("setting")
    assert good.loc["gh/c4", "n_fits"] == 2 and good.loc["gh/c4", "n_runs"] == 18 and good.loc["gh/c4", "m"] == 2
    assert good.loc["ax/bk/se", "n_fits"] == 1 and good.loc["ax/bk/se", "m"] == 3
    assert good.loc["gh/c4", "r2"] > 0.99 and good.loc["ax/bk/se", "r2"] > 0.99
    assert good.loc["gh/c4", "mse"] < 3e-6
    assert good.loc["books/c4", "r2"] < 0.9  # misspecification shows up
    assert len(good.loc["ax/bk/se", "r2_per_group"]) == 3


def test_leave_one_out_predicts_each_run_from_the_others():
    rng = np.random.default_rng(4)
    A = np.array([[2.0, 0.3, 0.1], [0.2, 2.5, 0.4], [0.0, 0.3, 3.0]])
    rows = static_records("x", A, np.array([1.0, 0.7, 1.2]), np.array([1.8, 2.2, 2.0]), [0], rng, noise=1e-3)
    P, L = np.array([r["p"] for r in rows]), np.array([r["loss"] for r in rows])
    factory = lambda: LogLinearStaticLaw(n_restarts=16)  # noqa: E731
    loo = leave_one_out(P, L, law_factory=factory)
    assert loo["pred"].shape == L.shape and len(loo["r2_per_group"]) == 3
    assert loo["r2"] > 0.98  # the law holds: it predicts unseen runs
    assert loo["r2"] <= factory().fit(P, L).score(P, L)["r2"]
    # a held-out run's prediction does not see its own loss: corrupt one run, only its residual moves
    L_bad = L.copy()
    L_bad[4] += 0.5
    bad = leave_one_out(P, L_bad, law_factory=factory)
    np.testing.assert_allclose(bad["pred"][4], loo["pred"][4], atol=1e-3)
    assert bad["mse"] > 10 * loo["mse"]
    with pytest.raises(FitError, match="at least m\\+2=5 runs for m=3 groups.*got 4"):
        leave_one_out(P[:4], L[:4])


def test_dynamic_law_fit_table_fits_per_starting_mixture():
    rng = np.random.default_rng(2)
    A = np.array([[0.12, 0.02], [-0.01, 0.09]])
    runs = []
    for p0 in [0.3, 0.5, 0.7]:
        L_t = np.array([3.0 + p0, 3.5 - p0])  # the checkpoint's losses depend on the prior mixture
        for p in default_cover(2):
            runs.append({"setting": "gh/c4", "p0": [p0, 1 - p0], "p": p.tolist(), "loss_t": L_t.tolist(),
                         "loss_next": (L_t - A @ p + rng.normal(0, 1e-4, 2)).tolist()})
    table = dynamic_law_fit_table(runs)
    assert list(table["law"]) == ["linear_dynamic", "log_linear_dynamic"]
    assert (table["n_fits"] == 3).all() and (table["n_runs"] == 27).all()
    lin = table.iloc[0]
    assert lin["r2"] > 0.95 and lin["mse"] < 3e-8
    with pytest.raises(FitError, match="'cubic'"):
        dynamic_law_fit_table(runs, laws=("cubic",))
    with pytest.raises(FitError, match="loss_next"):
        dynamic_law_fit_table([{"setting": "x", "p": [1.0], "loss_t": [1.0]}])
    with pytest.raises(FitError, match="no runs"):
        static_law_fit_table([])


# ----------------------------------------------------------------------------- greedy vs optimal
def test_greedy_is_suboptimal_on_a_github_c4_like_table():
    # Shaped like Table 10's GH/C4 column: the best first round (0.6) is not the start of the best schedule.
    table = {
        (0.3,): 2.00, (0.6,): 1.90,
        (0.3, 0.3): 1.40, (0.3, 0.6): 1.30, (0.6, 0.3): 1.50, (0.6, 0.6): 1.45,
    }
    res = greedy_vs_optimal([0.3, 0.6], table, rounds=2)
    assert isinstance(res, GreedyVsOptimal)
    assert res.greedy_schedule == (0.6, 0.6) and res.greedy_loss == 1.45
    assert res.optimal_schedule == (0.3, 0.6) and res.optimal_loss == 1.30
    assert not res.greedy_is_optimal and res.regret == pytest.approx(0.15)
    assert res.n_evaluations == 6


def test_greedy_is_optimal_under_a_time_invariant_linear_law():
    A = np.array([[0.2, 0.05], [0.02, 0.1]])
    L0 = np.array([3.0, 3.2])
    cands = [tuple(p) for p in default_cover(2)]

    def loss_after(schedule):
        L = L0.copy()
        for p in schedule:
            L = L - A @ np.asarray(p)
        return float(L.mean())

    res = greedy_vs_optimal(cands, loss_after, rounds=3)
    assert res.greedy_is_optimal and res.regret == pytest.approx(0.0)
    assert res.greedy_schedule == res.optimal_schedule
    assert np.allclose(np.array(res.greedy_schedule), [[0.9, 0.1]] * 3)
    # Array candidates are keyed as tuples.
    res2 = greedy_vs_optimal(list(default_cover(2)), loss_after, rounds=2)
    assert np.allclose(np.array(res2.optimal_schedule), [[0.9, 0.1]] * 2)
    assert all(isinstance(p, tuple) for p in res2.optimal_schedule)


def test_greedy_vs_optimal_bad_inputs():
    table = {(0.3,): 1.0, (0.6,): 2.0, (0.3, 0.3): 1.0}
    with pytest.raises(FitError, match=r"\(0.3, 0.6\)"):
        greedy_vs_optimal([0.3, 0.6], table)
    with pytest.raises(ConfigError, match="0"):
        greedy_vs_optimal([0.3], table, rounds=0)
    with pytest.raises(ConfigError, match="duplicates"):
        greedy_vs_optimal([0.3, 0.3], table)
    with pytest.raises(ConfigError, match="max_schedules"):
        greedy_vs_optimal(list(range(10)), lambda s: 0.0, rounds=7)
    with pytest.raises(FitError, match="nan"):
        greedy_vs_optimal([0.3, 0.6], lambda s: float("nan"))
