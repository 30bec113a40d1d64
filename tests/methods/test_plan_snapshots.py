"""Every method's plan, run by run, against a reviewed snapshot (tests/methods/golden/plans.json).

A plan is the contract between a method and the executors: which runs it asks for, each one's policy and
configuration, steps and LR horizon, seed, role, hand-offs (``resume_from``, ``reference_from``), tags and
scheduler digest.  Mutation testing found many edits of that contract that no behavioural test noticed —
a plan that dropped its ``eval_examples``, evaluated every round of a one-round graph run, named a phase
differently (Tune's record is keyed by it), or gave a final run no seed — because the simulator's answers
barely move with them.  This test records each method's full plan on the simulator, in the three settings
(unrestricted; restricted; restricted with the Aioli hand-off), and compares it field by field with the
snapshot, numbers to 1e-6.

When a plan changes on purpose, regenerate the snapshot and review its diff like code:

    RAYMIX_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/methods/test_plan_snapshots.py
    git diff tests/methods/golden/plans.json
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from raymix.errors import ConfigError, MethodError
from raymix.methods import MixingProblem, get_method, run_method
from raymix.methods.base import Phase
from raymix.methods.driver import BackendSpec, LocalExecutor
from raymix.methods.registry import METHODS

GOLDEN = Path(__file__).parent / "golden" / "plans.json"
SETTINGS = {"unrestricted": ("unrestricted", False), "restricted": ("restricted", False),
            "aioli+": ("restricted", True)}
SCENARIO, S, SEED = "three_group", 1000, 3


class RecordingExecutor(LocalExecutor):
    """The in-process executor, recording every phase it is handed."""

    def __init__(self) -> None:
        super().__init__(BackendSpec(kind="sim", scenario=SCENARIO))
        self.phases: list[dict[str, Any]] = []

    def run_phase(self, phase: Phase, problem: MixingProblem):
        self.phases.append({"phase": phase.name, "pruning": _plain(phase.pruning),
                            "population": _plain(phase.population),
                            "runs": [dataclasses.asdict(s) for s in phase.runs]})
        return super().run_phase(phase, problem)


def method_config(name: str) -> dict[str, Any]:
    """Non-default values where a default would hide a dropped field: every evaluation size set to 5."""
    fields = {f.name for f in dataclasses.fields(METHODS[name].config_cls)}
    return {"eval_examples": 5} if "eval_examples" in fields else {}


def record(name: str, setting: str) -> list[dict[str, Any]] | str:
    budget, with_aioli = SETTINGS[setting]
    from raymix.sim import get_preset

    # Aioli with 10 rounds: at S = 1000 the paper's 20 leave Aioli+DoGE's rounds (after S_init = S/2) too short
    # for K = m·k segments, and the plan would only be a refusal
    problem = MixingProblem(groups=tuple(get_preset(SCENARIO).groups), total_steps=S, seed=SEED, setting=budget,
                            with_aioli=with_aioli, aioli={"rounds": 10})
    ex = RecordingExecutor()
    try:
        run_method(get_method(name, method_config(name)), problem, ex)
    except (ConfigError, MethodError) as e:  # a combination the method refuses (e.g. Aioli+Aioli): the refusal is the contract
        return f"refused: {str(e).split(';')[0]}"
    return ex.phases


def _plain(x: Any) -> Any:
    """JSON-able copy: tuples as lists, numpy scalars/arrays as Python numbers/lists, dataclasses (a phase's
    trial scheduler) as their fields."""
    def default(o: Any) -> Any:
        if dataclasses.is_dataclass(o):
            return dataclasses.asdict(o)
        return o.tolist() if hasattr(o, "tolist") else str(o)

    return json.loads(json.dumps(x, default=default))


def _compare(got: Any, want: Any, path: str) -> None:
    if isinstance(want, dict):
        assert isinstance(got, dict) and sorted(got) == sorted(want), f"{path}: keys {sorted(got)} != {sorted(want)}"
        for k in want:
            _compare(got[k], want[k], f"{path}.{k}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), f"{path}: {got!r} != {want!r}"
        for i, (g, w) in enumerate(zip(got, want)):
            _compare(g, w, f"{path}[{i}]")
    elif isinstance(want, float) and not isinstance(want, bool):
        assert isinstance(got, (int, float)) and np.isclose(got, want, rtol=1e-6, atol=1e-9), f"{path}: {got} != {want}"
    else:
        assert got == want, f"{path}: {got!r} != {want!r}"


CASES = [(name, setting) for name in METHODS for setting in SETTINGS]


@pytest.fixture(scope="module")
def golden() -> dict[str, Any]:
    if os.environ.get("RAYMIX_UPDATE_GOLDEN"):
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(json.dumps({f"{n}/{s}": _plain(record(n, s)) for n, s in CASES}, indent=1) + "\n")
    return json.loads(GOLDEN.read_text())


def test_the_snapshot_covers_every_method_and_setting(golden):
    assert sorted(golden) == sorted(f"{n}/{s}" for n, s in CASES)
    # the snapshot itself says what the paper says of the plans it holds
    gs = golden["grid_search/restricted"]
    assert gs[0]["phase"] == "gs" and len(gs[0]["runs"]) == 10
    assert all(r["steps"] == S // 20 and r["total_steps"] == S for r in gs[0]["runs"])  # S/20, full LR horizon
    assert golden["aioli/aioli+"].startswith("refused")
    assert not any(isinstance(v, str) for k, v in golden.items() if not k.startswith("aioli"))  # all plans run
    final = golden["doremi/unrestricted"][-1]["runs"][0]
    assert final["role"] == "final" and final["steps"] == S and final["seed"] == SEED


@pytest.mark.parametrize("name, setting", CASES, ids=[f"{n}-{s}" for n, s in CASES])
def test_plan_matches_the_snapshot(golden, name, setting):
    _compare(_plain(record(name, setting)), golden[f"{name}/{setting}"], f"{name}/{setting}")
