"""The ``raymix`` command line: data building, single runs, comparisons, reports and the demo."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from raymix.errors import RaymixError


def _csv(s: str) -> list[str]:
    return [x.strip() for x in s.split(",") if x.strip()]


def _json(s: str) -> dict[str, Any]:
    try:
        v = json.loads(s)
    except json.JSONDecodeError as e:
        raise argparse.ArgumentTypeError(f"not valid JSON: {s!r} ({e})") from None
    if not isinstance(v, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {s!r}")
    return v


def _add_backend_args(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", metavar="SHARDS", help="shard directory built by `raymix data build`")
    src.add_argument("--sim", metavar="SCENARIO", help="run on the mixing-law simulator scenario instead of a model")
    p.add_argument("--preset", default="tiny", help="model preset: tiny, small, medium, pythia-160m (default tiny)")
    p.add_argument("--steps", type=int, default=1000, help="S: steps of the final run (default 1000)")
    p.add_argument("--setting", choices=["unrestricted", "restricted"], default="unrestricted",
                   help="budget setting of the paper (Table 2 unrestricted, Table 3 restricted)")
    p.add_argument("--rounds", type=int, default=10, help="reporting rounds of static runs (default 10)")
    p.add_argument("--batch-size", type=int, default=None, help="sequences per step (default: the preset's)")
    p.add_argument("--lr", type=float, default=None, help="peak learning rate (default: the preset's)")
    p.add_argument("--train", type=_json, default={}, metavar="JSON", help="extra TrainConfig fields as JSON")
    p.add_argument("--aioli", type=_json, default={}, metavar="JSON",
                   help='Aioli overrides as JSON, e.g. \'{"eta": 0.3, "ema": 0.1}\'')
    p.add_argument("--streaming", choices=["local", "ray"], default="local",
                   help="data reader inside trials: local memory-mapped reader or Ray Data streams")
    p.add_argument("--executor", choices=["tune", "local"], default="tune",
                   help="run trials on Ray Tune (default) or in this process")
    p.add_argument("--cpus-per-trial", type=float, default=1.0)
    p.add_argument("--gpus-per-trial", type=float, default=0.0)
    p.add_argument("--out", default="raymix_results", help="output directory (results, Tune storage, report)")


def _backend_spec(args: argparse.Namespace):
    from raymix.methods.driver import BackendSpec

    if args.sim:
        return BackendSpec(kind="sim", scenario=args.sim)
    train = dict(args.train)
    if args.batch_size is not None:
        train["batch_size"] = args.batch_size
    if args.lr is not None:
        train["lr"] = args.lr
    return BackendSpec(kind="model", shards=args.data, model=args.preset, train=train, streaming=args.streaming)


def _experiment(args: argparse.Namespace, methods: list[str], seeds: list[int], name: str):
    from raymix.experiment import ExperimentConfig

    # Ray Data streams read with 0-CPU tasks (raymix.data.streaming), so trials that hold every CPU cannot
    # starve them; a reserved data bundle was measured to hang on 2 CPUs (docs/DECISIONS.md).
    tune = {"cpus_per_trial": args.cpus_per_trial, "gpus_per_trial": args.gpus_per_trial}
    return ExperimentConfig(methods=tuple(methods), seeds=tuple(seeds), total_steps=args.steps, setting=args.setting,
                            rounds=args.rounds, aioli=args.aioli, backend=_backend_spec(args), tune=tune,
                            executor=args.executor, out=args.out, name=name)


def _progress(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def cmd_run(args: argparse.Namespace) -> int:
    from raymix.experiment import run_experiment

    (res,) = run_experiment(_experiment(args, [args.method], [args.seed], "run"), progress=_progress)
    final = res.final
    print(f"method {res.method} (seed {args.seed}): final run {final.spec.steps} steps, "
          f"{res.extra_steps} extra steps in {len(res.extra_runs)} extra runs")
    for g, val, loss in zip(final.groups, final.val_loss, final.test_loss):
        import math

        print(f"  {g:>16s}  val loss {val:.4f}  test loss {loss:.4f}  test PPL {math.exp(loss):.3f}")
    print(f"  average test PPL (mean over groups): {final.avg_test_ppl:.3f}")
    print(f"  average validation loss (mean over groups): {final.avg_val_loss:.4f}")
    if res.mixture is not None:
        print(f"  proportions: {dict(zip(final.groups, [round(x, 4) for x in res.mixture]))}")
    diag = final.summary.get("sign_agreement") if final.spec.policy == "aioli" else None
    if diag is not None:
        lo, hi = final.summary["p_bound"]["lo"], final.summary["p_bound"]["hi"]
        print(f"  Aioli sign agreement of 1ᵀĀ^t across rounds: {dict(zip(final.groups, [round(x, 2) for x in diag]))}")
        print(f"  Aioli reachable p (EMA/normalisation bound): "
              f"{ {g: f'{a:.3f}–{b:.3f}' for g, a, b in zip(final.groups, lo, hi)} }")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from raymix.experiment import run_experiment
    from raymix.report import comparison_markdown, write_report

    seeds = [int(s) for s in _csv(args.seeds)]
    results = run_experiment(_experiment(args, _csv(args.methods), seeds, "compare"), progress=_progress)
    print(comparison_markdown(results))
    write_report(args.out)
    print(f"\nreport: {args.out}/report.md", file=sys.stderr)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from raymix.report import write_report

    text, plots = write_report(args.results_dir)
    print(text)
    for p in plots:
        print(f"plot: {p}", file=sys.stderr)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from raymix.demo import run_demo

    run_demo(out=args.out, steps=args.steps, executor=args.executor, quick=args.quick)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="raymix", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    from raymix.data.cli import register as register_data

    register_data(sub)

    p = sub.add_parser("run", help="run one mixing method (its trials on Ray Tune) and print per-group test PPL")
    p.add_argument("--method", required=True, help="method name (see `raymix methods`), or aioli+<method>")
    p.add_argument("--seed", type=int, default=0)
    _add_backend_args(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("compare", help="several methods × seeds; prints the paper-style table")
    p.add_argument("--methods", required=True, help="comma-separated, e.g. stratified,grid_search,aioli")
    p.add_argument("--seeds", default="0", help="comma-separated seeds (default 0)")
    _add_backend_args(p)
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("report", help="markdown tables and plots from a results directory")
    p.add_argument("results_dir")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("methods", help="list the registered mixing methods")
    p.set_defaults(func=lambda a: _print_methods())

    p = sub.add_parser("demo", help="stratified vs grid search vs Aioli on the embedded data (a few CPU minutes)")
    p.add_argument("--out", default="raymix_demo", help="output directory (default raymix_demo)")
    p.add_argument("--steps", type=int, default=None, help="steps of each final run (default: the demo's)")
    p.add_argument("--executor", choices=["tune", "local"], default="tune")
    p.add_argument("--quick", action="store_true", help="a much shorter run (smoke test)")
    p.set_defaults(func=cmd_demo)
    return parser


def _print_methods() -> int:
    from raymix.methods.registry import METHODS

    for name, cls in METHODS.items():
        doc = (cls.__doc__ or "").strip().splitlines()
        print(f"{name:16s} extra runs: {cls.extra_runs:9s} {doc[0] if doc else ''}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except RaymixError as e:
        print(f"raymix: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
