"""Node loss on a simulated 3-node cluster: a sweep spreads over the nodes; a node removed mid-sweep has its trials
rescheduled from their checkpoints; every run is present once at the end."""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from ray import cloudpickle

from raymix.methods import MixingProblem
from raymix.methods.base import Phase
from raymix.methods.driver import BackendSpec
from raymix.methods.handoff import static_run
from raymix.tune.executor import TuneExecutor, TuneSettings
from raymix.tune.trainable import MixingTrainable

pytestmark = [pytest.mark.ray, pytest.mark.slow]
cloudpickle.register_pickle_by_value(sys.modules[__name__])


def node_logging_trainable(log: str) -> type[MixingTrainable]:
    class NodeLogging(MixingTrainable):
        def _write(self, event: str) -> None:
            import ray

            with open(log, "a") as fh:
                fh.write(json.dumps({"event": event, "run": self.spec.name, "step": self.driver.backend.step,
                                     "node": ray.get_runtime_context().get_node_id()}) + "\n")

        def _setup(self, config):
            super()._setup(config)
            self._write("setup")

        def _step(self):
            time.sleep(0.4)  # rounds long enough for a node to be removed mid-run
            out = super()._step()
            self._write("round")
            return out

        def load_checkpoint(self, checkpoint):
            super().load_checkpoint(checkpoint)
            self._write("restore")

    return NodeLogging


def _events(log: Path) -> list[dict]:
    return [json.loads(x) for x in log.read_text().splitlines()] if log.exists() else []


def test_removed_node_trials_resume_elsewhere_and_the_sweep_completes(tmp_path):
    import ray
    from ray.cluster_utils import Cluster

    if ray.is_initialized():
        ray.shutdown()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    workers = [cluster.add_node(num_cpus=1) for _ in range(3)]
    try:
        ray.init(address=cluster.address, include_dashboard=False, log_to_driver=False)
        cluster.wait_for_nodes()
        problem = MixingProblem(groups=("github", "c4"), total_steps=600, rounds=6)
        runs = [static_run(f"sweep-{i}", [p, 1 - p], problem, role="search")
                for i, p in enumerate(np.linspace(0.2, 0.8, 6))]
        log = tmp_path / "events.jsonl"
        ex = TuneExecutor(BackendSpec(), TuneSettings(storage_path=str(tmp_path / "tune"), experiment="nodes",
                                                     checkpoint_frequency=1, max_failures=3),
                          trainable=node_logging_trainable(str(log)))
        victim = workers[1]
        removed = threading.Event()

        def remove_when_busy() -> None:
            deadline = time.time() + 300
            while time.time() < deadline:
                if any(e["node"] == victim.node_id and e["event"] == "round" and e["step"] >= 200
                       for e in _events(log)):
                    cluster.remove_node(victim)
                    removed.set()
                    return
                time.sleep(0.2)

        killer = threading.Thread(target=remove_when_busy, daemon=True)
        killer.start()
        results = ex.run_phase(Phase("sweep", runs), problem)
        killer.join(timeout=5)

        assert removed.is_set(), "no trial ran on the node to be removed"
        events = _events(log)
        assert len({e["node"] for e in events}) >= 2  # the sweep spread over the nodes
        lost = {e["run"] for e in events if e["node"] == victim.node_id and e["event"] == "round"
                and not any(f["run"] == e["run"] and f["event"] == "round" and f["step"] == 600
                            and f["node"] == victim.node_id for f in events)}
        restores = [e for e in events if e["event"] == "restore"]
        assert lost and {r["run"] for r in restores} >= lost  # the lost trials resumed from checkpoints ...
        assert all(r["node"] != victim.node_id and r["step"] > 0 for r in restores)  # ... on other nodes
        assert [r.spec.name for r in results] == [s.name for s in runs]  # every run present, once
        assert all(r.history[-1].step == 600 for r in results)
    finally:
        ray.shutdown()
        cluster.shutdown()
