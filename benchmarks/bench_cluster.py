"""Placement and per-trial scheduling overhead on a simulated multi-node Ray cluster.

``ray.cluster_utils.Cluster`` starts a head node (0 CPUs, like cluster.yaml's) and W worker nodes of C
logical CPUs each in this machine; they share its cores, so this measures **placement and overhead, not
speed-up**.  A phase of n simulator trials (``TuneExecutor``, automatic sizing) runs on it and on one
node with the same CPUs in all; the script prints the trials per node and, for both,

    per-trial overhead = (phase wall · concurrent trials − Σ trials' own training time) / n

i.e. what each trial costs beyond its own training: actor start or reuse, Tune bookkeeping, checkpoint
at end, result reporting.

    .venv/bin/python benchmarks/bench_cluster.py --workers 3 --cpus 2 --trials 12
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import ray

from raymix.methods.base import Phase
from raymix.methods.driver import BackendSpec
from raymix.methods.runs import RunSpec
from raymix.tune.executor import TuneExecutor, TuneSettings


def phase(n: int, steps: int) -> Phase:
    rng = np.random.default_rng(0)
    runs = [RunSpec(name=f"gs-{i:02d}", policy="static",
                    policy_config={"mixture": [float(a), float(1 - a)], "rounds": 25}, steps=steps, total_steps=steps)
            for i, a in enumerate(rng.uniform(0.05, 0.95, size=n))]
    return Phase("sweep", runs)


def run(n: int, steps: int, storage: str, name: str) -> dict:
    ex = TuneExecutor(BackendSpec(kind="sim"), TuneSettings(storage_path=storage, experiment=name))
    t0 = time.perf_counter()
    results = ex.run_phase(phase(n, steps), None)  # type: ignore[arg-type]
    wall = time.perf_counter() - t0
    nodes = []
    for f in Path(ex.experiment_dirs[-1]).glob("*/result.json"):
        nodes.append(json.loads(f.read_text().splitlines()[-1]).get("node", "?"))
    shape = ex.shapes[-1]
    concurrent = min(n, int(ray.cluster_resources().get("CPU", 0) // shape.cpus))
    trained = sum(r.wall_time_s for r in results)
    return {"wall": wall, "trained": trained, "concurrent": concurrent, "cpus": shape.cpus,
            "per_trial": (wall * concurrent - trained) / n, "nodes": collections.Counter(nodes)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", type=int, default=3)
    ap.add_argument("--cpus", type=int, default=2, help="logical CPUs per worker node")
    ap.add_argument("--trials", type=int, default=12)
    ap.add_argument("--steps", type=int, default=5_000_000,
                    help="simulator steps per trial (25 rounds; ~5 s of training each, longer than an actor start, "
                         "so trials spread instead of queueing on reused actors)")
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    storage = tempfile.mkdtemp(prefix="raymix-bench-cluster-")
    from ray.cluster_utils import Cluster

    rows: dict[str, list[dict]] = {"cluster": [], "one node": []}
    for rep in range(args.repeats):
        for kind in ("cluster", "one node"):
            if kind == "cluster":
                cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
                for _ in range(args.workers):
                    cluster.add_node(num_cpus=args.cpus)
                cluster.wait_for_nodes()
                ray.init(address=cluster.address, log_to_driver=False, configure_logging=False)
            else:
                cluster = None
                ray.init(num_cpus=args.workers * args.cpus, include_dashboard=False, log_to_driver=False,
                         configure_logging=False)
            try:
                r = run(args.trials, args.steps, storage, f"{kind.replace(' ', '')}{rep}")
            finally:
                ray.shutdown()
                if cluster is not None:
                    cluster.shutdown()
            rows[kind].append(r)
            spread = sorted(r["nodes"].values(), reverse=True)
            print(f"[{kind} r{rep}] {args.trials} trials x {r['cpus']:.0f} CPU, {r['concurrent']} at once: wall "
                  f"{r['wall']:.1f}s, trained {r['trained']:.1f}s, overhead/trial {r['per_trial']:.2f}s; "
                  f"trials per node {spread}", flush=True)
    for kind, rs in rows.items():
        v = [r["per_trial"] for r in rs]
        print(f"{kind:9s}: per-trial overhead median {np.median(v):.2f}s (runs {', '.join(f'{x:.2f}' for x in v)}); "
              f"phase wall median {np.median([r['wall'] for r in rs]):.1f}s")


if __name__ == "__main__":
    main()
