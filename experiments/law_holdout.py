"""Does DML's static law predict what it was not fitted on?  Leave-one-out on DML's own sweep, per seed, and the
law's prediction at DML's chosen p against what DML's final run then measured.

Table 5 reports the in-sample fit of the log-linear static law (m + 2 parameters per group).  On a sweep of 10
runs and m = 6 that figure stays near 1 whatever the law would predict elsewhere, and DML trusts the law exactly
elsewhere: at the minimiser of its prediction.  For every seed of a results folder that holds DML and
stratified, this refits DML's law on DML's sweep runs (the method's own settings, so the fit picks DML's p
again; the "same p" column checks it) and reports:

* in-sample R² and leave-one-out R² (:func:`raymix.analysis.leave_one_out`; the lowest group in brackets);
* the predicted gain, law(p_DML) − law(uniform) in avg val loss, against the measured one, DML's final run −
  stratified's on the same seed (the same S as the sweep runs, or the row says the horizons differ).

::

    python -m experiments.law_holdout experiments/results/gh_c4/table2 experiments/results/cc_gh_w/table2 \\
        experiments/results/realmix/table2
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from experiments import print_and_save
from raymix.errors import DataError


def _dml_config(folder: Path):
    """The settings DML used in this experiment: DMLConfig with its method_configs override, if any."""
    from raymix.methods.sweeps import DMLConfig

    meta = json.loads((folder / "experiment.json").read_text()) if (folder / "experiment.json").is_file() else {}
    return DMLConfig.from_dict(meta.get("method_configs", {}).get("dml"))


def study(folder: Path) -> list[dict[str, Any]]:
    """One row per seed that holds both ``dml`` and ``stratified`` (see the module docstring)."""
    from raymix.analysis import leave_one_out
    from raymix.laws import LogLinearStaticLaw
    from raymix.methods.sweeps import finite_runs, sweep_table
    from raymix.report import load_results

    results = {(r.method, r.problem.seed): r for r in load_results(folder)}
    seeds = sorted(s for m, s in results if m == "dml" and ("stratified", s) in results)
    if not seeds:
        raise DataError(f"{str(folder)!r} holds no seed with both dml and stratified results; give a Table 2 "
                        "results folder")
    cfg = _dml_config(folder)
    rows = []
    for seed in seeds:
        def dml_law(seed: int = seed) -> LogLinearStaticLaw:  # an unfitted law as DML builds it for this seed
            return LogLinearStaticLaw(delta=cfg.huber_delta, n_restarts=cfg.restarts, seed=seed)

        dml, strat = results["dml", seed], results["stratified", seed]
        sweep = finite_runs([r for r in dml.runs if r.spec.role == "search"], "dml")
        P, L = sweep_table(sweep)
        law = dml_law().fit(P, L)
        loo = leave_one_out(P, L, law_factory=dml_law)
        p_dml = np.asarray(dml.mixture, dtype=float)
        uniform = np.full((1, P.shape[1]), 1.0 / P.shape[1])
        rows.append({
            "seed": seed, "runs": len(P), "m": P.shape[1],
            "r2_in": law.score(P, L)["r2"], "r2_loo": loo["r2"], "r2_loo_min": min(loo["r2_per_group"]),
            "same_p": bool(np.allclose(law.optimal_mixture(), p_dml, atol=1e-4)),
            "predicted_gain": float(law.predict(p_dml[None])[0].mean() - law.predict(uniform)[0].mean()),
            "measured_gain": float(dml.final.avg_val_loss - strat.final.avg_val_loss),
            "same_horizon": sweep[0].spec.steps == dml.final.spec.steps == strat.final.spec.steps,
        })
    return rows


def markdown(tables: dict[str, list[dict[str, Any]]]) -> str:
    lines = ["| results | seed | sweep runs (m) | in-sample R² | leave-one-out R² (lowest group) | same p | "
             "predicted gain at p_DML (avg val loss) | measured gain vs stratified |",
             "|---|---|---|---|---|---|---|---|"]
    for folder, rows in tables.items():
        for r in rows:
            measured = f"{r['measured_gain']:+.4f}" + ("" if r["same_horizon"] else " (other S than the sweep)")
            lines.append(f"| `{folder}` | {r['seed']} | {r['runs']} ({r['m']}) | {r['r2_in']:.3f} | "
                         f"{r['r2_loo']:.3f} ({r['r2_loo_min']:.3f}) | {'yes' if r['same_p'] else 'no'} | "
                         f"{r['predicted_gain']:+.4f} | {measured} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folders", nargs="+", help="results folders holding dml and stratified (Table 2 analogs)")
    ap.add_argument("--out", default=None, help="also write the markdown table to this file")
    args = ap.parse_args(argv)
    print_and_save(markdown({f: study(Path(f)) for f in args.folders}), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
