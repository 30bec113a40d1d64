"""The Ray Tune edge of raymix: the trainable, the phase executor and the mixture searchers.

    from ray import tune
    from raymix.tune import MixingTrainable, static_trial, with_mixture, DMLSearcher, simplex_space

This is the only package that imports ``ray.tune``.
"""

from raymix.tune.executor import TuneExecutor, TuneSettings, ensure_ray
from raymix.tune.searchers import DMLSearcher, simplex_space, static_trial, with_mixture
from raymix.tune.trainable import MixingTrainable, load_state, save_state

__all__ = ["DMLSearcher", "MixingTrainable", "TuneExecutor", "TuneSettings", "ensure_ray", "load_state",
           "save_state", "simplex_space", "static_trial", "with_mixture"]
