"""Simplex covers for static sweeps (paper §4.1, App. D)."""

from __future__ import annotations

import numpy as np
import pytest

from raymix.errors import ConfigError
from raymix.simplex import default_alpha, default_cover, dirichlet_cover, simplex_grid_2


def min_pairwise_distance(X: np.ndarray) -> float:
    d = np.linalg.norm(X[:, None, :] - X[None, :, :], axis=-1)
    np.fill_diagonal(d, np.inf)
    return float(d.min())


def test_simplex_grid_2_is_the_paper_grid():
    G = simplex_grid_2()
    assert G.shape == (9, 2)
    assert np.allclose(G[:, 0], np.arange(1, 10) / 10)
    assert np.allclose(G.sum(axis=1), 1.0)
    assert simplex_grid_2(0.25).tolist() == [[0.25, 0.75], [0.5, 0.5], [0.75, 0.25]]
    with pytest.raises(ConfigError, match="0.3"):
        simplex_grid_2(0.3)
    with pytest.raises(ConfigError, match="0.7"):
        simplex_grid_2(0.7)


@pytest.mark.parametrize(("m", "n", "alpha"), [(3, 10, 1.0), (7, 10, 1.5), (4, 1, 1.0), (5, 25, 0.5)])
def test_dirichlet_cover_count_and_on_simplex(m, n, alpha):
    X = dirichlet_cover(m, n, alpha=alpha, seed=3)
    assert X.shape == (n, m)
    assert np.all(X >= 0) and np.allclose(X.sum(axis=1), 1.0, atol=1e-12)
    assert len({tuple(r) for r in np.round(X, 12)}) == n


def test_dirichlet_cover_is_deterministic_and_seed_dependent():
    a = dirichlet_cover(3, 10, seed=7)
    assert np.array_equal(a, dirichlet_cover(3, 10, seed=7))
    assert not np.allclose(a, dirichlet_cover(3, 10, seed=8))
    assert np.array_equal(default_cover(7, seed=1), default_cover(7, seed=1))


def test_dirichlet_cover_with_oversample_one_returns_the_raw_draws():
    raw = np.random.default_rng(4).dirichlet(np.ones(3), size=6)
    X = dirichlet_cover(3, 6, oversample=1, seed=4)
    assert sorted(map(tuple, np.round(X, 12))) == sorted(map(tuple, np.round(raw, 12)))


@pytest.mark.parametrize("m", [3, 7])
def test_merging_removes_near_duplicates(m):
    alpha = default_alpha(m)
    merged, raw = [], []
    for seed in range(30):
        merged.append(min_pairwise_distance(dirichlet_cover(m, 10, alpha=alpha, seed=seed)))
        draws = np.random.default_rng(10_000 + seed).dirichlet(np.full(m, alpha), size=10)
        raw.append(min_pairwise_distance(draws))
    assert np.mean(merged) > 1.3 * np.mean(raw)


def test_default_cover_follows_the_paper():
    assert np.array_equal(default_cover(2), simplex_grid_2(0.1))
    assert np.allclose(default_cover(2, n=3)[:, 0], [0.25, 0.5, 0.75])
    assert default_cover(3).shape == (10, 3)
    assert np.array_equal(default_cover(3, seed=2), dirichlet_cover(3, 10, alpha=1.0, oversample=4, seed=2))
    assert np.array_equal(default_cover(7, n=12, seed=2), dirichlet_cover(7, 12, alpha=1.5, oversample=4, seed=2))
    assert default_alpha(3) == 1.0 and default_alpha(7) == 1.5


def test_cover_bad_inputs():
    with pytest.raises(ConfigError, match="1"):
        default_cover(1)
    with pytest.raises(ConfigError, match="0"):
        dirichlet_cover(3, 0)
    with pytest.raises(ConfigError, match="-1.0"):
        dirichlet_cover(3, 5, alpha=-1.0)
    with pytest.raises(ConfigError, match="2.5"):
        dirichlet_cover(3, 5, oversample=2.5)
    with pytest.raises(ConfigError, match="True"):
        dirichlet_cover(True, 5)
