"""Mixing laws of the LMO framework (paper eq. 2): how per-group losses depend on mixture proportions.

sklearn-style estimators: ``fit`` returns ``self``, learned attributes end in ``_``, ``predict`` before
``fit`` raises :class:`~raymix.errors.NotFittedError`, ``score`` returns MSE and R² (paper Table 5).
"""

from raymix.laws.base import MixingLaw, regression_scores
from raymix.laws.dynamic import LinearDynamicLaw, LogLinearDynamicLaw
from raymix.laws.static import LogLinearStaticLaw

__all__ = [
    "LinearDynamicLaw",
    "LogLinearDynamicLaw",
    "LogLinearStaticLaw",
    "MixingLaw",
    "regression_scores",
]
