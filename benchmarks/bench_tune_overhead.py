"""What running on Ray Tune costs next to training in this process: speed, set-up per trial, sweeps.

One invocation measures, side by side on the tiny preset and the demo's shards (books/code/speeches):

1. **Tune path speed** — the same stratified run (S steps) trained in-process (``LocalExecutor``) and as a
   one-trial Tune phase (``TuneExecutor``); the ratio of their training times (``RunResult.wall_time_s``:
   rounds + final evaluation, the same clock on both sides) and of the phases' wall times.  Target >= 0.95.
2. **Set-up per trial** — a phase of N very short trials run one at a time, with and without Tune's actor
   reuse: (phase wall − Σ trial training time) / N is what each trial pays for process start, backend
   construction (model, samplers, evaluation sets) and Tune's bookkeeping.
3. **Sweep throughput** — a grid of R static runs of ``--sweep-steps`` each as one Tune phase, against
   R × one run's in-process training time (the ideal when every core trains all the time); with
   ``--sweep-cpus 1,2`` the same sweep under each trial width in turn (e.g. a 9-run sweep on 2 cores:
   1-CPU trials in waves of two, the ninth alone, against 2-CPU trials one at a time).
4. **Scheduled sweeps** (``--parts scheduled``) — an ASHA-pruned grid sweep (``grid_search_asha``) and a
   PBT population (``pbt``) on Tune, each planned twice: every round evaluated on the whole cached
   validation set (``curve_examples`` = ``eval_examples`` = None, the old behaviour) and only the rounds a
   scheduler decides on (rungs, exploit points), the others on the 8-window per-round subset (the
   default).  The decisions read the same whole-set values either way, so the same runs are cut and
   exploited; what differs is the evaluation time inside the trials (Σ of the trials' training time
   ``RunResult.wall_time_s``) and the phase wall.

Repeats alternate the sides so machine-load drift hits both alike; every figure prints per repeat.

    .venv/bin/python benchmarks/bench_tune_overhead.py                       # automatic CPUs per trial
    .venv/bin/python benchmarks/bench_tune_overhead.py --cpus-per-trial 1    # the old CLI default
    .venv/bin/python benchmarks/bench_tune_overhead.py --parts sweep --sweep-runs 9 --sweep-steps 150 \
        --sweep-cpus 1,2                                                     # trial widths side by side
    .venv/bin/python benchmarks/bench_tune_overhead.py --parts scheduled --sched-steps 300 --repeats 2
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import ray
from ray import tune

from raymix.methods.base import Phase
from raymix.methods.driver import BackendSpec, LocalExecutor
from raymix.methods.runs import RunSpec
from raymix.tune.executor import TuneExecutor, TuneSettings
from raymix.tune.trainable import MixingTrainable


def _settings(args: argparse.Namespace, storage: str, name: str, cpus: str | None = None) -> TuneSettings:
    d: dict = {"storage_path": storage, "experiment": name}
    cpus = args.cpus_per_trial if cpus is None else cpus
    if cpus != "auto":
        d["cpus_per_trial"] = float(cpus)
    return TuneSettings.from_dict(d)


def _static(name: str, steps: int, rounds: int, mixture=None, seed: int = 0) -> RunSpec:
    return RunSpec(name=name, policy="static", policy_config={"mixture": mixture, "rounds": rounds},
                   steps=steps, total_steps=steps, seed=seed)


def in_process(backend: BackendSpec, spec: RunSpec) -> tuple[float, float]:
    """(phase wall s, training s) of one run trained in this process."""
    t0 = time.perf_counter()
    (res,) = LocalExecutor(backend).run_phase(Phase("one", [spec]), None)  # type: ignore[arg-type]
    return time.perf_counter() - t0, res.wall_time_s


def on_tune(backend: BackendSpec, specs: list[RunSpec] | Phase, settings: TuneSettings,
            problem=None) -> tuple[float, list[float]]:
    """(phase wall s, per-trial training s) of one phase of runs on Tune."""
    ex = TuneExecutor(backend, settings)
    phase = specs if isinstance(specs, Phase) else Phase("bench", specs)
    t0 = time.perf_counter()
    results = ex.run_phase(phase, problem)  # type: ignore[arg-type]
    return time.perf_counter() - t0, [r.wall_time_s for r in results]


def scheduled(args: argparse.Namespace, backend: BackendSpec, storage: str, groups: list[str]) -> None:
    """Part 4: scheduled sweeps with every round on the whole set vs only their decisions (module docstring)."""
    from raymix.methods import MixingProblem, get_method

    problem = MixingProblem(groups=tuple(groups), total_steps=args.sched_steps, seed=0)
    methods = {"grid_search_asha": {"rounds": 9, "runs": args.sweep_runs},
               "pbt": {"population": args.sched_population, "rounds": 10, "interval_rounds": 2}}
    variants = {"every round": {"curve_examples": None}, "decisions": {}}
    rows: dict[tuple[str, str], list[tuple[float, float]]] = {(m, v): [] for m in methods for v in variants}
    for r in range(args.repeats):
        for v in (list(variants) if r % 2 == 0 else list(variants)[::-1]):  # alternate: load drift hits both
            for method, cfg in methods.items():
                phase = next(get_method(method, {**cfg, **variants[v]}).plan(problem))
                wall, per = on_tune(backend, phase, _settings(args, storage, f"{method}-{r}-{v.replace(' ', '')}"),
                                    problem)
                rows[(method, v)].append((wall, sum(per)))
                print(f"[scheduled r{r} {method}, {v}] {len(per)} trials: phase wall {wall:6.1f}s, trials' training "
                      f"{sum(per):6.1f}s", flush=True)
    for method in methods:
        base, new = rows[(method, "every round")], rows[(method, "decisions")]
        tr = [b[1] / n[1] for b, n in zip(base, new)]
        wr = [b[0] / n[0] for b, n in zip(base, new)]
        print(f"SCHEDULED {method} S={args.sched_steps}: trials' training every-round / decisions-only "
              f"{', '.join(f'{x:.3f}' for x in tr)}; phase wall {', '.join(f'{x:.3f}' for x in wr)} (per repeat; "
              f"medians {statistics.median([b[1] for b in base]):.1f}s vs {statistics.median([n[1] for n in new]):.1f}s "
              f"training, {statistics.median([b[0] for b in base]):.1f}s vs "
              f"{statistics.median([n[0] for n in new]):.1f}s wall)")


def setup_per_trial(backend: BackendSpec, n: int, reuse: bool, cpus: float, storage: str) -> float:
    """Seconds each of ``n`` sequential very short trials spends outside its own training."""
    from raymix.data.streaming import data_resources

    trials = [{"run": _static(f"setup-{i}", 4, 1, seed=i).to_dict(), "handoff": None, "reference": None}
              for i in range(n)]
    tuner = tune.Tuner(
        tune.with_resources(MixingTrainable, data_resources(cpus)),
        param_space={"trial": tune.grid_search(trials), "backend": backend.to_dict()},
        tune_config=tune.TuneConfig(reuse_actors=reuse, max_concurrent_trials=1),
        run_config=tune.RunConfig(name=f"setup-{'reuse' if reuse else 'fresh'}-{time.time_ns()}", storage_path=storage,
                                  stop={"done": True}, verbose=0),
    )
    t0 = time.perf_counter()
    grid = tuner.fit()
    wall = time.perf_counter() - t0
    trained = sum(r.metrics["time_total_s"] for r in grid)
    return (wall - trained) / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=400, help="S of the in-process vs Tune run (default 400)")
    ap.add_argument("--sweep-runs", type=int, default=10)
    ap.add_argument("--sweep-steps", type=int, default=60)
    ap.add_argument("--setup-trials", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--cpus-per-trial", default="auto", help="'auto' (the executor's choice) or a number")
    ap.add_argument("--sweep-cpus", default=None,
                    help="comma-separated trial widths to run the sweep under in turn ('auto' or a number); "
                         "default: --cpus-per-trial")
    ap.add_argument("--parts", default="speed,setup,sweep", help="comma-separated: speed, setup, sweep, scheduled")
    ap.add_argument("--sched-steps", type=int, default=300, help="S of the scheduled sweeps' runs (part scheduled)")
    ap.add_argument("--sched-population", type=int, default=4, help="PBT members (part scheduled)")
    ap.add_argument("--shards", default=None, help="existing shard dir (default: build from embedded data)")
    args = ap.parse_args()
    parts = set(args.parts.split(","))

    tmp = Path(tempfile.mkdtemp(prefix="raymix-bench-tune-"))
    shards = args.shards
    if shards is None:
        from raymix.demo import demo_shards

        shards = str(demo_shards(tmp))
    storage = str(tmp / "tune")
    cores = os.cpu_count() or 1
    backend = BackendSpec(kind="model", shards=shards, model="tiny",
                          train={"batch_size": 8, "lr": 2e-3, "min_lr": 2e-4, "warmup_steps": 20, "eval_examples": 64})
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    ray.init(num_cpus=cores, include_dashboard=False, log_to_driver=False, configure_logging=False)
    print(f"{cores} CPUs, cpus_per_trial={args.cpus_per_trial}, tiny preset, batch 8 x 128")

    # untimed warm-up of this process (thread pools, lazy imports)
    in_process(backend, _static("warmup", 20, 1))

    if "speed" in parts:
        spec = _static("speed", args.steps, 5)
        rows = []
        for r in range(args.repeats):
            lw, lt = in_process(backend, spec)
            tw, (tt,) = on_tune(backend, [spec], _settings(args, storage, f"speed{r}"))
            rows.append((lw, lt, tw, tt))
            print(f"[speed r{r}] in-process train {lt:6.1f}s wall {lw:6.1f}s | Tune trial train {tt:6.1f}s "
                  f"phase wall {tw:6.1f}s | train ratio {lt / tt:.3f} wall ratio {lw / tw:.3f}")
        ratios = [lt / tt for _, lt, _, tt in rows]
        wratios = [lw / tw for lw, _, tw, _ in rows]
        print(f"SPEED S={args.steps}: in-process/Tune training-time ratio median {statistics.median(ratios):.3f} "
              f"(range {min(ratios):.3f}-{max(ratios):.3f}); phase wall ratio median {statistics.median(wratios):.3f} "
              f"(range {min(wratios):.3f}-{max(wratios):.3f})")

    if "setup" in parts:
        cpus = float(cores) if args.cpus_per_trial == "auto" else float(args.cpus_per_trial)
        res = {True: [], False: []}
        for _ in range(args.repeats):
            for reuse in (False, True):
                res[reuse].append(setup_per_trial(backend, args.setup_trials, reuse, cpus, storage))
        for reuse in (False, True):
            v = res[reuse]
            print(f"SETUP per trial, actor reuse {'on ' if reuse else 'off'}: median {statistics.median(v):.2f}s "
                  f"(runs {', '.join(f'{x:.2f}' for x in v)}; {args.setup_trials} sequential trials of 4 steps)")

    if "sweep" in parts:
        mixtures = [[float(a), float(b), float(1 - a - b)] for a, b in
                    np.random.default_rng(0).dirichlet(np.ones(3), size=args.sweep_runs)[:, :2]]
        specs = [_static(f"gs-{i:02d}", args.sweep_steps, 1, m) for i, m in enumerate(mixtures)]
        widths = (args.sweep_cpus or args.cpus_per_trial).split(",")
        rows: dict[str, list[float]] = {w: [] for w in widths}
        walls: dict[str, list[float]] = {w: [] for w in widths}
        for r in range(args.repeats):
            _, one = in_process(backend, _static("one", args.sweep_steps, 1, mixtures[0]))
            ideal = args.sweep_runs * one
            for w in (widths if r % 2 == 0 else widths[::-1]):  # alternate the order: load drift hits both
                wall, per = on_tune(backend, specs, _settings(args, storage, f"sweep{r}-{w}", w))
                rows[w].append(wall / ideal)
                walls[w].append(wall)
                print(f"[sweep r{r} cpus/trial={w}] {args.sweep_runs} runs x {args.sweep_steps} steps: phase wall "
                      f"{wall:6.1f}s vs {args.sweep_runs} x one run's in-process training {ideal:6.1f}s -> "
                      f"{wall / ideal:.2f}x (trials' own training {sum(per):.1f}s in all)", flush=True)
        for w in widths:
            print(f"SWEEP cpus/trial={w}: wall / (R x one run's training) median {statistics.median(rows[w]):.2f} "
                  f"(range {min(rows[w]):.2f}-{max(rows[w]):.2f}); phase wall median {statistics.median(walls[w]):.1f}s")
        if len(widths) > 1:
            base = widths[0]
            for w in widths[1:]:
                ratio = [a / b for a, b in zip(walls[w], walls[base])]
                print(f"SWEEP phase wall cpus/trial={w} / cpus/trial={base}: "
                      f"{', '.join(f'{x:.3f}' for x in ratio)} (per repeat)")
    if "scheduled" in parts:
        from raymix.methods.driver import backend_groups

        scheduled(args, backend, storage, list(backend_groups(backend)))
    ray.shutdown()


if __name__ == "__main__":
    main()
