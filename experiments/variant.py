"""A variant experiment against its base, paired by seed: ``variant − base`` for every method label both hold.

A variant is the same experiment (same backend, S, seeds) with one setting changed, e.g. Aioli's
``--aioli '{"eta": 0.0}'`` in a Table 3 analog.  Within a seed the two folders' runs share data order and
initialisation, so the difference of one label's avg test PPL (or avg val loss) between them cancels the
seed-to-seed spread, as :func:`raymix.report.paired_difference` does for two methods of one folder.  Labels
whose results are byte-for-byte the same run in both folders (stratified copied by ``--reuse-from``) are
left out.  The "same learned p" column says whether each seed's learned mixture (for ``aioli+X``: X's short-
run p) agrees between the folders, which is what makes the row a comparison of the changed setting alone.

::

    python -m experiments.variant experiments/results/cc_gh_w/table3 experiments/results/cc_gh_w/table3-eta0 \\
        --out experiments/results/cc_gh_w/table3-eta0/variant.md
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from experiments import print_and_save
from raymix.errors import ConfigError, DataError

#: experiment.json fields that must agree for two folders' runs to pair by seed
SAME = ("backend", "total_steps", "setting")


def _experiment(folder: Path) -> dict[str, Any]:
    f = folder / "experiment.json"
    if not f.is_file():
        raise DataError(f"{str(folder)!r} holds no experiment.json; give a results folder (an experiment's --out "
                        "or a folder published under experiments/results/)")
    return json.loads(f.read_text())


def compare(base: Path, variant: Path, metric: str = "avg_test_ppl", labels: list[str] | None = None) -> dict:
    """``variant − base`` of ``metric`` per method label, paired by seed (see the module docstring)."""
    from raymix.report import load_results, mean_and_se, method_order_key, noise_verdict

    eb, ev = _experiment(base), _experiment(variant)
    differ = [k for k in SAME if eb.get(k) != ev.get(k)]
    if differ:
        raise ConfigError(f"{str(base)!r} and {str(variant)!r} differ in {differ}: their runs do not pair by seed; "
                          "compare a variant with the experiment it was derived from")
    changed = {k: (eb.get(k), ev.get(k)) for k in sorted(set(eb) | set(ev))
               if k not in ("methods", "seeds", "out", "name", "fingerprint") and eb.get(k) != ev.get(k)}

    def index(folder: Path) -> dict[tuple[str, int], Any]:
        return {(r.method, r.problem.seed): r for r in load_results(folder)}

    rb, rv = index(base), index(variant)
    common = sorted({m for m, _ in rb} & {m for m, _ in rv}, key=method_order_key)
    if labels is not None:
        missing = sorted(set(labels) - set(common))
        if missing:
            raise ConfigError(f"--methods {missing} are not in both folders; both hold {common}")
        common = [m for m in common if m in labels]
    rows = []
    for label in common:
        seeds = sorted(s for m, s in rb if m == label and (label, s) in rv)
        pairs = [(rb[label, s], rv[label, s]) for s in seeds]
        if all(a.to_dict() == b.to_dict() for a, b in pairs):
            continue  # the very same runs (copied by --reuse-from): nothing to compare
        vb = np.array([float(getattr(a.final, metric)) for a, _ in pairs])
        vv = np.array([float(getattr(b.final, metric)) for _, b in pairs])
        d = vv - vb
        mean, se = mean_and_se(d)
        diff = {"n": int(d.size), "mean": mean, "se": se}
        same_p = [a.mixture is not None and b.mixture is not None and np.allclose(a.mixture, b.mixture, atol=1e-6)
                  for a, b in pairs]
        rows.append({"label": label, "seeds": seeds, "per_seed": d.tolist(), **diff, "verdict": noise_verdict(diff),
                     "base": vb.tolist(), "variant": vv.tolist(), "same_learned_p": same_p})
    if not rows:
        raise DataError(f"{str(base)!r} and {str(variant)!r} share no method label with different runs")
    return {"base": str(base), "variant": str(variant), "metric": metric, "changed": changed, "rows": rows}


def markdown(c: dict) -> str:
    changed = "; ".join(f"`{k}`: {json.dumps(a)} → {json.dumps(b)}" for k, (a, b) in c["changed"].items()) or "none"
    fmt = "{:+.3f}" if c["metric"] == "avg_test_ppl" else "{:+.4f}"
    lines = [f"# {c['metric']}: variant − base, paired by seed", "",
             f"base `{c['base']}`, variant `{c['variant']}`; settings changed: {changed}.", "",
             "| method | variant − base (mean ± SE) | verdict | per seed | seeds | same learned p |",
             "|---|---|---|---|---|---|"]
    for r in c["rows"]:
        se = "" if not np.isfinite(r["se"]) else f" ± {r['se']:.3f}"
        same_seeds = [str(s) for s, ok in zip(r["seeds"], r["same_learned_p"]) if ok]
        if len(same_seeds) == len(r["seeds"]):
            same = "yes"
        else:
            same = "seeds " + ", ".join(same_seeds) if same_seeds else "no"
        lines.append(f"| {r['label']} | {fmt.format(r['mean'])}{se} | {r['verdict']} | "
                     f"{', '.join(fmt.format(x) for x in r['per_seed'])} | {', '.join(map(str, r['seeds']))} | {same} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("base", help="the experiment the variant was derived from (a results folder)")
    ap.add_argument("variant", help="the variant's results folder")
    ap.add_argument("--metric", choices=("avg_test_ppl", "avg_val_loss"), default="avg_test_ppl")
    ap.add_argument("--methods", default=None, help="comma-separated labels (default: every label both hold)")
    ap.add_argument("--out", default=None, help="also write the markdown table to this file")
    args = ap.parse_args(argv)
    c = compare(Path(args.base), Path(args.variant), args.metric,
                None if args.methods is None else args.methods.split(","))
    print_and_save(markdown(c), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
