"""Mixing methods of the LMO framework and the machinery that runs them (no Ray here)."""

from raymix.methods.base import Executor, MethodResult, MixingMethod, MixingProblem, Phase, run_method
from raymix.methods.registry import METHODS, available_methods, get_method, register_method
from raymix.methods.runs import RoundReport, RunResult, RunSpec

__all__ = ["METHODS", "Executor", "MethodResult", "MixingMethod", "MixingProblem", "Phase", "RoundReport",
           "RunResult", "RunSpec", "available_methods", "get_method", "register_method", "run_method"]
