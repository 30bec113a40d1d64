"""Data-parallel training (raymix.train.distributed): W gloo workers follow one worker's trajectory.

Two CPU processes (tests/train/dp_worker.py, torch.distributed over gloo, no Ray) train an Aioli run that
hands off from a truncated one-worker run, a DoGE proxy run and a DoReMi proxy run; the in-process single
worker on the same global batch is the reference.  Tolerances: proportions 1e-4 absolute, losses 1e-6 relative (measured: 1.4e-6 and 1.5e-8;
docs/DECISIONS.md: the float reduction order is the only difference).
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from raymix.errors import DistributedError
from raymix.methods.driver import BackendSpec, RunDriver, build_backend
from raymix.methods.runs import RunSpec
from raymix.train.distributed import Collective

WORKER = Path(__file__).with_name("dp_worker.py")
S = 40
P_TOL = 1e-4    # absolute, on proportions
LOSS_RTOL = 1e-6  # relative, on per-group losses


def _worker_module():
    spec = importlib.util.spec_from_file_location("dp_worker", WORKER)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(job: dict, out_dir: Path, world: int) -> list[dict]:
    out_dir.mkdir(parents=True, exist_ok=True)
    job_path = out_dir / "job.json"
    job_path.write_text(json.dumps(job))
    port = _free_port()
    procs = []
    for rank in range(world):
        env = {**os.environ, "RANK": str(rank), "WORLD_SIZE": str(world), "MASTER_ADDR": "127.0.0.1",
               "MASTER_PORT": str(port), "OMP_NUM_THREADS": "1"}
        procs.append(subprocess.Popen([sys.executable, str(WORKER), str(job_path), str(out_dir)], env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    logs = [p.communicate(timeout=300)[0] for p in procs]
    for p, log in zip(procs, logs):
        assert p.returncode == 0, log[-3000:]
    return [json.loads((out_dir / f"rank{r}.json").read_text()) for r in range(world)]


@pytest.fixture(scope="module")
def backend_spec(tmp_path_factory, ray_runtime) -> BackendSpec:
    from raymix.data.embedded import EmbeddedSource
    from raymix.data.shards import build_shards

    out = tmp_path_factory.mktemp("dp-shards") / "emb"
    build_shards(EmbeddedSource(groups=["books", "code", "speeches"]), out, vocab_size=384, seq_len=32,
                 heldout_fraction=0.3, seed=0, max_docs_per_group=12)
    # batch 6: one worker does one 6-row forward, two do 3 + 3 rows (another float reduction order)
    return BackendSpec(kind="model", shards=str(out), model="tiny",
                       model_options={"n_layers": 1, "d_model": 32, "n_heads": 2, "context_length": 32},
                       train={"batch_size": 6, "grad_accumulation": 1, "lr": 3e-3, "min_lr": 3e-4, "warmup_steps": 2,
                              "eval_examples": 5, "eval_batch_size": 4, "threads": 1, "device": "cpu"})


def test_shards_are_disjoint_and_cover_the_batch():
    for n in (1, 5, 6, 8, 13):
        for world in (1, 2, 3, 4):
            if world > 1 and n < world:
                continue
            parts = [Collective.__new__(Collective) for _ in range(world)]
            rows = []
            for r, c in enumerate(parts):
                c.rank, c.world_size = r, world
                rows.extend(range(*c.shard_bounds(n)))
            assert rows == list(range(n)), (n, world)
    with pytest.raises(DistributedError, match="process group"):
        Collective(0, 2)


def _same_run(ref: dict, dp: dict, what: str) -> None:
    """``dp`` (rank 0 of two workers) follows ``ref`` (one worker) within the stated tolerances."""
    assert len(ref["history"]) == len(dp["history"]) > 1, what
    for a, b in zip(ref["history"], dp["history"]):
        assert a["step"] == b["step"], what
        np.testing.assert_allclose(b["mixture"], a["mixture"], rtol=0, atol=P_TOL, err_msg=what)
        np.testing.assert_allclose(b["train_loss"], a["train_loss"], rtol=LOSS_RTOL, err_msg=what)
        if a["val_loss"] is not None:
            np.testing.assert_allclose(b["val_loss"], a["val_loss"], rtol=LOSS_RTOL, err_msg=what)
    assert not np.allclose(ref["history"][0]["mixture"], ref["history"][-1]["mixture"], atol=10 * P_TOL), \
        f"{what}: p never moved, the comparison of proportions would be vacuous"
    np.testing.assert_allclose(dp["val_loss"], ref["val_loss"], rtol=LOSS_RTOL, err_msg=what)
    np.testing.assert_allclose(dp["test_loss"], ref["test_loss"], rtol=LOSS_RTOL, err_msg=what)


def test_two_gloo_workers_follow_one_worker(backend_spec, tmp_path):
    worker = _worker_module()
    short = RunSpec(name="gs-00", policy="static", policy_config={"mixture": [0.2, 0.5, 0.3], "rounds": 1},
                    steps=S // 4, total_steps=S, role="truncated")
    driver = RunDriver(short, build_backend(backend_spec, short))
    driver.run_to_end()
    handoff, reference = tmp_path / "handoff.pt", tmp_path / "reference.pt"
    torch.save({"spec": short.to_dict(), "backend": driver.backend.state_dict()}, handoff)
    torch.save(driver.backend.model_state(), reference)

    runs = [  # a restricted Aioli+method hand-off, and both proxy runs (DoGE's alignment, DoReMi's excess loss)
        {"run": RunSpec(name="aioli+gs", policy="aioli", steps=S, total_steps=S, resume_from="gs-00",
                        policy_config={"rounds": 2, "sweeps": 1, "delta": 0.4, "eval_examples": 3, "eta": 2.0}
                        ).to_dict(), "handoff": str(handoff)},
        {"run": RunSpec(name="doge", policy="doge", steps=8, total_steps=8, role="proxy",
                        policy_config={"rounds": 2, "eta": 1e-3, "val_fraction": 0.5, "eval_examples": 3}).to_dict()},
        {"run": RunSpec(name="doremi", policy="doremi", steps=8, total_steps=8, role="proxy", reference_from="gs-00",
                        policy_config={"rounds": 2, "eta": 1.0, "eval_examples": 3}).to_dict(),
         "reference": str(reference)},
    ]
    job = {"backend": backend_spec.to_dict(), "runs": runs}
    one = worker.run(job, str(tmp_path / "one"))
    two = _launch(job, tmp_path / "two", world=2)

    for name in ("aioli+gs", "doge", "doremi"):
        r0, r1 = two[0][name], two[1][name]
        assert (r0["rank"], r1["rank"]) == (0, 1) and r0["world_size"] == r1["world_size"] == 2
        # every rank sees the same p and reports the same (all-reduced) losses and weights, bit for bit
        assert r0["result"]["history"] == r1["result"]["history"] and r0["weights_head"] == r1["weights_head"]
        _same_run(one[name]["result"], r0["result"], name)
        np.testing.assert_allclose(r0["weights_head"], one[name]["weights_head"], rtol=1e-4, atol=1e-6)
    # the 2-worker checkpoint is an ordinary run state: one worker resumes it and gets the same losses
    state = torch.load(tmp_path / "two" / "aioli+gs.pt", weights_only=False)
    assert state["backend"]["step"] == S
    again = build_backend(backend_spec, RunSpec.from_dict(runs[0]["run"]))
    again.load_state_dict(state["backend"])
    np.testing.assert_allclose(again.evaluate("test"), two[0]["aioli+gs"]["result"]["test_loss"], rtol=1e-12)
