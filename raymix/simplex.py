"""Covers of the probability simplex for static sweeps (grid search, DML; paper §4.1 and App. D).

* m = 2: the regular grid ``p_1 ∈ {0.1, …, 0.9}`` (:func:`simplex_grid_2`).
* m ≥ 3: draw ``oversample · n`` points from Dirichlet(α) and hierarchically merge the closest pair into
  its centroid until ``n`` remain (:func:`dirichlet_cover`), so the sweep holds no near-duplicate
  mixtures.  α = 1 for m = 3 and 1.5 for larger m (paper §4.1: 1.5 for m = 7).
"""

from __future__ import annotations

import numpy as np

from raymix.errors import ConfigError

__all__ = ["default_alpha", "default_cover", "dirichlet_cover", "simplex_grid_2"]


def _int_at_least(name: str, v: object, lo: int) -> int:
    if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < lo:
        raise ConfigError(f"{name} must be an int >= {lo}, got {v!r}")
    return int(v)


def simplex_grid_2(step: float = 0.1) -> np.ndarray:
    """Interior grid of the 2-simplex: rows ``[k·step, 1 − k·step]`` for ``k = 1 … 1/step − 1``.

    Args:
        step: spacing in (0, 0.5] that divides 1 exactly (0.1 → 9 rows, the paper's m=2 sweep).

    Returns:
        ``(1/step − 1, 2)`` array, first column increasing.
    """
    if not isinstance(step, (int, float)) or not np.isfinite(step) or not 0 < step <= 0.5:
        raise ConfigError(f"grid step must be a number in (0, 0.5], got {step!r}")
    k = round(1.0 / step)
    if abs(k * step - 1.0) > 1e-9:
        raise ConfigError(f"grid step must divide 1 exactly (e.g. 0.1, 0.05, 0.25), got {step!r}")
    x = np.arange(1, k) / k
    return np.column_stack([x, 1.0 - x])


def dirichlet_cover(m: int, n: int, alpha: float = 1.0, oversample: int = 4, seed: int = 0) -> np.ndarray:
    """``n`` well-spread mixtures of m groups (paper App. D).

    Draws ``oversample · n`` points from Dirichlet(α·1_m) and runs centroid-linkage agglomeration: the
    closest pair of clusters (Euclidean distance between centroids) is merged into the centroid of all
    points it contains, until ``n`` clusters remain.  Centroids of simplex points stay on the simplex.

    Args:
        m: number of groups (≥ 2).
        n: number of mixtures wanted (≥ 1).
        alpha: Dirichlet concentration (> 0); 1 is uniform on the simplex, larger concentrates at the centre.
        oversample: draws per returned point (≥ 1; 1 returns the raw draws).
        seed: the result is a deterministic function of all arguments.

    Returns:
        ``(n, m)`` array, rows on the simplex, in a deterministic order (lexicographic, descending).
    """
    m = _int_at_least("number of groups m", m, 2)
    n = _int_at_least("number of mixtures n", n, 1)
    oversample = _int_at_least("oversample", oversample, 1)
    if not isinstance(alpha, (int, float)) or not np.isfinite(alpha) or alpha <= 0:
        raise ConfigError(f"Dirichlet alpha must be a finite number > 0, got {alpha!r}")
    rng = np.random.default_rng(seed)
    pts = rng.dirichlet(np.full(m, float(alpha)), size=n * oversample)
    centroids = [p for p in pts]
    sizes = [1] * len(centroids)
    while len(centroids) > n:
        C = np.asarray(centroids)
        d = np.linalg.norm(C[:, None, :] - C[None, :, :], axis=-1)
        np.fill_diagonal(d, np.inf)
        i, j = np.unravel_index(int(np.argmin(d)), d.shape)
        i, j = min(i, j), max(i, j)
        merged = (sizes[i] * centroids[i] + sizes[j] * centroids[j]) / (sizes[i] + sizes[j])
        centroids[i], sizes[i] = merged, sizes[i] + sizes[j]
        del centroids[j], sizes[j]
    out = np.asarray(centroids)
    out = out / out.sum(axis=1, keepdims=True)  # remove rounding drift
    order = np.lexsort(out.T[::-1])[::-1]
    return out[order]


def default_alpha(m: int) -> float:
    """Dirichlet α of the paper's sweeps: 1.0 for m = 3, 1.5 for m ≥ 4 (paper §4.1 uses 1.5 at m = 7)."""
    m = _int_at_least("number of groups m", m, 3)
    return 1.0 if m == 3 else 1.5


def default_cover(m: int, n: int | None = None, seed: int = 0) -> np.ndarray:
    """The paper's sweep P for m groups.

    * m = 2: ``n`` evenly spaced interior points ``p_1 = k/(n+1)``; the default ``n=None`` gives the paper's
      9-point grid 0.1 … 0.9.
    * m ≥ 3: :func:`dirichlet_cover` with :func:`default_alpha` and 4× oversampling; ``n=None`` gives 10.

    Returns:
        ``(n, m)`` array of mixtures, deterministic for a seed.
    """
    m = _int_at_least("number of groups m", m, 2)
    if m == 2:
        if n is None:
            return simplex_grid_2(0.1)
        n = _int_at_least("number of mixtures n", n, 1)
        x = np.arange(1, n + 1) / (n + 1)
        return np.column_stack([x, 1.0 - x])
    n = 10 if n is None else _int_at_least("number of mixtures n", n, 1)
    return dirichlet_cover(m, n, alpha=default_alpha(m), oversample=4, seed=seed)
