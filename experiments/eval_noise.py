"""How noisy is a test PPL measured on the cached evaluation sets?  (issue #9: eval sets large enough that the
test PPL noise is below the effects being measured.)

Loads the final checkpoint of one (method, seed) of a results folder, computes every cached test window's loss,
and bootstraps the per-group mean loss and the average test PPL over *documents* (windows of one document are
correlated, so resampling windows would understate the noise).  The standard error printed is the noise that
the choice of evaluation text adds to one measured avg test PPL; paired method differences share the text, so
their eval-sampling noise is smaller still (also printed, against a second (method, seed)).

::

    python -m experiments.eval_noise --from runs/gh_c4-table2 --method stratified --seed 0 \\
        --against aioli
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from raymix.errors import DataError
from raymix.experiment import ExperimentConfig, result_path
from raymix.methods import MethodResult
from raymix.methods.driver import build_backend


def window_losses(source: Path, method: str, seed: int) -> tuple[list[str], list[tuple[np.ndarray, np.ndarray]], int]:
    """Group names, per group (window losses, document ids) of the final model of ``method`` / ``seed`` on the
    test split, and the next-token targets per window."""
    from raymix.tune.trainable import load_state

    meta = json.loads((source / "experiment.json").read_text())
    cfg = ExperimentConfig.from_dict({k: v for k, v in meta.items() if k != "fingerprint"})
    path = result_path(source, method, seed)
    if not path.is_file():
        raise DataError(f"no result {str(path)!r}; finished (method, seed) pairs: "
                        f"{sorted(p.stem for p in (source / 'results').glob('*.json'))}")
    res = MethodResult.from_dict(json.loads(path.read_text()))
    if not res.final.checkpoint or not Path(res.final.checkpoint).is_dir():
        raise DataError(f"the final checkpoint of {method} seed {seed} ({res.final.checkpoint!r}) is gone")
    state = load_state(res.final.checkpoint)
    backend = build_backend(cfg.backend, res.final.spec)
    backend.load_state_dict(state["backend"])
    from raymix.data.manifest import load_manifest

    losses = backend.evaluator.window_losses(backend.model, "test", autocast_dtype=backend.autocast_dtype)
    return list(backend.groups), losses, load_manifest(cfg.backend.shards, verify=False).seq_len - 1


def bootstrap(per_group: list[tuple[np.ndarray, np.ndarray]], n: int, rng: np.random.Generator,
              other: list[tuple[np.ndarray, np.ndarray]] | None = None) -> dict[str, np.ndarray]:
    """Document-level bootstrap: per group resample documents with replacement; returns the draws of every
    group's mean loss ``(n, m)`` and of the avg test PPL ``(n,)`` (and of the paired PPL difference to
    ``other``, evaluated on the same resampled documents)."""
    m = len(per_group)
    loss = np.zeros((n, m))
    loss_o = np.zeros((n, m)) if other is not None else None
    for g, (vals, docs) in enumerate(per_group):
        uniq, inv = np.unique(docs, return_inverse=True)
        doc_sum = np.bincount(inv, weights=vals, minlength=len(uniq))
        doc_n = np.bincount(inv, minlength=len(uniq))
        doc_sum_o = None if other is None else np.bincount(inv, weights=other[g][0], minlength=len(uniq))
        for b in range(n):
            pick = rng.integers(0, len(uniq), len(uniq))
            loss[b, g] = doc_sum[pick].sum() / doc_n[pick].sum()
            if doc_sum_o is not None:
                loss_o[b, g] = doc_sum_o[pick].sum() / doc_n[pick].sum()
    out = {"loss": loss, "ppl": np.exp(loss).mean(axis=1)}
    if loss_o is not None:
        out["diff"] = np.exp(loss_o).mean(axis=1) - out["ppl"]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--from", dest="source", required=True, help="a results folder (cpu_scale / raymix compare)")
    ap.add_argument("--method", default="stratified")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--against", default=None, help="a second method of the same seed: noise of the paired Δ")
    ap.add_argument("--bootstrap", type=int, default=2000)
    args = ap.parse_args(argv)
    source = Path(args.source)
    groups, per_group, targets = window_losses(source, args.method, args.seed)
    other = None if args.against is None else window_losses(source, args.against, args.seed)[1]
    draws = bootstrap(per_group, args.bootstrap, np.random.default_rng(0), other)
    print(f"# Test-set sampling noise: {args.method} seed {args.seed} of {source} "
          f"({args.bootstrap} document-level bootstrap draws)\n")
    print("| group | windows | documents | tokens | mean loss | SE loss | PPL | SE PPL |\n|---|---|---|---|---|---|---|---|")
    for g, (name, (vals, docs)) in enumerate(zip(groups, per_group)):
        mean = vals.mean()
        se = draws["loss"][:, g].std(ddof=1)
        tokens = len(vals) * targets
        print(f"| {name} | {len(vals)} | {len(np.unique(docs))} | {tokens:,} | {mean:.4f} | {se:.4f} | "
              f"{np.exp(mean):.2f} | {np.exp(mean) * se:.2f} |")
    avg = float(np.exp([v.mean() for v, _ in per_group]).mean())
    print(f"\navg test PPL {avg:.3f}, bootstrap SE {draws['ppl'].std(ddof=1):.3f} "
          f"({100 * draws['ppl'].std(ddof=1) / avg:.2f} %)")
    if other is not None:
        d = draws["diff"]
        print(f"paired Δ ({args.against} − {args.method}) on the same documents: {d.mean():+.3f}, "
              f"bootstrap SE {d.std(ddof=1):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
