"""DoReMi's and DoGE's A^t as the LMO framework reads them (paper App. B.2, Props. 2–3), smoothed over the last
100 proxy steps as for Fig. 3 (App. C.2)."""

from __future__ import annotations

import numpy as np
import pytest

from raymix.analysis import similarity
from raymix.backend import ProxySignals
from raymix.methods.policies import build_policy


def _doremi_steps(policy, n: int, rng: np.random.Generator) -> list[np.ndarray]:
    excess = []
    for step in range(n):
        L = rng.uniform(2.0, 4.0, 2)
        R = L - rng.uniform(-0.5, 1.0, 2)
        policy._rule(ProxySignals(step=step, lr=1e-3, train_loss=L, reference_loss=R))
        excess.append(np.maximum(L - R, 0.0))
    return excess


def test_doremi_reports_the_diagonal_excess_loss_averaged_over_100_steps():
    policy = build_policy("doremi", {}, ("a", "b"), stop_step=1000)
    excess = _doremi_steps(policy, 150, np.random.default_rng(0))
    colsums = policy._smoothed_colsums()
    np.testing.assert_allclose(colsums, np.mean(excess[-100:], axis=0))
    A = np.asarray(policy._interactions(colsums))
    np.testing.assert_allclose(A, np.diag(colsums))  # off-diagonal 0 (Prop. 2)
    # the window survives a checkpoint: a resumed proxy reports the same A^t
    again = build_policy("doremi", {}, ("a", "b"), stop_step=1000)
    again.load_state_dict(policy.state_dict())
    np.testing.assert_allclose(again._smoothed_colsums(), colsums)


def test_doge_reports_column_sums_from_the_gradient_alignment():
    policy = build_policy("doge", {}, ("a", "b"), stop_step=1000)
    align = [np.array([0.2, -0.1]) * (1 + 0.01 * k) for k in range(30)]
    for k, a in enumerate(align):
        policy._rule(ProxySignals(step=k, lr=1e-3, train_loss=np.array([3.0, 3.0]), alignment=a,
                                  grad_norm=np.array([1.0, 1.0])))
    np.testing.assert_allclose(policy._smoothed_colsums(), np.mean(align, axis=0))
    assert policy._interactions(policy._smoothed_colsums()) is None  # the matrix itself is never observed
    # column sums compare with a full A* directly
    A_star = np.array([[0.3, 0.0], [0.0, -0.05]])
    assert similarity(policy._smoothed_colsums(), A_star) == pytest.approx(similarity(np.diag([0.2, -0.1]), A_star))
