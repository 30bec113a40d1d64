"""What each paper table costs at paper scale: trials per phase, training steps, GPU-hours (docs/SCALING.md).

Plans every method of the paper's experiment files (``experiments/configs``: Tables 2, 3 and the ablations
of Table 21, as ``experiments/paper.py`` runs them; methods, seeds, S, setting, rounds) for m = 2, 3, 7
exactly as the library does, by running them on the mixing-law simulator (milliseconds per run) through an
executor that records every phase: how many trials it holds (hence how many GPUs it can use at once),
how many optimizer steps each trains, and which kind of step (plain, DoReMi proxy with a reference
forward, DoGE with per-group gradients).  Runs shared between methods of one seed (the sweep of "X" and
"aioli+X") are counted once, as the executors train them once.

GPU time per step is measured: pythia-160m, batch 8 × 2048, bf16 autocast over fp32 weights, PyTorch's sdpa
attention (flash-attn not installed), on one H200: 65.3 ms per training step (``scripts/gpu_check.sh``, step
``trainer-160m``: 65.6 and 64.9 ms in two calls), a DoReMi proxy step (reference forward) ×1.39 of it and a
DoGE proxy step (per-group gradients, val_fraction 0.5, m = 3) ×2.20.  ``--ms-per-step 0`` estimates the step
from FLOPs instead (training FLOPs/token = 6·(N_layers + N_head) + 6·L·T·d, Kaplan et al. 2020; input
embedding lookup free) at a stated peak and model-FLOPs utilisation (MFU; the H200 measurement is MFU 0.22
of the 989 TFLOP/s datasheet peak), e.g. for another GPU.

Columns: phases and trials per seed; ``max par`` = trials of the largest phase (the most GPUs a seed can
use at once); ``1-trial phases``; ``GPU-h`` for all seeds (training + ``--per-trial-overhead-s`` per
trial); ``wall`` for all seeds when every phase gets one GPU per trial and phases, methods and seeds run
one after another, as ``run_experiment`` does.

    .venv/bin/python benchmarks/paper_cost.py                     # the step time measured on an H200
    .venv/bin/python benchmarks/paper_cost.py --ms-per-step 0 --peak-tflops 125 --mfu 0.22   # A10G, estimated
"""

from __future__ import annotations

import argparse
import collections
from dataclasses import dataclass, field

from raymix.experiment import parse_method
from raymix.methods import MixingProblem, get_method, run_method
from raymix.methods.base import Phase
from raymix.methods.driver import BackendSpec, LocalExecutor

SCENARIO = {2: "two_group_interacting", 3: "three_group", 7: "seven_group"}

# pythia-160m (raymix.model.presets): 12 layers, d 768, d_ff 3072, vocab 50304 (padded), context 2048
LAYERS, D, VOCAB, CTX, BATCH = 12, 768, 50304, 2048, 8
N_BLOCKS = LAYERS * 12 * D * D          # attention 4d² + MLP 8d² per layer
N_HEAD = D * VOCAB                      # untied output embedding
FLOPS_PER_TOKEN = 6 * (N_BLOCKS + N_HEAD) + 6 * LAYERS * CTX * D
FLOPS_PER_STEP = FLOPS_PER_TOKEN * BATCH * CTX
#: measured on an H200 (scripts/gpu_check.sh, benchmarks/bench_trainer.py --proxy 10): ms per training step,
#: and proxy steps relative to it
MEASURED_MS_PER_STEP = 65.3
STEP_COST = {"static": 1.0, "aioli": 1.0, "skill_it": 1.0, "doremi": 1.39, "doge": 2.20}


@dataclass
class PhaseRecord:
    method: str
    name: str
    trials: int
    steps: list[int] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)
    aioli_factor: float = 1.0


class CountingExecutor(LocalExecutor):
    """LocalExecutor that records, per phase, the runs it actually trains (shared runs are trained once)."""

    def __init__(self, backend: BackendSpec) -> None:
        super().__init__(backend)
        self.records: list[PhaseRecord] = []
        self.method = ""

    def run_phase(self, phase: Phase, problem: MixingProblem):
        todo = [s for s in phase.runs if not (s.name in self.results and self.results[s.name].spec == s)]
        rec = PhaseRecord(self.method, phase.name, len(todo))
        for s in todo:
            start = self.results[s.resume_from].spec.steps if s.resume_from in self.results else 0
            rec.steps.append(s.steps - start)
            # a DoReMi/DoGE proxy run steps its policy's proxy_train; the final runs of those methods are static
            rec.kinds.append(s.policy if s.role == "proxy" else ("aioli" if s.policy == "aioli" else "static"))
            if s.policy == "aioli":
                # LearnParams evaluations: (m·k + 1) forwards of m·n windows per round of R steps, next to
                # R training steps of B windows (forward + backward = 3 forwards)
                c, m = s.policy_config, len(problem.groups)
                n = c.get("eval_examples") or 8
                R = (s.steps - int(c.get("init_steps") or 0)) / int(c["rounds"])
                rec.aioli_factor = 1 + (m * int(c["sweeps"]) + 1) * m * n / (3 * BATCH * R)
        if todo:
            self.records.append(rec)
        return super().run_phase(phase, problem)


def plan_table(cfg, m: int) -> list[PhaseRecord]:
    """Every phase of one seed of the experiment ``cfg`` (an ExperimentConfig) on the m-group simulator."""
    ex = CountingExecutor(BackendSpec(kind="sim", scenario=SCENARIO[m]))
    for label in cfg.methods:
        name, handoff = parse_method(label)
        ex.method = label
        problem = MixingProblem(groups=tuple(_groups(m)), total_steps=cfg.total_steps, seed=0, setting=cfg.setting,
                                with_aioli=handoff, rounds=cfg.rounds, aioli=dict(cfg.aioli))
        run_method(get_method(name, cfg.method_configs.get(label, cfg.method_configs.get(name))), problem, ex)
    return ex.records


def _groups(m: int) -> list[str]:
    from raymix.sim import get_preset

    return list(get_preset(SCENARIO[m]).groups)


def main() -> None:
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from experiments.paper import EXPERIMENTS, config_file
    from raymix.experiment import ExperimentConfig, load_experiment_file

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ms-per-step", type=float, default=MEASURED_MS_PER_STEP,
                    help="GPU time of one training step (default: measured on an H200); 0 = estimate from FLOPs "
                         "with --peak-tflops and --mfu")
    ap.add_argument("--peak-tflops", type=float, default=989.0, help="dense bf16 peak (H100/H200 SXM: 989)")
    ap.add_argument("--mfu", type=float, default=0.22, help="model-FLOPs utilisation assumed with --ms-per-step 0 "
                    "(0.22: the H200 measurement)")
    ap.add_argument("--per-trial-overhead-s", type=float, default=60.0,
                    help="set-up + checkpoint per trial at paper scale (docs/SCALING.md)")
    ap.add_argument("--ms", default="2,3,7")
    args = ap.parse_args()
    if args.ms_per_step > 0:
        step_s = args.ms_per_step / 1000
        source = (f"measured {args.ms_per_step:.1f} ms/step (MFU {FLOPS_PER_STEP / step_s / (args.peak_tflops * 1e12):.2f} "
                  f"of {args.peak_tflops:.0f} TFLOP/s)")
    else:
        step_s = FLOPS_PER_STEP / (args.peak_tflops * 1e12 * args.mfu)
        source = f"at {args.peak_tflops:.0f} TFLOP/s x MFU {args.mfu:.2f}: {step_s * 1000:.1f} ms/step"
    print(f"pythia-160m: {(N_BLOCKS + N_HEAD) / 1e6:.1f}M non-embedding parameters incl. output head, "
          f"{FLOPS_PER_TOKEN / 1e6:.0f} MFLOP/token, {FLOPS_PER_STEP / 1e12:.1f} TFLOP per step (8 x 2048); "
          f"{source}, {BATCH * CTX / step_s / 1e3:.0f}k tokens/s")
    print(f"{'table':9s} {'m':>2s} {'seeds':>5s} {'phases':>6s} {'trials':>6s} {'max par':>7s} {'1-trial phases':>14s} "
          f"{'steps/seed':>11s} {'GPU-h':>7s} {'wall':>8s}")
    for m in [int(x) for x in args.ms.split(",")]:
        for tname in EXPERIMENTS:
            data = load_experiment_file(config_file(tname, m))
            data["backend"] = {"kind": "sim", "scenario": SCENARIO[m]}
            cfg = ExperimentConfig.from_dict(data)
            recs = plan_table(cfg, m)
            seeds = len(cfg.seeds)
            def cost(r: PhaseRecord, n: int, k: str) -> float:
                return n * STEP_COST[k] * (r.aioli_factor if k == "aioli" else 1.0) * step_s

            gpu_s = sum(cost(r, n, k) for r in recs for n, k in zip(r.steps, r.kinds))
            gpu_s += sum(r.trials for r in recs) * args.per_trial_overhead_s
            # wall if each phase gets as many GPUs as it has trials and phases run one after another
            wall_s = sum(max(cost(r, n, k) for n, k in zip(r.steps, r.kinds)) + args.per_trial_overhead_s
                         for r in recs)
            steps = sum(sum(r.steps) for r in recs)
            single = sum(1 for r in recs if r.trials == 1)
            print(f"{tname:9s} {m:2d} {seeds:5d} {len(recs):6d} {sum(r.trials for r in recs):6d} "
                  f"{max(r.trials for r in recs):7d} {single:14d} {steps:11,d} {gpu_s * seeds / 3600:7.1f} "
                  f"{wall_s * seeds / 3600:6.1f} h")
            by_method = collections.OrderedDict()
            for r in recs:
                extra = f" (+{100 * (r.aioli_factor - 1):.1f}% LearnParams evals)" if r.aioli_factor > 1 else ""
                by_method.setdefault(r.method, []).append(f"{r.name}:{r.trials}x{max(r.steps)}{extra}")
            print("    " + "; ".join(f"{k} [{', '.join(v)}]" for k, v in by_method.items()))


if __name__ == "__main__":
    main()
