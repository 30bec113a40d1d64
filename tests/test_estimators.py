"""Estimators: LearnParams maths, normalizations, Aioli update, Skill-It, DoReMi, DoGE (pure numpy)."""

from __future__ import annotations

import numpy as np
import pytest

from raymix.errors import ConfigError, FitError, MixtureError, RaymixError
from raymix.estimators import (
    NORMALIZATIONS,
    AioliUpdater,
    DoGEWeights,
    DoReMiWeights,
    LearnParamsAccumulator,
    SkillItUpdater,
    alignment_scores,
    colsum_sign_agreement,
    learn_params,
    normalize,
    reachable_range,
    segment_counts,
    segment_order,
    skills_graph,
    smoothed_onehots,
)
from raymix.estimators.normalization import max_colsum_spread

# --- LearnParams building blocks -----------------------------------------------------------------------


def test_smoothed_onehots_columns_and_symmetry():
    P = smoothed_onehots(3, 0.75)
    np.testing.assert_allclose(P[:, 1], [0.25, 0.5, 0.25])
    np.testing.assert_allclose(P, P.T)
    np.testing.assert_allclose(P.sum(axis=0), 1.0)


@pytest.mark.parametrize("mode", ["shuffle", "permutations"])
def test_segment_order_contains_k_copies(mode):
    order = segment_order(4, 3, np.random.default_rng(0), mode)
    assert order.shape == (12,)
    np.testing.assert_array_equal(np.bincount(order, minlength=4), [3, 3, 3, 3])
    if mode == "permutations":
        for r in range(3):
            assert sorted(order[4 * r:4 * r + 4]) == [0, 1, 2, 3]


def test_segment_order_bad_mode():
    with pytest.raises(ConfigError, match="permutations"):
        segment_order(2, 2, np.random.default_rng(0), "random")


def test_segment_counts_authors_seven_group_case():
    # The authors' 7-group config produced [6, 1, 1, 1, 1, 1, -3]; ours must be valid.
    P = smoothed_onehots(7, 0.75)
    for j in range(7):
        c = segment_counts(P[:, j], 8)
        assert c.sum() == 8 and c.min() >= 1
        assert c[j] == c.max()


def test_segment_counts_property_over_random_inputs():
    rng = np.random.default_rng(0)
    for _ in range(2000):
        m = int(rng.integers(1, 10))
        B = int(rng.integers(m, 40))
        p = rng.dirichlet(np.full(m, rng.uniform(0.05, 3)))
        if rng.random() < 0.3 and m > 1:  # exact zeros must stay zero
            p[rng.integers(m)] = 0.0
            p /= p.sum()
        c = segment_counts(p, B)
        assert c.dtype.kind == "i"
        assert c.sum() == B
        assert c.min() >= 0
        assert np.all(c[p > 0] >= 1), (p, B, c)
        assert np.all(c[p == 0] == 0)
        # Within one of the quota, plus one per group lifted from a zero quota.
        assert np.all(np.abs(c - p * B) < 1 + np.sum((p > 0) & (p * B < 1)) + 1e-9)


def test_segment_counts_errors():
    with pytest.raises(ConfigError, match="smaller than the number of groups"):
        segment_counts(np.full(7, 1 / 7), 6)
    with pytest.raises(MixtureError, match="summing to 1"):
        segment_counts([0.5, 0.6], 8)
    with pytest.raises(ConfigError, match="integer"):
        segment_counts([0.5, 0.5], 8.5)


def test_learnparams_recovers_exact_linear_law():
    rng = np.random.default_rng(1)
    m, k, eps = 3, 2, 0.75
    A_true = rng.normal(0.1, 0.5, size=(m, m)) + np.eye(m)
    P = smoothed_onehots(m, eps)
    acc = LearnParamsAccumulator(m, k, eps)
    L = np.array([4.0, 3.0, 5.0])
    for j in segment_order(m, k, rng):
        after = L - A_true @ P[:, j]  # linear dynamic law, one segment
        acc.record(j, L, after)
        L = after
    np.testing.assert_allclose(acc.beta(), A_true @ P)
    np.testing.assert_allclose(acc.solve(), A_true, atol=1e-12)
    D = acc.solve(diagonal=True)
    np.testing.assert_allclose(np.diag(D), np.diag(A_true @ P) / np.diag(P))
    assert np.count_nonzero(D - np.diag(np.diag(D))) == 0


def test_learnparams_with_realized_segment_mixtures():
    m, k, eps, B = 3, 1, 0.75, 8
    C = np.stack([segment_counts(smoothed_onehots(m, eps)[:, j], B) for j in range(m)], axis=1) / B
    A_true = np.array([[1.0, 0.2, -0.1], [0.3, 0.8, 0.0], [0.1, 0.1, 1.2]])
    acc = LearnParamsAccumulator(m, k, eps, segment_mixtures=C)
    for j in range(m):
        acc.record(j, np.zeros(m), -A_true @ C[:, j])
    np.testing.assert_allclose(acc.solve(), A_true, atol=1e-12)


def test_learnparams_errors_and_state_roundtrip():
    acc = LearnParamsAccumulator(2, 2, 0.5)
    acc.record(0, [1.0, 1.0], [0.9, 0.95])
    with pytest.raises(FitError, match=r"recorded per mixture \[1, 0\]"):
        acc.solve()
    with pytest.raises(FitError, match="finite"):
        acc.record(1, [1.0, np.nan], [0.9, 0.9])
    with pytest.raises(ConfigError, match="segment group j"):
        acc.record(2, [1.0, 1.0], [0.9, 0.9])
    acc.record(0, [0.9, 0.95], [0.8, 0.9])
    with pytest.raises(FitError, match="already recorded"):
        acc.record(0, [1.0, 1.0], [0.9, 0.9])
    with pytest.raises(ConfigError, match=r"\[0, 1\)"):
        LearnParamsAccumulator(2, 2, 1.0)
    other = LearnParamsAccumulator(2, 2, 0.5)
    other.load_state_dict(acc.state_dict())
    for a in (acc, other):
        a.record(1, [1.0, 1.0], [0.97, 0.9])
        a.record(1, [1.0, 1.0], [0.98, 0.92])
    np.testing.assert_array_equal(acc.solve(), other.solve())


# --- normalizations ------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", sorted(set(NORMALIZATIONS) - {"none"}))
def test_normalizations_scale_invariant(method):
    rng = np.random.default_rng(2)
    for _ in range(20):
        A = rng.normal(size=(4, 4))
        c = float(rng.uniform(1e-4, 1e4))
        np.testing.assert_allclose(normalize(c * A, method), normalize(A, method), rtol=1e-10, atol=1e-14)


def test_none_is_not_scale_invariant_and_shift_sum_values():
    A = np.array([[0.2, -0.1], [0.0, 0.3]])
    assert not np.allclose(normalize(2 * A, "none"), normalize(A, "none"))
    S = normalize(A, "shift_sum")
    np.testing.assert_allclose(S, (A + 0.1) / (A + 0.1).sum())
    assert S.min() >= 0 and np.isclose(S.sum(), 1)
    np.testing.assert_allclose(np.abs(normalize(A, "abs_sum")).sum(), 1)
    np.testing.assert_allclose(np.linalg.norm(normalize(A, "frobenius")), 1)
    np.testing.assert_array_equal(normalize(np.full((2, 2), -1.0), "shift_sum"), np.zeros((2, 2)))


def test_normalize_errors():
    with pytest.raises(ConfigError, match="valid names"):
        normalize(np.eye(2), "l2")
    with pytest.raises(FitError, match="square"):
        normalize(np.ones((2, 3)))
    with pytest.raises(FitError, match="finite"):
        normalize(np.array([[np.nan, 0], [0, 1]]))


def test_shift_sum_ema_bound_m2_paper_range():
    lo, hi = reachable_range([0.5, 0.5], 0.2, "shift_sum", gamma=0.5)
    np.testing.assert_allclose(lo, 1 / (1 + np.e ** 0.2))
    np.testing.assert_allclose(hi, np.e ** 0.2 / (1 + np.e ** 0.2))
    assert 0.45 < lo[0] < 0.4502 and 0.5498 < hi[0] < 0.55


@pytest.mark.parametrize("m,gamma", [(2, 0.5), (3, 0.1), (5, 0.9)])
def test_shift_sum_ema_bound_holds_for_any_matrices(m, gamma):
    rng = np.random.default_rng(m)
    eta = 0.3
    p0 = rng.dirichlet(np.ones(m))
    lo, hi = reachable_range(p0, eta, "shift_sum", gamma=gamma)
    upd = AioliUpdater(p0, eta, gamma=gamma, normalization="shift_sum")
    for t in range(300):
        A = rng.normal(size=(m, m)) * rng.uniform(0.01, 100)
        if t % 3 == 0:  # adversarial: all mass in one column
            A = np.zeros((m, m))
            A[:, t % m] = 1.0
        p = upd.update(A)
        assert np.all(p >= lo - 1e-12) and np.all(p <= hi + 1e-12)
    if m == 2:  # tight for m = 2: a repeated one-column matrix drives p to the bound
        upd = AioliUpdater(p0, eta, gamma=gamma, normalization="shift_sum")
        for _ in range(60):
            p = upd.update(np.array([[0.0, 1.0], [0.0, 2.0]]))
        assert p[1] == pytest.approx(hi[1], rel=1e-9) and p[0] == pytest.approx(lo[0], rel=1e-9)


def test_reachable_range_without_ema_grows_with_rounds():
    lo1, hi1 = reachable_range([0.5, 0.5], 0.2, gamma=None, rounds=1)
    lo20, hi20 = reachable_range([0.5, 0.5], 0.2, gamma=None, rounds=20)
    assert hi20[0] > hi1[0] and lo20[0] < lo1[0]
    assert max_colsum_spread("none", 3) == float("inf")
    lo, hi = reachable_range([0.5, 0.5], 0.2, "none")
    np.testing.assert_array_equal(hi, [1.0, 1.0])
    with pytest.raises(ConfigError, match="simplex"):
        reachable_range([0.7, 0.7], 0.2)


# --- Aioli proportion update ----------------------------------------------------------------------------


def test_aioli_updater_no_ema_matches_hand_values():
    A1 = np.array([[0.3, 0.1], [0.0, 0.2]])
    A2 = np.array([[0.1, 0.0], [0.2, 0.1]])
    upd = AioliUpdater([0.5, 0.5], 0.5, normalization="none")
    upd.update(A1)
    p = upd.update(A2)
    logits = np.log([0.5, 0.5]) + 0.5 * (A1.sum(0) + A2.sum(0))
    np.testing.assert_allclose(p, np.exp(logits) / np.exp(logits).sum())


def test_aioli_updater_ema_matches_hand_values_and_state():
    A = [np.array([[0.3, 0.1], [0.0, 0.2]]), np.array([[0.1, 0.0], [0.2, 0.1]]), np.eye(2)]
    upd = AioliUpdater([0.6, 0.4], 1.0, gamma=0.25, normalization="shift_sum")
    upd.update(A[0])
    clone = AioliUpdater([0.5, 0.5], 0.1)
    clone.load_state_dict(upd.state_dict())
    for u in (upd, clone):
        u.update(A[1])
        u.update(A[2])
    N = [normalize(a, "shift_sum") for a in A]
    E = 0.75 * N[2] + 0.25 * (0.75 * N[1] + 0.25 * N[0])
    logits = np.log([0.6, 0.4]) + E.sum(0)
    np.testing.assert_allclose(upd.p, np.exp(logits) / np.exp(logits).sum())
    np.testing.assert_array_equal(upd.p, clone.p)
    assert upd.rounds == clone.rounds == 3


def test_colsum_sign_agreement_values():
    # Group 0 above the round's mean in every round, group 1 below in 3 of 4, group 2 up and down equally often.
    c = np.array([[0.5, 0.1, 0.4], [0.5, 0.1, 0.4], [0.5, 0.3, 0.2], [0.4, 0.4, 0.2]])
    np.testing.assert_allclose(colsum_sign_agreement(c), [1.0, 0.5, 0.0])
    np.testing.assert_allclose(colsum_sign_agreement(c[:1]), [1.0, 1.0, 1.0])
    np.testing.assert_allclose(colsum_sign_agreement(c + 7.0), [1.0, 0.5, 0.0])  # only differences count
    with pytest.raises(FitError, match="rounds"):
        colsum_sign_agreement(np.zeros((0, 3)))


def test_aioli_updater_errors():
    with pytest.raises(ConfigError, match="gamma"):
        AioliUpdater([0.5, 0.5], 0.1, gamma=1.0)
    with pytest.raises(ConfigError, match="valid names"):
        AioliUpdater([0.5, 0.5], 0.1, normalization="max")
    with pytest.raises(MixtureError, match="summing to 1"):
        AioliUpdater([0.5, 0.6], 0.1)
    with pytest.raises(FitError, match="shape"):
        AioliUpdater([0.5, 0.5], 0.1).update(np.eye(3))


# --- Skill-It -------------------------------------------------------------------------------------------


def _skill_tables():
    start = {"code": {"code": 4.0, "web": 5.0, "books": 4.5},
             "web": {"code": 4.0, "web": 5.0, "books": 4.5},
             "books": {"code": 4.0, "web": 5.0, "books": 4.5}}
    end = {"code": {"code": 2.0, "web": 4.5, "books": 4.4},
           "web": {"code": 3.6, "web": 3.0, "books": 3.6},
           "books": {"code": 3.9, "web": 4.0, "books": 2.7}}
    return start, end


def test_skills_graph_values_and_name_indexing():
    start, end = _skill_tables()
    groups = ["code", "web", "books"]
    A = skills_graph(start, end, groups)
    # A[i, j]: evaluated group i, run trained on j.
    assert A[0, 0] == pytest.approx((4.0 - 2.0) / 4.0)
    assert A[1, 0] == pytest.approx((5.0 - 4.5) / 5.0)
    assert A[0, 1] == pytest.approx((4.0 - 3.6) / 4.0)
    assert A[2, 2] == pytest.approx((4.5 - 2.7) / 4.5)
    # Permuting the dicts' insertion order changes nothing.
    rs = {k: dict(reversed(list(v.items()))) for k, v in reversed(list(start.items()))}
    re_ = {k: dict(reversed(list(v.items()))) for k, v in reversed(list(end.items()))}
    np.testing.assert_array_equal(skills_graph(rs, re_, groups), A)
    # A different group order permutes rows and columns together.
    perm = ["books", "code", "web"]
    idx = [groups.index(g) for g in perm]
    np.testing.assert_array_equal(skills_graph(start, end, perm), A[np.ix_(idx, idx)])


def test_skills_graph_errors():
    start, end = _skill_tables()
    with pytest.raises(ConfigError, match="'math'"):
        skills_graph(start, end, ["code", "web", "books", "math"])
    bad = {k: dict(v) for k, v in start.items()}
    del bad["web"]["books"]
    with pytest.raises(ConfigError, match="no loss for group 'books'"):
        skills_graph(bad, end, ["code", "web", "books"])
    with pytest.raises(ConfigError, match="unknown groups"):
        skills_graph(start, end, ["code", "web"])
    zero = {k: {**v, "code": 0.0} for k, v in start.items()}
    with pytest.raises(FitError, match="must be > 0"):
        skills_graph(zero, end, ["code", "web", "books"])


def test_skill_it_window_update_and_state():
    G = np.array([[0.5, 0.1], [0.2, 0.4]])
    upd = SkillItUpdater(G, eta=0.2, window=2)
    losses = [np.array([3.0, 4.0]), np.array([2.8, 3.9]), np.array([2.7, 3.7])]
    upd.update(losses[0])
    clone = SkillItUpdater(G, eta=0.2, window=2)
    clone.load_state_dict(upd.state_dict())
    upd.update(losses[1])
    p = upd.update(losses[2])
    clone.update(losses[1])
    np.testing.assert_array_equal(clone.update(losses[2]), p)
    score = G.T @ (losses[1] + losses[2])  # only the last `window` loss vectors count
    expect = np.exp(0.2 * score) / np.exp(0.2 * score).sum()
    np.testing.assert_allclose(p, expect)
    with pytest.raises(ConfigError, match="window"):
        SkillItUpdater(G, 0.2, window=0)
    with pytest.raises(FitError, match="finite"):
        upd.update([np.nan, 1.0])


# --- DoReMi ---------------------------------------------------------------------------------------------


def test_doremi_hand_values_absent_group_and_average():
    d = DoReMiWeights(3, eta=0.5, smoothing=0.1)
    w1 = d.update(np.array([3.0, 2.0, np.nan]), np.array([2.0, 2.5, 1.0]))
    lam = np.array([1.0, 0.0, 0.0])
    raw = np.exp(np.log(np.full(3, 1 / 3)) + 0.5 * lam)
    exp1 = 0.9 * raw / raw.sum() + 0.1 / 3
    np.testing.assert_allclose(w1, exp1)
    # Group 0 absent now: it keeps λ_0 = 1; group 2 present with excess 0.5.
    w2 = d.update(np.array([np.nan, 2.0, 1.5]), np.array([np.nan, 2.5, 1.0]))
    lam2 = np.array([1.0, 0.0, 0.5])
    raw2 = np.exp(np.log(exp1) + 0.5 * lam2)
    exp2 = 0.9 * raw2 / raw2.sum() + 0.1 / 3
    np.testing.assert_allclose(w2, exp2)
    np.testing.assert_allclose(d.average(), (exp1 + exp2) / 2)
    e = DoReMiWeights(3, eta=0.5, smoothing=0.1)
    e.load_state_dict(d.state_dict())
    np.testing.assert_array_equal(e.update([2.0, 2.0, 2.0], [1.0, 1.0, 1.0]),
                                  d.update([2.0, 2.0, 2.0], [1.0, 1.0, 1.0]))
    np.testing.assert_array_equal(e.average(), d.average())


def test_doremi_errors():
    with pytest.raises(ConfigError, match="eta"):
        DoReMiWeights(2, eta=0.0)
    d = DoReMiWeights(2)
    with pytest.raises(FitError, match="shape"):
        d.update([1.0, 2.0, 3.0], [1.0, 2.0])
    with pytest.raises(FitError, match="not finite"):
        d.update([1.0, 2.0], [np.nan, 2.0])


# --- DoGE -----------------------------------------------------------------------------------------------


def test_alignment_scores():
    G = np.array([[1.0, 0.0, 2.0], [0.0, 3.0, 4.0]])
    v = np.array([1.0, 1.0, 0.5])
    a, n = alignment_scores(G, v)
    np.testing.assert_allclose(a, [2.0, 5.0])
    np.testing.assert_allclose(n, [np.sqrt(5), 5.0])
    with pytest.raises(FitError, match="shape"):
        alignment_scores(G, v[:2])


def test_doge_hand_values_clip_and_state():
    d = DoGEWeights(3, mu=0.01)
    lr = 1e-3
    align = np.array([2.0, -1.0, 100.0])
    norm = np.array([1.0, 2.0, 3.0])
    raw = lr * align / (2.0 + 1e-6)
    s = np.clip(raw, 0.0, 5 * lr)
    np.testing.assert_allclose(d.scores(align, norm, lr), s)
    assert s[1] == 0.0 and s[2] == 5 * lr  # negative alignment clipped to 0, large to 5·lr
    w = d.update(align, norm, lr)
    expect = np.exp(s / 0.01) / np.exp(s / 0.01).sum()
    np.testing.assert_allclose(w, expect)
    e = DoGEWeights(3, mu=0.01)
    e.load_state_dict(d.state_dict())
    np.testing.assert_array_equal(e.update(align, norm, lr), d.update(align, norm, lr))
    np.testing.assert_allclose(d.average(), (expect + d.weights) / 2)
    with pytest.raises(ConfigError, match="mu"):
        DoGEWeights(2, mu=0.0)
    with pytest.raises(FitError, match="finite"):
        d.update([np.inf, 0.0, 0.0], norm, lr)


def test_every_error_is_a_raymix_error():
    for exc in (ConfigError, FitError, MixtureError):
        assert issubclass(exc, RaymixError)


def test_learnparams_reuses_each_segments_evaluation_as_the_next_ones_before():
    """K = m·k segments cost K + 1 evaluations, and segment j+1's "before" is segment j's "after"."""
    from raymix.sim import SimBackend

    class Counting(SimBackend):
        def evaluate(self, split="val", **kw):
            out = super().evaluate(split, **kw)
            self.seen.append(out.copy())
            return out

    b = Counting.from_preset("three_group", seed=0)
    b.seen = []
    acc, last = learn_params(b, 2, 0.75, np.random.default_rng(0), 3)
    assert len(b.seen) == 3 * 2 + 1
    assert np.array_equal(last, b.seen[-1])
    # β summed over all segments telescopes to (first evaluation − last evaluation) for every group
    assert np.allclose(acc.beta().sum(axis=1) * 2, b.seen[0] - b.seen[-1])


# --- targeted at mutants that survived `mutmut run "raymix.estimators*"` (docs/TESTING.md) --------------------
class _LinearBackend:
    """Validation losses fall by exactly A*·(trained mixture) per step: LearnParams must recover A* exactly
    when it solves with the mixtures it actually trained (whole examples of a batch)."""

    def __init__(self, A_star: np.ndarray, batch_size: int = 8) -> None:
        self.A, self.batch_size, self.m = A_star, batch_size, A_star.shape[0]
        self.loss = np.full(self.m, 5.0)
        self.trained: list[np.ndarray] = []

    def evaluate(self, split: str, max_examples: int | None = None) -> np.ndarray:
        return self.loss.copy()

    def train(self, steps: int, counts: np.ndarray) -> None:
        p = np.asarray(counts, dtype=float) / self.batch_size
        self.trained.append(p)
        self.loss = self.loss - steps * self.A @ p


def test_learn_params_solves_with_the_mixtures_actually_trained():
    from raymix.estimators.aioli import learn_params, smoothed_onehots

    A_star = np.array([[0.30, 0.02, -0.05], [0.01, 0.20, 0.00], [0.04, -0.02, 0.10]])
    backend = _LinearBackend(A_star, batch_size=7)
    acc, last = learn_params(backend, 2, 0.75, np.random.default_rng(0), 3)
    np.testing.assert_allclose(acc.solve(), 3 * A_star, atol=1e-12)  # β is a segment's drop: 3 steps of A*·p
    # a batch of 7 cannot hold the smoothed one-hot (0.5, 0.25, 0.25) exactly, so the realised mixtures differ from the nominal ones
    nominal = smoothed_onehots(3, 0.75)
    assert min(np.abs(p - nominal[:, j]).max() for p in backend.trained for j in range(3)) > 0.01
    np.testing.assert_allclose(last, backend.loss)


def test_round_schedule_validates_its_inputs_and_covers_the_span_exactly():
    from raymix.estimators.aioli import round_schedule

    plans = round_schedule(100, 1103, rounds=7, delta=0.2, m=2, k=4)
    lengths = [p.end - p.start for p in plans]
    assert plans[0].start == 100 and plans[-1].end == 1103 and sum(lengths) == 1003
    assert max(lengths) - min(lengths) == 1 and [p.index for p in plans] == list(range(7))
    assert all(a.end == b.start for a, b in zip(plans, plans[1:]))
    # edges that are allowed: one step per round; LearnParams budget exactly K
    assert [p.end - p.start for p in round_schedule(0, 3, rounds=3, delta=0.99, m=1, k=1)] == [1, 1, 1]
    exact = round_schedule(0, 100, rounds=1, delta=0.08, m=2, k=4)  # round(0.08·100) = 8 = K
    assert exact[0].segment_steps == 1
    for bad in ({"rounds": 0}, {"rounds": 2.5}, {"rounds": True}, {"k": 0}, {"k": 1.5}, {"delta": 0.0},
                {"delta": 1.0}, {"delta": 1.5}):
        kwargs = {"rounds": 2, "delta": 0.5, "m": 2, "k": 1, **bad}
        with pytest.raises(ConfigError):
            round_schedule(0, 1000, **kwargs)


def test_sign_agreement_compares_columns_within_each_round():
    from raymix.estimators.aioli import colsum_sign_agreement

    # group 0 is above the round's mean every round, although the rounds' overall levels differ a lot
    c = np.array([[10.0, 9.0], [0.2, 0.1], [5.5, 5.0]])
    np.testing.assert_allclose(colsum_sign_agreement(c), [1.0, 1.0])
    np.testing.assert_allclose(colsum_sign_agreement([[1, 0], [0, 1]]), [0.0, 0.0])


def test_normalizations_keep_nonnegative_matrices_unshifted_and_map_zero_to_zero():
    from raymix.estimators.normalization import abs_sum, frobenius, shift_sum

    A = np.array([[0.5, 0.7], [0.9, 0.6]])  # min 0.5 ≥ 0: no shift, just divided by the sum
    np.testing.assert_allclose(shift_sum(A), A / A.sum())
    for f in (shift_sum, abs_sum, frobenius):
        out = f(np.zeros((2, 2)))
        assert out.shape == (2, 2) and np.all(out == 0)


def test_skills_graph_accepts_losses_below_one_and_refuses_bad_group_lists():
    from raymix.estimators.skill_it import skills_graph

    start = {a: {b: 0.8 for b in "xy"} for a in "xy"}  # losses below 1 nat are legitimate
    end = {"x": {"x": 0.4, "y": 0.7}, "y": {"x": 0.8, "y": 0.6}}
    np.testing.assert_allclose(skills_graph(start, end, ["x", "y"]), [[0.5, 0.0], [0.125, 0.25]])
    for groups in ([], ["x", "x"]):
        with pytest.raises(ConfigError):
            skills_graph(start, end, groups)


def test_alignment_scores_refuse_any_non_finite_gradient():
    from raymix.estimators.doge import alignment_scores

    G, v = np.ones((2, 3)), np.ones(3)
    for bad_G, bad_v in ((np.array([[1, np.nan, 0], [1, 1, 1]]), v), (G, np.array([np.inf, 0, 0]))):
        with pytest.raises(RaymixError):
            alignment_scores(bad_G, bad_v)


def test_column_sum_spread_bounds_per_normalization():
    assert max_colsum_spread("shift_sum", 1) == max_colsum_spread("abs_sum", 1) == 1.0
    assert max_colsum_spread("frobenius", 3) == pytest.approx(np.sqrt(6))
    assert max_colsum_spread("none", 2) == float("inf")
