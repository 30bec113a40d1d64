"""The paper's experiments (Chen et al., ICLR 2025, §6 and App. D), as experiment files.

The settings live in ``experiments/configs/*.yaml`` — the same format as ``raymix compare --config``
(the fields of :class:`raymix.experiment.ExperimentConfig`): ``table2``, ``table3`` and ``ablations``
for m = 2, 3 groups (S = 5000 steps, 5 seeds) and ``*-m7`` for m = 7 (S = 40000, 3 seeds).  Each function
below loads the file that matches the number of groups of the shards and fills in the shards and the
output directory.  Run on a Ray cluster (``ray up cluster.yaml``), e.g.::

    python -m experiments.paper table2 --shards s3://bucket/slimpajama-arxiv-se --out s3://bucket/results/t2-a-se
    raymix compare --config experiments/configs/table2.yaml --data SHARDS --out RESULTS   # the same, by hand

Paper scale: Pythia-160M, batch 8, context 2048, one GPU per trial, bf16 autocast, flash-attention when
installed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from raymix.experiment import ExperimentConfig, copy_experiment_file, load_experiment_file, run_experiment

CONFIGS = Path(__file__).resolve().parent / "configs"
EXPERIMENTS = ("table2", "table3", "ablations")


def config_file(experiment: str, m: int) -> Path:
    """The settings file of ``experiment`` for data with ``m`` groups."""
    if experiment not in EXPERIMENTS:
        raise ValueError(f"unknown paper experiment {experiment!r}; valid: {list(EXPERIMENTS)}")
    return CONFIGS / f"{experiment}{'-m7' if m >= 7 else ''}.yaml"


def load(experiment: str, shards: str, m: int, out: str, **overrides: Any) -> ExperimentConfig:
    """The :class:`ExperimentConfig` of ``experiment`` on ``shards`` (m groups), writing into ``out``."""
    data = load_experiment_file(config_file(experiment, m))
    data["backend"] = {**data.get("backend", {}), "shards": shards}
    return ExperimentConfig.from_dict({**data, "out": out, **overrides})


def table2(shards: str, m: int, out: str, **kw: Any) -> ExperimentConfig:
    """Unrestricted setting (Table 2): every method may use ≤ 10·S extra steps."""
    return load("table2", shards, m, out, **kw)


def table3(shards: str, m: int, out: str, **kw: Any) -> ExperimentConfig:
    """Restricted setting (Table 3): 0.5·S extra steps; Aioli+method resumes the methods' short runs."""
    return load("table3", shards, m, out, **kw)


def table21_ablations(shards: str, m: int, out: str, **kw: Any) -> ExperimentConfig:
    """Aioli ablations (App. E.2, Table 21): Aioli-static (T = 1) and Aioli-diagonal."""
    return load("ablations", shards, m, out, **kw)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("experiment", choices=list(EXPERIMENTS))
    ap.add_argument("--shards", required=True, help="shard directory or URI (raymix data build)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--log", default="", metavar="TRACKERS", help="tensorboard, mlflow, wandb (comma-separated)")
    ap.add_argument("-v", "--verbose", action="store_true", help="also show Ray's messages on the screen")
    args = ap.parse_args(argv)
    from raymix.data.manifest import load_manifest
    from raymix.progress import console_progress

    m = len(load_manifest(args.shards).groups)
    log = [x for x in args.log.split(",") if x]
    cfg = load(args.experiment, args.shards, m, args.out, **({"log": log} if log else {}))
    progress = console_progress(args.out, verbose=args.verbose, capture_native=argv is None)
    copy_experiment_file(config_file(args.experiment, m), args.out)
    run_experiment(cfg, progress=progress)
    return 0


if __name__ == "__main__":
    sys.exit(main())
