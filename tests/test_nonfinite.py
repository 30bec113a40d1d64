"""Non-finite losses stop a run with a clear error: never a NaN in p, never "PPL nan" with exit 0."""

from __future__ import annotations

import numpy as np
import pytest

from raymix.cli import main
from raymix.errors import NonFiniteError
from raymix.methods import MixingProblem, get_method, run_method
from raymix.methods.driver import BackendSpec, LocalExecutor, RunDriver
from raymix.methods.handoff import aioli_config
from raymix.methods.runs import RunSpec
from raymix.sim import SimBackend


class Diverging(SimBackend):
    """The simulator whose losses turn NaN (or +inf) from ``bad_step`` on, in training or in evaluation."""

    bad_step = 10**9
    where = "evaluate"
    value = float("nan")

    def train(self, steps, mixture=None, *, counts=None):
        stats = super().train(steps, mixture, counts=counts)
        if self.where == "train" and self.step >= self.bad_step:
            stats.group_train_loss[0] = self.value
        return stats

    def evaluate(self, split="val", *, max_examples=None):
        out = super().evaluate(split, max_examples=max_examples)
        if self.where == "evaluate" and self.step >= self.bad_step:
            out = out.copy()
            out[1] = self.value
        return out


def _aioli_driver(where: str, bad_step: int, value: float = float("nan")) -> RunDriver:
    problem = MixingProblem(groups=("github", "c4"), total_steps=2000, aioli={"rounds": 5, "sweeps": 2})
    spec = RunSpec(name="final", policy="aioli", policy_config=aioli_config(problem).to_dict(), steps=2000,
                   total_steps=2000)
    backend = Diverging.from_preset("two_group_interacting", total_steps=2000)
    backend.where, backend.bad_step, backend.value = where, bad_step, value
    return RunDriver(spec, backend)


@pytest.mark.parametrize("where, bad_step, value, needle", [
    ("evaluate", 810, float("nan"), "the val loss became non-finite"),           # inside round 3's LearnParams
    ("train", 810, float("inf"), "the training loss of a LearnParams segment"),     # a segment's own batches
    ("train", 1000, float("nan"), "the training loss became non-finite"),        # the p^t part of a round
])
def test_nan_in_aioli_stops_the_run_and_never_reaches_p(where, bad_step, value, needle):
    driver = _aioli_driver(where, bad_step, value)
    with pytest.raises(NonFiniteError, match=f"run 'final' stopped: {needle}") as e:
        driver.run_to_end()
    assert "lower the learning rate" in str(e.value)
    p = driver.policy.updater.p
    assert np.isfinite(p).all() and np.isclose(p.sum(), 1)
    assert all(np.isfinite(h.mixture).all() for h in driver.history)
    assert driver.history and driver.history[-1].step < 2000


def test_nan_in_the_final_evaluation_is_not_reported_as_a_result():
    problem = MixingProblem(groups=("github", "c4"), total_steps=500, rounds=2)

    class LateNaN(LocalExecutor):
        def build_backend(self, spec):
            b = Diverging.from_preset("two_group_interacting", total_steps=spec.total_steps)
            b.where, b.bad_step = "evaluate", 500
            return b

    with pytest.raises(NonFiniteError, match="run 'final' stopped: the val loss"):
        run_method(get_method("stratified"), problem, LateNaN(BackendSpec()))


def test_diverging_model_run_exits_2_not_ppl_nan(make_shards, tmp_path, capsys):
    shards = make_shards(groups=("a", "b"), seq_len=17)
    rc = main(["run", "--method", "stratified", "--data", str(shards), "--steps", "20", "--rounds", "2",
               "--lr", "1e6", "--executor", "local", "--out", str(tmp_path / "o"),
               "--train", '{"warmup_steps": 0, "eval_examples": 4, "min_lr": 1e5}'])
    cap = capsys.readouterr()
    assert rc == 2 and "became non-finite" in cap.err and "nan" not in cap.out.lower()
    assert not (tmp_path / "o" / "results").exists()  # no result file for a diverged run
