"""Fig. 3 and Table 5 (dynamic law) on real training: how well each online method's A^t points p the right way.

The paper's procedure (App. C.2), on the model and data of a finished Table 2 experiment (``--from``):

1. Run each online method — Aioli, Aioli-diagonal, Skill-It, DoReMi's proxy, DoGE's proxy — for t steps of
   its unrestricted configuration (after its own initialisation: DoReMi's reference, Skill-It's graph runs),
   then checkpoint the model and the method's A^t.  DoReMi's and DoGE's batch-level A^t are averaged over the
   last 100 steps, Aioli's over its rounds so far (the paper smooths both).
2. From that checkpoint, sweep p ∈ P for ``window`` more steps: many children resumed from one parent, each a
   Tune trial.  Fit A* of the linear dynamic law L^{t+Δ}(p) = L^t − A* p to the children's validation losses:
   its MSE / R² per checkpoint is Table 5's dynamic row on real data.
3. sim(Ã, A*) = ½ cos + ½ Spearman of the normalised column sums (§4.3), against the method's improvement over
   stratified in the Table 2 results (paired by seed).

The runs go through the Table 2 experiment's own Tune record (``<from>/tune``), so what that experiment
already trained — the stratified run that is DoReMi's reference, Skill-It's graph runs — is reused, and a
rerun of this command continues where it stopped.  Truncated runs keep the full run's LR horizon S; their
round count is scaled to t so that rounds have about the full run's length (policies plan their rounds
within the steps they run, so a truncated Aioli run has ⌈t/S·T⌉ rounds of ≈ S/T steps).

::

    python -m experiments.fidelity_real --from runs/gh_c4-table2 --seed 0 --t 300 --window 50 \\
        --out experiments/results/gh_c4/fig3
    # one figure over seeds, from each seed's --out folder:
    python -m experiments.fidelity_real combine runs/fig3-s0 runs/fig3-s1 runs/fig3-s2 --out results/fig3
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from raymix.analysis import dynamic_law_fit_table, similarity
from raymix.errors import ConfigError, DataError
from raymix.experiment import ExperimentConfig
from raymix.laws import LinearDynamicLaw
from raymix.methods import MixingProblem, get_method, run_method
from raymix.methods.base import Executor, Phase
from raymix.methods.handoff import static_run
from raymix.methods.runs import RunResult
from raymix.simplex import default_cover

#: method → the policy of the run whose A^t is read (the final run, or the proxy run)
ONLINE = {"aioli": "aioli", "aioli_diagonal": "aioli", "skill_it": "skill_it", "doremi": "doremi", "doge": "doge"}


class _Reached(Exception):
    """The method's plan reached its dynamic run and trained it to step t: stop the plan there."""


class TruncateAt(Executor):
    """Runs a method's plan on ``inner`` until the first run of ``policy``; that run is trained only to step
    ``t`` (same LR horizon, rounds scaled to t) and the plan stops (:attr:`result` holds it)."""

    def __init__(self, inner: Executor, policy: str, t: int, label: str) -> None:
        self.inner, self.policy, self.t, self.label = inner, policy, int(t), label
        self.result: RunResult | None = None

    def data_groups(self):
        return self.inner.data_groups()

    def run_phase(self, phase: Phase, problem: MixingProblem) -> list[RunResult]:
        runs, target = [], None
        for spec in phase.runs:
            if target is None and spec.policy == self.policy and spec.role in ("final", "proxy"):
                if spec.steps <= self.t:
                    raise ConfigError(f"t={self.t} must be below the steps of run {spec.name!r} ({spec.steps})")
                cfg = dict(spec.policy_config)
                if "rounds" in cfg:
                    cfg["rounds"] = max(1, round(int(cfg["rounds"]) * self.t / spec.steps))
                # named after the method: each method's truncated run (and its children) stays its own
                spec = dataclasses.replace(spec, name=f"{self.label}-{spec.name}-to{self.t}", steps=self.t,
                                           policy_config=cfg,
                                           role="truncated")
                target = spec
            runs.append(spec)
        results = self.inner.run_phase(dataclasses.replace(phase, runs=runs), problem)
        if target is not None:
            self.result = results[runs.index(target)]
            raise _Reached
        return results


def method_interactions(run: RunResult) -> np.ndarray:
    """The A^t a truncated online run ended with: its column sums for DoGE (the matrix is never observed), the
    mean of Aioli's per-round A^t so far (the paper smooths Aioli's A^t over rounds), the last round's otherwise."""
    hist = run.history
    if run.spec.policy == "doge":
        return np.asarray(hist[-1].info["A_colsums"], dtype=float)
    mats = [np.asarray(h.interactions, dtype=float) for h in hist if h.interactions is not None]
    if not mats:
        raise DataError(f"run {run.spec.name!r} ({run.spec.policy}) reported no A^t")
    return np.mean(mats, axis=0) if run.spec.policy == "aioli" else mats[-1]


def checkpoint_sweep(executor: Executor, problem: MixingProblem, parent: RunResult, window: int):
    """Children of ``parent`` (one per p ∈ P, ``window`` steps each); returns (P, L_t, L_next)."""
    P = default_cover(problem.m, None, seed=1)
    kids = [static_run(f"{parent.spec.name}-child-{i:02d}", p, problem, steps=parent.spec.steps + window,
                       role="search", resume_from=parent.spec.name) for i, p in enumerate(P)]
    res = executor.run_phase(Phase(f"{parent.spec.name}-children", kids), problem)
    L_next = np.array([r.val_loss for r in res])
    return P, np.asarray(parent.val_loss, dtype=float), L_next


def improvements(table2: Path, seed: int) -> dict[str, float]:
    """Each method's avg test PPL minus stratified's on ``seed`` in the Table 2 results (negative = better)."""
    from raymix.report import load_results

    ppl = {r.method: r.final.avg_test_ppl for r in load_results(table2) if r.problem.seed == seed}
    return {k: v - ppl["stratified"] for k, v in ppl.items() if "stratified" in ppl}


def study(source: Path, seed: int, t: int, window: int, methods: tuple[str, ...], log=print) -> dict[str, Any]:
    from raymix.tune.executor import TuneExecutor, TuneSettings

    meta = json.loads((source / "experiment.json").read_text())
    cfg = ExperimentConfig.from_dict({k: v for k, v in meta.items() if k != "fingerprint"})
    # the Table 2 experiment's own Tune storage and record: its finished runs are reused, not retrained
    settings = TuneSettings.from_dict({"storage_path": str(source.resolve() / "tune"), **cfg.tune,
                                       "experiment": f"{cfg.name}-s{seed}"})
    executor = TuneExecutor(cfg.backend, settings)
    groups = executor.data_groups()
    problem = MixingProblem(groups=tuple(groups), total_steps=cfg.total_steps, seed=seed, setting="unrestricted",
                            rounds=cfg.rounds, aioli=dict(cfg.aioli))
    out: dict[str, Any] = {"groups": list(groups), "seed": seed, "t": t, "window": window, "S": cfg.total_steps,
                           "methods": {}}
    records = []
    for name in methods:
        t0 = time.perf_counter()
        trunc = TruncateAt(executor, ONLINE[name], t, name)
        try:
            run_method(get_method(name, cfg.method_configs.get(name)), problem, trunc)
        except _Reached:
            pass
        if trunc.result is None:
            raise DataError(f"method {name!r} never ran a {ONLINE[name]!r} run to truncate")
        parent = trunc.result
        P, L_t, L_next = checkpoint_sweep(executor, problem, parent, window)
        law = LinearDynamicLaw().fit(P, np.tile(L_t, (len(P), 1)), L_next)
        A = method_interactions(parent)
        out["methods"][name] = {"A_method": A.tolist(), "A_star": law.A_.tolist(), "sim": similarity(A, law.A_),
                                "L_t": L_t.tolist(), "P": P.tolist(), "L_next": L_next.tolist(),
                                "fit": law.score(P, np.tile(L_t, (len(P), 1)), L_next),
                                "wall_time_s": time.perf_counter() - t0}
        records += [{"setting": "dynamic", "p": p, "loss_t": L_t, "loss_next": ln, "p0": name, "seed": seed}
                    for p, ln in zip(P, L_next)]
        log(f"[{name}] sim(Ã, A*) = {out['methods'][name]['sim']:.3f} "
            f"(A^t colsums {np.round(A if A.ndim == 1 else A.sum(0), 4).tolist()}, "
            f"A* colsums {np.round(law.A_.sum(0), 4).tolist()}, {time.perf_counter() - t0:.0f}s)")
    table = dynamic_law_fit_table(records, laws=("linear_dynamic",)).iloc[0].to_dict()
    out["dynamic_law_fit"] = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in table.items()}
    out["improvement_vs_stratified"] = improvements(source, seed)
    return out


def markdown(res: dict[str, Any]) -> str:
    imp = res["improvement_vs_stratified"]
    lines = [f"# Fig. 3 on real data: sim(Ã, A*) at t = {res['t']} of S = {res['S']} (seed {res['seed']}, "
             f"sweep window {res['window']} steps, groups {', '.join(res['groups'])})", "",
             "| method | sim(Ã, A*) | Δ avg test PPL vs stratified (Table 2, same seed) | A^t column sums | "
             "A* column sums | A* fit R² |", "|---|---|---|---|---|---|"]
    for name, d in res["methods"].items():
        A = np.asarray(d["A_method"])
        cs = A if A.ndim == 1 else A.sum(0)
        delta = f"{imp[name]:+.3f}" if name in imp else "– (not in Table 2)"
        lines.append(f"| {name} | {d['sim']:.3f} | {delta} | {np.round(cs, 4).tolist()} | "
                     f"{np.round(np.asarray(d['A_star']).sum(0), 4).tolist()} | {d['fit']['r2']:.3f} |")
    f = res["dynamic_law_fit"]
    lines += ["", "Table 5 (dynamic row): linear dynamic law fitted at each method's checkpoint, "
              f"{f['n_fits']} fits over {f['n_runs']} children: MSE {f['mse']:.2e}, R² {f['r2']:.3f} "
              f"(per group {', '.join(f'{v:.3f}' for v in f['r2_per_group'])})."]
    return "\n".join(lines)


def plot(res: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    imp = res["improvement_vs_stratified"]
    fig, ax = plt.subplots(figsize=(5.2, 3.8))
    for name, d in res["methods"].items():
        if name in imp:
            ax.plot(d["sim"], -imp[name], "o")
            ax.annotate(name, (d["sim"], -imp[name]), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.axhline(0, color="k", lw=0.6)
    ax.set_xlabel("sim(Ã, A*)")
    ax.set_ylabel("improvement over stratified (avg test PPL)")
    ax.set_title(f"Fig. 3 analog (t={res['t']}, seed {res['seed']})")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def combine(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Several seeds' :func:`study` results as one Fig. 3: per method the mean ± standard error of sim(Ã, A*)
    and of its Δ PPL vs stratified over seeds, and the Spearman correlation between sim and improvement over
    every (method, seed) point of a method in Table 2 (the paper's claim: higher sim, larger improvement)."""
    from scipy.stats import spearmanr

    from raymix.report import mean_and_se

    if not results:
        raise DataError("nothing to combine: pass the --out folders of fidelity_real runs (one per seed)")
    seeds = [r["seed"] for r in results]
    if len(set(seeds)) != len(seeds):
        raise DataError(f"combine needs one result per seed; got seeds {seeds}")
    keys = {(r["t"], r["window"], r["S"], tuple(r["groups"])) for r in results}
    if len(keys) != 1:
        raise DataError(f"results differ in (t, window, S, groups): {sorted(keys)}; combine like with like")

    methods: dict[str, Any] = {}
    points = []
    for name in results[0]["methods"]:
        sims = [r["methods"][name]["sim"] for r in results if name in r["methods"]]
        deltas = [r["improvement_vs_stratified"][name] for r in results
                  if name in r["methods"] and name in r["improvement_vs_stratified"]]
        methods[name] = {"sim": sims, "sim_mean_se": mean_and_se(sims), "delta_ppl": deltas,
                         "delta_mean_se": mean_and_se(deltas) if deltas else None}
        points += [(r["methods"][name]["sim"], -r["improvement_vs_stratified"][name], name, r["seed"])
                   for r in results if name in r["methods"] and name in r["improvement_vs_stratified"]]
    rho = spearmanr([x for x, *_ in points], [y for _, y, *_ in points]) if len(points) > 2 else None
    fits = [r["dynamic_law_fit"] for r in results]
    t, window, S, groups = next(iter(keys))
    return {"seeds": seeds, "t": t, "window": window, "S": S, "groups": list(groups), "methods": methods,
            "points": points, "spearman_sim_vs_improvement": None if rho is None else
            {"rho": float(rho.statistic), "p": float(rho.pvalue), "n": len(points)},
            "dynamic_law_fit": {"mse": mean_and_se([f["mse"] for f in fits]), "r2": mean_and_se([f["r2"] for f in fits]),
                                "n_fits": int(sum(f["n_fits"] for f in fits)),
                                "n_runs": int(sum(f["n_runs"] for f in fits))}}


def combined_markdown(c: dict[str, Any]) -> str:
    def fmt(ms: tuple[float, float] | None, spec: str = "+.3f") -> str:
        return "–" if ms is None else f"{ms[0]:{spec}} ± {ms[1]:.3f}"

    lines = [f"# Fig. 3 on real data over seeds {', '.join(map(str, c['seeds']))}: sim(Ã, A*) at t = {c['t']} of "
             f"S = {c['S']} (sweep window {c['window']} steps, groups {', '.join(c['groups'])})", "",
             "Mean ± standard error over seeds.", "",
             "| method | sim(Ã, A*) | per seed | Δ avg test PPL vs stratified (Table 2, same seeds) | per seed |",
             "|---|---|---|---|---|"]
    for name, d in c["methods"].items():
        lines.append(f"| {name} | {fmt(d['sim_mean_se'], '.3f')} | {', '.join(f'{x:.3f}' for x in d['sim'])} | "
                     f"{fmt(d['delta_mean_se']) if d['delta_mean_se'] else '– (not in Table 2)'} | "
                     f"{', '.join(f'{x:+.2f}' for x in d['delta_ppl']) or '–'} |")
    rho = c["spearman_sim_vs_improvement"]
    f = c["dynamic_law_fit"]
    lines += ["", "Spearman correlation of sim(Ã, A*) with the improvement over stratified, over every (method, "
              "seed) point of a Table 2 method: " + ("too few points" if rho is None else
                                                    f"ρ = {rho['rho']:+.2f} (p = {rho['p']:.2f}, n = {rho['n']})")
              + ".", "",
              f"Table 5 (dynamic row): linear dynamic law fitted at each method's checkpoint, {f['n_fits']} fits over "
              f"{f['n_runs']} children: MSE {f['mse'][0]:.2e} ± {f['mse'][1]:.1e}, R² {f['r2'][0]:.3f} ± "
              f"{f['r2'][1]:.3f} (mean ± SE over seeds)."]
    return "\n".join(lines)


def combined_plot(c: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.6, 4.0))
    for i, name in enumerate(dict.fromkeys(n for *_, n, _ in c["points"])):
        pts = [(x, y) for x, y, n, _ in c["points"] if n == name]
        ax.plot([x for x, _ in pts], [y for _, y in pts], "o", color=f"C{i}", label=name)
    ax.axhline(0, color="k", lw=0.6)
    ax.set_xlabel("sim(Ã, A*)")
    ax.set_ylabel("improvement over stratified (avg test PPL)")
    ax.set_title(f"Fig. 3 analog (t={c['t']}, seeds {', '.join(map(str, c['seeds']))})")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main_combine(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m experiments.fidelity_real combine",
                                 description="one Fig. 3 over several seeds' fidelity_real --out folders")
    ap.add_argument("folders", nargs="+", help="fidelity_real --out folders, one per seed (each with fig3.json)")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    missing = [f for f in args.folders if not (Path(f) / "fig3.json").is_file()]
    if missing:
        raise DataError(f"no fig3.json in {missing}: run experiments.fidelity_real for that seed first")
    c = combine([json.loads((Path(f) / "fig3.json").read_text()) for f in args.folders])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "fig3-seeds.json").write_text(json.dumps(c, indent=1, default=float))
    (out / "fig3-seeds.md").write_text(combined_markdown(c) + "\n")
    combined_plot(c, out / "fig3-seeds.png")
    print(combined_markdown(c))
    return 0


def main(argv: list[str] | None = None) -> int:
    argv_given = argv is not None
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["combine"]:
        return main_combine(argv[1:])
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--from", dest="source", required=True, help="a finished Table 2 results folder (cpu_scale)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--t", type=int, required=True, help="step at which each method's A^t is read")
    ap.add_argument("--window", type=int, required=True, help="steps of each sweep child after t")
    ap.add_argument("--methods", default=",".join(ONLINE))
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    methods = tuple(args.methods.split(","))
    unknown = sorted(set(methods) - set(ONLINE))
    if unknown:
        raise ConfigError(f"--methods {unknown} are not online methods; choose from {sorted(ONLINE)}")
    source = Path(args.source)
    if not (source / "experiment.json").is_file():
        raise DataError(f"--from {str(source)!r} holds no experiment.json; run the Table 2 experiment first")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    from raymix.progress import console_progress

    # as cpu_scale: the screen gets raymix's lines, Ray's own output goes to <out>/raymix.log
    console_progress(out, capture_native=not argv_given)
    from experiments.cpu_scale import provenance_entry, record_provenance

    # recorded before the study starts, as cpu_scale does: an interrupted study continued by the same command
    # lists every invocation with the commit it ran at, not only the one that finished it
    record_provenance(out / "provenance.json", provenance_entry(["python -m experiments.fidelity_real", *argv]))
    res = study(source, args.seed, args.t, args.window, methods)
    (out / "fig3.json").write_text(json.dumps(res, indent=1, default=float))
    (out / "fig3.md").write_text(markdown(res) + "\n")
    plot(res, out / "fig3.png")
    print(markdown(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
