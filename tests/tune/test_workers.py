"""Multi-worker trials (raymix.tune.workers): a phase trained by Ray Train TorchTrainers inside Tune.

The end-to-end check is slow on 2 cores (each Train run starts 2 worker processes: ~1-2 min per phase
here), so it is marked ``slow``; tests/train/test_data_parallel.py checks the same equivalence without
Ray in the default suite.  The refusals below are cheap.
"""

from __future__ import annotations

import numpy as np
import pytest

from raymix.errors import ConfigError
from raymix.experiment import ExperimentConfig
from raymix.methods.base import Phase
from raymix.methods.driver import BackendSpec, LocalExecutor
from raymix.methods.runs import RunSpec
from raymix.tune.executor import TuneExecutor, TuneSettings
from raymix.tune.trainable import load_state

S = 40


def test_several_workers_need_the_tune_executor():
    ExperimentConfig(methods=("stratified", "doremi", "doge"), tune={"workers_per_trial": 2})
    with pytest.raises(ConfigError, match="executor='tune'"):
        ExperimentConfig(methods=("aioli",), executor="local", tune={"workers_per_trial": 2})
    with pytest.raises(ConfigError, match="workers_per_trial"):
        TuneSettings(workers_per_trial=0)


@pytest.mark.slow
@pytest.mark.ray
def test_two_worker_trials_hand_off_and_match_one_worker(ray_runtime, tmp_path):
    from raymix.data.embedded import EmbeddedSource
    from raymix.data.shards import build_shards

    shards = tmp_path / "emb"
    build_shards(EmbeddedSource(groups=["books", "code", "speeches"]), shards, vocab_size=384, seq_len=32,
                 heldout_fraction=0.3, seed=0, max_docs_per_group=12)
    spec = BackendSpec(kind="model", shards=str(shards), model="tiny",
                       model_options={"n_layers": 1, "d_model": 32, "n_heads": 2, "context_length": 32},
                       train={"batch_size": 6, "lr": 3e-3, "min_lr": 3e-4, "warmup_steps": 2, "eval_examples": 5,
                              "eval_batch_size": 4, "threads": 1, "device": "cpu"})
    short = RunSpec(name="gs-00", policy="static", policy_config={"mixture": [0.2, 0.5, 0.3], "rounds": 1},
                    steps=S // 4, total_steps=S, role="truncated")
    final = RunSpec(name="aioli+gs", policy="aioli", steps=S, total_steps=S, resume_from="gs-00",
                    policy_config={"rounds": 2, "sweeps": 1, "delta": 0.4, "eval_examples": 3, "eta": 2.0})
    tuned = TuneExecutor(spec, TuneSettings(storage_path=str(tmp_path / "tune"), experiment="dp", workers_per_trial=2))
    local = LocalExecutor(spec)
    for phase in (Phase("short", [short]), Phase("final", [final])):
        (a,), (b,) = tuned.run_phase(phase, None), local.run_phase(phase, None)
        assert len(a.history) == len(b.history)
        for x, y in zip(a.history, b.history):
            assert x.step == y.step
            np.testing.assert_allclose(x.mixture, y.mixture, rtol=0, atol=1e-4)
            np.testing.assert_allclose(x.train_loss, y.train_loss, rtol=1e-6)
        np.testing.assert_allclose(a.test_loss, b.test_loss, rtol=1e-6)
        # the Train run's final checkpoint is an ordinary raymix state (what the hand-off loaded)
        state = load_state(a.checkpoint)
        assert state["backend"]["step"] == phase.runs[0].steps and state["spec"]["name"] == phase.runs[0].name
    assert not np.allclose(a.history[-1].mixture, a.history[0].mixture, atol=1e-3)  # Aioli moved p
