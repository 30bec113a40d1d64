"""Ray Tune trials that train the tiny *real* model (embedded text, GPT-NeoX): the paths a user runs.

One test covers the lot (each Tune phase starts trial processes, seconds apiece on 2 cores): Aioli+GS in
the restricted setting, where

* the sweep phase's two 1-CPU trials run at once on the 2-CPU Ray and stream their batches with Ray Data
  (``streaming="ray"``), compared with the same runs in-process on the local reader;
* the final trial hands off from the truncated trial: its first round is recomputed from the truncated
  trial's Tune checkpoint, and changing the checkpoint's weights, optimizer state or data position each
  changes that round, so equality shows the final run continued all three.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from raymix.methods import MixingProblem, get_method, run_method
from raymix.methods.driver import LocalExecutor, RunDriver, build_backend
from raymix.tune.executor import TuneExecutor, TuneSettings
from raymix.tune.trainable import load_state

pytestmark = [pytest.mark.ray, pytest.mark.timeout(900)]  # a deadlocked stream fails; a busy machine took > 300 s
GROUPS = ("books", "code", "speeches")
S = 40
AIOLI = {"rounds": 2, "sweeps": 1, "delta": 0.3, "eval_examples": 2}


def _trial_records(experiment_dir: str) -> list[list[dict]]:
    """Every trial's reported results (result.json lines) under a Tune experiment directory."""
    return [[json.loads(line) for line in f.read_text().splitlines() if line.strip()]
            for f in sorted(Path(experiment_dir).glob("*/result.json"))]


def test_restricted_handoff_on_tune_with_ray_data_streams(tiny_model_spec, ray_runtime, tmp_path):
    """Aioli+GS on Tune: a sweep of two concurrent 1-CPU trials streaming with Ray Data, then the final trial
    resuming the winner; compared with the same method in-process on the local reader."""
    prob = MixingProblem(groups=GROUPS, total_steps=S, rounds=2, aioli=AIOLI, setting="restricted", with_aioli=True)
    method = get_method("grid_search", {"runs": 2, "eval_examples": 4})
    ex = TuneExecutor(tiny_model_spec.replace(streaming="ray"),
                      TuneSettings(storage_path=str(tmp_path), experiment="handoff", cpus_per_trial=1.0,
                                   max_concurrent_trials=2))
    res = run_method(method, prob, ex)
    local = run_method(method, prob, LocalExecutor(tiny_model_spec))

    # 1. the sweep: Ray Data streams deliver the local reader's batches, so both runs train exactly as in-process
    sweep = [r for r in res.runs if r.spec.role == "search"]
    sweep_local = [r for r in local.runs if r.spec.role == "search"]
    assert len(sweep) == 2
    for a, b in zip(sweep, sweep_local, strict=True):
        assert a.spec == b.spec
        np.testing.assert_allclose(a.val_loss, b.val_loss, rtol=0, atol=1e-5)
    assert not np.allclose(sweep[0].val_loss, sweep[1].val_loss)  # two different mixtures really trained
    # both trials were alive at once: two trial processes whose lifetimes overlap
    records = _trial_records(ex.experiment_dirs[0])
    assert len(records) == 2 and len({r[-1]["pid"] for r in records}) == 2
    spans = [(r[-1]["timestamp"] - r[-1]["time_total_s"], r[-1]["timestamp"]) for r in records]
    assert spans[0][0] <= spans[1][1] and spans[1][0] <= spans[0][1], spans

    # 2. the hand-off: the final trial resumed the truncated trial's Tune checkpoint (state.pt)
    final = res.final
    short = next(r for r in res.runs if r.spec.name == final.spec.resume_from)
    assert short.spec.steps == S // 20 and final.spec.policy == "aioli"
    state = load_state(short.checkpoint)["backend"]
    assert state["step"] == S // 20
    first = final.history[0]
    assert first.step > S // 20 and first.info.get("phase") != "init"  # the S_init prefix was not retrained

    def first_round(backend_state):
        d = RunDriver(final.spec, build_backend(tiny_model_spec, final.spec), handoff_state={"backend": backend_state})
        return d.round()

    again = first_round(state)
    assert again.step == first.step
    np.testing.assert_allclose(again.mixture, first.mixture, rtol=0, atol=1e-6)
    np.testing.assert_allclose(again.train_loss, first.train_loss, rtol=0, atol=1e-5)
    np.testing.assert_allclose(again.val_loss, first.val_loss, rtol=0, atol=1e-5)
    # controls: the same round from another model, a fresh optimizer, or the data stream's start differs,
    # so the equality above holds only when the final trial continued all three of the truncated trial's
    fresh = build_backend(tiny_model_spec, short.spec).state_dict()
    for part in ("model", "optimizer", "train_source"):
        other = first_round({**state, part: fresh[part]})
        assert np.max(np.abs(np.subtract(other.train_loss, first.train_loss))) > 1e-4, part

    # 3. and the whole Tune result is the in-process one
    assert res.mixture == pytest.approx(local.mixture, abs=1e-9)
    np.testing.assert_allclose(final.test_loss, local.final.test_loss, rtol=0, atol=1e-5)
