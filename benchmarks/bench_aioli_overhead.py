"""Aioli's wall-clock overhead over stratified sampling at equal training steps, and where the time goes.

Trains the tiny GPT-NeoX preset on shards built from the embedded data, in this process (no Ray), for
stratified sampling and for Aioli with several LearnParams evaluation-subset sizes (sequences per group
per evaluation; the authors evaluated the full validation set after every segment).  Prints, side by
side from one run: wall time, overhead vs stratified, the share spent in LearnParams evaluations, and
the final average test perplexity (the quality side of the trade-off), plus how well LearnParams
recovers A* on the simulator at the same k and δ (``sim(Â, A*)``, mean over rounds; the evaluation
path computes the same numbers however fast it runs, so this column moves only with k, δ and the round
length).

Schedules:
  ``--schedule demo``   the demo's: S=600, T=10, k=2, δ=0.288, m=3 (books, code, speeches).
  ``--schedule paper``  the paper's round length: 250-step rounds (S = 250·T), k=4, δ=0.128 for m=2
                        (books, code) and δ=0.288 for m=3 — the overhead ratio depends on the round
                        length, not on T, so a few rounds suffice.

    python benchmarks/bench_aioli_overhead.py --schedule demo --eval-examples 4,8 --seeds 0,1
    python benchmarks/bench_aioli_overhead.py --schedule paper --rounds 2 --groups 2,3 --eval-examples 8
    python benchmarks/bench_aioli_overhead.py --micro 30 --groups 2,3 --eval-examples 4,8
    # the paper's model and context on a GPU (bf16 autocast):
    python benchmarks/bench_aioli_overhead.py --schedule paper --rounds 2 --groups 2,3 --eval-examples 8 \
        --model pythia-160m --seq-len 2049 --device cuda --threads 0
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
    t0, c0 = time.perf_counter(), time.process_time()
    while not d.done:
        d.round()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    evals_in_run = backend.eval_s
    _, test = d.final_losses()
    return {"wall": wall, "cpu": cpu, "train": backend.train_s, "eval": evals_in_run, "evals": backend.evals,
            "ppl": float(np.mean(np.exp(test)))}


def recovery_on_sim(m: int, k: int, delta: float, round_steps: int, seeds=(0, 1, 2)) -> float:
    """Mean sim(Â, A*) of LearnParams on the simulator preset with m groups (benchmarks/sim_figures.py)."""
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from sim_figures import recovery

    name = {2: "two_group_interacting", 3: "three_group"}[m]
    from raymix.sim import SimBackend

    rounds = max(1, SimBackend.from_preset(name).total_steps // round_steps)
    return float(np.mean([recovery(name, s, k, delta, rounds=rounds)[0] for s in seeds]))


def shards_for(m: int, root: Path, seq_len: int = 128) -> str:
    """Shards of the embedded data: m=3 the demo's (books, code, speeches), m=2 books and code; windows of
    ``seq_len`` tokens (the paper's 2048-token context takes 2049)."""
    if m == 3:
        from raymix.demo import demo_shards

        return str(demo_shards(root, seq_len=seq_len, name=f"shards-m3-{seq_len}"))
    from raymix.data.embedded import EmbeddedSource
    from raymix.data.shards import build_shards

    path = root / f"shards-m2-{seq_len}"
    if not (path / "manifest.json").is_file():
        build_shards(EmbeddedSource(groups=["books", "code"]), path, vocab_size=4096, seq_len=seq_len, seed=0,
                     heldout_fraction=0.2, overwrite=True)
    return str(path)


def device_train(args: argparse.Namespace) -> dict:
    """The TrainConfig fields this invocation sets for where and how the model trains."""
    out: dict = {"device": args.device, "precision": args.precision}
    if args.threads:
        out["threads"] = args.threads
    return out


def bench(m: int, shards: str, S: int, rounds: int, k: int, delta: float, eval_examples: list[int],
          seeds: list[int], model: str, train: dict) -> None:
    backend = BackendSpec(kind="model", shards=shards, model=model,
                          train={"batch_size": 8, "lr": 2e-3, "min_lr": 2e-4, "warmup_steps": S // 20,
                                 "eval_examples": 64, **train})
    variants = [("stratified", "static", {"rounds": rounds, "eval_examples": 1})]
    for n in eval_examples:
        variants.append((f"aioli eval={n}", "aioli", {"rounds": rounds, "sweeps": k, "delta": delta,
                                                       "eval_examples": n}))
    # untimed warm-up: the first run in a process pays for thread pools, allocator growth and lazy imports
    run(RunSpec(name="warmup", policy="static", policy_config={"rounds": 1}, steps=min(S, 40), total_steps=S),
        backend)
    rows = {name: [] for name, _, _ in variants}
    for seed in seeds:
        # interleave variants per seed so machine-load drift hits all of them alike
        for name, policy, cfg in variants:
            spec = RunSpec(name=name, policy=policy, policy_config=cfg, steps=S, total_steps=S, seed=seed)
            rows[name].append(run(spec, backend))
    sim = recovery_on_sim(m, k, delta, S // rounds)
    print(f"{model} preset on {train['device']}, m={m}, S={S} steps ({S // rounds}-step rounds), batch 8, T={rounds}, k={k}, "
          f"delta={delta}, seeds {','.join(map(str, seeds))}; simulator sim(A^, A*) at this k, delta, round "
          f"length: {sim:.3f}")
    print(f"{'variant':18s} {'wall s':>8s} {'overhead':>9s} {'per seed':>16s} {'CPU ovh':>8s} {'eval/train':>10s} "
          f"{'train s':>8s} {'eval s':>7s} {'evals':>6s} {'avg test PPL':>13s}")
    base = [r["wall"] for r in rows["stratified"]]
    base_cpu = np.mean([r["cpu"] for r in rows["stratified"]])
    for name, rs in rows.items():
        wall = np.mean([r["wall"] for r in rs])
        per_seed = ",".join(f"{100 * (r['wall'] / b - 1):+.1f}" for r, b in zip(rs, base))
        cpu_ovh = 100 * (np.mean([r["cpu"] for r in rs]) / base_cpu - 1)
        share = 100 * np.mean([r["eval"] / r["train"] for r in rs])
        print(f"{name:18s} {wall:8.1f} {100 * (wall / np.mean(base) - 1):8.1f}% {per_seed:>16s} {cpu_ovh:7.1f}% "
              f"{share:9.1f}% "
              f"{np.mean([r['train'] for r in rs]):8.1f} {np.mean([r['eval'] for r in rs]):7.1f} "
              f"{np.mean([r['evals'] for r in rs]):6.0f} {np.mean([r['ppl'] for r in rs]):13.3f}")
    print("(stratified: one evaluation per reporting round on a 1-sequence subset, for comparable bookkeeping; "
          "CPU ovh: the same from process CPU time; eval/train: seconds in LearnParams evaluations over seconds "
          "training in the same run — the overhead measured in one process at one time, the steadiest figure "
          "on a loaded machine)",
          flush=True)


def micro(m: int, shards: str, eval_examples: list[int], reps: int, model: str, train: dict) -> None:
    """Interleaved medians: one training step vs one LearnParams evaluation (with torch.no_grad, the old
    path, and torch.inference_mode, the current one); the overhead of any schedule follows as
    (m·k + 1)·t_eval / (R·t_step) per round of R steps — measured in one process at one time, which keeps
    it steady on a loaded machine."""
    import statistics

    import torch

    backend = build_backend(BackendSpec(kind="model", shards=shards, model=model,
                                        train={"batch_size": 8, "eval_examples": 64, **train}),
                            RunSpec(name="micro", policy="static", policy_config={}, steps=reps * 4 + 10,
                                    total_steps=reps * 4 + 10))
    ev, model = backend.evaluator, backend.model
    counts = np.full(m, 8 // m)
    counts[: 8 - counts.sum()] += 1
    backend.train(2, counts=counts)  # warm-up
    plain = type(ev).evaluate.__wrapped__  # the undecorated method: run it under either context
    autocast = {"autocast_dtype": backend.autocast_dtype}  # bf16 on a GPU, as the backend's own evaluations

    sync = torch.cuda.synchronize if backend.device.type == "cuda" else (lambda: None)

    def timed(fn) -> float:
        sync()
        t = time.perf_counter()
        fn()
        sync()
        return time.perf_counter() - t

    for n in eval_examples:
        steps, old, new = [], [], []
        for _ in range(reps):
            steps.append(timed(lambda: backend.train(1, counts=counts)))
            with torch.no_grad():
                old.append(timed(lambda n=n: plain(ev, model, "val", max_examples=n, **autocast)))
            with torch.inference_mode():
                new.append(timed(lambda n=n: plain(ev, model, "val", max_examples=n, **autocast)))
        t_step, t_old, t_new = (statistics.median(x) for x in (steps, old, new))
        print(f"m={m} eval={n} ({n * m} windows/evaluation): train step {1000 * t_step:.1f} ms, evaluation "
              f"no_grad {1000 * t_old:.1f} ms, inference_mode {1000 * t_new:.1f} ms "
              f"(medians of {reps}; evaluation = {t_new / t_step:.2f} steps)")
        for label, k, R in (("demo: k=2, 60-step rounds", 2, 60), ("paper: k=4, 250-step rounds", 4, 250)):
            evals = m * k + 1
            print(f"    {label}: {evals} evaluations/round -> overhead no_grad "
                  f"{100 * evals * t_old / (R * t_step):.1f}%, inference_mode {100 * evals * t_new / (R * t_step):.1f}%")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--schedule", choices=["demo", "paper"], default="demo")
    ap.add_argument("--steps", type=int, default=None, help="S (demo schedule; default 600)")
    ap.add_argument("--rounds", type=int, default=None, help="T (default: demo 10, paper 3)")
    ap.add_argument("--sweeps", type=int, default=None, help="k (default: demo 2, paper 4)")
    ap.add_argument("--groups", default=None, help="m values, comma-separated (default: demo 3, paper 2,3)")
    ap.add_argument("--eval-examples", default="4,8")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (1: CPU time is a clean work measure; "
                    "0: torch's default)")
    ap.add_argument("--model", default="tiny", help="model preset, e.g. pythia-160m with --seq-len 2049 on a GPU")
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"])
    ap.add_argument("--seq-len", type=int, default=128, help="window length of the shards built from the "
                    "embedded data (context + 1)")
    ap.add_argument("--work", default=None, help="directory for (reused) shards; default a new temporary one")
    ap.add_argument("--micro", type=int, default=0, metavar="REPS",
                    help="instead of whole runs: REPS interleaved timings of a training step and an evaluation")
    args = ap.parse_args()

    root = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="raymix-bench-"))
    paper = args.schedule == "paper"
    rounds = args.rounds or (3 if paper else 10)
    S = 250 * rounds if paper else (args.steps or 600)
    k = args.sweeps or (4 if paper else 2)
    ms = [int(x) for x in (args.groups or ("2,3" if paper else "3")).split(",")]
    for m in ms:
        if args.micro:
            micro(m, shards_for(m, root, args.seq_len), [int(x) for x in args.eval_examples.split(",")], args.micro,
                  args.model, device_train(args))
            continue
        delta = {2: 0.128, 3: 0.288}[m]
        bench(m, shards_for(m, root, args.seq_len), S, rounds, k, delta,
              [int(x) for x in args.eval_examples.split(",")], [int(x) for x in args.seeds.split(",")], args.model,
              device_train(args))


if __name__ == "__main__":
    main()
