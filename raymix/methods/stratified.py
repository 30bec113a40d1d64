"""Stratified sampling: p_i = 1/m for every group, no extra runs (the paper's baseline)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from raymix.config import Config
from raymix.methods.base import MixingMethod, MixingProblem, Plan
from raymix.methods.handoff import static_run


@dataclass
class StratifiedConfig(Config):
    """Stratified sampling has no hyperparameters."""


class Stratified(MixingMethod):
    """Stratified sampling: p = 1/m for the whole run, no extra runs (the paper's baseline)."""

    name = "stratified"
    config_cls = StratifiedConfig
    extra_runs = "0"

    def plan(self, problem: MixingProblem) -> Plan:
        return static_run("final", np.full(problem.m, 1.0 / problem.m), problem)
        yield  # a generator that plans no phase
