"""Tune trial schedulers for raymix phases: ``ASHAScheduler`` for pruned sweeps, ``PopulationBasedTraining``
for populations over the mixture.

The Ray-free descriptions live in :mod:`raymix.methods.schedules`; this module turns them into the real
Tune schedulers, with the same rungs / intervals and metric (``avg_val_loss``, reported by
:class:`~raymix.tune.trainable.MixingTrainable` at every round boundary):

* :func:`asha_scheduler` — ``ASHAScheduler(time_attr="training_iteration")``: one iteration is one mixing
  round, grace period and reduction factor as the phase's :class:`~raymix.methods.schedules.Pruning`.
  Rung values recorded by earlier phases of a sequential search (``Pruning.prior``) are entered into the
  scheduler's rungs before the first trial reports, so a batch of two trials is still cut against the
  whole search so far.
* :func:`pbt_scheduler` — ``PopulationBasedTraining(time_attr="step", synch=True)`` whose explore step is
  :func:`explore_mixture`: a perturbation of the donor's p on the simplex.  Exploit is Tune's: it restores
  the donor's checkpoint — raymix's own ``state.pt`` (model, optimizer, schedule, sampler, policy
  state, step counter) — into the member, under the perturbed config.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Any

import numpy as np
from ray.tune.schedulers import ASHAScheduler, PopulationBasedTraining

from raymix.methods.schedules import METRIC, MODE, Population, Pruning, interval_steps


def asha_scheduler(pruning: Pruning, max_rounds: int) -> ASHAScheduler:
    """Tune's ASHA with the rungs of ``pruning`` over runs of ``max_rounds`` rounds (one bracket)."""
    sched = ASHAScheduler(time_attr="training_iteration", metric=METRIC, mode=MODE, max_t=int(max_rounds),
                          grace_period=min(int(pruning.grace_rounds), int(max_rounds)),
                          reduction_factor=float(pruning.reduction_factor), brackets=1)
    if pruning.prior:
        # ASHA records (mode-signed) rewards per rung in a dict keyed by trial id; earlier phases' values go in
        # under their own keys so the cutoff of this phase sees them (ray.tune.schedulers.async_hyperband).
        for milestone, recorded in sched._brackets[0]._rungs:
            for i, v in enumerate(pruning.prior.get(str(math.ceil(milestone - 1e-9)), [])):
                recorded[f"prior-{i}"] = -float(v) if MODE == "min" else float(v)
    return sched


def explore_mixture(population: Population) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """PBT ``custom_explore_fn``: a copy of the donor's config training on a perturbed mixture."""
    rng = np.random.default_rng(int(population.seed))

    def explore(config: dict[str, Any]) -> dict[str, Any]:
        cfg = copy.deepcopy(config)
        run = cfg["trial"]["run"]
        p = [float(x) for x in population.explore(run["policy_config"]["mixture"], rng)]
        run["policy_config"]["mixture"] = p
        run["tags"] = {**run.get("tags", {}), "mixture": p}
        return cfg

    return explore


class MixturePBT(PopulationBasedTraining):
    """Tune's PBT whose exploit keeps the member's own run name.

    Tune builds an exploiting trial's new config from the *donor's* (``custom_explore_fn`` sees only that),
    so the member would from then on report, and name its checkpoints, as the donor: the progress display
    credited every member's steps to one run.  The member continues the donor's checkpoint under its own
    name (:meth:`raymix.methods.driver.RunDriver.load_state_dict` with ``exploit=True``)."""

    def _get_new_config(self, trial: Any, trial_to_clone: Any) -> tuple[dict, dict]:
        new_config, operations = super()._get_new_config(trial, trial_to_clone)
        new_config["trial"]["run"]["name"] = trial.config["trial"]["run"]["name"]
        return new_config, operations


def pbt_scheduler(population: Population, steps: int, rounds: int) -> PopulationBasedTraining:
    """Tune's synchronous PBT over the mixture, perturbing every ``interval_rounds`` rounds."""
    return MixturePBT(
        time_attr="step", metric=METRIC, mode=MODE,
        perturbation_interval=interval_steps(steps, rounds, population.interval_rounds),
        quantile_fraction=float(population.quantile), resample_probability=0.0,  # resampling is in explore
        custom_explore_fn=explore_mixture(population), synch=True, log_config=False)
