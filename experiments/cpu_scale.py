"""The paper's tables at CPU scale on real groups (issue #9 §2): three settings shaped like the paper's.

=========  ==============================================  =======================================  ===
setting    groups (``raymix data build --preset realmix``)  SlimPajama analog in the paper             m
=========  ==============================================  =======================================  ===
gh_c4      code, speeches                                  GitHub / C4 (Tables 2–3, eq. 12)          2
cc_gh_w    web_email, code, reference                      CommonCrawl / GitHub / Wikipedia          3
realmix    code, reference, tech_docs, books, web_email,   full SlimPajama (m = 7)                   6
           speeches
=========  ==============================================  =======================================  ===

Build a setting's shards, then run a table into its own results folder::

    raymix data build --preset realmix --groups code,speeches --seq-len 128 --out shards/gh_c4
    python -m experiments.cpu_scale table2 --setting gh_c4 --shards shards/gh_c4 \\
        --out experiments/results/gh_c4/table2 --steps 1000 --seeds 0,1,2

Every results folder gets ``provenance.json``: the exact command, raymix's version and git commit, and the
per-group token counts of the cached validation and test sets (the test PPL noise depends on them).  The
model size and S are arguments: they must be chosen from a measured noise floor (issue #9 §2), not here.

Aioli's schedule at CPU scale: the paper's T = 20 rounds need rounds of ≥ m·k/δ steps; :func:`aioli_overrides`
keeps the paper's k and δ (the m = 7 values for the m = 6 set) and lowers T to the largest count whose rounds
fit K equal LearnParams segments (``raymix.methods.policies.aioli_schedule``).
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

from raymix import __version__
from raymix.errors import ConfigError
from raymix.experiment import ExperimentConfig, run_experiment
from raymix.methods.driver import BackendSpec
from raymix.methods.hparams import aioli_defaults
from raymix.methods.policies import AioliConfig, aioli_schedule

#: setting → (groups, SlimPajama analog)
SETTINGS: dict[str, tuple[tuple[str, ...], str]] = {
    "gh_c4": (("code", "speeches"), "GitHub/C4"),
    "cc_gh_w": (("web_email", "code", "reference"), "CommonCrawl/GitHub/Wikipedia"),
    "realmix": (("code", "reference", "tech_docs", "books", "web_email", "speeches"), "SlimPajama (m=7)"),
}

TABLE2_METHODS = ("stratified", "grid_search", "dml", "skill_it", "doremi", "doge", "aioli")
TABLE3_METHODS = ("stratified", "aioli", "grid_search", "aioli+grid_search", "dml", "aioli+dml", "skill_it",
                  "aioli+skill_it", "doremi", "aioli+doremi", "doge", "aioli+doge")
TABLE21_METHODS = ("stratified", "aioli", "aioli_static", "aioli_diagonal")
#: Tune trial-scheduler methods (issue #10) that may join the unrestricted Table 2 analog with --methods
SCHEDULER_METHODS = ("grid_search_asha", "dml_asha", "pbt")
TABLES = {"table2": ("unrestricted", TABLE2_METHODS + SCHEDULER_METHODS), "table3": ("restricted", TABLE3_METHODS),
          "table21": ("unrestricted", TABLE21_METHODS)}

#: CPU training defaults (batch 8 as the paper; per-group cached eval windows large enough for a stable PPL).
CPU_TRAIN = {"batch_size": 8, "lr": 5e-4, "min_lr": 1e-4, "warmup_steps": 50, "precision": "fp32",
             "eval_examples": 256}


def aioli_overrides(m: int, setting: str, total_steps: int) -> dict[str, Any]:
    """The paper's Aioli values for this shape (m = 6 takes the m = 7 ones: k = 2, δ = 0.07, γ = 0.1) with
    the largest T ≤ 20 whose rounds hold K = m·k equal segments of ≥ 1 step after the longest S_init of the
    restricted setting (Aioli+DoGE: S/2, its proxy run's length; paper Table 11)."""
    base = aioli_defaults(7 if m >= 6 else m, setting)
    s_init = total_steps // 2 if setting == "restricted" else 0
    for rounds in range(int(base["rounds"]), 0, -1):
        cfg = AioliConfig.from_dict({**base, "rounds": rounds})
        try:
            aioli_schedule(cfg, m, s_init, total_steps)
        except ConfigError:
            continue
        return {**base, "rounds": rounds}
    raise ConfigError(f"S={total_steps} is too short for Aioli with m={m}, k={base['sweeps']}, δ={base['delta']}: "
                      f"even one round cannot hold K={m * base['sweeps']} segments; train longer")


def experiment(table: str, setting: str, shards: str, out: str, *, steps: int, seeds: tuple[int, ...],
               model: str = "tiny", executor: str = "tune", cpus_per_trial: int | None = None,
               methods: tuple[str, ...] | None = None, lr: float | None = None,
               aioli: dict[str, Any] | None = None) -> ExperimentConfig:
    """One table of one setting as an :class:`ExperimentConfig`; ``methods``: a subset of the table's (in the
    table's order), e.g. stratified and aioli on more seeds first — the same ``out`` later takes the rest."""
    if table not in TABLES or setting not in SETTINGS:
        raise ConfigError(f"unknown table {table!r} or setting {setting!r}; tables: {sorted(TABLES)}, "
                          f"settings: {sorted(SETTINGS)}")
    budget, all_methods = TABLES[table]
    unknown = sorted(set(methods or ()) - set(all_methods))
    if unknown:
        raise ConfigError(f"--methods {unknown} are not in {table} ({list(all_methods)}); pick from those")
    default = tuple(m for m in all_methods if m not in SCHEDULER_METHODS)  # the paper's rows
    chosen = default if methods is None else tuple(m for m in all_methods if m in methods)
    groups = SETTINGS[setting][0]
    train = {**CPU_TRAIN, **({} if lr is None else {"lr": float(lr)})}
    return ExperimentConfig(methods=chosen, seeds=tuple(seeds), total_steps=int(steps), setting=budget,
                            aioli={**aioli_overrides(len(groups), budget, int(steps)), **(aioli or {})},
                            backend=BackendSpec(kind="model", shards=shards, model=model, train=train),
                            tune={} if cpus_per_trial is None else {"cpus_per_trial": cpus_per_trial},
                            executor=executor, out=out,
                            name=f"{setting}-{table}")


def provenance_entry(command: list[str]) -> dict[str, Any]:
    """The exact command with raymix's version and git commit (and whether the tree had uncommitted changes)."""
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True,
                                cwd=here).stdout.strip()
        dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                                    text=True, check=True, cwd=here).stdout.strip())
    except (OSError, subprocess.CalledProcessError):
        commit, dirty = None, None
    return {"command": " ".join(command), "raymix_version": __version__, "git_commit": commit,
            "uncommitted_changes": dirty, "packages": package_versions()}


#: the installed packages whose versions can change a result (kernels, data pipeline, tokenizer, solvers)
RESULT_PACKAGES = ("torch", "ray", "transformers", "tokenizers", "pyarrow", "numpy", "scipy")


def package_versions() -> dict[str, str | None]:
    """Python's and :data:`RESULT_PACKAGES`' versions (None: not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in RESULT_PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def provenance(cfg: ExperimentConfig, argv: list[str]) -> dict[str, Any]:
    """Command, versions, commit, the data's identity and the per-group cached eval token counts of a results
    folder.  ``data``: the shards' digest (:meth:`~raymix.data.manifest.Manifest.data_digest`: equal digests,
    equal tokens), the tokenizer's checksum and what each group was built from (package versions and
    checksums), so that a rerun on rebuilt shards can tell whether it trains on the same data."""
    from raymix.data.manifest import load_manifest

    man = load_manifest(cfg.backend.shards, verify=False)
    cap = cfg.backend.train.get("eval_examples")
    tokens = {split: {g: min(st.sequences, cap or st.sequences) * man.seq_len for g, st in man.stats[split].items()}
              for split in ("val", "test") if split in man.stats}
    data = {"digest": man.data_digest(), "tokenizer_sha256": man.tokenizer.sha256,
            "sources": man.sources.get("groups", man.sources)}
    return {**provenance_entry(["python -m experiments.cpu_scale", *argv]), "data": data,
            "eval_tokens_per_group": tokens, "config": cfg.to_dict()}


def reuse_results(cfg: ExperimentConfig, source: Path) -> list[str]:
    """Copy into ``cfg.out`` the results of ``source`` (another experiment's --out) that this experiment would
    train identically: methods that plan no extra phase (stratified) whose final run has the same
    :meth:`~raymix.methods.runs.RunSpec.identity`, on the same backend.  A variant of one method (e.g. Aioli
    with other settings) is then compared with the very stratified runs of the main table, paired by seed,
    without training them again.  Returns the (method, seed) labels copied."""
    from raymix.experiment import parse_method, result_path
    from raymix.methods import MethodResult, MixingProblem, get_method

    meta = json.loads((source / "experiment.json").read_text())
    if meta.get("backend") != cfg.backend.to_dict():
        raise ConfigError(f"--reuse-from {str(source)!r} trained on another backend; its runs cannot be reused")
    from raymix.methods.driver import backend_groups

    groups = backend_groups(cfg.backend)
    copied = []
    for label in cfg.methods:
        name, handoff = parse_method(label)
        for seed in cfg.seeds:
            src, dst = result_path(source, label, seed), result_path(cfg.out, label, seed)
            if dst.exists() or not src.is_file():
                continue
            problem = MixingProblem(groups=groups, total_steps=cfg.total_steps, seed=int(seed), setting=cfg.setting,
                                    with_aioli=handoff, rounds=cfg.rounds, aioli=dict(cfg.aioli))
            plan = get_method(name, cfg.method_configs.get(label, cfg.method_configs.get(name))).plan(problem)
            try:
                next(plan)
                continue  # plans runs besides its final one: not reused
            except StopIteration as stop:
                spec = stop.value
            res = MethodResult.from_dict(json.loads(src.read_text()))
            if res.final.spec.identity() != spec.identity():
                continue
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.write_text(src.read_text())
            copied.append(f"{label}-seed{seed}")
    return copied


def record_provenance(path: Path, entry: dict[str, Any]) -> None:
    """Append one invocation to ``provenance.json`` (a results folder grows by seeds and methods over several
    commands; each is kept with its commit and time)."""
    import time

    runs = json.loads(path.read_text()).get("invocations", []) if path.is_file() else []
    runs.append({**entry, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"invocations": runs}, indent=1))
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("table", choices=sorted(TABLES))
    ap.add_argument("--setting", choices=sorted(SETTINGS), required=True)
    ap.add_argument("--shards", required=True, help="shards of the setting's groups (see the module docstring)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--steps", type=int, required=True, help="S of every final run")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--model", default="tiny")
    ap.add_argument("--executor", choices=("tune", "local"), default="tune")
    ap.add_argument("--cpus-per-trial", type=int, default=None, help="default automatic (raymix.tune.placement)")
    ap.add_argument("--methods", default=None, help="comma-separated subset of the table's methods (default all)")
    ap.add_argument("--lr", type=float, default=None, help=f"peak learning rate (default {CPU_TRAIN['lr']})")
    ap.add_argument("--aioli", default=None, help="JSON overrides of the Aioli settings, e.g. a variant's "
                    "'{\"rounds\": 4, \"eval_examples\": 32}' (default: the paper's values fitted to S)")
    ap.add_argument("--reuse-from", default=None, help="another experiment's --out whose stratified runs this one "
                    "would train identically: copied, not retrained (a variant paired with the main table)")
    args = ap.parse_args(argv)
    cfg = experiment(args.table, args.setting, args.shards, args.out, steps=args.steps,
                     seeds=tuple(int(s) for s in args.seeds.split(",")), model=args.model, executor=args.executor,
                     cpus_per_trial=args.cpus_per_trial, lr=args.lr,
                     methods=None if args.methods is None else tuple(args.methods.split(",")),
                     aioli=None if args.aioli is None else json.loads(args.aioli))
    from raymix.data.manifest import load_manifest

    have = tuple(load_manifest(args.shards, verify=False).groups)
    if set(have) != set(SETTINGS[args.setting][0]):
        raise ConfigError(f"shards {args.shards!r} hold groups {list(have)}, setting {args.setting!r} needs "
                          f"{list(SETTINGS[args.setting][0])}; build them as the module docstring says")
    from raymix.experiment import prepare_experiment

    prepared = prepare_experiment(cfg)  # refuses a different experiment in --out before anything is written
    record_provenance(Path(args.out) / "provenance.json", provenance(cfg, argv))
    if args.reuse_from:
        copied = reuse_results(cfg, Path(args.reuse_from))
        print(f"reused from {args.reuse_from}: {copied or 'nothing'}", file=sys.stderr)
        prepared.resuming = prepared.resuming or bool(copied)
    from raymix.progress import console_progress

    # live progress on stderr (plain periodic lines when not a terminal); Ray's output in <out>/raymix.log
    run_experiment(cfg, progress=console_progress(args.out, capture_native=argv is None), prepared=prepared)
    return 0


if __name__ == "__main__":
    sys.exit(main())
