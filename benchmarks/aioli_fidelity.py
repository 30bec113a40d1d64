"""Simulator figures for two Aioli fidelity fixes (docs/DECISIONS.md), side by side, several seeds.

1. LearnParams segment lengths — bias of Â on a symmetric A* (exchangeable groups: every column sum of an
   unbiased Â is equal in expectation).  "unequal": the round's δ·length steps split as evenly as possible
   (raymix before the fix, e.g. 17 steps as [3,3,3,3,3,2]); "equal": K segments of ⌊δ·length/K⌋ steps
   (raymix now).  The unequal cut is re-implemented here for the comparison; the library no longer has it.
   Figure: mean over seeds of the relative deviation of the short-segment group's column sum from the
   others' mean (0 = unbiased), with the standard error over seeds.
2. Aioli+method's starting point in the restricted setting (paper §6.2, Table 3 analog): S_init = S/20 steps
   on p_init, then Aioli from p⁰ = uniform (Algorithm 1, the default), from the floored p_init
   (``start="p_init"``), and from the raw p_init (floor 0, raymix before the fix).  p_init is (a) a vertex of
   the simplex, as DML's m = 2 closed form can return, and (b) what DML / grid search learned on their short
   runs (``aioli+dml`` / ``aioli+grid_search``).  Figure: average test PPL, and its paired difference vs
   stratified (mean ± standard error over seeds).

3. Evaluation windows (``--shards DIR``, real shards, e.g. the demo's ``raymix_demo/shards``): how many
   held-out documents per group the cached validation set (``--cached`` windows) and LearnParams' subset
   (``--subset`` windows of it) cover — drawn spread over documents (raymix now) vs the first windows in
   file order (raymix before).

Run: ``.venv/bin/python benchmarks/aioli_fidelity.py [--seeds 5] [--shards DIR]`` (1–2 numpy-only, seconds to a
minute on one core).
"""

from __future__ import annotations

import argparse

import numpy as np

import raymix.methods.policies as policies
from raymix.estimators.aioli import (
    LearnParamsAccumulator,
    segment_counts,
    segment_order,
    smoothed_onehots,
)
from raymix.methods import MixingProblem, get_method, run_method
from raymix.methods.driver import BackendSpec, LocalExecutor, RunDriver, build_backend
from raymix.methods.runs import RunSpec
from raymix.sim import LinearDynamicSimulator, SimBackend


def _mean_se(x) -> str:
    x = np.asarray(x, dtype=float)
    se = x.std(ddof=1) / np.sqrt(len(x)) if len(x) > 1 else 0.0
    return f"{x.mean():+.4f} ± {se:.4f}"


# --- 1. segment-length bias ----------------------------------------------------------------------------------
def segment_bias(seed: int, lengths: list[int], *, m: int = 3, k: int = 2, eval_noise: float = 1e-4) -> float:
    """Relative deviation of the column sum of Â for the group trained in the last segment (the short one in
    the unequal cut) from the mean of the other column sums, on a symmetric A*, one LearnParams round."""
    A0 = np.full((m, m), 0.5) + 1.5 * np.eye(m)
    sim = LinearDynamicSimulator(A0, L0=np.full(m, 4.0), floor=np.full(m, 1.0), total_steps=5000,
                                 min_lr_ratio=1.0, forget=0.0, train_noise=2e-5, seed=seed)
    b = SimBackend(sim, eval_noise=eval_noise, seed=seed)
    b.train(500, np.full(m, 1.0 / m))
    rng = np.random.default_rng(seed)
    P = smoothed_onehots(m, 0.75)
    counts = np.stack([segment_counts(P[:, j], b.batch_size) for j in range(m)], axis=1)
    acc = LearnParamsAccumulator(m, k, 0.75, segment_mixtures=counts / b.batch_size)
    order = segment_order(m, k, rng)
    before = b.evaluate("val", max_examples=8)
    for j, n in zip(order, lengths):
        b.train(n, counts=counts[:, j])
        after = b.evaluate("val", max_examples=8)
        acc.record(int(j), before, after)
        before = after
    c = acc.solve().sum(axis=0)
    short = int(order[-1])
    others = np.delete(c, short)
    return float((c[short] - others.mean()) / others.mean())


def segment_figures(seeds: range) -> None:
    budget, K = 17, 6  # the demo's shape: m = 3, k = 2, δ·(round length) = 17 steps
    base, rem = divmod(budget, K)
    unequal = [base + (1 if i < rem else 0) for i in range(K)]
    equal = [budget // K] * K
    print(f"1. LearnParams on a symmetric A* (m=3, k=2, {budget} LearnParams steps, eval subset 8, noise on), "
          f"{len(seeds)} seeds")
    for name, lengths in (("unequal " + str(unequal), unequal), ("equal   " + str(equal), equal)):
        dev = [segment_bias(s, lengths) for s in seeds]
        print(f"   {name:<28} relative column-sum deviation of the last segment's group {_mean_se(dev)}")
    for name, lengths in (("unequal " + str(unequal), unequal), ("equal   " + str(equal), equal)):
        dev = [segment_bias(s, lengths, eval_noise=0.0) for s in seeds]
        print(f"   {name:<28} same, noise-free evaluations                        {_mean_se(dev)}")


# --- 2. Aioli+method starting point ------------------------------------------------------------------------
START_VARIANTS = (("uniform", "uniform", None), ("p_init floored", "p_init", policies.START_FLOOR),
                  ("p_init raw", "p_init", 0.0))


def _with_floor(floor: float | None):
    class _Floor:
        def __enter__(self):
            self.saved = policies.START_FLOOR
            if floor is not None:
                policies.START_FLOOR = floor

        def __exit__(self, *exc):
            policies.START_FLOOR = self.saved

    return _Floor()


def _stratified_ppl(scenario: str, seed: int, S: int) -> float:
    prob = MixingProblem(groups=_groups(scenario), total_steps=S, seed=seed)
    return run_method(get_method("stratified"), prob, LocalExecutor(BackendSpec(scenario=scenario))).final.avg_test_ppl


def _groups(scenario: str) -> tuple[str, ...]:
    from raymix.sim import get_preset

    return tuple(get_preset(scenario).groups)


def vertex_start(scenario: str, seed: int, S: int, p_init: list[float], start: str, floor: float | None) -> float:
    """Average test PPL of Aioli after S/20 steps on ``p_init`` (restricted hand-off shape)."""
    with _with_floor(floor):
        spec = RunSpec(name="final", policy="aioli", steps=S, total_steps=S, seed=seed,
                       policy_config={"init_mixture": p_init, "init_steps": S // 20, "start": start, "rounds": 20,
                                      "sweeps": 4, "delta": 0.128 if len(p_init) == 2 else 0.288, "eta": 0.2})
        d = RunDriver(spec, build_backend(BackendSpec(scenario=scenario), spec))
        return d.run_to_end().avg_test_ppl


def handoff(scenario: str, seed: int, S: int, method: str, start: str, floor: float | None) -> tuple[float, list]:
    with _with_floor(floor):
        prob = MixingProblem(groups=_groups(scenario), total_steps=S, seed=seed, setting="restricted",
                             with_aioli=True, aioli={"start": start})
        res = run_method(get_method(method), prob, LocalExecutor(BackendSpec(scenario=scenario)))
        return res.final.avg_test_ppl, res.mixture


def start_figures(seeds: range) -> None:
    S = 5000
    print(f"2. Aioli+method start (restricted: S_init = S/20 = {S // 20} on p_init, then T=20 rounds, η=0.2), "
          f"S={S}, {len(seeds)} seeds; Δ = paired avg test PPL − stratified")
    cases = [("two_group_interacting", "vertex p_init [0, 1]", [0.0, 1.0]),
             ("two_group_interacting", "vertex p_init [1, 0]", [1.0, 0.0]),
             ("three_group", "vertex p_init [0, 0, 1]", [0.0, 0.0, 1.0])]
    for scenario, label, p_init in cases:
        strat = np.array([_stratified_ppl(scenario, s, S) for s in seeds])
        print(f"   {scenario}, {label}: stratified {strat.mean():.4f}")
        for name, start, floor in START_VARIANTS:
            ppl = np.array([vertex_start(scenario, s, S, p_init, start, floor) for s in seeds])
            print(f"     start {name:<15} avg test PPL {ppl.mean():.4f}   Δ {_mean_se(ppl - strat)}")
    for scenario in ("two_group_interacting", "three_group"):
        strat = np.array([_stratified_ppl(scenario, s, S) for s in seeds])
        for method in ("dml", "grid_search"):
            print(f"   {scenario}, aioli+{method}: stratified {strat.mean():.4f}")
            for name, start, floor in START_VARIANTS:
                out = [handoff(scenario, s, S, method, start, floor) for s in seeds]
                ppl = np.array([o[0] for o in out])
                faces = sum(min(o[1]) < 1e-3 for o in out)
                print(f"     start {name:<15} avg test PPL {ppl.mean():.4f}   Δ {_mean_se(ppl - strat)}"
                      f"   (p_method on a face in {faces}/{len(seeds)} seeds)")


# --- 3. evaluation windows --------------------------------------------------------------------------------
def eval_coverage(shards: str, cached: int, subset: int) -> None:
    from raymix.data.manifest import load_manifest
    from raymix.data.reader import load_eval_documents, load_eval_set, read_group_windows, window_documents
    from raymix.model.evaluation import GroupEvaluator

    man = load_manifest(shards)
    spread = load_eval_set(shards, "val", cached, manifest=man)
    docs_of_cached = load_eval_documents(shards, "val", cached, manifest=man)
    ev = GroupEvaluator(man.groups, {"val": spread}, documents={"val": docs_of_cached}, subset_seed=0)
    print(f"3. documents covered per group, val split of {shards} (cached {cached} windows, subset {subset}; "
          "spread vs first windows)")
    for g, idx in zip(man.groups, ev.subset("val", subset)):
        every = read_group_windows(shards, "val", g, manifest=man)
        docs = window_documents(every, man.eos_id)
        rows = np.array([int(np.flatnonzero((every == w).all(axis=1))[0]) for w in spread[g]])
        print(f"   {g:<12} {len(every):>5} windows of {docs.max() + 1:>3} documents | cached: "
              f"{len(set(docs[rows]))} vs {len(set(docs[:cached]))} | subset: {len(set(docs[rows[idx]]))} vs "
              f"{len(set(docs[:subset]))}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--only", choices=("segments", "start", "eval"), default=None)
    ap.add_argument("--shards", default=None, help="real shards for the evaluation-window figures (3.)")
    ap.add_argument("--cached", type=int, default=64, help="cached validation windows per group (the demo's 64)")
    ap.add_argument("--subset", type=int, default=8, help="LearnParams subset per group (AioliConfig default 8)")
    args = ap.parse_args()
    seeds = range(args.seeds)
    if args.only in (None, "eval") and args.shards:
        eval_coverage(args.shards, args.cached, args.subset)
    if args.only in (None, "segments"):
        segment_figures(seeds)
    if args.only in (None, "start"):
        start_figures(seeds)


if __name__ == "__main__":
    main()
