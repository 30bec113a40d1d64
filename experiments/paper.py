"""The paper's experiments as configs (Chen et al., ICLR 2025, §6 and App. D).

Each function returns an :class:`raymix.experiment.ExperimentConfig`; run it with
``raymix.experiment.run_experiment(cfg)`` on a Ray cluster (``ray up cluster.yaml``), e.g.::

    python -m experiments.paper table2 --shards s3://bucket/slimpajama-arxiv-se --out s3://bucket/results/t2-a-se

Paper scale: Pythia-160M, batch 8, context 2048, S = 5000 steps (m = 2, 3) or 40000 (m = 7), 5 seeds
(3 for m = 7), one GPU per trial, bf16 autocast, flash-attention when installed.
"""

from __future__ import annotations

import argparse
import sys

from raymix.experiment import ExperimentConfig, run_experiment
from raymix.methods.driver import BackendSpec

TABLE2_METHODS = ("stratified", "grid_search", "dml", "skill_it", "doremi", "doge", "aioli")
TABLE3_METHODS = ("grid_search", "aioli+grid_search", "dml", "aioli+dml", "skill_it", "aioli+skill_it",
                  "doremi", "aioli+doremi", "doge", "aioli+doge")
ABLATIONS = ("stratified", "aioli", "aioli_static", "aioli_diagonal")

#: Paper App. D: lr 5e-5 → 1e-5 cosine (the authors' code used 5e-4), 500 warmup steps, batch 8.
PAPER_TRAIN = {"batch_size": 8, "lr": 5e-4, "min_lr": 1e-4, "warmup_steps": 500, "precision": "auto",
               "eval_examples": 256}


def _steps(m: int) -> int:
    return 40000 if m >= 7 else 5000


def _seeds(m: int) -> tuple[int, ...]:
    return (0, 1, 2) if m >= 7 else (0, 1, 2, 3, 4)


def paper_backend(shards: str, streaming: str = "ray") -> BackendSpec:
    return BackendSpec(kind="model", shards=shards, model="pythia-160m", train=dict(PAPER_TRAIN), streaming=streaming)


def table2(shards: str, m: int, out: str, **kw) -> ExperimentConfig:
    """Unrestricted setting (Table 2): every method may use ≤ 10·S extra steps."""
    return ExperimentConfig(methods=TABLE2_METHODS, seeds=_seeds(m), total_steps=_steps(m), setting="unrestricted",
                            backend=paper_backend(shards), tune={"cpus_per_trial": 4, "gpus_per_trial": 1},
                            out=out, name="table2", **kw)


def table3(shards: str, m: int, out: str, **kw) -> ExperimentConfig:
    """Restricted setting (Table 3): 0.5·S extra steps; Aioli+method resumes the methods' short runs."""
    return ExperimentConfig(methods=TABLE3_METHODS, seeds=_seeds(m), total_steps=_steps(m), setting="restricted",
                            backend=paper_backend(shards), tune={"cpus_per_trial": 4, "gpus_per_trial": 1},
                            out=out, name="table3", **kw)


def table21_ablations(shards: str, m: int, out: str, **kw) -> ExperimentConfig:
    """Aioli ablations (App. E.2, Table 21): Aioli-static (T = 1) and Aioli-diagonal."""
    return ExperimentConfig(methods=ABLATIONS, seeds=_seeds(m), total_steps=_steps(m), setting="unrestricted",
                            backend=paper_backend(shards), tune={"cpus_per_trial": 4, "gpus_per_trial": 1},
                            out=out, name="ablations", **kw)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("experiment", choices=["table2", "table3", "ablations"])
    ap.add_argument("--shards", required=True, help="shard directory or URI (raymix data build)")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    from raymix.data.manifest import load_manifest

    m = len(load_manifest(args.shards).groups)
    cfg = {"table2": table2, "table3": table3, "ablations": table21_ablations}[args.experiment](args.shards, m, args.out)
    run_experiment(cfg, progress=lambda s: print(s, file=sys.stderr, flush=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
