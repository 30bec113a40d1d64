"""Fault tolerance on Ray Tune: trials killed with SIGKILL resume from their round checkpoints, interrupted
experiments continue from where they stopped; both end exactly where an uninterrupted run ends."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from ray import cloudpickle

from raymix.experiment import ExperimentConfig, result_path, run_experiment
from raymix.methods import MixingProblem, get_method, run_method
from raymix.methods.driver import BackendSpec, LocalExecutor
from raymix.methods.runs import RunResult
from raymix.tune.executor import TuneExecutor, TuneSettings
from raymix.tune.trainable import MixingTrainable

pytestmark = pytest.mark.ray
# The instrumented trainables below live in this test module, which Ray workers cannot import: ship them by value.
cloudpickle.register_pickle_by_value(sys.modules[__name__])

AIOLI = {"rounds": 5, "sweeps": 2}


class _Faulty:
    """Wraps a backend; ``train`` calls of a chosen kind ("counts" = a LearnParams segment, "mixture" = the rest
    of a round) may kill the process part-way (SIGKILL), once per marker file."""

    def __init__(self, inner: Any, plan: list[dict[str, Any]], log: str) -> None:
        self._inner, self._plan, self._log = inner, plan, log
        self._calls = {"counts": 0, "mixture": 0}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def train(self, steps: int, mixture=None, *, counts=None):
        kind = "counts" if counts is not None else "mixture"
        self._calls[kind] += 1
        for kill in self._plan:
            if kill["kind"] == kind and self._calls[kind] == kill["call"] and not os.path.exists(kill["marker"]):
                done = max(0, min(int(steps) - 1, kill["after"]))
                if done:
                    self._inner.train(done, mixture=mixture, counts=counts)
                Path(kill["marker"]).write_text(str(self._inner.step))
                with open(self._log, "a") as fh:
                    fh.write(json.dumps({"event": "kill", "kind": kind, "step": self._inner.step}) + "\n")
                os.kill(os.getpid(), signal.SIGKILL)
        return self._inner.train(steps, mixture=mixture, counts=counts)


def faulty_trainable(plan: list[dict[str, Any]], log: str) -> type[MixingTrainable]:
    class FaultyTrainable(MixingTrainable):
        def _setup(self, config):
            super()._setup(config)
            self.driver.backend = _Faulty(self.driver.backend, plan, log)
            with open(log, "a") as fh:
                fh.write(json.dumps({"event": "setup", "run": self.spec.name}) + "\n")

        def load_checkpoint(self, checkpoint):
            super().load_checkpoint(checkpoint)
            with open(log, "a") as fh:
                fh.write(json.dumps({"event": "restore", "run": self.spec.name, "step": self.driver.backend.step}) + "\n")

    return FaultyTrainable


def _events(log: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in log.read_text().splitlines()] if log.exists() else []


def _same_run(a: RunResult, b: RunResult) -> None:
    """Bit-exact: every round's step, proportions, losses and A^t, and the final per-group losses."""
    assert [h.to_dict() for h in a.history] == [h.to_dict() for h in b.history]
    assert a.val_loss == b.val_loss and a.test_loss == b.test_loss


def test_sigkilled_aioli_trial_resumes_from_its_round_checkpoint_bit_exact(ray_runtime, tmp_path):
    problem = MixingProblem(groups=("github", "c4"), total_steps=2000, aioli=AIOLI)
    reference = run_method(get_method("aioli"), problem, LocalExecutor(BackendSpec())).final

    rng = np.random.default_rng(7)
    K = 2 * AIOLI["sweeps"]  # LearnParams segments per round
    seg_call = int(rng.integers(K + 1, 3 * K))  # a segment of round 2 or 3 (after a round checkpoint)
    mix_call = int(rng.integers(2, 4))  # the p^t part of round 2 or 3, counted again in the restarted process
    plan = [{"kind": "counts", "call": seg_call, "after": int(rng.integers(0, 8)), "marker": str(tmp_path / "k1")},
            {"kind": "mixture", "call": mix_call, "after": int(rng.integers(1, 300)), "marker": str(tmp_path / "k2")}]
    log = tmp_path / "events.jsonl"
    ex = TuneExecutor(BackendSpec(), TuneSettings(storage_path=str(tmp_path / "tune"), experiment="kill",
                                                 checkpoint_frequency=1, max_failures=2),
                      trainable=faulty_trainable(plan, str(log)))
    final = run_method(get_method("aioli"), problem, ex).final

    events = _events(log)
    kills = [e for e in events if e["event"] == "kill"]
    restores = [e for e in events if e["event"] == "restore"]
    assert [k["kind"] for k in kills] == ["counts", "mixture"]  # one kill inside a LearnParams segment, one after
    boundaries = [h.step for h in reference.history]
    # each restart resumed from the last round boundary before its kill, not from scratch
    assert len(restores) == 2
    for k, r in zip(kills, restores):
        assert r["step"] in boundaries and 0 < r["step"] <= k["step"]
        assert r["step"] == max(b for b in boundaries if b <= k["step"])
    _same_run(final, reference)


def test_interrupted_experiment_continues_with_the_same_out(ray_runtime, tmp_path, monkeypatch):
    """Ctrl-C (Tune's SIGUSR1/SIGINT stop) inside Aioli's final run: the rerun keeps stratified's result, resumes
    Aioli's trial from its checkpoint, trains Aioli-static, and matches an uninterrupted run exactly."""
    import raymix.tune.executor as executor

    cfg = ExperimentConfig(methods=("stratified", "aioli", "aioli_static"), seeds=(0,), total_steps=2000, aioli=AIOLI, backend=BackendSpec(), out=str(tmp_path / "out"),
                           tune={"cpus_per_trial": 1, "checkpoint_frequency": 1})
    reference = run_experiment(cfg.replace(executor="local", out=str(tmp_path / "ref")))

    log = tmp_path / "events.jsonl"
    marker = tmp_path / "interrupted"

    class Interrupting(MixingTrainable):
        def _step(self):
            out = super()._step()
            if self.spec.policy_config.get("rounds") == 5 and len(self.driver.history) == 3 and not marker.exists():
                marker.write_text("1")
                os.kill(driver_pid, signal.SIGUSR1)  # what Ctrl-C does to Tune: stop, save state, return
            return out

        def load_checkpoint(self, checkpoint):
            super().load_checkpoint(checkpoint)
            with open(log, "a") as fh:
                fh.write(json.dumps({"event": "restore", "run": self.spec.name, "step": self.driver.backend.step}) + "\n")

        def _setup(self, config):
            super()._setup(config)
            with open(log, "a") as fh:
                fh.write(json.dumps({"event": "setup", "run": self.spec.name, "policy": self.spec.policy,
                                     "rounds": self.spec.policy_config.get("rounds")}) + "\n")

    driver_pid = os.getpid()
    monkeypatch.setattr(executor, "MixingTrainable", Interrupting)
    with pytest.raises(KeyboardInterrupt):
        run_experiment(cfg)
    assert result_path(cfg.out, "stratified", 0).is_file() and not result_path(cfg.out, "aioli", 0).exists()
    before = _events(log)

    results = run_experiment(cfg)  # the same command again
    after = _events(log)[len(before):]
    assert [r.method for r in results] == ["stratified", "aioli", "aioli_static"]
    # stratified was not trained again
    assert not any(e["event"] == "setup" and e["policy"] == "static" for e in after)
    # Aioli's trial resumed from a round checkpoint (not from step 0) and was not started afresh
    restores = [e for e in after if e["event"] == "restore"]
    assert len(restores) == 1 and restores[0]["step"] > 0
    assert sum(1 for e in after if e["event"] == "setup" and e["policy"] == "aioli" and e["rounds"] == 5) == 1
    for got, ref in zip(results, reference):
        _same_run(got.final, ref.final)
    files = sorted(p.name for p in (Path(cfg.out) / "results").iterdir())
    assert files == ["aioli-seed0.json", "aioli_static-seed0.json", "stratified-seed0.json"]
    # one Tune experiment folder per phase: the interrupted one was continued, not duplicated
    phases = [p.name for p in (Path(cfg.out) / "tune").iterdir() if p.is_dir() and not p.name.endswith(".runs")]
    assert len(phases) == 3  # the final runs of stratified, aioli and aioli_static


def test_a_phase_whose_tune_state_was_cut_short_starts_again(ray_runtime, tmp_path, monkeypatch):
    """A driver killed while Tune writes its state (seen on a full disk) leaves an empty searcher state file;
    ``Tuner.restore`` would then re-create the trial without its config.  The rerun warns, trains that phase's
    run again from step 0, keeps the other results, and matches an uninterrupted run exactly."""
    import raymix.tune.executor as executor
    from raymix.errors import RaymixWarning

    cfg = ExperimentConfig(methods=("stratified", "aioli"), seeds=(0,), total_steps=2000, aioli=AIOLI,
                           backend=BackendSpec(), out=str(tmp_path / "out"),
                           tune={"cpus_per_trial": 1, "checkpoint_frequency": 1})
    reference = run_experiment(cfg.replace(executor="local", out=str(tmp_path / "ref")))
    log, marker, driver_pid = tmp_path / "events.jsonl", tmp_path / "interrupted", os.getpid()

    class Interrupting(MixingTrainable):
        def _step(self):
            out = super()._step()
            if self.spec.policy == "aioli" and len(self.driver.history) == 3 and not marker.exists():
                marker.write_text("1")
                os.kill(driver_pid, signal.SIGUSR1)
            return out

        def load_checkpoint(self, checkpoint):
            super().load_checkpoint(checkpoint)
            with open(log, "a") as fh:
                fh.write(json.dumps({"event": "restore", "run": self.spec.name}) + "\n")

        def _setup(self, config):
            super()._setup(config)
            with open(log, "a") as fh:
                fh.write(json.dumps({"event": "setup", "policy": self.spec.policy}) + "\n")

    monkeypatch.setattr(executor, "MixingTrainable", Interrupting)
    with pytest.raises(KeyboardInterrupt):
        run_experiment(cfg)
    assert not result_path(cfg.out, "aioli", 0).exists()
    # Aioli's final phase: the Tune experiment whose trial trains the aioli policy
    interrupted = [d for d in (Path(cfg.out) / "tune").iterdir()
                   if any('"policy": "aioli"' in f.read_text() for f in d.glob("*/params.json"))]
    assert len(interrupted) == 1 and executor.unreadable_tune_state(interrupted[0]) is None
    interrupted = interrupted[0]
    for p in interrupted.glob("basic-variant-state-*.json"):
        p.write_text("")  # what a kill during the write leaves
    assert executor.unreadable_tune_state(interrupted) is not None
    before = len(_events(log))

    with pytest.warns(RaymixWarning, match="unreadable.*start again from step 0"):
        results = run_experiment(cfg)  # the same command again
    after = _events(log)[before:]
    assert [r.method for r in results] == ["stratified", "aioli"]
    assert not any(e["event"] == "restore" for e in after)  # the cut-short phase was not restored
    assert [e["policy"] for e in after if e["event"] == "setup"] == ["aioli"]  # stratified kept, Aioli retrained
    for got, ref in zip(results, reference):
        _same_run(got.final, ref.final)
