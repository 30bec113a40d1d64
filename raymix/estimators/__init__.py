"""Parameter estimation per method (LMO framework, paper §3): how each method sets A^t.

* :mod:`~raymix.estimators.aioli` — LearnParams (Algorithm 2) and Aioli's update (Algorithm 1, App. D);
* :mod:`~raymix.estimators.normalization` — A^t → Ā^t;
* :mod:`~raymix.estimators.skill_it` — skills graph and online Skill-It;
* :mod:`~raymix.estimators.doremi` — DoReMi excess-loss weights;
* :mod:`~raymix.estimators.doge` — DoGE gradient-alignment weights.
"""

from raymix.estimators.aioli import (
    AioliRun,
    AioliUpdater,
    LearnParamsAccumulator,
    RoundPlan,
    colsum_sign_agreement,
    learn_params,
    round_schedule,
    run_aioli,
    segment_counts,
    segment_order,
    smoothed_onehots,
)
from raymix.estimators.doge import DoGEWeights, alignment_scores
from raymix.estimators.doremi import DoReMiWeights
from raymix.estimators.normalization import NORMALIZATIONS, normalize, reachable_range
from raymix.estimators.skill_it import SkillItUpdater, skills_graph

__all__ = [
    "learn_params",
    "NORMALIZATIONS",
    "AioliRun",
    "AioliUpdater",
    "DoGEWeights",
    "DoReMiWeights",
    "LearnParamsAccumulator",
    "RoundPlan",
    "SkillItUpdater",
    "alignment_scores",
    "colsum_sign_agreement",
    "normalize",
    "reachable_range",
    "round_schedule",
    "run_aioli",
    "segment_counts",
    "segment_order",
    "skills_graph",
    "smoothed_onehots",
]
