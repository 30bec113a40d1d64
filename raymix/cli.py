"""The ``raymix`` command line: data building, single runs, comparisons, reports and the demo."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from raymix.errors import ConfigError, RaymixError

_CAPTURE_NATIVE = False


def _csv(s: str) -> list[str]:
    return [x.strip() for x in s.split(",") if x.strip()]


def _seeds(s: str) -> list[int]:
    """``--seeds 0,1,2`` → [0, 1, 2]; anything but non-negative integers is refused with the bad item quoted."""
    items = _csv(s)
    if not items:
        raise ConfigError(f"--seeds {s!r} names no seed; give comma-separated integers >= 0, e.g. --seeds 0,1,2")
    out = []
    for x in items:
        try:
            out.append(int(x))
        except ValueError:
            raise ConfigError(f"--seeds {s!r}: {x!r} is not an integer; give comma-separated integers >= 0, "
                              "e.g. --seeds 0,1,2") from None
    return out


def _json(s: str) -> dict[str, Any]:
    try:
        v = json.loads(s)
    except json.JSONDecodeError as e:
        raise argparse.ArgumentTypeError(f"not valid JSON: {s!r} ({e})") from None
    if not isinstance(v, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {s!r}")
    return v


def _add_backend_args(p: argparse.ArgumentParser) -> None:
    # Defaults are None where an experiment file (compare --config) may give the value: flags given override it.
    src = p.add_mutually_exclusive_group()
    src.add_argument("--data", metavar="SHARDS", help="shard directory built by `raymix data build`")
    src.add_argument("--sim", metavar="SCENARIO", help="run on the mixing-law simulator scenario instead of a model")
    p.add_argument("--preset", default=None, help="model preset: tiny, small, medium, pythia-160m (default tiny)")
    p.add_argument("--steps", type=int, default=None,
                   help="S: steps of the final run (default 5000, the paper's S for m = 2, 3: the shortest run in "
                        "which Aioli's paper schedule, T = 20 rounds of k = 4 sweeps, fits)")
    p.add_argument("--setting", choices=["unrestricted", "restricted"], default=None,
                   help="budget setting of the paper (Table 2 unrestricted, Table 3 restricted; default unrestricted)")
    p.add_argument("--rounds", type=int, default=None, help="reporting rounds of static runs (default 10)")
    p.add_argument("--batch-size", type=int, default=None, help="sequences per step (default: the preset's)")
    p.add_argument("--lr", type=float, default=None, help="peak learning rate (default: the preset's)")
    p.add_argument("--train", type=_json, default={}, metavar="JSON", help="extra TrainConfig fields as JSON")
    p.add_argument("--aioli", type=_json, default={}, metavar="JSON",
                   help='Aioli overrides as JSON, e.g. \'{"eta": 0.3, "ema": 0.1}\'')
    p.add_argument("--method-config", type=_json, default=None, metavar="JSON",
                   help='per-method config overrides as JSON, e.g. \'{"pbt": {"population": 4}}\'')
    p.add_argument("--streaming", choices=["local", "ray"], default=None,
                   help="data reader inside trials: local memory-mapped reader (default) or Ray Data streams")
    p.add_argument("--executor", choices=["tune", "local"], default=None,
                   help="run trials on Ray Tune (default) or in this process")
    p.add_argument("--cpus-per-trial", type=float, default=None,
                   help="CPUs (and torch threads) per trial; default automatic: max(1, C/n) for a phase of n trials "
                        "on C CPUs")
    p.add_argument("--gpus-per-trial", type=float, default=None,
                   help="GPUs per trial; default automatic: 1 when the cluster has GPUs, else 0")
    p.add_argument("--max-failures", type=int, default=None,
                   help="times Tune restarts a crashed trial from its last checkpoint (default 2; bad input and "
                        "NaN losses are not retried)")
    p.add_argument("--checkpoint-every", type=int, default=None, metavar="ROUNDS",
                   help="checkpoint each trial every N rounds (default 1; 0 = only at the end)")
    p.add_argument("--overwrite", action="store_true",
                   help="delete the results of a previous experiment in --out and start afresh (without it, "
                        "rerunning with the same --out continues an interrupted experiment)")
    p.add_argument("--workers-per-trial", type=int, default=None,
                   help="data-parallel Ray Train workers per trial, each with --cpus-per-trial CPUs and "
                        "--gpus-per-trial GPUs (gloo on CPU, nccl on GPU; default 1 = no Ray Train)")
    p.add_argument("--out", default=None, help="output directory: results, Tune storage, report, raymix.log "
                                               "(default raymix_results)")
    p.add_argument("--log", default=None, metavar="TRACKERS",
                   help="experiment tracking through Tune's callbacks, comma-separated: tensorboard, mlflow "
                        "(local store <out>/mlruns), wandb (offline); needs --executor tune")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="also show Ray's and other libraries' messages (they always go to <out>/raymix.log)")


def _experiment(args: argparse.Namespace, methods: list[str] | None, seeds: list[int] | None, name: str):
    """The experiment of ``run``/``compare``: the ``--config`` file's fields, overridden by the flags given."""
    from raymix.errors import ConfigError
    from raymix.experiment import ExperimentConfig, load_experiment_file

    config_file = getattr(args, "config", None)
    data = load_experiment_file(config_file) if config_file else {}
    data.setdefault("name", name)
    backend = dict(data.get("backend") or {})
    if args.data:
        backend.update(kind="model", shards=args.data)
    elif args.sim:
        backend.update(kind="sim", scenario=args.sim)
    elif "kind" not in backend:
        raise ConfigError("say what to train on: --data SHARDS (built by `raymix data build`) or --sim SCENARIO"
                          + (f"; the experiment file {config_file!r} has no backend" if config_file else ""))
    if args.preset is not None:
        backend["model"] = args.preset
    if args.streaming is not None:
        backend["streaming"] = args.streaming
    train = {**(backend.get("train") or {}), **args.train}
    if args.batch_size is not None:
        train["batch_size"] = args.batch_size
    if args.lr is not None:
        train["lr"] = args.lr
    if train:
        backend["train"] = train
    data["backend"] = backend
    for key, value in (("methods", methods), ("seeds", seeds), ("total_steps", args.steps), ("setting", args.setting),
                       ("rounds", args.rounds), ("executor", args.executor), ("out", args.out)):
        if value is not None:
            data[key] = value
    if args.aioli:
        data["aioli"] = {**(data.get("aioli") or {}), **args.aioli}
    # Ray Data streams read with 0-CPU tasks (raymix.data.streaming), so trials that hold every CPU cannot
    # starve them; a reserved data bundle was measured to hang on 2 CPUs (docs/DECISIONS.md).
    tune = dict(data.get("tune") or {})
    if args.cpus_per_trial is not None:
        tune["cpus_per_trial"] = args.cpus_per_trial
    if args.gpus_per_trial is not None:
        tune["gpus_per_trial"] = args.gpus_per_trial
    if args.max_failures is not None:
        tune["max_failures"] = args.max_failures
    if args.checkpoint_every is not None:
        tune["checkpoint_frequency"] = args.checkpoint_every
    if args.workers_per_trial is not None:
        tune["workers_per_trial"] = args.workers_per_trial
    data["tune"] = tune
    if args.method_config:
        data["method_configs"] = {**(data.get("method_configs") or {}), **args.method_config}
    if args.log is not None:
        data["log"] = _csv(args.log)
    if not data.get("methods"):
        raise ConfigError("give the methods to compare: --methods a,b,c" +
                          (f" (the experiment file {config_file!r} lists none)" if config_file else ""))
    return ExperimentConfig.from_dict(data)


def _start(args: argparse.Namespace, out: str):
    """Logs to ``<out>/raymix.log`` (quiet screen unless --verbose) and a live progress display on stderr."""
    from raymix.progress import console_progress

    return console_progress(out, verbose=getattr(args, "verbose", False), capture_native=_CAPTURE_NATIVE)


def _tracking_hints(cfg) -> None:
    from raymix.logs import LOG_FILE

    out = Path(cfg.out)
    lines = [f"log: {out / LOG_FILE}"]
    if "tensorboard" in cfg.log:
        lines.append(f"TensorBoard: tensorboard --logdir {out / 'tune'}")
    if "mlflow" in cfg.log:
        from raymix.tune.tracking import mlflow_uri

        lines.append(f"MLflow: mlflow ui --backend-store-uri {mlflow_uri(out)}")
    if "wandb" in cfg.log:
        lines.append(f"W&B (offline runs): wandb sync {out / 'tune'}/*/*/wandb/offline-run-*")
    print("\n".join(lines), file=sys.stderr)


def cmd_run(args: argparse.Namespace) -> int:
    from raymix.experiment import prepare_experiment, run_experiment

    cfg = _experiment(args, [args.method], [args.seed], "run")
    prepared = prepare_experiment(cfg, overwrite=args.overwrite)  # before anything is written into --out
    (res,) = run_experiment(cfg, progress=_start(args, cfg.out), prepared=prepared)
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
    _tracking_hints(cfg)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from raymix.experiment import copy_experiment_file, prepare_experiment, run_experiment
    from raymix.report import comparison_markdown, write_report

    seeds = _seeds(args.seeds) if args.seeds is not None else None
    methods = _csv(args.methods) if args.methods is not None else None
    cfg = _experiment(args, methods, seeds, "compare")
    prepared = prepare_experiment(cfg, overwrite=args.overwrite)  # before anything is written into --out
    progress = _start(args, cfg.out)
    if args.config:
        copy_experiment_file(args.config, cfg.out)
    results = run_experiment(cfg, progress=progress, prepared=prepared)
    print(comparison_markdown(results))
    write_report(cfg.out)
    print(f"\nreport: {cfg.out}/report.md", file=sys.stderr)
    _tracking_hints(cfg)
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

    run_demo(out=args.out, steps=args.steps, executor=args.executor, quick=args.quick, progress=_start(args, args.out))
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
    p.add_argument("--config", metavar="FILE",
                   help="experiment file (YAML/JSON, the fields of ExperimentConfig; see README); flags given "
                        "override its values; it is copied into --out")
    p.add_argument("--methods", default=None, help="comma-separated, e.g. stratified,grid_search,aioli")
    p.add_argument("--seeds", default=None, help="comma-separated seeds (default 0)")
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
    p.add_argument("-v", "--verbose", action="store_true",
                   help="also show Ray's and other libraries' messages (they always go to <out>/raymix.log)")
    p.set_defaults(func=cmd_demo)
    return parser


def _print_methods() -> int:
    from raymix.methods.registry import METHODS

    for name, cls in METHODS.items():
        doc = (cls.__doc__ or "").strip().splitlines()
        print(f"{name:16s} extra runs: {cls.extra_runs:9s} {doc[0] if doc else ''}")
    return 0


def _interrupt_on_sigterm() -> None:
    """SIGTERM (a scheduler's stop, ``kill``) takes the same clean path as Ctrl-C: temp folders removed, Tune
    state saved, the resume hint printed."""
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        def handler(signum, frame):
            raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, handler)


def main(argv: list[str] | None = None) -> int:
    global _CAPTURE_NATIVE
    # As the `raymix` command (no argument list), native writes to fd 2 (Ray's C++ core) go to the log file.
    _CAPTURE_NATIVE = argv is None
    parser = build_parser()
    args = parser.parse_args(argv)
    if argv is None:  # the console script, not an in-process call (tests keep their handlers)
        _interrupt_on_sigterm()
    from raymix.logs import setup_logging

    setup_logging(None, verbose=getattr(args, "verbose", False))  # commands with --out add the log file
    try:
        return int(args.func(args) or 0)
    except RaymixError as e:
        logging.getLogger("raymix").error("%s", e, exc_info=True)  # the trace goes to the log file only
        print(f"raymix: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"raymix: interrupted; {_resume_hint(args)}", file=sys.stderr)
        return 130


def _resume_hint(args: argparse.Namespace) -> str:
    if args.command in ("run", "compare"):
        where = repr(args.out) if getattr(args, "out", None) else "the output directory"
        return (f"finished runs and the trials' last checkpoints are kept in {where}: run the same command "
                "again (same --out, no --overwrite) to continue")
    if args.command == "data":
        return "nothing was written; run the same command again to build the shards"
    return "run the same command again"


if __name__ == "__main__":
    sys.exit(main())
