"""How well do the mixing laws fit real sweeps? (paper §4.2, App. C.1, Table 5 / Tables 6, 7, 9).

Input is a list of run records — what a Tune sweep yields, one record per trial — and output is a
``pandas.DataFrame`` with one row per (setting, law): MSE and R² averaged over the independent fits in
that setting (seeds for static laws; seeds × starting mixtures for dynamic laws), as the paper reports.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from raymix.errors import FitError
from raymix.laws import LinearDynamicLaw, LogLinearDynamicLaw, LogLinearStaticLaw
from raymix.laws.base import regression_scores

__all__ = ["DYNAMIC_LAWS", "dynamic_law_fit_table", "leave_one_out", "static_law_fit_table"]

#: Dynamic laws by the name used in the table's ``law`` column.
DYNAMIC_LAWS: dict[str, Callable[[], Any]] = {
    "linear_dynamic": LinearDynamicLaw,
    "log_linear_dynamic": LogLinearDynamicLaw,
}

_COLUMNS = ["setting", "law", "mse", "r2", "n_fits", "n_runs", "m", "mse_per_group", "r2_per_group"]


def _records(runs: Iterable[Mapping[str, Any]] | pd.DataFrame, required: Sequence[str]) -> list[dict[str, Any]]:
    rows = runs.to_dict("records") if isinstance(runs, pd.DataFrame) else [dict(r) for r in runs]
    if not rows:
        raise FitError("no runs given; pass one record per training run")
    for k, r in enumerate(rows):
        missing = [key for key in required if key not in r]
        if missing:
            raise FitError(f"run record {k} {r!r} lacks key(s) {missing}; every record needs {list(required)}")
    return rows


def _vector(r: Mapping[str, Any], key: str, k: int) -> np.ndarray:
    try:
        v = np.asarray(r[key], dtype=float).ravel()
    except (TypeError, ValueError):
        raise FitError(f"run record {k} field {key!r} = {r[key]!r} is not a list of numbers") from None
    return v


def _stack(rows: list[dict[str, Any]], key: str, idx: list[int]) -> np.ndarray:
    vecs = [_vector(rows[k], key, k) for k in idx]
    sizes = {v.size for v in vecs}
    if len(sizes) != 1:
        raise FitError(f"field {key!r} has different lengths {sorted(sizes)} within one setting; one value per group")
    return np.vstack(vecs)


def _group(rows: list[dict[str, Any]], keys: Sequence[str]) -> dict[tuple, list[int]]:
    out: dict[tuple, list[int]] = {}
    for k, r in enumerate(rows):
        gk = tuple(_hashable(r.get(key)) for key in keys)
        out.setdefault(gk, []).append(k)
    return out


def _hashable(v: Any) -> Any:
    if isinstance(v, (list, tuple, np.ndarray)):
        return tuple(np.round(np.asarray(v, dtype=float).ravel(), 12).tolist())
    return v


def _summarize(setting: Any, law: str, scores: list[dict[str, Any]], n_runs: int, m: int) -> dict[str, Any]:
    return {
        "setting": setting,
        "law": law,
        "mse": float(np.mean([s["mse"] for s in scores])),
        "r2": float(np.mean([s["r2"] for s in scores])),
        "n_fits": len(scores),
        "n_runs": n_runs,
        "m": m,
        "mse_per_group": np.mean([s["mse_per_group"] for s in scores], axis=0).tolist(),
        "r2_per_group": np.mean([s["r2_per_group"] for s in scores], axis=0).tolist(),
    }


def static_law_fit_table(
    runs: Iterable[Mapping[str, Any]] | pd.DataFrame,
    *,
    law_factory: Callable[[], LogLinearStaticLaw] = LogLinearStaticLaw,
) -> pd.DataFrame:
    """Fit the log-linear static law per (setting, seed) and report in-sample MSE / R² (Table 5, row 1).

    Args:
        runs: records (dicts or DataFrame rows) with ``"setting"`` (any hashable, e.g. ``"arxiv/se"``),
            ``"p"`` (``m`` proportions of the static run), ``"loss"`` (``m`` final per-group validation
            losses) and optionally ``"seed"`` (fits are per seed, then averaged, as in App. C.1).
        law_factory: builds an unfitted law per fit (e.g. ``lambda: LogLinearStaticLaw(n_restarts=256)``).

    Returns:
        DataFrame with columns ``setting, law, mse, r2, n_fits, n_runs, m, mse_per_group, r2_per_group``,
        one row per setting in order of first appearance; ``law == "log_linear_static"``.
    """
    rows = _records(runs, ("setting", "p", "loss"))
    table = []
    for (setting,), idx in _group(rows, ("setting",)).items():
        scores = []
        m = 0
        for _, sub in _group([rows[k] for k in idx], ("seed",)).items():
            sel = [idx[k] for k in sub]
            P, L = _stack(rows, "p", sel), _stack(rows, "loss", sel)
            m = P.shape[1]
            law = law_factory().fit(P, L)
            scores.append(law.score(P, L))
        table.append(_summarize(setting, "log_linear_static", scores, len(idx), m))
    return pd.DataFrame(table, columns=_COLUMNS)


def leave_one_out(
    P: Any, L: Any, *, law_factory: Callable[[], LogLinearStaticLaw] = LogLinearStaticLaw
) -> dict[str, Any]:
    """Out-of-sample fit of the log-linear static law on one sweep: each run is predicted by the law fitted on
    the other runs (leave-one-out).

    Table 5 reports the in-sample fit, which says little when the sweep is small: the law has m + 2
    parameters per group, and the paper's grid search and DML sweep 10 runs for m = 7 (App. D).  What DML
    relies on is the law's prediction at a p it has not trained on; this measures that.

    Args:
        P: ``(n, m)`` proportions of the static runs.
        L: ``(n, m)`` their final per-group validation losses.
        law_factory: builds an unfitted law per fold.

    Returns:
        ``{"pred": (n, m) held-out predictions, "mse", "r2", "mse_per_group", "r2_per_group"}``; R² is the
        predictive R² (1 − PRESS / SS_tot, SS_tot about the mean of all n runs).  Needs n ≥ m + 2, so that
        every fold keeps the m + 1 runs the law needs.
    """
    P, L = np.asarray(P, dtype=float), np.asarray(L, dtype=float)
    if P.ndim != 2 or P.shape != L.shape:
        raise FitError(f"P and L must be (n, m) arrays of equal shape, got {P.shape} and {L.shape}")
    n, m = P.shape
    if n < m + 2:
        raise FitError(f"leave-one-out needs at least m+2={m + 2} runs for m={m} groups (each fold fits on "
                       f"n-1 >= m+1), got {n}; add static runs")
    pred = np.empty_like(L)
    for i in range(n):
        keep = np.arange(n) != i
        pred[i] = law_factory().fit(P[keep], L[keep]).predict(P[i:i + 1])[0]
    return {"pred": pred, **regression_scores(L, pred)}


def dynamic_law_fit_table(
    runs: Iterable[Mapping[str, Any]] | pd.DataFrame,
    *,
    laws: Sequence[str] = ("linear_dynamic", "log_linear_dynamic"),
) -> pd.DataFrame:
    """Fit the dynamic laws on one-round sweeps and report in-sample MSE / R² of ``L^{t+1}`` (Table 5, row 2).

    A sweep: train on ``p⁰`` up to step t, checkpoint, then run one round for each ``p^t ∈ P`` (App. C.1).
    One law is fitted per (setting, seed, p⁰); the metrics are averaged over those fits.

    Args:
        runs: records with ``"setting"``, ``"p"`` (``m`` proportions used in the round), ``"loss_t"``
            (``m`` losses at the checkpoint), ``"loss_next"`` (``m`` losses after the round) and optionally
            ``"p0"`` (the mixture trained on before t) and ``"seed"``.
        laws: names from :data:`DYNAMIC_LAWS`.

    Returns:
        DataFrame with the columns of :func:`static_law_fit_table`, one row per (setting, law).
    """
    unknown = [name for name in laws if name not in DYNAMIC_LAWS]
    if unknown or not laws:
        raise FitError(f"unknown dynamic law(s) {unknown or list(laws)}; valid names: {sorted(DYNAMIC_LAWS)}")
    rows = _records(runs, ("setting", "p", "loss_t", "loss_next"))
    table = []
    for (setting,), idx in _group(rows, ("setting",)).items():
        fits = []
        for _, sub in _group([rows[k] for k in idx], ("seed", "p0")).items():
            sel = [idx[k] for k in sub]
            fits.append((_stack(rows, "p", sel), _stack(rows, "loss_t", sel), _stack(rows, "loss_next", sel)))
        for name in laws:
            scores = [DYNAMIC_LAWS[name]().fit(*f).score(*f) for f in fits]
            table.append(_summarize(setting, name, scores, len(idx), fits[0][0].shape[1]))
    return pd.DataFrame(table, columns=_COLUMNS)
