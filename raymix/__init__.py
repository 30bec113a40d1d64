"""raymix: language-model data mixing as hyperparameter optimization on Ray Tune.

Implements the Linear Mixing Optimization (LMO) framework and the Aioli method of Chen et al.,
"Aioli: A Unified Optimization Framework for Language Model Data Mixing" (ICLR 2025), with every
baseline of its tables.  The LMO core (laws, estimators, solvers, simulator) is pure numpy/torch;
Ray lives in ``raymix.tune`` and the data streaming code.
"""

from raymix.errors import RaymixError
from raymix.mixture import Mixture

__all__ = ["Mixture", "RaymixError", "__version__"]
__version__ = "0.1.0"
