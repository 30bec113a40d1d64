"""The registry of mixing methods by name (a plain dict)."""

from __future__ import annotations

from typing import Any

from raymix.errors import MethodError
from raymix.methods.base import MixingMethod
from raymix.methods.online import Aioli, AioliDiagonal, AioliStatic, DoGE, DoReMi, SkillIt
from raymix.methods.optuna_search import OptunaSimplexSearch
from raymix.methods.population import PopulationBasedTraining
from raymix.methods.pruned import DataMixingLawsASHA, GridSearchASHA, OptunaASHA, RegMixASHA
from raymix.methods.stratified import Stratified
from raymix.methods.sweeps import DataMixingLaws, GridSearch, RegMix

METHODS: dict[str, type[MixingMethod]] = {
    cls.name: cls
    for cls in (Stratified, GridSearch, DataMixingLaws, SkillIt, DoReMi, DoGE, Aioli, AioliStatic, AioliDiagonal,
                RegMix, OptunaSimplexSearch, GridSearchASHA, DataMixingLawsASHA, RegMixASHA, OptunaASHA,
                PopulationBasedTraining)
}


def available_methods() -> list[str]:
    """Names of every registered method."""
    return list(METHODS)


def get_method(name: str, config: dict[str, Any] | None = None, **overrides: Any) -> MixingMethod:
    """Instantiate a method by name; unknown names raise :class:`MethodError` (a ValueError) listing them."""
    try:
        cls = METHODS[name]
    except KeyError:
        raise MethodError(f"unknown mixing method {name!r}; valid names: {available_methods()}") from None
    return cls(config, **overrides)


def register_method(cls: type[MixingMethod]) -> type[MixingMethod]:
    """Add a method class to the registry (usable as a decorator)."""
    if cls.name in METHODS and METHODS[cls.name] is not cls:
        raise MethodError(f"a different method is already registered as {cls.name!r}")
    METHODS[cls.name] = cls
    return cls
