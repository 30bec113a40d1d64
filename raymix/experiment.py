"""Experiments: several methods × seeds on one data setting, results stored as tidy files.

``run_experiment(config)`` plans every (method, seed) with :mod:`raymix.methods`, trains the runs on
Ray Tune (``executor="tune"``, the default) or in-process (``executor="local"``), and writes, per
finished method and seed, one JSON file under ``<out>/results/`` (temp file + rename: a file that exists
is complete).  ``raymix report`` and :func:`raymix.report.load_results` read them back.

A method name ``"aioli+X"`` means method X in the restricted setting with its proportions handed to
Aioli for the full run (paper §6.2, Table 3).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from raymix.config import Config, check
from raymix.errors import ConfigError, ExperimentMismatchError
from raymix.methods import MethodResult, MixingProblem, get_method, run_method
from raymix.methods.driver import BackendSpec, LocalExecutor
from raymix.methods.registry import METHODS
from raymix.progress import ExperimentProgress

HANDOFF_PREFIX = "aioli+"


def parse_method(label: str) -> tuple[str, bool]:
    """``"aioli+grid_search"`` → ("grid_search", True); ``"dml"`` → ("dml", False)."""
    if label.startswith(HANDOFF_PREFIX):
        base = label[len(HANDOFF_PREFIX):]
        if base in ("aioli", "aioli_static", "aioli_diagonal", "stratified"):
            raise ConfigError(f"{label!r}: Aioli+method needs a method that learns p on short runs, not {base!r}")
        name, handoff = base, True
    else:
        name, handoff = label, False
    if name not in METHODS:
        raise ConfigError(f"unknown method {label!r}; valid: {sorted(METHODS)} and 'aioli+<method>'")
    return name, handoff


@dataclass
class ExperimentConfig(Config):
    """A comparison of methods on one data setting (one row per method in the paper-style table)."""

    methods: tuple[str, ...] = ("stratified", "aioli")
    seeds: tuple[int, ...] = (0,)
    total_steps: int = 5000
    setting: str = "unrestricted"
    rounds: int = 10
    method_configs: dict[str, dict[str, Any]] = field(default_factory=dict)
    aioli: dict[str, Any] = field(default_factory=dict)
    backend: BackendSpec = field(default_factory=BackendSpec)
    tune: dict[str, Any] = field(default_factory=dict)
    executor: str = "tune"
    out: str = "raymix_results"
    name: str = "compare"
    log: tuple[str, ...] = ()

    def validate(self) -> None:
        check(len(self.methods) >= 1, "give at least one method")
        for m in self.methods:
            parse_method(m)
        check(len(self.seeds) >= 1, "give at least one seed")
        from raymix.preflight import check_seeds

        check_seeds(self.seeds)
        check(self.executor in ("tune", "local"), f"executor must be 'tune' or 'local', got {self.executor!r}")
        if self.log:
            from raymix.tune.tracking import check_trackers

            check_trackers(self.log)
            check(self.executor == "tune", f"experiment tracking (log={list(self.log)}) works through Ray Tune's "
                                           "callbacks; use executor 'tune' (got 'local')")
        workers = self.tune.get("workers_per_trial", 1)
        if workers != 1:
            check(self.executor == "tune", f"workers_per_trial={workers!r} trains each run on Ray Train workers; "
                                           f"use executor='tune' (got {self.executor!r})")
        if any(m.startswith(HANDOFF_PREFIX) for m in self.methods):
            check(self.setting == "restricted",
                  f"Aioli+method rows ({[m for m in self.methods if m.startswith(HANDOFF_PREFIX)]}) belong to the "
                  f"restricted setting; pass setting='restricted' (got {self.setting!r})")


def load_experiment_file(path: str | os.PathLike) -> dict[str, Any]:
    """Read an experiment file: YAML (or JSON) holding the fields of :class:`ExperimentConfig`.

    The format is ``ExperimentConfig.to_dict()``, so the ``experiment.json`` written into every ``--out``
    is itself a valid file.  Example (``raymix compare --config experiment.yaml``)::

        name: cpu-compare
        methods: [stratified, grid_search, aioli]
        seeds: [0, 1]
        total_steps: 400
        setting: unrestricted
        method_configs: {grid_search: {runs: 6}}      # per-method overrides (by label or method name)
        aioli: {rounds: 5, sweeps: 2}
        backend: {kind: model, shards: shards, model: tiny, train: {batch_size: 8, lr: 0.002}}
        tune: {cpus_per_trial: 1}
        log: [mlflow]

    Returns the mapping (validated later, after command-line overrides, by ``ExperimentConfig.from_dict``).
    """
    import yaml

    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"experiment file {str(p)!r} does not exist; give the path of a .yaml/.json file")
    try:
        data = yaml.safe_load(p.read_text())
    except yaml.YAMLError as e:
        raise ConfigError(f"experiment file {str(p)!r} is not valid YAML/JSON: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"experiment file {str(p)!r} must hold a mapping of ExperimentConfig fields, "
                          f"got {type(data).__name__}")
    data.pop("fingerprint", None)  # derived, written into experiment.json beside the fields (see fingerprint())
    return data


def copy_experiment_file(path: str | os.PathLike, out: str | os.PathLike) -> Path:
    """Copy the experiment file as given into ``out`` (beside ``experiment.json``, the resolved config)."""
    src = Path(path)
    name = src.name if src.name != "experiment.json" else "experiment.given.json"
    dst = Path(out) / name
    dst.parent.mkdir(parents=True, exist_ok=True)
    if src.resolve() != dst.resolve():
        shutil.copyfile(src, dst)
    return dst


def result_path(out: str | os.PathLike, label: str, seed: int) -> Path:
    safe = label.replace("+", "_plus_")
    return Path(out) / "results" / f"{safe}-seed{seed}.json"


def _write_json_atomic(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1))
    os.replace(tmp, path)


#: Fields of :class:`ExperimentConfig` that do not change results (where and how trials run).
PLACEMENT_FIELDS = ("out", "tune", "executor", "log")
#: Fields an experiment may grow by when continued: each (method, seed) has its own result file, so adding a
#: seed or a method to a finished experiment trains only the new pairs (and shares identical runs with the old).
EXTENDABLE_FIELDS = ("methods", "seeds")
#: What an experiment writes under ``out`` (``--overwrite`` removes exactly these).
OUTPUTS = ("experiment.json", "results", "tune", "report.md", "runs.csv", "rounds.csv", "proportions.png",
           "raymix.log", "mlruns")


def fingerprint(cfg: ExperimentConfig) -> str:
    """SHA-256 of everything that determines the results (not where or how trials are placed, nor which methods
    and seeds: see :data:`EXTENDABLE_FIELDS`), including the identity of the data for model backends
    (:func:`raymix.data.manifest.data_digest`: the files' and the tokenizer's checksums, not the sources'
    descriptions, so shards rebuilt byte-identical from another fetch cache continue the experiment)."""
    return _fingerprint(cfg, legacy=False)


def _fingerprint(cfg: ExperimentConfig, *, legacy: bool) -> str:
    """``legacy``: the data's identity as experiment.json files written before 2026-11-30 hold it (the manifest's
    bytes, which also changed with the sources' descriptions); still accepted when an experiment is continued."""
    from raymix.data.manifest import data_digest

    d = {k: v for k, v in cfg.to_dict().items() if k not in PLACEMENT_FIELDS + EXTENDABLE_FIELDS}
    if cfg.backend.kind == "model" and cfg.backend.shards:
        manifest = Path(cfg.backend.shards) / "manifest.json"
        if manifest.is_file():
            raw = manifest.read_bytes()
            try:
                parsed = None if legacy else json.loads(raw)
            except json.JSONDecodeError:  # the plan check names a broken manifest; here it is only bytes
                parsed = None
            d["data"] = data_digest(parsed) if isinstance(parsed, dict) else hashlib.sha256(raw).hexdigest()
    return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _differences(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    keys = sorted((set(a) | set(b)) - set(PLACEMENT_FIELDS) - set(EXTENDABLE_FIELDS) - {"fingerprint"})
    return [k for k in keys if a.get(k) != b.get(k)] or ["the data (shards rebuilt)"]


def check_out_path(out: str | os.PathLike) -> Path:
    """``out`` must be a directory (or not exist yet) that this process can write into."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {str(out)!r} is an existing file, not a directory; choose another --out")
    probe = out
    while not probe.exists():
        probe = probe.parent
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ConfigError(f"--out {str(out)!r} is not writable ({str(probe)!r}: permission denied); choose a "
                          "directory you can write to")
    return out


def prepare_out(cfg: ExperimentConfig, *, overwrite: bool = False) -> bool:
    """Check that ``cfg.out`` can take this experiment; returns True when it holds an unfinished or finished
    run of the *same* experiment (to be continued).  Writes nothing except with ``overwrite`` (which removes
    the previous experiment's outputs, and only those)."""
    out = check_out_path(cfg.out)
    meta = out / "experiment.json"
    if not meta.is_file():
        stale = [name for name in ("results", "tune") if (out / name).exists()]
        if stale and not overwrite:
            raise ExperimentMismatchError(
                f"--out {str(out)!r} holds {stale} but no experiment.json, so it cannot be continued safely; "
                "choose a new --out or pass --overwrite to delete those outputs and start afresh")
        if overwrite:
            _remove_outputs(out)
        return False
    if overwrite:
        _remove_outputs(out)
        return False
    try:
        old = json.loads(meta.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ExperimentMismatchError(f"{str(meta)!r} is unreadable ({e}); choose a new --out or pass --overwrite "
                                      "to start afresh") from None
    if old.get("fingerprint") not in (fingerprint(cfg), _fingerprint(cfg, legacy=True)):
        diff = _differences(old, cfg.to_dict())
        raise ExperimentMismatchError(
            f"--out {str(out)!r} holds a different experiment (differs in {', '.join(diff)}); choose a new --out, "
            "or pass --overwrite to delete its results and start afresh")
    return True


def _remove_outputs(out: Path) -> None:
    for name in OUTPUTS:
        p = out / name
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()


def make_executor(cfg: ExperimentConfig, seed: int):
    """One executor per seed, shared by every method of that seed, so identical runs are trained once."""
    if cfg.executor == "local":
        return LocalExecutor(cfg.backend)
    from raymix.tune.executor import TuneExecutor, TuneSettings

    settings = TuneSettings.from_dict({"storage_path": str(Path(cfg.out).resolve() / "tune"), **cfg.tune,
                                       "experiment": f"{cfg.name}-s{seed}", "log": tuple(cfg.log),
                                       "tracking_dir": str(Path(cfg.out).resolve()), "tracking_name": cfg.name})
    return TuneExecutor(cfg.backend, settings)


@dataclass
class Prepared:
    """An experiment checked and ready to run: whether ``out`` holds a run of it to continue, and the plan check."""

    resuming: bool
    report: Any


def prepare_experiment(cfg: ExperimentConfig, *, overwrite: bool = False) -> Prepared:
    """Everything that must pass before anything is written or trained: ``cfg.out`` can take this experiment
    (:func:`prepare_out`) and every (method, seed) plan is possible (:func:`raymix.preflight.check_experiment`)."""
    from raymix.preflight import check_experiment

    if overwrite:  # delete the previous experiment only once the new one has passed its checks
        check_out_path(cfg.out)
        report = check_experiment(cfg)
        return Prepared(resuming=prepare_out(cfg, overwrite=True), report=report)
    resuming = prepare_out(cfg)
    return Prepared(resuming=resuming, report=check_experiment(cfg))


def run_experiment(cfg: ExperimentConfig, *,
                   progress: ExperimentProgress | Callable[[str], None] | None = None,
                   overwrite: bool = False, prepared: Prepared | None = None) -> list[MethodResult]:
    """Run every (method, seed) of ``cfg``; returns the results in order and writes them under ``cfg.out``.

    Before anything trains or is written, the whole plan is checked and ``cfg.out`` must be new, empty, or
    hold the same experiment (:func:`prepare_experiment`; pass ``prepared`` when done already).  The same
    experiment is *continued*: finished (method, seed) results are loaded, not retrained, and on Tune finished
    runs and interrupted trials are picked up from their checkpoints.  ``overwrite`` deletes a previous
    experiment's outputs first.

    ``progress``: an :class:`~raymix.progress.ExperimentProgress` (live bars / periodic lines, fed by the
    executors every round), or a plain callable that receives one line per started/finished method."""
    prepared = prepared or prepare_experiment(cfg, overwrite=overwrite)
    if isinstance(progress, ExperimentProgress):
        tracker, say = progress, progress.write
    else:
        tracker = ExperimentProgress(enabled=False)
        say = progress or tracker.write

    def finish_item(msg: str) -> None:
        """A (method, seed) is done: the live display prints ``msg`` itself; a plain callable gets the line."""
        if say is tracker.write:
            tracker.item_finished(msg)
        else:
            say(msg)
            tracker.item_finished()
    say(prepared.report.line())
    groups = prepared.report.groups
    results = []
    Path(cfg.out).mkdir(parents=True, exist_ok=True)
    _write_json_atomic(Path(cfg.out) / "experiment.json", {**cfg.to_dict(), "fingerprint": fingerprint(cfg)})
    tracker.start(len(cfg.seeds) * len(cfg.methods), desc=cfg.name)
    try:
        for seed in cfg.seeds:
            executor = None
            for label in cfg.methods:
                path = result_path(cfg.out, label, seed)
                if prepared.resuming and path.is_file():
                    res = MethodResult.from_dict(json.loads(path.read_text()))
                    tracker.item_started(label, int(seed), groups)
                    msg = (f"[{label} seed={seed}] finished earlier: avg test PPL {res.final.avg_test_ppl:.3f} "
                           "(not trained again)")
                    finish_item(msg)
                    results.append(res)
                    continue
                if executor is None:
                    executor = make_executor(cfg, int(seed))
                    executor.progress = tracker
                name, handoff = parse_method(label)
                problem = MixingProblem(groups=tuple(groups), total_steps=cfg.total_steps, seed=int(seed),
                                        setting=cfg.setting, with_aioli=handoff, rounds=cfg.rounds,
                                        aioli=dict(cfg.aioli))
                method = get_method(name, cfg.method_configs.get(label, cfg.method_configs.get(name)))
                tracker.item_started(label, int(seed), groups)
                say(f"[{label} seed={seed}] planning on {len(groups)} groups, S={cfg.total_steps}, {cfg.setting}")
                t0 = time.perf_counter()
                res = run_method(method, problem, executor)
                res.method = label
                _write_json_atomic(result_path(cfg.out, label, seed), res.to_dict())
                msg = (f"[{label} seed={seed}] avg test PPL {res.final.avg_test_ppl:.3f}, "
                       f"avg val loss {res.final.avg_val_loss:.4f} "
                       f"({len(res.runs)} runs, {time.perf_counter() - t0:.1f}s)")
                finish_item(msg)
                results.append(res)
    finally:
        tracker.close()
    return results
