"""The paper's fidelity analysis (§4, App. C) as Tune-ready plans of runs.

* **Static law fit** (Table 5, row 1): full static runs over a sweep P; fit the log-linear static law.
* **Dynamic law fit** (Table 5, row 2; Fig. 2 right): train on p⁰ to step t, then resume that checkpoint
  once per p ∈ P for a short window — many children continue one parent, a hand-off per child — and fit
  the linear (and log-linear) dynamic law to (p, L^t, L^{t+Δ}).
* **sim(Ã, A*)** (Fig. 3): the A^t a method used at step t against A* fitted from that sweep, after one
  scale b fitted across groups (App. C.2); on the simulator A* is also known exactly.
* **Greedy vs optimal** (Table 10): T = 2 rounds over P × P by brute force (children of each round-1
  parent), against the greedy round-by-round choice.

Runs go through any :class:`raymix.methods.base.Executor`: ``LocalExecutor`` for the simulator (seconds),
``TuneExecutor`` for models on a cluster.  ``python -m experiments.fidelity`` prints all four on the
simulator::

    python -m experiments.fidelity --scenario two_group_interacting --steps 5000
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

import numpy as np

from raymix.analysis import dynamic_law_fit_table, similarity, static_law_fit_table
from raymix.analysis.greedy import greedy_vs_optimal
from raymix.methods.base import Executor, MixingProblem, Phase
from raymix.methods.driver import BackendSpec, LocalExecutor, backend_groups
from raymix.methods.handoff import static_run
from raymix.methods.runs import RunSpec
from raymix.progress import ExperimentProgress
from raymix.simplex import default_cover


@dataclass
class Study:
    backend: BackendSpec
    executor: Executor
    problem: MixingProblem

    def run(self, name: str, runs: list[RunSpec]):
        return self.executor.run_phase(Phase(name, runs), self.problem)


def static_fit(study: Study, seeds=(0, 1)) -> dict:
    P = default_cover(study.problem.m, None, seed=0)
    rows = []
    for seed in seeds:
        prob = study.problem.replace(seed=seed)
        runs = [static_run(f"static-s{seed}-{i:02d}", p, prob, role="search") for i, p in enumerate(P)]
        for r in study.run(f"static-fit-s{seed}", runs):
            rows.append({"setting": "static", "p": r.spec.tags["mixture"], "loss": r.val_loss, "seed": seed})
    return static_law_fit_table(rows).iloc[0].to_dict()


def dynamic_sweep(study: Study, p0, t: int, window: int, tag: str = "dyn"):
    """Parent on p0 to step t, then one child per p ∈ P for ``window`` steps (resumes of the parent)."""
    prob = study.problem
    parent = static_run(f"{tag}-parent", p0, prob, steps=t, role="truncated")
    (pres,) = study.run(f"{tag}-parent", [parent])
    P = default_cover(prob.m, None, seed=1)
    kids = [static_run(f"{tag}-child-{i:02d}", p, prob, steps=t + window, role="search", resume_from=parent.name)
            for i, p in enumerate(P)]
    res = study.run(f"{tag}-children", kids)
    return P, np.asarray(pres.val_loss), np.array([r.val_loss for r in res])


def dynamic_fit(study: Study, t: int, window: int) -> tuple[dict, np.ndarray]:
    m = study.problem.m
    rows, A_star = [], None
    for k, p0 in enumerate(default_cover(m, 3, seed=2)):
        P, L_t, L_next = dynamic_sweep(study, p0, t, window, tag=f"dyn{k}")
        rows += [{"setting": "dynamic", "p": p, "loss_t": L_t, "loss_next": ln, "p0": tuple(p0)}
                 for p, ln in zip(P, L_next)]
    table = dynamic_law_fit_table(rows, laws=("linear_dynamic",))
    from raymix.laws import LinearDynamicLaw

    # A* at t for the uniform parent: the matrix the methods' A^t are compared with (Fig. 3)
    P, L_t, L_next = dynamic_sweep(study, np.full(m, 1 / m), t, window, tag="dynu")
    A_star = LinearDynamicLaw().fit(P, np.tile(L_t, (len(P), 1)), L_next).A_
    return table.iloc[0].to_dict(), A_star


def method_similarity(study: Study, A_star: np.ndarray, t: int) -> dict[str, float]:
    """sim(Ã, A*) of the A^t each online method used in the round that ends nearest to t (Fig. 3)."""
    from raymix.methods import get_method, run_method

    out = {}
    for name in ("aioli", "aioli_diagonal", "skill_it"):
        res = run_method(get_method(name), study.problem, study.executor)
        hist = [h for h in res.final.history if h.interactions is not None]
        h = min(hist, key=lambda h: abs(h.step - t))
        out[name] = float(similarity(np.asarray(h.interactions), A_star))
    return out


def greedy_table(study: Study, rounds_split: float = 0.5) -> dict:
    prob = study.problem
    S = int(prob.total_steps)
    half = int(S * rounds_split)
    P = default_cover(prob.m, None, seed=0)
    parents = [static_run(f"g1-{i:02d}", p, prob, steps=half, role="truncated") for i, p in enumerate(P)]
    pres = study.run("greedy-round1", parents)
    table = {}
    for i, pr in enumerate(pres):
        # greedy picks round 1 by validation PPL (what a practitioner sees then); schedules by test PPL
        table[(tuple(P[i]),)] = float(np.mean(np.exp(pr.val_loss)))
        kids = [static_run(f"g2-{i:02d}-{j:02d}", q, prob, steps=S, role="search", resume_from=pr.spec.name)
                for j, q in enumerate(P)]
        for j, kr in enumerate(study.run(f"greedy-round2-{i:02d}", kids)):
            table[(tuple(P[i]), tuple(P[j]))] = float(np.mean(np.exp(kr.test_loss)))
    g = greedy_vs_optimal([tuple(p) for p in P], table, rounds=2)
    def fmt(schedule) -> str:  # p₁ per round for m=2 (as Table 10), whole mixtures otherwise
        if prob.m == 2:
            return ", ".join(f"{p[0]:.1f}" for p in schedule)
        return " → ".join("[" + ", ".join(f"{x:.2f}" for x in p) + "]" for p in schedule)

    return {"greedy": fmt(g.greedy_schedule), "greedy_ppl": g.greedy_loss, "optimal": fmt(g.optimal_schedule),
            "optimal_ppl": g.optimal_loss, "same": g.greedy_is_optimal}


def greedy_verdict(g: dict) -> str:
    """The sentence printed under Table 10: it says "recovers" only when the greedy schedule is the optimum."""
    if g["same"]:
        return f"greedy recovers the optimum ({g['greedy']}, avg test PPL {g['greedy_ppl']:.3f})"
    return (f"greedy does NOT recover the optimum: greedy {g['greedy']} (avg test PPL {g['greedy_ppl']:.3f}) vs "
            f"optimal {g['optimal']} ({g['optimal_ppl']:.3f})")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenario", default="two_group_interacting")
    ap.add_argument("--steps", type=int, default=5000)
    ap.add_argument("--t", type=int, default=2000, help="checkpoint step of the dynamic sweeps (paper: 2000)")
    ap.add_argument("--window", type=int, default=100, help="steps of each dynamic-sweep child (paper: 100)")
    args = ap.parse_args(argv)
    backend = BackendSpec(kind="sim", scenario=args.scenario)
    groups = backend_groups(backend)
    study = Study(backend, LocalExecutor(backend), MixingProblem(groups=groups, total_steps=args.steps))
    # live progress on stderr: one bar per phase of runs (plain periodic lines when stderr is not a terminal)
    study.executor.progress = progress = ExperimentProgress(sys.stderr)
    progress.item_started("fidelity", 0, groups)
    st = static_fit(study)
    dyn, A_fit = dynamic_fit(study, args.t, args.window)
    print(f"# Fidelity analysis on the simulator scenario {args.scenario!r} (S={args.steps})\n")
    print("| law (Table 5) | MSE | R² |\n|---|---|---|")
    print(f"| log-linear static | {st['mse']:.2e} | {st['r2']:.3f} |")
    print(f"| linear dynamic (t={args.t}, Δ={args.window}) | {dyn['mse']:.2e} | {dyn['r2']:.3f} |\n")
    from raymix.sim import SimBackend

    sim = SimBackend.from_preset(args.scenario, total_steps=args.steps)
    true_A = sim.A_star(args.t)
    print(f"A* fitted from the sweep at t={args.t}: {np.round(A_fit, 4).tolist()}; "
          f"sim(fit, true A*) = {similarity(A_fit, true_A):.3f}\n")
    sims = method_similarity(study, A_fit, args.t)
    print("| method (Fig. 3) | sim(Ã, A*) |\n|---|---|")
    for k, v in sims.items():
        print(f"| {k} | {v:.3f} |")
    g = greedy_table(study)
    print("\n| Table 10 | schedule (p₁ per round for m=2) | avg test PPL |\n|---|---|---|")
    print(f"| greedy | {g['greedy']} | {g['greedy_ppl']:.3f} |\n| optimal | {g['optimal']} | {g['optimal_ppl']:.3f} |")
    print("\n" + greedy_verdict(g))
    progress.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
