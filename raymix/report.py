"""Paper-style tables and plots from stored experiment results (``raymix report``).

Reads the per-(method, seed) JSON files written by :func:`raymix.experiment.run_experiment` and builds:

* the comparison table of the paper (Tables 2/3): per-group test perplexity, the average over groups of
  per-group test PPL (mean ± std over seeds) next to the average validation loss (what the laws are fitted
  on), Δ vs stratified, extra runs and extra steps;
* Aioli's diagnostics per final run: how consistently Ā^t's column sums pushed each group the same way
  (sign agreement across rounds), how far p moved, and how far it could move at all (EMA/normalisation bound);
* the proportions each method used (Table 19 style, averaged over the final run's rounds);
* plots: proportion trajectories of every dynamic final run (Fig. 6 style) and average test PPL against
  extra training steps for every method (when the results hold several).
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from raymix.errors import DataError
from raymix.experiment import parse_method
from raymix.methods import MethodResult
from raymix.methods.registry import METHODS


def load_results(directory: str | Path) -> list[MethodResult]:
    """Every complete result file under ``directory/results`` (sorted by method then seed)."""
    d = Path(directory) / "results"
    files = sorted(d.glob("*.json")) if d.is_dir() else []
    if not files:
        raise DataError(f"no results under {str(d)!r}; run `raymix compare ... --out {directory}` first")
    out = []
    for f in files:
        try:
            out.append(MethodResult.from_dict(json.loads(f.read_text())))
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise DataError(f"result file {str(f)!r} is not a raymix result: {e}") from e
    return out


#: The paper's row order (Table 2: stratified, grid search, DML, Skill-It, DoReMi, DoGE, Aioli; then the
#: ablations of App. E.2); methods not listed follow in registry order, unknown labels last by name.
PAPER_ORDER = ("stratified", "grid_search", "dml", "skill_it", "doremi", "doge", "aioli", "aioli_static",
               "aioli_diagonal")


def method_order_key(label: str) -> tuple[int, int, str]:
    """Sort key putting stratified first, then the paper's order; ``"aioli+X"`` right after ``X`` (Table 3)."""
    base = label[len("aioli+"):] if label.startswith("aioli+") else label
    order = list(PAPER_ORDER) + [m for m in METHODS if m not in PAPER_ORDER]
    rank = order.index(base) if base in order else len(order)
    return (rank, int(label.startswith("aioli+")), label)


def _extra_runs(label: str) -> str:
    name, handoff = parse_method(label)
    return METHODS[name].extra_runs


def comparison_rows(results: list[MethodResult]) -> list[dict]:
    """One row per method label, averaged over seeds, stratified first then the paper's order
    (:func:`method_order_key`)."""
    by: dict[str, list[MethodResult]] = defaultdict(list)
    for r in sorted(results, key=lambda r: method_order_key(r.method)):
        by[r.method].append(r)
    groups = results[0].final.groups
    base = by.get("stratified")
    base_ppl = float(np.mean([r.final.avg_test_ppl for r in base])) if base else None
    rows = []
    for label, rs in by.items():
        ppl = np.array([r.final.test_ppl for r in rs])  # (seeds, m)
        avg = np.array([r.final.avg_test_ppl for r in rs])
        val = np.array([r.final.avg_val_loss for r in rs])
        mix = [r.mixture for r in rs if r.mixture is not None]
        rows.append({
            "method": label,
            "seeds": len(rs),
            "per_group_ppl": dict(zip(groups, ppl.mean(axis=0).round(3).tolist())),
            "avg_test_ppl": float(avg.mean()),
            "std": float(avg.std(ddof=1)) if len(avg) > 1 else 0.0,
            "avg_val_loss": float(val.mean()),
            "val_loss_std": float(val.std(ddof=1)) if len(val) > 1 else 0.0,
            "delta_vs_stratified": None if base_ppl is None else float(avg.mean() - base_ppl),
            "extra_runs": _extra_runs(label),
            "extra_steps": int(np.mean([r.extra_steps for r in rs])),
            "mixture": None if not mix else np.mean(mix, axis=0).round(3).tolist(),
            "wall_time_s": float(np.mean([r.wall_time_s for r in rs])),
        })
    return rows


def comparison_markdown(results: list[MethodResult]) -> str:
    """The paper-style table as GitHub markdown."""
    rows = comparison_rows(results)
    groups = list(rows[0]["per_group_ppl"])
    head = ["method", *[f"{g} PPL" for g in groups], "avg test PPL", "avg val loss", "Δ vs stratified",
            "extra runs", "extra steps", "p (learned / final)", "seeds"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        delta = "–" if r["delta_vs_stratified"] is None else f"{r['delta_vs_stratified']:+.3f}"
        avg = f"{r['avg_test_ppl']:.3f}" + (f" ± {r['std']:.3f}" if r["seeds"] > 1 else "")
        val = f"{r['avg_val_loss']:.4f}" + (f" ± {r['val_loss_std']:.4f}" if r["seeds"] > 1 else "")
        mix = "–" if r["mixture"] is None else "[" + ", ".join(f"{x:.2f}" for x in r["mixture"]) + "]"
        cells = [r["method"], *[f"{r['per_group_ppl'][g]:.3f}" for g in groups], avg, val, delta,
                 r["extra_runs"], str(r["extra_steps"]), mix, str(r["seeds"])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def aioli_diagnostics_rows(results: list[MethodResult]) -> list[dict]:
    """One row per (method, seed) whose final run is Aioli: per group the sign agreement of Ā^t's column
    sums across rounds, the range p visited over the rounds, and the range it could reach at all."""
    rows = []
    for r in results:
        final = r.final
        summ = final.summary
        if final.spec.policy != "aioli" or "sign_agreement" not in summ:
            continue
        dyn = [h.mixture for h in final.history if h.info.get("phase") == "dynamic"]
        P = np.array(dyn) if dyn else np.array([summ["mixture"]])
        rows.append({"method": r.method, "seed": r.problem.seed, "rounds": int(summ.get("rounds_done", len(dyn))),
                     "p0": summ.get("p0"), "sign_agreement": summ["sign_agreement"],
                     "p_min": P.min(axis=0).tolist(), "p_max": P.max(axis=0).tolist(),
                     "p_bound_lo": summ["p_bound"]["lo"], "p_bound_hi": summ["p_bound"]["hi"]})
    return rows


def aioli_diagnostics_markdown(results: list[MethodResult]) -> str | None:
    """:func:`aioli_diagnostics_rows` as markdown; None when no final run is Aioli."""
    rows = aioli_diagnostics_rows(results)
    if not rows:
        return None
    groups = results[0].final.groups

    def per_group(vals, fmt="{:.2f}"):
        return " / ".join(fmt.format(v) for v in vals)

    head = ["method", "seed", "rounds", f"sign agreement ({' / '.join(groups)})", "p visited (min–max)",
            "p reachable (EMA/normalisation bound)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for d in rows:
        visited = " / ".join(f"{lo:.2f}–{hi:.2f}" for lo, hi in zip(d["p_min"], d["p_max"]))
        bound = " / ".join(f"{lo:.2f}–{hi:.2f}" for lo, hi in zip(d["p_bound_lo"], d["p_bound_hi"]))
        lines.append(f"| {d['method']} | {d['seed']} | {d['rounds']} | {per_group(d['sign_agreement'])} | "
                     f"{visited} | {bound} |")
    return "\n".join(lines)


def trajectory(result: MethodResult) -> tuple[np.ndarray, np.ndarray]:
    """(steps (r,), proportions (r, m)) of the final run's rounds."""
    hist = result.final.history
    return (np.array([h.step for h in hist], dtype=float), np.array([h.mixture for h in hist], dtype=float))


def plot_trajectories(results: list[MethodResult], path: str | Path) -> Path | None:
    """Proportions over training of every final run whose p changed (Fig. 6 style); None if there is none."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dyn = [r for r in results if len(r.final.history) > 1 and np.ptp(trajectory(r)[1], axis=0).max() > 1e-9]
    if not dyn:
        return None
    groups = dyn[0].final.groups
    fig, axes = plt.subplots(1, len(groups), figsize=(4.2 * len(groups), 3.2), squeeze=False)
    for r in dyn:
        steps, P = trajectory(r)
        for j, ax in enumerate(axes[0]):
            ax.plot(steps, P[:, j], marker=".", label=f"{r.method} (seed {r.problem.seed})")
    for j, ax in enumerate(axes[0]):
        ax.set_title(f"proportion of {groups[j]}")
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_cost_quality(results: list[MethodResult], path: str | Path) -> Path | None:
    """Average test PPL (mean ± std over seeds) against extra training steps, one point per method — what a
    method's proportions cost against what they buy.  None unless the results hold at least two methods."""
    rows = comparison_rows(results)
    if len(rows) < 2:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for r in sorted(rows, key=lambda r: r["extra_steps"]):
        ax.errorbar(r["extra_steps"], r["avg_test_ppl"], yerr=r["std"] if r["seeds"] > 1 else None, fmt="o",
                    capsize=3, label=f"{r['method']} ({r['seeds']} seed{'s' if r['seeds'] > 1 else ''})")
        ax.annotate(r["method"], (r["extra_steps"], r["avg_test_ppl"]), textcoords="offset points", xytext=(4, 4),
                    fontsize=7)
    S = results[0].problem.total_steps
    ax.set_xlabel(f"extra training steps (final run S = {S})")
    ax.set_ylabel("average test PPL (mean over groups)")
    ax.set_title("quality vs extra compute")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def tidy_tables(results: list[MethodResult]):
    """Two tidy pandas tables: one row per run (config, p, per-group val/test loss) and one row per round
    (step, proportions, validation losses, A^t as JSON) — every run of every method and seed."""
    import pandas as pd

    runs, rounds = [], []
    for res in results:
        for run in res.runs:
            base = {"method": res.method, "seed": res.problem.seed, "setting": res.problem.setting,
                    "run": run.spec.name, "role": run.spec.role, "policy": run.spec.policy}
            row = {**base, "steps": run.spec.steps, "total_steps": run.spec.total_steps,
                   "resume_from": run.spec.resume_from, "avg_test_ppl": run.avg_test_ppl,
                   "avg_val_loss": run.avg_val_loss,
                   "policy_config": json.dumps(run.spec.policy_config), "wall_time_s": run.wall_time_s}
            mix = run.spec.tags.get("mixture") or run.summary.get("mixture")
            for j, g in enumerate(run.groups):
                row[f"p/{g}"] = None if mix is None else float(mix[j])
                row[f"val_loss/{g}"] = run.val_loss[j]
                row[f"test_loss/{g}"] = run.test_loss[j]
            runs.append(row)
            for h in run.history:
                r = {**base, "step": h.step, "A": None if h.interactions is None else json.dumps(h.interactions)}
                for key in ("colsums", "sign_agreement"):
                    if key in h.info:
                        for j, g in enumerate(run.groups):
                            r[f"{key}/{g}"] = h.info[key][j]
                for j, g in enumerate(run.groups):
                    r[f"p/{g}"] = h.mixture[j]
                    r[f"val_loss/{g}"] = None if h.val_loss is None else h.val_loss[j]
                rounds.append(r)
    return pd.DataFrame(runs), pd.DataFrame(rounds)


def write_report(directory: str | Path) -> tuple[str, list[Path]]:
    """Markdown report (returned and written to ``report.md``) and its plots."""
    directory = Path(directory)
    results = load_results(directory)
    text = ["# raymix report", "", f"results: `{directory}`", "", "## Average test perplexity", "",
            comparison_markdown(results), ""]
    runs, rounds = tidy_tables(results)
    runs.to_csv(directory / "runs.csv", index=False)
    rounds.to_csv(directory / "rounds.csv", index=False)
    text += ["tidy tables: `runs.csv` (one row per run), `rounds.csv` (one row per mixing round, with A^t)", ""]
    diag = aioli_diagnostics_markdown(results)
    if diag is not None:
        text += ["## Aioli diagnostics", "",
                 "Sign agreement: per group, |mean over rounds of sign(1ᵀĀ^t_j − mean_l 1ᵀĀ^t_l)| — 1 = pushed the "
                 "same way every round, 0 = as often up as down. p reachable: the range the EMA/normalisation "
                 "bound allows whatever A^t is learned (`reachable_range`).", "", diag, ""]
    plots = []
    c = plot_cost_quality(results, directory / "ppl_vs_extra_steps.png")
    if c is not None:
        plots.append(c)
        text += ["## Average test PPL vs extra steps", "",
                 "Extra steps count what each method trained outside its final run; runs a trial scheduler stopped "
                 "early count only the steps they trained.", "", f"![ppl vs extra steps]({c.name})", ""]
    p = plot_trajectories(results, directory / "proportions.png")
    if p is not None:
        plots.append(p)
        text += ["## Proportions over training", "", f"![proportions]({p.name})", ""]
    (directory / "report.md").write_text("\n".join(text))
    return "\n".join(text), plots
