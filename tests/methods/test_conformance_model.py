"""Every registered method on a tiny real GPT-NeoX model over real (embedded) text: runs, reports,
checkpoints and resumes exactly; the restricted hand-off continues the truncated trial's model."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from raymix.methods import MixingProblem, available_methods, get_method, run_method
from raymix.methods.driver import BackendSpec, LocalExecutor, RunDriver, build_backend
from raymix.methods.runs import RunSpec

S = 40
AIOLI = {"rounds": 2, "sweeps": 1, "delta": 0.3, "eval_examples": 2}


@pytest.fixture(scope="module")
def backend_spec(tiny_model_spec) -> BackendSpec:
    return tiny_model_spec


def _problem(**kw) -> MixingProblem:
    return MixingProblem(groups=("books", "code", "speeches"), total_steps=S, rounds=2, aioli=AIOLI, **kw)


@pytest.mark.parametrize("name", available_methods())
def test_every_method_runs_on_a_tiny_model(name, backend_spec, tiny_baselines):
    cfg = {"runs": 4, "steps": 10} if name in ("grid_search", "dml", "regmix", "optuna") else None
    if name == "regmix":
        cfg["runs"] = 5
    if name.endswith("_asha"):
        cfg = {"runs": 5, "steps": 12, "rounds": 3, "grace_rounds": 1, "reduction_factor": 2}
        if name == "regmix_asha":
            cfg["fit_min_runs"] = 4
        if name == "optuna_asha":
            cfg["batch"] = 5
    if name == "pbt":
        cfg = {"population": 3, "rounds": 4}
    if name in ("skill_it",):
        cfg = {"graph_steps": 10}
    if name in ("doremi", "doge"):
        cfg = {"proxy_steps": 10}
    res = run_method(get_method(name, cfg), _problem(), LocalExecutor(backend_spec))
    final = res.final
    assert final.spec.steps == S and len(final.test_loss) == 3
    assert np.all(np.isfinite(final.test_loss))
    # 40 steps of ~120 tokens: every group's test loss must close at least half of the gap between uniform
    # guessing (log V; an untrained model) and the pooled unigram of the training split (measured: ~0.9 of it).
    for g, loss in zip(final.groups, final.test_loss):
        uniform, unigram = tiny_baselines[g]
        assert loss < uniform - 0.5 * (uniform - unigram), (g, loss, uniform, unigram)
    assert np.isclose(sum(res.mixture), 1.0)
    assert final.history and final.history[-1].step == S


def test_restricted_handoff_continues_the_truncated_model(backend_spec):
    ex = LocalExecutor(backend_spec)
    res = run_method(get_method("grid_search", {"runs": 3}), _problem(setting="restricted", with_aioli=True), ex)
    final = res.final
    short = res.runs[[r.spec.name for r in res.runs].index(final.spec.resume_from)]
    assert short.spec.steps == S // 20 and final.spec.policy == "aioli"
    assert final.history[0].step > short.spec.steps  # no S_init prefix retrained: the dynamic phase came first
    # the hand-off backend starts from the truncated trial's model and optimizer state, step counter included
    b = build_backend(backend_spec, final.spec)
    b.load_state_dict(ex.states[short.spec.name]["backend"])
    assert b.step == short.spec.steps


@pytest.mark.parametrize("policy,cfg", [
    ("static", {"mixture": [0.2, 0.3, 0.5], "rounds": 4}),
    ("aioli", {**AIOLI, "rounds": 2}),
    ("doge", {"rounds": 4}),
])
def test_model_run_resumes_exactly(policy, cfg, backend_spec):
    spec = RunSpec(name="r", policy=policy, policy_config=cfg, steps=S, total_steps=S, seed=1)

    def drive(rounds=None, state=None):
        d = RunDriver(spec, build_backend(backend_spec, spec))
        if state is not None:
            d.load_state_dict(copy.deepcopy(state))
        n = 0
        while not d.done and (rounds is None or n < rounds):
            d.round()
            n += 1
        return d

    full = drive()
    half = drive(rounds=1)
    state = copy.deepcopy(half.state_dict())
    resumed = drive(state=state)
    torch.testing.assert_close(torch.tensor(resumed.final_losses()[1]), torch.tensor(full.final_losses()[1]),
                               rtol=0, atol=1e-6)
    for a, b in zip(resumed.history, full.history):
        assert a.step == b.step
        np.testing.assert_allclose(a.mixture, b.mixture, atol=1e-9)
