"""Mixing laws: recovery of known laws, optimal mixtures, score math, error handling."""

from __future__ import annotations

import numpy as np
import pytest

from raymix.errors import ConfigError, FitError, NotFittedError, RaymixError
from raymix.laws import LinearDynamicLaw, LogLinearDynamicLaw, LogLinearStaticLaw, regression_scores
from raymix.solvers import egd_update


def true_static_law(m: int, rng: np.random.Generator):
    """A well-conditioned log-linear static law: each group learns most from itself."""
    A = rng.uniform(0.0, 0.8, (m, m)) + np.diag(rng.uniform(1.5, 3.0, m))
    b = rng.uniform(0.5, 1.5, m)
    c = rng.uniform(1.5, 3.0, m)
    return A, b, c


def static_losses(P, A, b, c):
    return c[None, :] + b[None, :] * np.exp(-P @ A.T)


def canonical(A, b):
    """The law's gauge: rows of A with zero mean, b absorbing the shift (see LogLinearStaticLaw)."""
    shift = A.mean(axis=1)
    return A - shift[:, None], b * np.exp(-shift)


def brute_force_optimum(f, m, rng):
    if m == 2:
        x = np.linspace(0, 1, 20001)
        P = np.column_stack([x, 1 - x])
    else:
        P = np.vstack([rng.dirichlet(np.ones(m), size=200_000), np.eye(m)])
    vals = f(P)
    k = int(np.argmin(vals))
    return P[k], float(vals[k])


# ----------------------------------------------------------------------------- static law
@pytest.mark.parametrize("m", [2, 3, 5])
@pytest.mark.parametrize("noise", [0.0, 1e-3, 1e-2])
def test_static_law_recovers_known_law(m, noise):
    rng = np.random.default_rng(100 + m)
    A, b, c = true_static_law(m, rng)
    P = rng.dirichlet(np.ones(m), size=6 * m)
    L_clean = static_losses(P, A, b, c)
    L = L_clean + rng.normal(0.0, noise, L_clean.shape)
    law = LogLinearStaticLaw(seed=0).fit(P, L)
    assert law.fit(P, L) is law
    assert law.A_.shape == (m, m) and law.b_.shape == (m,) and law.c_.shape == (m,)
    assert np.all(law.b_ > 0) and np.all(law.c_ > 0)
    assert np.allclose(law.A_.mean(axis=1), 0.0, atol=1e-12)  # documented gauge

    P_test = rng.dirichlet(np.ones(m), size=50)
    L_test = static_losses(P_test, A, b, c)
    err = np.abs(law.predict(P_test) - L_test).max()
    fit_score = law.score(P, L)
    if noise == 0.0:
        A_c, b_c = canonical(A, b)
        assert err < 1e-5
        assert np.abs(law.A_ - A_c).max() < 1e-3
        assert np.abs(law.b_ - b_c).max() < 1e-3
        assert np.abs(law.c_ - c).max() < 1e-3
        assert fit_score["r2"] > 1 - 1e-9 and fit_score["mse"] < 1e-12
    else:
        assert err < 3 * noise  # predictions on unseen mixtures stay at the noise level
        assert fit_score["r2"] > (0.999 if noise == 1e-3 else 0.95)
        assert fit_score["mse"] < 2 * noise**2


@pytest.mark.parametrize("m", [2, 3, 5])
def test_static_optimal_mixture_matches_brute_force_on_true_law(m):
    rng = np.random.default_rng(7 * m)
    A, b, c = true_static_law(m, rng)
    P = rng.dirichlet(np.ones(m), size=6 * m)
    law = LogLinearStaticLaw().fit(P, static_losses(P, A, b, c) + rng.normal(0, 1e-4, (6 * m, m)))
    p = law.optimal_mixture()
    assert p.shape == (m,) and np.all(p >= 0) and abs(p.sum() - 1) < 1e-9

    def true_total(X):
        return static_losses(np.atleast_2d(X), A, b, c).sum(axis=1)

    p_bf, v_bf = brute_force_optimum(true_total, m, rng)
    assert true_total(p)[0] <= v_bf + 1e-3
    if m == 2:
        assert abs(p[0] - p_bf[0]) < 0.02


def test_static_law_m2_closed_form_agrees_with_numeric_minimizer():
    rng = np.random.default_rng(3)
    A, b, c = true_static_law(2, rng)
    P = rng.dirichlet(np.ones(2), size=10)
    law = LogLinearStaticLaw().fit(P, static_losses(P, A, b, c))
    x = np.linspace(0, 1, 100001)
    totals = law.predict(np.column_stack([x, 1 - x])).sum(axis=1)
    assert abs(law.optimal_mixture()[0] - x[np.argmin(totals)]) < 1e-4


def test_static_law_is_deterministic_for_a_seed_and_round_trips_state():
    rng = np.random.default_rng(4)
    A, b, c = true_static_law(3, rng)
    P = rng.dirichlet(np.ones(3), size=12)
    L = static_losses(P, A, b, c) + rng.normal(0, 1e-3, (12, 3))
    one, two = LogLinearStaticLaw(seed=5).fit(P, L), LogLinearStaticLaw(seed=5).fit(P, L)
    assert np.array_equal(one.A_, two.A_) and np.array_equal(one.c_, two.c_)
    restored = LogLinearStaticLaw().load_state_dict(one.state_dict())
    assert restored.seed == 5
    assert np.allclose(restored.predict(P), one.predict(P))
    with pytest.raises(FitError, match="LinearDynamicLaw"):
        LinearDynamicLaw().load_state_dict(one.state_dict())


def test_static_law_input_errors_quote_bad_values():
    law = LogLinearStaticLaw()
    with pytest.raises(NotFittedError, match="fit"):
        law.predict(np.array([[0.5, 0.5]]))
    with pytest.raises(NotFittedError):
        law.optimal_mixture()
    P = np.array([[0.2, 0.8], [0.5, 0.5], [0.9, 0.1]])
    L = np.array([[3.0, 2.0], [2.8, 2.2], [2.5, 2.6]])
    with pytest.raises(FitError, match=r"at least m\+1=3 runs.*got 2"):
        law.fit(P[:2], L[:2])
    with pytest.raises(FitError, match=r"\(3, 1\).*m=2"):
        law.fit(P, L[:, :1])
    with pytest.raises(FitError, match="NaN"):
        law.fit(P, np.where(np.eye(3, 2) > 0, np.nan, L))
    with pytest.raises(FitError, match="sums to 1.1"):
        law.fit(P + np.array([[0.1, 0.0], [0.0, 0.0], [0.0, 0.0]]), L)
    with pytest.raises(FitError, match="-0.5"):
        law.fit(P, L * np.array([[1.0, 1.0], [1.0, -0.25], [1.0, 1.0]]))
    with pytest.raises(FitError, match=r"shape \(3,\)"):
        law.fit(P[:, 0], L)
    with pytest.raises(ConfigError, match="-1"):
        LogLinearStaticLaw(delta=-1).fit(P, L)
    with pytest.raises(ConfigError, match="n_restarts must be an int >= 1, got 0"):
        LogLinearStaticLaw(n_restarts=0).fit(P, L)
    assert LogLinearStaticLaw(n_restarts=2, n_refine=9).fit(P, L).is_fitted  # n_refine is capped
    law.fit(P, L)
    with pytest.raises(FitError, match="m=2"):
        law.predict(np.array([[0.2, 0.3, 0.5]]))
    assert issubclass(FitError, RaymixError) and issubclass(NotFittedError, RaymixError)


# ----------------------------------------------------------------------------- score math
def test_regression_scores_against_hand_values():
    Y = np.array([[1.0, 2.0], [2.0, 2.0], [3.0, 2.0]])
    Y_hat = np.array([[1.0, 2.0], [2.5, 2.0], [2.5, 2.5]])
    s = regression_scores(Y, Y_hat)
    # group 0: residuals 0, -0.5, 0.5 -> MSE 0.5/3, SS_tot 2 -> R² = 1 - 0.5/2 = 0.75
    # group 1: residuals 0, 0, -0.5 -> MSE 0.25/3; constant target, imperfect -> R² 0 (sklearn convention)
    assert s["mse_per_group"] == pytest.approx([0.5 / 3, 0.25 / 3])
    assert s["r2_per_group"] == pytest.approx([0.75, 0.0])
    assert s["mse"] == pytest.approx(0.125)
    assert s["r2"] == pytest.approx(0.375)
    perfect = regression_scores(Y, Y)
    assert perfect["r2_per_group"] == [1.0, 1.0] and perfect["mse"] == 0.0
    with pytest.raises(FitError, match=r"\(3, 2\) and \(2, 2\)"):
        regression_scores(Y, Y[:2])


def test_score_uses_predictions_of_the_law():
    P_t = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])
    L_t = np.full((3, 2), 3.0)
    A = np.array([[0.2, 0.0], [0.0, 0.1]])
    L_next = L_t - P_t @ A.T
    law = LinearDynamicLaw().fit(P_t, L_t, L_next)
    shifted = L_next + np.array([[0.0, 0.0], [0.0, 0.0], [0.03, 0.0]])
    s = law.score(P_t, L_t, shifted)
    assert s["mse_per_group"][0] == pytest.approx(0.03**2 / 3)
    assert s["mse_per_group"][1] == pytest.approx(0.0, abs=1e-20)


# ----------------------------------------------------------------------------- dynamic laws
def sweep(m, n, rng):
    P_t = rng.dirichlet(np.ones(m), size=n)
    L_t = np.tile(rng.uniform(2.5, 4.0, m), (n, 1))  # all runs resumed from one checkpoint
    return P_t, L_t


@pytest.mark.parametrize("m", [2, 3, 5])
def test_linear_dynamic_recovers_A_exactly_without_noise(m):
    rng = np.random.default_rng(m)
    A = rng.uniform(-0.02, 0.05, (m, m)) + np.diag(rng.uniform(0.05, 0.2, m))
    P_t, L_t = sweep(m, 3 * m, rng)
    L_t = L_t + rng.uniform(0, 0.1, L_t.shape)  # also works when runs start from different losses
    law = LinearDynamicLaw().fit(P_t, L_t, L_t - P_t @ A.T)
    assert np.allclose(law.A_, A, atol=1e-10)
    assert law.rank_ == m and np.all(law.intercept_ == 0)
    P_new = rng.dirichlet(np.ones(m), size=4)
    assert np.allclose(law.predict(P_new, L_t[:4]), L_t[:4] - P_new @ A.T)
    assert law.score(P_t, L_t, L_t - P_t @ A.T)["r2"] == pytest.approx(1.0)


@pytest.mark.parametrize("noise", [1e-4, 1e-3])
def test_linear_dynamic_recovers_A_approximately_with_noise(noise):
    rng = np.random.default_rng(11)
    m = 3
    A = np.array([[0.15, 0.02, -0.01], [0.01, 0.09, 0.03], [0.0, 0.02, 0.12]])
    P_t, L_t = sweep(m, 60, rng)
    L_next = L_t - P_t @ A.T + rng.normal(0, noise, L_t.shape)
    law = LinearDynamicLaw().fit(P_t, L_t, L_next)
    assert np.abs(law.A_ - A).max() < 40 * noise
    assert np.abs(law.A_ - A).max() > 0  # noise does move the estimate


def test_linear_dynamic_rank_and_intercept_checks():
    P_t = np.array([[0.5, 0.5], [0.5, 0.5], [0.5, 0.5]])
    L = np.full((3, 2), 3.0)
    with pytest.raises(FitError, match=r"rank 1 < 2"):
        LinearDynamicLaw().fit(P_t, L, L - 0.1)
    P_t = np.array([[0.2, 0.8], [0.5, 0.5], [0.9, 0.1]])
    with pytest.raises(FitError, match="collinear"):
        LinearDynamicLaw(fit_intercept=True).fit(P_t, L, L - 0.1)
    # Unnormalized allocations (e.g. token shares of a partial round) identify a drift term.
    rng = np.random.default_rng(0)
    X = rng.uniform(0, 1, (8, 2))
    A = np.array([[0.1, 0.02], [0.0, 0.07]])
    d = np.array([0.01, -0.02])
    L_t = np.full((8, 2), 3.0)
    law = LinearDynamicLaw(fit_intercept=True).fit(X, L_t, L_t - X @ A.T - d)
    assert np.allclose(law.A_, A) and np.allclose(law.intercept_, d)
    with pytest.raises(ConfigError, match="'yes'"):
        LinearDynamicLaw(fit_intercept="yes").fit(X, L_t, L_t)
    with pytest.raises(NotFittedError):
        LinearDynamicLaw().predict(X, L_t)
    with pytest.raises(FitError, match=r"L_next has shape \(7, 2\)"):
        LinearDynamicLaw().fit(X, L_t, L_t[:7])


def test_linear_dynamic_greedy_and_egd_helpers():
    A = np.array([[0.148, 0.011], [-0.013, 0.087]])  # paper eq. (10), GH/C4 at t=2000
    P_t = np.array([[0.1, 0.9], [0.5, 0.5], [0.9, 0.1]])
    L_t = np.full((3, 2), 3.0)
    law = LinearDynamicLaw().fit(P_t, L_t, L_t - P_t @ A.T)
    assert np.array_equal(law.greedy_mixture(), [1.0, 0.0])
    p = np.array([0.5, 0.5])
    assert np.allclose(law.egd_step(p, 0.3), egd_update(p, A, 0.3))
    restored = LinearDynamicLaw().load_state_dict(law.state_dict())
    assert np.allclose(restored.A_, law.A_) and restored.n_groups_ == 2


def test_log_linear_dynamic_law():
    rng = np.random.default_rng(5)
    m = 3
    A = np.diag([0.05, 0.03, 0.04]) + 0.005
    P_t, L_t = sweep(m, 12, rng)
    L_next = L_t * np.exp(-P_t @ A.T)
    law = LogLinearDynamicLaw().fit(P_t, L_t, L_next)
    assert np.allclose(law.A_, A, atol=1e-10)
    assert law.score(P_t, L_t, L_next)["r2"] == pytest.approx(1.0)
    # Linear law is misspecified here but close over one short round.
    assert LinearDynamicLaw().fit(P_t, L_t, L_next).score(P_t, L_t, L_next)["r2"] > 0.99

    L0 = L_t[0]
    p = law.greedy_mixture(L0)
    X = np.vstack([rng.dirichlet(np.ones(m), size=100_000), np.eye(m)])
    totals = (L0[None, :] * np.exp(-X @ A.T)).sum(axis=1)
    assert (L0 * np.exp(-A @ p)).sum() <= totals.min() + 1e-9
    q = law.egd_step(np.full(m, 1 / m), 1.0, L_t=L0)
    grad = -(L0 * np.exp(-A @ np.full(m, 1 / m))) @ A
    assert np.argmax(q) == np.argmin(grad)
    with pytest.raises(ConfigError, match="L_t"):
        law.greedy_mixture()
    with pytest.raises(FitError, match=r"L_next\[0, 1\] = 0.0"):
        LogLinearDynamicLaw().fit(P_t, L_t, np.where(np.eye(12, 3, 1) > 0, 0.0, L_next))


# ----------------------------------------------------------------------------- mutation-testing follow-ups
def _allocations_with_drift(law_cls, A, d, rng, n=10):
    """Fit ``law_cls(fit_intercept=True)`` on unnormalised allocations (token shares), where a drift is identified."""
    X = rng.uniform(0.1, 1.0, (n, A.shape[0]))
    L_t = np.tile(rng.uniform(2.5, 4.0, A.shape[0]), (n, 1))
    decrease = X @ A.T + d
    L_next = L_t - decrease if law_cls is LinearDynamicLaw else L_t * np.exp(-decrease)
    return law_cls(fit_intercept=True).fit(X, L_t, L_next), X, L_t, L_next


def test_dynamic_laws_predict_with_their_fitted_drift():
    rng = np.random.default_rng(11)
    A = np.array([[0.12, 0.01, 0.0], [0.02, 0.08, 0.01], [0.0, 0.03, 0.1]])
    d = np.array([0.03, -0.02, 0.01])
    for law_cls in (LinearDynamicLaw, LogLinearDynamicLaw):
        law, X, L_t, L_next = _allocations_with_drift(law_cls, A, d, rng)
        assert np.allclose(law.intercept_, d) and np.allclose(law.A_, A)
        P_new = rng.uniform(0.1, 1.0, (4, 3))
        L_new = np.tile(L_t[0], (4, 1))
        want = L_new - (P_new @ A.T + d) if law_cls is LinearDynamicLaw else L_new * np.exp(-(P_new @ A.T + d))
        assert np.allclose(law.predict(P_new, L_new), want, atol=1e-12)


def _next_total(A, d, L0):
    return lambda p: float(np.sum(L0 * np.exp(-A @ p - d)))


def test_log_linear_dynamic_greedy_and_egd_use_the_drift_and_the_current_losses():
    """Paper App. C.1.2: the next-round total ``Σ_i L_i exp(−A_i·p − d_i)``; its optimum lies on a face here."""
    rng = np.random.default_rng(3)
    A = np.array([[0.30, 0.0, 0.05], [0.0, 0.25, 0.05], [0.0, 0.0, 0.02]])
    d = np.array([0.4, -0.3, 0.0])  # the drift alone changes which group is worth the most
    law, *_ = _allocations_with_drift(LogLinearDynamicLaw, A, d, rng, n=12)
    L0 = np.array([3.0, 2.0, 2.5])
    total = _next_total(law.A_, law.intercept_, L0)
    p = law.greedy_mixture(L0)
    X = np.vstack([rng.dirichlet(np.ones(3), size=200_000), np.eye(3)])
    brute = (L0[None, :] * np.exp(-X @ law.A_.T - law.intercept_)).sum(axis=1)
    assert total(p) <= brute.min() + 1e-12
    assert p[2] == 0.0  # group 3 helps no one: the polished optimum sits exactly on the face p_3 = 0
    without_drift = _next_total(law.A_, np.zeros(3), L0)
    assert without_drift(p) > min(without_drift(x) for x in X[::1000]) + 1e-4  # the drift does matter

    q0, eta = np.array([0.2, 0.5, 0.3]), 0.7
    h = 1e-6
    grad = np.array([(total(q0 + h * e) - total(q0 - h * e)) / (2 * h) for e in np.eye(3)])
    want = q0 * np.exp(-eta * grad)
    assert np.allclose(law.egd_step(q0, eta, L_t=L0), want / want.sum(), atol=1e-8)
    with pytest.raises(FitError, match="sums to 1.4"):
        law.egd_step(np.array([0.7, 0.7, 0.0]), eta, L_t=L0)


def test_log_linear_dynamic_law_accepts_losses_below_one_nat():
    rng = np.random.default_rng(4)
    A = np.diag([0.05, 0.04])
    P_t = rng.dirichlet(np.ones(2), size=6)
    L_t = np.full((6, 2), 0.6)
    law = LogLinearDynamicLaw().fit(P_t, L_t, L_t * np.exp(-P_t @ A.T))
    assert np.allclose(law.A_, A)
    assert law.greedy_mixture(np.array([0.5, 0.9])).sum() == pytest.approx(1.0)


def test_dynamic_law_shape_errors_name_the_array():
    rng = np.random.default_rng(2)
    P_t, L_t = sweep(3, 6, rng)
    law = LinearDynamicLaw().fit(P_t, L_t, L_t - 0.1 * P_t)
    with pytest.raises(FitError, match=r"^P_t has shape \(6, 2\) but the law has m=3"):
        law.predict(P_t[:, :2], L_t)
    with pytest.raises(FitError, match=r"^L_t has shape \(6, 2\) but the law has m=3"):
        law.predict(P_t, L_t[:, :2])
    with pytest.raises(FitError, match=r"^L_t has shape \(5, 3\) but 6 rows"):
        law.predict(P_t, L_t[:5])
    with pytest.raises(FitError, match=r"^L_next has shape \(5, 3\) but 6 rows"):
        law.score(P_t, L_t, L_t[:5])
    with pytest.raises(FitError, match=r"^L_next has shape \(6, 2\) but the law has m=3"):
        law.score(P_t, L_t, L_t[:, :2])
    with pytest.raises(FitError, match=r"^L_next has shape \(6, 2\) but the law has m=3"):
        LinearDynamicLaw().fit(P_t, L_t, L_t[:, :2])
    with pytest.raises(FitError, match=r"^P_t has negative proportions in row 0"):
        LinearDynamicLaw().fit(-P_t, L_t, L_t)
    with pytest.raises(FitError, match=r"^L_t\[0, 0\] = -1.0"):
        LogLinearDynamicLaw().fit(P_t, -np.ones_like(L_t), L_t)
    log_law = LogLinearDynamicLaw().fit(P_t, L_t, L_t * np.exp(-0.1 * P_t))
    with pytest.raises(FitError, match=r"^p has shape \(1, 2\) but the law has m=3"):
        log_law.egd_step(np.array([0.5, 0.5]), 0.1, L_t=L_t[0])


def test_dynamic_law_rank_check_is_relative_to_the_design_scale_and_says_what_to_do():
    rng = np.random.default_rng(8)
    A = np.array([[0.1, 0.02], [0.01, 0.07]])
    P_t = rng.dirichlet(np.ones(2), size=5)
    L_t = np.full((5, 2), 3.0)
    tiny = 1e-12 * P_t  # e.g. allocations in units that make them tiny: still full rank
    zero = np.zeros((5, 2))  # losses at 0 so that the tiny decreases are not lost to rounding
    assert np.allclose(LinearDynamicLaw().fit(tiny, zero, zero - tiny @ A.T).A_, A)
    a, b = rng.uniform(1e3, 1e4, 6), rng.uniform(1e3, 1e4, 6)
    counts = np.column_stack([a, b, a + b])  # token counts whose third column is the sum of the others
    with pytest.raises(FitError, match=r"rank 2 < 3; sweep at least m linearly independent mixtures"):
        LinearDynamicLaw().fit(counts, np.full((6, 3), 3.0), np.full((6, 3), 2.9))
    same = np.full((3, 2), 0.5)
    with pytest.raises(FitError, match=r"rank 1 < 2; sweep at least m linearly independent"):
        LinearDynamicLaw().fit(same, np.full((3, 2), 3.0), np.full((3, 2), 2.9))
    with pytest.raises(FitError, match="collinear with P_t .* use fit_intercept=False"):
        LinearDynamicLaw(fit_intercept=True).fit(P_t, L_t, L_t - 0.1)


def test_law_state_round_trips_through_json_and_refusals_leave_the_law_as_it_was():
    import json

    rng = np.random.default_rng(9)
    P_t, L_t = sweep(2, 5, rng)
    law = LinearDynamicLaw().fit(P_t, L_t, L_t - P_t @ np.diag([0.1, 0.05]).T)
    state = json.loads(json.dumps(law.state_dict()))
    restored = LinearDynamicLaw().load_state_dict(state)
    assert isinstance(restored.A_, np.ndarray) and restored.A_.dtype == float
    assert restored.n_groups_ == 2 and isinstance(restored.n_groups_, int) and isinstance(restored.rank_, int)
    assert np.array_equal(restored.predict(P_t, L_t), law.predict(P_t, L_t))

    with pytest.raises(FitError, match=r"state_dict is for law 'LinearDynamicLaw', not LogLinearDynamicLaw"):
        LogLinearDynamicLaw().load_state_dict(state)
    with pytest.raises(FitError, match=r"state_dict is for law \[1, 2\]"):
        LinearDynamicLaw().load_state_dict([1, 2])
    broken = {**state, "fitted": {k: v for k, v in state["fitted"].items() if k != "A_"}}
    with pytest.raises(FitError, match=r"lacks fitted attributes \['A_'\]"):
        restored.load_state_dict(broken)
    with pytest.raises(FitError, match="unknown hyperparameter 'alpha'"):
        restored.load_state_dict({**state, "params": {"fit_intercept": True, "alpha": 1}})
    assert restored.is_fitted and restored.fit_intercept is False  # nothing was half-loaded
    assert np.array_equal(restored.predict(P_t, L_t), law.predict(P_t, L_t))

    unfitted = restored.load_state_dict(LinearDynamicLaw(fit_intercept=True).state_dict())
    assert not unfitted.is_fitted and unfitted.fit_intercept is True
    assert not LinearDynamicLaw().load_state_dict({"law": "LinearDynamicLaw"}).is_fitted


# ------------------------------------------------------------- what mutation testing found unpinned (5th session)
def test_r2_is_per_group_around_each_groups_own_mean():
    # two groups with very different mean losses: R²_i must use group i's mean, not the pooled one
    Y = np.array([[1.0, 10.0], [2.0, 11.0], [3.0, 13.0]])
    Y_hat = np.array([[1.1, 10.2], [1.9, 11.1], [3.2, 12.6]])
    scores = regression_scores(Y, Y_hat)
    for i in range(2):
        ss_res = np.sum((Y[:, i] - Y_hat[:, i]) ** 2)
        ss_tot = np.sum((Y[:, i] - Y[:, i].mean()) ** 2)
        assert scores["r2_per_group"][i] == pytest.approx(1 - ss_res / ss_tot)
    assert scores["r2"] == pytest.approx(np.mean(scores["r2_per_group"]))


def test_static_law_refuses_off_simplex_or_mis_shaped_inputs_naming_them():
    rng = np.random.default_rng(0)
    A, b, c = true_static_law(3, rng)
    P = rng.dirichlet(np.ones(3), size=12)
    law = LogLinearStaticLaw().fit(P, static_losses(P, A, b, c))
    with pytest.raises(FitError, match=r"^P row 0 = .* sums to 2, not 1"):
        law.predict(2 * P[:1])
    with pytest.raises(FitError, match=r"^P has shape \(1, 2\) but the law has m=3 groups"):
        law.predict(P[:1, :2])
    with pytest.raises(FitError, match=r"^P row 0 .* sums to"):
        LogLinearStaticLaw().fit(2 * P, static_losses(P, A, b, c))
    with pytest.raises(FitError, match=r"^L has shape \(13, 3\) but 12 rows are needed"):
        LogLinearStaticLaw().fit(P, np.vstack([static_losses(P, A, b, c), np.ones((1, 3))]))
    L = static_losses(P, A, b, c)
    with pytest.raises(FitError, match=r"^L has shape \(11, 3\) but 12 rows are needed"):
        law.score(P, L[:11])
    with pytest.raises(FitError, match=r"^L has shape \(12, 2\) but the law has m=3 groups"):
        law.score(P, L[:, :2])


@pytest.mark.parametrize("key, good, bad", [
    ("delta", 1e-9, 0.0),
    ("n_restarts", 1, 0), ("n_restarts", 1, 2.0), ("n_restarts", 1, True),
    ("n_refine", 1, 0),
    ("max_iter", 1, 0),
])
def test_static_law_hyperparameters_take_the_boundary_and_refuse_the_next_value(key, good, bad):
    rng = np.random.default_rng(1)
    A, b, c = true_static_law(2, rng)
    P = rng.dirichlet(np.ones(2), size=6)
    LogLinearStaticLaw(**{key: good}).fit(P, static_losses(P, A, b, c))
    with pytest.raises(ConfigError, match=rf"{key}|Huber delta"):
        LogLinearStaticLaw(**{key: bad}).fit(P, static_losses(P, A, b, c))


def test_log_linear_dynamic_law_names_the_first_non_positive_loss():
    law = LogLinearDynamicLaw()
    L_t = np.array([[2.0, 1.5], [0.5, 3.0]])
    L_next = np.array([[0.9, 1.4], [0.0, 2.9]])  # losses below 1 nat are fine; the 0.0 is not
    with pytest.raises(FitError, match=r"L_next\[1, 0\] = 0\.0; the log-linear dynamic law needs losses > 0"):
        law.fit(np.full((2, 2), 0.5), L_t, L_next)


def test_static_law_screening_objective_is_the_mean_huber_loss_of_its_prediction():
    # _fit_group ranks its restarts by this objective before refining the best: it must be the fit's own loss
    rng = np.random.default_rng(2)
    P = rng.dirichlet(np.ones(3), size=9)
    y = rng.uniform(2.0, 3.0, 9)
    thetas = np.column_stack([np.log(rng.uniform(0.5, 1.5, 5)), rng.normal(0, 1, 5), rng.normal(0, 2, (5, 3))])
    law = LogLinearStaticLaw(delta=0.3)
    pred = np.exp(thetas[:, :1]) + np.exp(thetas[:, 1:2] - thetas[:, 2:] @ P.T)
    r = pred - y[None, :]
    assert np.any(np.abs(r) < 0.3) and np.any(np.abs(r) > 0.3)  # both branches of the Huber loss are used
    huber = np.where(np.abs(r) <= 0.3, 0.5 * r**2, 0.3 * (np.abs(r) - 0.15))
    np.testing.assert_allclose(law._huber_np(thetas, P, y), huber.mean(axis=1), rtol=1e-12)
    # an overflowing exponent is clipped at 60 (exp(60) ≈ 1e26): a huge loss that ranks last, not an overflow
    wild = thetas.copy()
    wild[0, 1] = 1e4
    scores = law._huber_np(wild, P, y)
    r0 = np.exp(wild[0, 0]) + np.exp(60.0) - y
    assert scores[0] == pytest.approx(np.mean(0.3 * (r0 - 0.15))) and scores[0] > scores[1:].max()


def test_static_law_initial_points_sit_below_the_losses_and_match_their_level():
    from raymix.laws.static import _C_FRACTIONS

    rng = np.random.default_rng(3)
    P = rng.dirichlet(np.ones(3), size=10)
    y = rng.uniform(0.4, 0.9, 10)  # losses below 1 nat: the floor must scale with them
    law = LogLinearStaticLaw(n_restarts=40)
    thetas = law._initial_points(P, y, np.random.default_rng(0))
    assert thetas.shape == (40, 5)
    base, rand = thetas[: len(_C_FRACTIONS)], thetas[len(_C_FRACTIONS):]
    for f, theta in zip(_C_FRACTIONS, base):
        # the floor c0 = f·min(L), and log(L − c0) fitted by least squares on P (the prediction matches it)
        assert np.exp(theta[0]) == pytest.approx(f * y.min())
        w, *_ = np.linalg.lstsq(P, np.log(y - f * y.min()), rcond=None)
        np.testing.assert_allclose(theta[1] - P @ theta[2:], P @ w, atol=1e-10)
    # random restarts: a floor in [0, 0.995·min L) and β matching the mean reducible loss for their a
    c = np.exp(rand[:, 0])
    assert np.all(c < 0.995 * y.min())
    beta = np.array([np.mean(np.log(y - ci) + P @ t[2:]) for ci, t in zip(c, rand)])
    np.testing.assert_allclose(rand[:, 1], beta, rtol=1e-12)


def test_input_checks_quote_where_the_bad_entries_are():
    from raymix.laws.base import as_matrix, check_proportions

    assert as_matrix("P", [[1.0]]).shape == (1, 1)  # one run of one column is not empty
    X = np.ones((4, 3))
    X[1, 0] = np.nan
    with pytest.raises(FitError, match=r"^L of shape \(4, 3\) has NaN/inf entries at \(row, col\) \[\[1, 0\]\]"):
        as_matrix("L", X)
    X[:] = np.inf  # twelve bad entries: the first five are quoted
    with pytest.raises(FitError, match=r"\[\[0, 0\], \[0, 1\], \[0, 2\], \[1, 0\], \[1, 1\]\]; drop"):
        as_matrix("L", X)
    P = np.array([[0.0, 0.5, 0.5], [0.6, 0.5, -0.1]])
    with pytest.raises(FitError, match=r"^P has negative proportions in row 1: \[0\.6, 0\.5, -0\.1\]"):
        check_proportions("P", P, simplex=False)
