"""Tune searchers that treat the mixture p as the hyperparameter (paper §3.3.1 and §7).

* :class:`DMLSearcher` — Data Mixing Laws as a ``ray.tune.search.Searcher``: suggests ≥ m+1 static
  sweep runs over a cover of the simplex, fits the log-linear static law to their final per-group
  validation losses (Huber + L-BFGS, :class:`raymix.laws.LogLinearStaticLaw`) and then suggests one more
  trial at the law's optimum; after that it is finished.  Use with ``num_samples = runs + 1``.
* :func:`simplex_space` — a search space of m−1 unit-interval parameters that
  :class:`~raymix.tune.trainable.MixingTrainable` maps to the simplex by stick-breaking, so Tune's
  ``OptunaSearch`` (TPE/GP) and other searchers optimise p directly.

Both produce the standard :class:`MixingTrainable` config, built from a template run (:func:`static_trial`).
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
from ray import tune
from ray.tune.search import Searcher

from raymix.config import check_range
from raymix.errors import ConfigError
from raymix.laws import LogLinearStaticLaw
from raymix.methods.driver import BackendSpec, backend_groups
from raymix.methods.handoff import ROUND_EVAL_EXAMPLES
from raymix.methods.runs import RunSpec
from raymix.simplex import default_cover

U_PREFIX = "simplex_u"


def static_trial(groups: tuple[str, ...] | list[str], steps: int, *, total_steps: int | None = None, seed: int = 0,
                 rounds: int = 10, mixture: list[float] | None = None, name: str = "static",
                 backend: BackendSpec | None = None) -> dict[str, Any]:
    """A MixingTrainable config for one static-mixture run (``mixture`` None = set by a searcher).

    ``groups`` must be the groups of the data ``backend`` trains on, in the data's order (the order of
    every proportion vector); anything else raises :class:`~raymix.errors.ConfigError` here, before a
    trial starts.  ``backend_groups(backend)`` (``raymix.methods.driver``) lists them.
    """
    backend = backend or BackendSpec()
    check_groups(groups, backend)
    m = len(groups)
    p = [1.0 / m] * m if mixture is None else [float(x) for x in mixture]
    spec = RunSpec(name=name, policy="static",
                   policy_config={"mixture": p, "rounds": min(rounds, steps), "eval_examples": ROUND_EVAL_EXAMPLES},
                   steps=steps, total_steps=total_steps or steps, seed=seed, role="search", tags={"mixture": p})
    return {"trial": {"run": spec.to_dict(), "handoff": None, "reference": None},
            "backend": backend.to_dict()}


def check_groups(groups: tuple[str, ...] | list[str], backend: BackendSpec) -> None:
    """Raise ConfigError unless ``groups`` are exactly the groups of ``backend``'s data, in its order."""
    have = tuple(backend_groups(backend))
    if tuple(groups) == have:
        return
    where = f"the shards at {backend.shards!r}" if backend.kind == "model" else f"simulator scenario {backend.scenario!r}"
    missing = [g for g in groups if g not in have]
    why = f"{missing} not in the data" if missing else (
        "a different set" if set(groups) != set(have) else "a different order")
    raise ConfigError(f"groups {list(groups)!r} do not match {where}, whose groups are {list(have)!r} ({why}); "
                      f"pass groups={have!r} (raymix.methods.driver.backend_groups(backend) lists them)")


def with_mixture(config: dict[str, Any], p, name: str | None = None, role: str | None = None) -> dict[str, Any]:
    """A copy of a static-trial config training on ``p``."""
    cfg = copy.deepcopy(config)
    run = cfg["trial"]["run"]
    run["policy_config"]["mixture"] = [float(x) for x in p]
    run["tags"] = {**run.get("tags", {}), "mixture": [float(x) for x in p]}
    if name:
        run["name"] = name
    if role:
        run["role"] = role
    return cfg


def simplex_space(m: int) -> dict[str, Any]:
    """``{"simplex_u0": tune.uniform(0, 1), …}`` — m−1 parameters the trainable maps to p by stick-breaking."""
    if m < 2:
        raise ConfigError(f"a simplex search needs m >= 2 groups, got {m}")
    return {f"{U_PREFIX}{k}": tune.uniform(0.0, 1.0) for k in range(m - 1)}


def mixture_from_space(config: dict[str, Any], m: int) -> list[float] | None:
    """The stick-breaking mixture of a config produced by :func:`simplex_space`, or None."""
    if f"{U_PREFIX}0" not in config:
        return None
    from raymix.methods.optuna_search import stick_breaking

    us = [config.get(f"{U_PREFIX}{k}") for k in range(m - 1)]
    for k, u in enumerate(us):
        check_range(f"{U_PREFIX}{k}", u, 0.0, 1.0)  # a searcher's value outside [0, 1] is not a stick fraction
    return [float(x) for x in stick_breaking(us)]


class DMLSearcher(Searcher):
    """Data Mixing Laws as a Tune searcher (see the module docstring).

    Args:
        template: a static-trial config (:func:`static_trial`) whose mixture the searcher sets.
        groups: group names (order of the law's parameters).
        runs: sweep runs (≥ m+1; paper: 10).
        seed: seed of the simplex cover and the law fit.
    """

    def __init__(self, template: dict[str, Any], groups: list[str] | tuple[str, ...], runs: int = 10, seed: int = 0,
                 metric: str | None = None, mode: str | None = None) -> None:
        super().__init__(metric=metric, mode=mode)
        self.groups = list(groups)
        check_groups(self.groups, BackendSpec.from_dict(template.get("backend") or {}))
        m = len(self.groups)
        if runs < m + 1:
            raise ConfigError(f"DML needs at least m+1 = {m + 1} sweep runs to fit its law, got runs={runs}")
        self.template = template
        self.points = default_cover(m, runs, seed=seed)
        self.seed = seed
        self._issued: dict[str, int] = {}
        self._losses: dict[int, list[float]] = {}
        self._final_issued = False
        self.law: LogLinearStaticLaw | None = None
        self.optimum: np.ndarray | None = None

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        n = len(self._issued)
        if n < len(self.points):
            self._issued[trial_id] = n
            return with_mixture(self.template, self.points[n], name=f"dml-{n:02d}")
        if self._final_issued:
            return Searcher.FINISHED
        if len(self._losses) < len(self.points):
            return None  # wait for the sweep to finish
        P = np.asarray(self.points, dtype=float)
        L = np.asarray([self._losses[i] for i in range(len(self.points))], dtype=float)
        self.law = LogLinearStaticLaw(seed=self.seed).fit(P, L)
        self.optimum = np.asarray(self.law.optimal_mixture(), dtype=float)
        self._final_issued = True
        return with_mixture(self.template, self.optimum, name="dml-optimum", role="final")

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
        if trial_id not in self._issued or error or not result:
            return
        steps = int(self.template["trial"]["run"]["steps"])
        if int(result.get("step", steps)) < steps:
            raise ConfigError(f"DMLSearcher: trial {trial_id} stopped at step {result.get('step')} of {steps} (a trial "
                              "scheduler stopped it); the law is fitted on every sweep run's final losses, so run it "
                              "without a scheduler, or use the registry method 'dml_asha', which fits at a common step")
        try:
            self._losses[self._issued[trial_id]] = [float(result[f"val_loss/{g}"]) for g in self.groups]
        except KeyError as e:
            raise ConfigError(f"DMLSearcher needs per-group final validation losses 'val_loss/<group>' in the "
                              f"trial's last result; missing {e}") from None
