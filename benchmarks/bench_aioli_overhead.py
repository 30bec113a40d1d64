"""Aioli's wall-clock overhead over stratified sampling at equal training steps, and where the time goes.

Trains the tiny GPT-NeoX preset on shards built from the embedded data, in this process (no Ray), for
stratified sampling and for Aioli with several LearnParams evaluation-subset sizes (sequences per group
per evaluation; the authors evaluated the full validation set after every segment).  Prints, side by
side from one run: wall time, overhead vs stratified, the share spent in LearnParams evaluations, and
the final average test perplexity (the quality side of the trade-off).

    python benchmarks/bench_aioli_overhead.py --steps 600 --eval-examples 4,8,16,64
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from raymix.backend import TrainingBackend
from raymix.methods.driver import BackendSpec, RunDriver, build_backend
from raymix.methods.runs import RunSpec


class TimedBackend:
    """Wraps a backend and accounts time spent in train() and evaluate() (by subset size)."""

    def __init__(self, inner: TrainingBackend) -> None:
        self._inner = inner
        self.train_s = 0.0
        self.eval_s = 0.0
        self.evals = 0

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def train(self, *a, **k):
        t = time.perf_counter()
        try:
            return self._inner.train(*a, **k)
        finally:
            self.train_s += time.perf_counter() - t

    def evaluate(self, *a, **k):
        t = time.perf_counter()
        try:
            return self._inner.evaluate(*a, **k)
        finally:
            self.eval_s += time.perf_counter() - t
            self.evals += 1


def run(spec: RunSpec, backend_spec: BackendSpec) -> dict:
    backend = TimedBackend(build_backend(backend_spec, spec))
    d = RunDriver(spec, backend)  # type: ignore[arg-type]
    t0 = time.perf_counter()
    while not d.done:
        d.round()
    wall = time.perf_counter() - t0
    evals_in_run = backend.eval_s
    _, test = d.final_losses()
    return {"wall": wall, "train": backend.train_s, "eval": evals_in_run, "evals": backend.evals,
            "ppl": float(np.mean(np.exp(test)))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--sweeps", type=int, default=2)
    ap.add_argument("--eval-examples", default="4,8,16,64")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--shards", default=None, help="existing shard dir (default: build from embedded data)")
    args = ap.parse_args()

    tmp = None
    shards = args.shards
    if shards is None:
        from raymix.demo import demo_shards

        tmp = tempfile.mkdtemp(prefix="raymix-bench-")
        shards = str(demo_shards(Path(tmp)))
    S = args.steps
    backend = BackendSpec(kind="model", shards=shards, model="tiny",
                          train={"batch_size": 8, "lr": 2e-3, "min_lr": 2e-4, "warmup_steps": S // 20,
                                 "eval_examples": 64, "threads": 2})
    variants = [("stratified", "static", {"rounds": args.rounds, "eval_examples": 1})]
    for n in [int(x) for x in args.eval_examples.split(",")]:
        variants.append((f"aioli eval={n}", "aioli", {"rounds": args.rounds, "sweeps": args.sweeps, "delta": 0.288,
                                                       "eval_examples": n}))
    # untimed warm-up: the first run in a process pays for thread pools, allocator growth and lazy imports
    run(RunSpec(name="warmup", policy="static", policy_config={"rounds": 1}, steps=min(S, 40), total_steps=S),
        backend)
    rows = {name: [] for name, _, _ in variants}
    for seed in [int(s) for s in args.seeds.split(",")]:
        # interleave variants per seed so machine-load drift hits all of them alike
        for name, policy, cfg in variants:
            spec = RunSpec(name=name, policy=policy, policy_config=cfg, steps=S, total_steps=S, seed=seed)
            rows[name].append(run(spec, backend))
    base = np.mean([r["wall"] for r in rows["stratified"]])
    print(f"tiny preset, S={S} steps, batch 8, T={args.rounds}, k={args.sweeps}, seeds {args.seeds}")
    print(f"{'variant':18s} {'wall s':>8s} {'overhead':>9s} {'train s':>8s} {'eval s':>7s} {'evals':>6s} "
          f"{'avg test PPL':>13s}")
    for name, rs in rows.items():
        wall = np.mean([r["wall"] for r in rs])
        print(f"{name:18s} {wall:8.1f} {100 * (wall / base - 1):8.1f}% {np.mean([r['train'] for r in rs]):8.1f} "
              f"{np.mean([r['eval'] for r in rs]):7.1f} {np.mean([r['evals'] for r in rs]):6.0f} "
              f"{np.mean([r['ppl'] for r in rs]):13.3f}")
    print("(stratified: one evaluation per reporting round on a 1-sequence subset, for comparable bookkeeping)")


if __name__ == "__main__":
    main()
