"""Paper-style tables and plots from stored experiment results (``raymix report``).

Reads the per-(method, seed) JSON files written by :func:`raymix.experiment.run_experiment` and builds:

* the comparison table of the paper (Tables 2/3), stratified first: per-group test perplexity, the average
  over groups of per-group test PPL (mean ± std over seeds) next to the average validation loss (what the
  laws are fitted on), the difference vs stratified (and Aioli+X vs X) paired by seed with its standard
  error and whether it is beyond the noise, extra runs and extra steps;
* Aioli's diagnostics per final run: how consistently Ā^t's column sums pushed each group the same way
  (sign agreement across rounds), how far p moved, and how far it could move at all (EMA/normalisation bound);
* the proportions each method used (Table 19 style, averaged over the final run's rounds);
* Table 5 / Fig. 2 on the results' own static sweeps (grid search, DML): the log-linear static law's fit;
* plots: proportion trajectories of every dynamic final run (Fig. 6 style), average test PPL against
  extra training steps for every method (when the results hold several), the static law against the sweep
  runs, and per-group validation loss over training.
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


def mean_and_se(values) -> tuple[float, float]:
    """Mean and standard error of the mean of ``values`` (SE NaN for a single value)."""
    a = np.asarray(values, dtype=float)
    return float(a.mean()), float(a.std(ddof=1) / np.sqrt(a.size)) if a.size > 1 else float("nan")


def paired_difference(results: list[MethodResult], label: str, base: str, metric: str = "avg_test_ppl") -> dict:
    """``label − base`` of ``metric`` ("avg_test_ppl" or "avg_val_loss") on the seeds both have: the runs of a
    seed share data order and initialisation, so the seed-to-seed spread cancels in the difference.
    Returns ``{"n", "mean", "se"}`` (``se`` = standard error of the mean difference; NaN for one seed)."""
    def by_seed(lab: str) -> dict[int, float]:
        return {r.problem.seed: float(getattr(r.final, metric)) for r in results if r.method == lab}

    a, b = by_seed(label), by_seed(base)
    d = np.array([a[s] - b[s] for s in sorted(set(a) & set(b))])
    if d.size == 0:
        return {"n": 0, "mean": None, "se": None}
    mean, se = mean_and_se(d)
    return {"n": int(d.size), "mean": mean, "se": se}


def noise_verdict(diff: dict, z: float = 2.0) -> str:
    """"better" / "worse" when the paired mean difference is more than ``z`` standard errors from 0 (lower is
    better), "within noise" otherwise; "1 seed" when there is no spread to judge by."""
    if not diff["n"]:
        return "–"
    if diff["n"] < 2 or not np.isfinite(diff["se"]):
        return "1 seed"
    if abs(diff["mean"]) <= z * diff["se"]:
        return "within noise"
    return "better" if diff["mean"] < 0 else "worse"


def comparison_rows(results: list[MethodResult]) -> list[dict]:
    """One row per method label, averaged over seeds, stratified first then the paper's order
    (:func:`method_order_key`).  Differences vs stratified (and, for ``aioli+X``, vs ``X``) are paired by seed
    (:func:`paired_difference`) with a verdict against their standard error (:func:`noise_verdict`)."""
    by: dict[str, list[MethodResult]] = defaultdict(list)
    for r in sorted(results, key=lambda r: method_order_key(r.method)):
        by[r.method].append(r)
    groups = results[0].final.groups
    rows = []
    for label, rs in by.items():
        vs = paired_difference(results, label, "stratified") if "stratified" in by else {"n": 0, "mean": None,
                                                                                         "se": None}
        vs_val = paired_difference(results, label, "stratified", "avg_val_loss") if "stratified" in by else vs
        name, handoff = parse_method(label)
        vs_x = paired_difference(results, label, name) if handoff and name in by else None
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
            "delta_vs_stratified": vs["mean"], "delta_se": vs["se"], "delta_n": vs["n"],
            "verdict": noise_verdict(vs) if label != "stratified" else "–",
            "delta_val_loss": vs_val["mean"], "delta_val_loss_se": vs_val["se"],
            "vs_method": None if vs_x is None else {**vs_x, "base": name, "verdict": noise_verdict(vs_x)},
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
    head = ["method", *[f"{g} PPL" for g in groups], "avg test PPL", "avg val loss",
            "Δ PPL vs stratified (paired ± SE)", "verdict", "extra runs", "extra steps", "p (learned / final)",
            "seeds"]
    if any(r["vs_method"] for r in rows):
        head.insert(head.index("verdict") + 1, "Aioli+X − X (paired ± SE)")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def diff(mean, se, n) -> str:
        if mean is None or n == 0:
            return "–"
        return f"{mean:+.3f}" + (f" ± {se:.3f}" if n > 1 and np.isfinite(se) else "") + f" (n={n})"

    for r in rows:
        delta = "–" if r["method"] == "stratified" else diff(r["delta_vs_stratified"], r["delta_se"], r["delta_n"])
        avg = f"{r['avg_test_ppl']:.3f}" + (f" ± {r['std']:.3f}" if r["seeds"] > 1 else "")
        val = f"{r['avg_val_loss']:.4f}" + (f" ± {r['val_loss_std']:.4f}" if r["seeds"] > 1 else "")
        mix = "–" if r["mixture"] is None else "[" + ", ".join(f"{x:.2f}" for x in r["mixture"]) + "]"
        cells = [r["method"], *[f"{r['per_group_ppl'][g]:.3f}" for g in groups], avg, val, delta, r["verdict"],
                 r["extra_runs"], str(r["extra_steps"]), mix, str(r["seeds"])]
        if "Aioli+X − X (paired ± SE)" in head:
            x = r["vs_method"]
            cells.insert(head.index("verdict") + 1,
                         "–" if not x else f"{diff(x['mean'], x['se'], x['n'])} {x['verdict']}")
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


def _save(fig, path: str | Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _save_panels(fig, axes, titles: list[str], path: str | Path) -> Path:
    """One row of per-group panels over training steps: titles, grid, legend, saved and closed."""
    for title, ax in zip(titles, axes[0]):
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    return _save(fig, path)


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
    return _save_panels(fig, axes, [f"proportion of {g}" for g in groups], path)


def cost_quality_points(results: list[MethodResult]) -> tuple[str, list[dict]]:
    """The points of :func:`plot_cost_quality`: ``(y label, [{"method", "extra_steps", "y", "yerr"}])``.

    With stratified and two or more paired seeds, y is each method's Δ average test PPL vs stratified,
    paired by seed, ± its standard error (stratified itself at 0): a seed's PPL level varies far more than
    the methods' differences do, so absolute PPLs with their spread over seeds would hide every effect.
    Otherwise y is the average test PPL (mean ± std over seeds)."""
    rows = comparison_rows(results)
    paired = any(r["method"] == "stratified" for r in rows) and max(r["delta_n"] or 0 for r in rows) > 1
    points = []
    for r in rows:
        if paired:
            if r["method"] == "stratified":
                y, yerr = 0.0, None
            elif r["delta_n"]:
                y, yerr = r["delta_vs_stratified"], r["delta_se"] if r["delta_n"] > 1 else None
            else:
                continue
        else:
            y, yerr = r["avg_test_ppl"], r["std"] if r["seeds"] > 1 else None
        points.append({"method": r["method"], "seeds": r["seeds"], "extra_steps": r["extra_steps"], "y": y,
                       "yerr": yerr})
    label = ("Δ average test PPL vs stratified (paired by seed, ± SE)" if paired
             else "average test PPL (mean over groups, ± std over seeds)")
    return label, points


def plot_cost_quality(results: list[MethodResult], path: str | Path) -> Path | None:
    """Average test PPL against extra training steps, one point per method — what a method's proportions cost
    against what they buy (y as :func:`cost_quality_points` says).  None unless there are two methods."""
    label, points = cost_quality_points(results)
    if len(points) < 2:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for r in sorted(points, key=lambda r: r["extra_steps"]):
        ax.errorbar(r["extra_steps"], r["y"], yerr=r["yerr"], fmt="o", capsize=3,
                    label=f"{r['method']} ({r['seeds']} seed{'s' if r['seeds'] > 1 else ''})")
        ax.annotate(r["method"], (r["extra_steps"], r["y"]), textcoords="offset points", xytext=(4, 4), fontsize=7)
    if label.startswith("Δ"):
        ax.axhline(0.0, color="grey", lw=0.8, ls="--")
    S = results[0].problem.total_steps
    ax.set_xlabel(f"extra training steps (final run S = {S})")
    ax.set_ylabel(label, fontsize=8)
    ax.set_title("quality vs extra compute")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return _save(fig, path)


def sweep_records(results: list[MethodResult]) -> list[dict]:
    """The static sweep runs of the results (grid search, DML, …: role "search", a static policy from scratch,
    not pruned, trained on one p throughout — a PBT member that took over another's checkpoint was not) as fit
    records of :func:`raymix.analysis.static_law_fit_table`, one per distinct (seed, p, steps) — a sweep two
    methods shared is counted once.  ``setting`` names the sweep's run length."""
    seen, rows = set(), []
    for res in results:
        for run in res.runs:
            spec = run.spec
            if spec.role != "search" or spec.policy != "static" or run.pruned or spec.resume_from:
                continue
            mix = spec.tags.get("mixture")
            if mix is None or not np.all(np.isfinite(run.val_loss)):
                continue
            if any(not np.allclose(h.mixture, mix, atol=1e-9) for h in run.history):
                continue  # its p changed during training (a PBT member after an exploit): not a static run
            key = (res.problem.seed, spec.steps, tuple(np.round(mix, 9)))
            if key in seen:
                continue
            seen.add(key)
            rows.append({"setting": f"static runs of {spec.steps} steps", "seed": res.problem.seed,
                         "p": list(map(float, mix)), "loss": list(map(float, run.val_loss))})
    return rows


def static_fit_data(results: list[MethodResult]) -> dict[tuple[str, int], tuple[np.ndarray, np.ndarray]]:
    """(setting, seed) → (P, L) of the sweeps with enough distinct runs to fit the log-linear static law
    (m + 2 parameters per group: at least m + 3 runs)."""
    by: dict[tuple[str, int], list[dict]] = defaultdict(list)
    for r in sweep_records(results):
        by[(r["setting"], r["seed"])].append(r)
    out = {}
    for key, rs in by.items():
        P, L = np.array([r["p"] for r in rs]), np.array([r["loss"] for r in rs])
        if len(rs) >= P.shape[1] + 3:
            out[key] = (P, L)
    return out


def static_law_markdown(results: list[MethodResult]) -> str | None:
    """Table 5 (row 1) on the results' own sweeps: the log-linear static law's in-sample MSE and R² per group,
    fitted per seed and averaged (App. C.1); None when no sweep has enough runs."""
    from raymix.analysis import static_law_fit_table

    data = static_fit_data(results)
    if not data:
        return None
    records = [{"setting": st, "seed": seed, "p": p, "loss": loss}
               for (st, seed), (P, L) in data.items() for p, loss in zip(P, L)]
    table = static_law_fit_table(records)
    groups = results[0].final.groups
    lines = ["| sweep | seeds | runs | MSE | R² | " + " | ".join(f"R² {g}" for g in groups) + " |",
             "|" + "---|" * (5 + len(groups))]
    for _, r in table.iterrows():
        per = " | ".join(f"{v:.3f}" for v in r["r2_per_group"])
        lines.append(f"| {r['setting']} | {r['n_fits']} | {r['n_runs']} | {r['mse']:.2e} | {r['r2']:.3f} | {per} |")
    return "\n".join(lines)


def plot_static_fits(results: list[MethodResult], path: str | Path) -> Path | None:
    """Fig. 2 (left): measured per-group validation loss of the sweep runs against the fitted static law; for
    m = 2 as loss vs p₁ with the fitted curve, otherwise predicted vs measured.  None without a fittable sweep."""
    from raymix.laws import LogLinearStaticLaw

    data = static_fit_data(results)
    if not data:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = results[0].final.groups
    m = len(groups)
    fig, axes = plt.subplots(1, m, figsize=(4.0 * m, 3.3), squeeze=False)
    for k, ((_sweep, seed), (P, L)) in enumerate(sorted(data.items())):
        law = LogLinearStaticLaw().fit(P, L)
        color = f"C{k % 10}"
        for i, ax in enumerate(axes[0]):
            if m == 2:
                grid = np.linspace(0.0, 1.0, 101)
                ax.plot(grid, law.predict(np.stack([grid, 1 - grid], axis=1))[:, i], color=color, lw=1)
                ax.plot(P[:, 0], L[:, i], "o", color=color, ms=4, label=f"seed {seed}")
                ax.set_xlabel(f"p({groups[0]})")
            else:
                ax.plot(L[:, i], law.predict(P)[:, i], "o", color=color, ms=4, label=f"seed {seed}")
                ax.set_xlabel("measured")
                ax.set_ylabel("fitted")
    for i, ax in enumerate(axes[0]):
        ax.set_title(f"val loss of {groups[i]}")
        ax.grid(alpha=0.3)
        if m != 2:
            lo, hi = ax.get_xlim()
            ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
    axes[0][0].legend(fontsize=7)
    return _save(fig, path)


def plot_loss_curves(results: list[MethodResult], path: str | Path) -> Path | None:
    """Per-group validation loss over the final run's rounds, one line per method (mean over seeds where the
    rounds line up, else seed by seed).  None when no final run reported validation losses per round."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by: dict[str, list[MethodResult]] = defaultdict(list)
    for r in sorted(results, key=lambda r: method_order_key(r.method)):
        if r.final.history and all(h.val_loss is not None for h in r.final.history):
            by[r.method].append(r)
    if not by:
        return None
    groups = results[0].final.groups
    fig, axes = plt.subplots(1, len(groups), figsize=(4.2 * len(groups), 3.3), squeeze=False)
    for k, (label, rs) in enumerate(by.items()):
        curves = [(np.array([h.step for h in r.final.history]), np.array([h.val_loss for h in r.final.history]))
                  for r in rs]
        same = all(np.array_equal(c[0], curves[0][0]) for c in curves)
        for i, ax in enumerate(axes[0]):
            if same:
                ax.plot(curves[0][0], np.mean([c[1][:, i] for c in curves], axis=0), color=f"C{k % 10}",
                        label=f"{label} ({len(rs)} seeds)" if len(rs) > 1 else label)
            else:
                for j, (x, y) in enumerate(curves):
                    ax.plot(x, y[:, i], color=f"C{k % 10}", alpha=0.6, label=label if j == 0 else None)
    return _save_panels(fig, axes, [f"val loss of {g} (final run)" for g in groups], path)


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
                 "early count only the steps they trained. With stratified and several seeds the y axis is the "
                 "paired Δ vs stratified ± SE (below 0 = better).", "", f"![ppl vs extra steps]({c.name})", ""]
    p = plot_trajectories(results, directory / "proportions.png")
    if p is not None:
        plots.append(p)
        text += ["## Proportions over training (Fig. 6)", "", f"![proportions]({p.name})", ""]
    law = static_law_markdown(results)
    if law is not None:
        f = plot_static_fits(results, directory / "static_law_fits.png")
        plots.append(f)
        text += ["## Static mixing law on the sweeps (Table 5, Fig. 2)", "",
                 "The log-linear static law L_i(p) = c_i + b_i·exp(−A_i·p) fitted per seed on the distinct static "
                 "sweep runs (validation losses; a sweep shared by two methods counts once); in-sample MSE and R² "
                 "averaged over seeds.", "", law, "", f"![static law fits]({f.name})", ""]
    curves = plot_loss_curves(results, directory / "loss_curves.png")
    if curves is not None:
        plots.append(curves)
        text += ["## Per-group validation loss over training", "", f"![loss curves]({curves.name})", ""]
    (directory / "report.md").write_text("\n".join(text))
    return "\n".join(text), plots
