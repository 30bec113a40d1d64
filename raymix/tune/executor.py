"""Running a method's phases as Ray Tune experiments (one ``Tuner.fit()`` per phase).

Each run of a phase becomes a trial of :class:`~raymix.tune.trainable.MixingTrainable` (a
``tune.grid_search`` over the phase's runs); trials of a phase run concurrently, spread over the
cluster's nodes.  A later phase names earlier runs' checkpoints for hand-offs (``resume_from``) and
DoReMi references (``reference_from``); the executor passes their Tune checkpoint paths.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ray
from ray import tune

from raymix.config import Config, check
from raymix.errors import CheckpointError, RaymixError, RaymixWarning
from raymix.logs import tame_ray_loggers
from raymix.methods.base import Executor, MixingProblem, Phase
from raymix.methods.driver import BackendSpec, start_step
from raymix.methods.runs import RunResult, RunSpec
from raymix.tune.placement import TrialShape, node_capacities, trial_shape
from raymix.tune.trainable import MixingTrainable
from raymix.tune.workers import (
    WORKERS_KEY,
    checkpoint_from_metrics,
    max_concurrent,
    run_trial,
    workers_config,
)


@dataclass
class TuneSettings(Config):
    """How trials are placed and stored."""

    storage_path: str = "~/raymix_results"
    experiment: str = "raymix"
    #: None = automatic (``raymix.tune.placement``): a phase of n trials on C CPUs gives each max(1, ⌊C/n⌋)
    #: CPUs and as many torch threads; one GPU per trial when the cluster has GPUs.
    cpus_per_trial: float | None = None
    gpus_per_trial: float | None = None
    max_concurrent_trials: int | None = None
    reuse_actors: bool = True
    checkpoint_frequency: int = 1
    max_failures: int = 2
    workers_per_trial: int = 1
    verbose: int = 0
    ray_init: dict[str, Any] = field(default_factory=dict)
    #: experiment trackers fed by Tune's logger callbacks: any of "tensorboard", "mlflow", "wandb"
    log: tuple[str, ...] = ()
    #: where trackers keep their local stores (MLflow's ``mlruns``); default: ``storage_path``
    tracking_dir: str | None = None
    #: the trackers' experiment (MLflow experiment, W&B project); default: ``experiment``
    tracking_name: str | None = None

    def validate(self) -> None:
        check(self.cpus_per_trial is None or float(self.cpus_per_trial) > 0,
              f"cpus_per_trial must be > 0 or None (automatic), got {self.cpus_per_trial!r}")
        check(self.gpus_per_trial is None or float(self.gpus_per_trial) >= 0,
              f"gpus_per_trial must be >= 0 or None (automatic), got {self.gpus_per_trial!r}")
        check(_is_int(self.checkpoint_frequency) and int(self.checkpoint_frequency) >= 0,
              f"checkpoint_frequency (--checkpoint-every) must be an integer >= 0 rounds, got "
              f"{self.checkpoint_frequency!r}")
        check(_is_int(self.max_failures) and int(self.max_failures) >= -1,
              f"max_failures (--max-failures) must be an integer >= 0 (or -1: retry for ever), got "
              f"{self.max_failures!r}")
        check(_is_int(self.workers_per_trial) and self.workers_per_trial >= 1,
              f"workers_per_trial (--workers-per-trial) must be an integer >= 1, got {self.workers_per_trial!r}")
        from raymix.tune.tracking import check_trackers

        check_trackers(self.log)

    def shape(self, n_trials: int) -> TrialShape:
        """CPUs, GPUs and torch threads of each trial of a phase of ``n_trials`` on the connected cluster."""
        return trial_shape(n_trials, node_capacities(), cpus=self.cpus_per_trial, gpus=self.gpus_per_trial,
                           max_concurrent=self.max_concurrent_trials)

    def resources(self, n_trials: int = 1) -> tune.PlacementGroupFactory:
        """One bundle per trial.  Nothing is reserved for Ray Data: the streams' read tasks ask for 0 CPUs
        (``raymix.data.streaming``), which is what keeps trials holding every CPU from deadlocking; a
        reserved data bundle was measured to hang (docs/DECISIONS.md)."""
        from raymix.data.streaming import data_resources

        shape = self.shape(n_trials)
        return data_resources(shape.cpus, shape.gpus)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def ensure_ray(**init_kwargs: Any) -> None:
    """Start a local Ray (or connect to ``RAY_ADDRESS``) unless one is already up."""
    if ray.is_initialized():
        return
    kwargs = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
    kwargs.update(init_kwargs)
    tame_ray_loggers()  # Ray's console output (e.g. its token-authentication notice): quiet unless --verbose
    ray.init(**kwargs)
    tame_ray_loggers()  # also the handlers that appeared with ray.init


def checkpoint_uri(ckpt: tune.Checkpoint) -> str:
    """A path (local storage) or URI (``s3://…``, ``gs://…``) that any node can open the checkpoint from."""
    fs = getattr(ckpt, "filesystem", None)
    kind = getattr(fs, "type_name", "local") if fs is not None else "local"
    if kind in ("local", "py::fsspec+('file', 'local')"):
        return ckpt.path
    scheme = {"s3": "s3", "gcs": "gs", "hdfs": "hdfs"}.get(kind, kind)
    return f"{scheme}://{ckpt.path}"


def unreadable_tune_state(path: str | os.PathLike) -> str | None:
    """The first of a Tune experiment folder's saved state files (``experiment_state-*.json``, the searcher's
    ``basic-variant-state-*.json`` and ``tuner.pkl``, both pickles) that is empty, cut short (a pickle without
    its final STOP opcode) or, for JSON, does not parse; None when all are whole.  A process killed while Tune
    writes them (a full disk, an out-of-memory kill) leaves such a file, and ``Tuner.restore`` then fails deep
    inside Tune or re-creates trials without their config."""
    folder = Path(path)
    for f in sorted(folder.glob("*.json")) + sorted(folder.glob("*.pkl")):
        try:
            data = f.read_bytes()
            if not data:
                return str(f)
            if data[:1] == b"\x80":  # pickle protocol >= 2: a whole pickle ends with STOP
                if not data.endswith(b"."):
                    return str(f)
            else:
                json.loads(data)
        except (OSError, ValueError):
            return str(f)
    return None


def _trial_name(trial: Any) -> str:
    """Trials (and their directories) are named after their run — trackers show these names — plus the trial id,
    unique within a phase."""
    return f"{trial.config['trial']['run']['name']}_{trial.trial_id}"


def _spec_key(spec: RunSpec, trial: dict[str, Any]) -> str:
    """Identity of a run as trained: its spec without labels (``RunSpec.identity``: runs of different methods
    with the same policy, mixture, steps and seed are one run) plus the checkpoints it starts from."""
    blob = json.dumps({"run": spec.identity(), "handoff": trial.get("handoff"), "reference": trial.get("reference")},
                      sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _error_class(name: str) -> type[RaymixError]:
    from raymix import errors

    cls = getattr(errors, str(name), None)
    return cls if isinstance(cls, type) and issubclass(cls, RaymixError) else RaymixError


class TrialsInterrupted(KeyboardInterrupt):
    """Tune stopped the phase on Ctrl-C after saving its state; rerunning the experiment restores it."""


class TuneExecutor(Executor):
    """Runs each phase as a Tune experiment; keeps finished runs' checkpoint paths for later phases.

    Resumable: every finished run is recorded in ``<storage>/<experiment>.runs/`` (its result and checkpoint
    path), so a new executor with the same settings does not train it again; a phase's Tune experiment is
    named after its runs, so a phase interrupted midway (driver killed, Ctrl-C) is continued with
    ``Tuner.restore`` — finished trials are kept, unfinished ones resume from their last checkpoint.
    """

    def __init__(self, backend: BackendSpec | None = None, settings: TuneSettings | None = None,
                 trainable: type[MixingTrainable] | None = None) -> None:
        self.backend_spec = backend or BackendSpec()
        self.settings = settings or TuneSettings()
        #: the Tune trainable of every trial (a MixingTrainable subclass may add callbacks or instrumentation)
        self.trainable = trainable or MixingTrainable
        self.checkpoints: dict[str, str] = {}
        self.results: dict[str, RunResult] = {}
        self.experiment_dirs: list[str] = []
        #: resources each phase's trials got, in phase order (parallel to ``experiment_dirs``)
        self.shapes: list[TrialShape] = []
        #: runs taken from the record of an earlier executor, or from an identical run, instead of being trained
        self.reused: list[str] = []
        #: finished runs by :func:`_spec_key` (identity and starting checkpoints)
        self.trained: dict[str, RunResult] = {}

    # ------------------------------------------------------------------ storage
    @property
    def storage(self) -> str:
        s = self.settings.storage_path
        return os.path.abspath(os.path.expanduser(s)) if "://" not in s else s

    def _journal_dir(self) -> Path | None:
        if "://" in self.storage:
            return None  # remote storage: Tune's own experiment state is the record
        return Path(self.storage) / f"{_safe(self.settings.experiment)}.runs"

    def _recorded(self, key: str) -> RunResult | None:
        d = self._journal_dir()
        path = d / f"{key}.json" if d is not None else None
        if path is None or not path.is_file():
            return None
        try:
            rr = RunResult.from_dict(json.loads(path.read_text()))
        except (OSError, ValueError, KeyError, TypeError):
            return None  # a damaged record: train the run again
        if rr.checkpoint is None or ("://" not in rr.checkpoint and not Path(rr.checkpoint).is_dir()):
            return None  # its checkpoint is gone: train again rather than hand off from nothing
        return rr

    def _record(self, key: str, rr: RunResult) -> None:
        d = self._journal_dir()
        if d is None:
            return
        d.mkdir(parents=True, exist_ok=True)
        tmp = d / f"{key}.json.tmp"
        tmp.write_text(json.dumps(rr.to_dict()))
        os.replace(tmp, d / f"{key}.json")

    # ------------------------------------------------------------------ phases
    def _trial(self, spec, threads: int | None = None) -> dict[str, Any]:
        def path(name: str | None) -> str | None:
            if name is None:
                return None
            if name not in self.checkpoints:
                raise CheckpointError(f"run {spec.name!r} needs the checkpoint of run {name!r}, which has not "
                                      f"finished; finished runs: {sorted(self.checkpoints)}")
            return self.checkpoints[name]

        return {"run": spec.to_dict(), "handoff": path(spec.resume_from), "reference": path(spec.reference_from),
                "threads": threads}

    def data_groups(self) -> tuple[str, ...]:
        from raymix.methods.driver import backend_groups

        return backend_groups(self.backend_spec)

    def _accept(self, rr: RunResult) -> None:
        self.checkpoints[rr.spec.name] = rr.checkpoint  # type: ignore[assignment]
        self.results[rr.spec.name] = rr

    def run_phase(self, phase: Phase, problem: MixingProblem) -> list[RunResult]:
        todo, keys, twins = [], set(), []
        for spec in phase.runs:
            # Runs identical to finished ones (the sweep that "X" and "aioli+X" share, or that grid search and
            # DML share; DoReMi's reference = stratified) are not trained again.  The key holds the checkpoints
            # a run starts from, so two runs that resume different runs of the same name are not confused.
            key = _spec_key(spec, self._trial(spec))
            if key in self.trained:
                known = self.trained[key]
                self._accept(known if known.spec == spec else known.as_run(spec))
                continue
            known = self._recorded(key)  # the key holds the starting checkpoints: their names may differ
            if known is not None and known.spec.own_identity() == spec.own_identity():
                self.trained[key] = known
                self._accept(known if known.spec == spec else known.as_run(spec))
                self.reused.append(spec.name)
                continue
            if key in keys:
                twins.append((spec, key))  # two identical runs in one phase: train one, share it below
            else:
                todo.append(spec)
                keys.add(key)
        if todo and (phase.pruning is not None or phase.population is not None):
            todo = list(phase.runs)  # a scheduled phase is one experiment: its trials are compared with each other
        if todo:
            if self.progress is not None:
                self.progress.phase_started(phase.name, [(s.name, start_step(s, self.results), s.steps) for s in todo])
            try:
                self._fit(phase, todo, problem)
            finally:
                if self.progress is not None:
                    self.progress.phase_finished()
        for spec, key in twins:
            if phase.pruning is None and phase.population is None:
                self._accept(self.trained[key].as_run(spec))
        return [self.results[spec.name] for spec in phase.runs]

    def _scheduler(self, phase: Phase):
        """Tune's ASHAScheduler / PopulationBasedTraining for a scheduled phase (raymix.tune.schedulers), or None."""
        from raymix.methods.schedules import phase_rounds
        from raymix.tune.schedulers import asha_scheduler, pbt_scheduler

        if phase.pruning is not None:
            return asha_scheduler(phase.pruning, phase_rounds(phase))
        if phase.population is not None:
            return pbt_scheduler(phase.population, phase.runs[0].steps, phase_rounds(phase))
        return None

    def _callbacks(self, phase: Phase, problem: MixingProblem, storage: str) -> list[tune.Callback]:
        from raymix.tune.tracking import ProgressCallback, tracking_callbacks

        s = self.settings
        callbacks: list[tune.Callback] = [] if self.progress is None else [ProgressCallback(self.progress)]
        if s.log:
            tags = {"phase": phase.name, "seed": str(problem.seed), "setting": problem.setting,
                    "method": getattr(self.progress, "method", None) or phase.name}
            out = s.tracking_dir or (storage if "://" not in storage else os.getcwd())
            callbacks += tracking_callbacks(s.log, out, s.tracking_name or s.experiment, tags)
        return callbacks

    def _fit(self, phase: Phase, todo: list[RunSpec], problem: MixingProblem) -> None:
        from raymix.preflight import check_trial_resources, node_capacity

        s = self.settings
        ensure_ray(**s.ray_init)
        check_trial_resources(s.to_dict(), capacity=node_capacity())
        shape = s.shape(len(todo))
        trials = [self._trial(spec, shape.threads) for spec in todo]
        keys = [_spec_key(spec, t) for spec, t in zip(todo, trials)]
        for t in trials:
            t["report_partial"] = phase.pruning is not None  # a stopped trial's partial RunResult reaches us
            t["population"] = phase.population is not None
        # Named after its runs: rerunning an interrupted experiment finds this phase's Tune state again.
        digest = hashlib.sha256("".join(sorted(keys)).encode()).hexdigest()[:8]
        name = _safe(f"{s.experiment}-{phase.name}-{digest}")
        storage = self.storage
        from raymix.data.streaming import data_resources

        trainable = tune.with_resources(self.trainable, data_resources(shape.cpus, shape.gpus))
        path = f"{storage.rstrip('/')}/{name}"
        param_space: dict[str, Any] = {"trial": tune.grid_search(trials), "backend": self.backend_spec.to_dict()}
        stop, concurrent, reuse = {"done": True}, s.max_concurrent_trials, bool(s.reuse_actors)
        # PBT donors' checkpoints must outlive the exploit that restores them
        checkpoints = tune.CheckpointConfig(checkpoint_at_end=True, num_to_keep=4 if phase.population is not None else 2,
                                            checkpoint_frequency=int(s.checkpoint_frequency))
        failures = int(s.max_failures)
        if s.workers_per_trial > 1:
            # Ray Train inside Tune (raymix.tune.workers): the trial function only drives a TorchTrainer whose
            # workers hold the resources, so it reserves none (one byte of memory: Tune refuses empty bundles);
            # it ends when the Train run has finished.
            # every worker is sized like one trial of a phase of n·W trials
            wshape = s.shape(len(todo) * s.workers_per_trial)
            param_space["trial"] = tune.grid_search([self._trial(spec, wshape.threads) for spec in todo])
            param_space[WORKERS_KEY] = workers_config(
                num_workers=s.workers_per_trial, cpus_per_worker=float(wshape.cpus),
                gpus_per_worker=float(wshape.gpus), storage_path=storage, experiment=name,
                checkpoint_frequency=int(s.checkpoint_frequency), max_failures=int(s.max_failures))
            trainable, stop = tune.with_resources(run_trial, {"memory": 1}), None
            # checkpoints and restarts are the Train run's (the worker group restarts from its last checkpoint)
            checkpoints, failures = tune.CheckpointConfig(), 0
            # not reused: a trial function holds nothing worth keeping, and a fresh actor per trial leaves no
            # finished Train controller (and its placement group) behind
            reuse = False
            concurrent = concurrent or max_concurrent(s.workers_per_trial, float(wshape.cpus), float(wshape.gpus))
        if s.verbose == 0:
            # Tune's new console output prints experiment tables even at verbose=0; the legacy one is silent.
            os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
        bad = None if "://" in path else unreadable_tune_state(path)  # a folder not there yet holds nothing
        if bad is not None:
            warnings.warn(f"phase {phase.name!r}: Tune's saved state {bad!r} is unreadable (the process was killed while "
                          "writing it, e.g. on a full disk); its unfinished runs start again from step 0 (finished "
                          "runs are kept)", RaymixWarning, stacklevel=2)
            shutil.rmtree(path)
        if tune.Tuner.can_restore(path):
            tuner = tune.Tuner.restore(path, trainable=trainable, resume_unfinished=True, resume_errored=True)
            # Callbacks hold this process's progress display and trackers: give the restored run the live ones.
            local = getattr(tuner, "_local_tuner", None)
            if local is not None:
                local.get_run_config().callbacks = self._callbacks(phase, problem, storage)
        else:
            if "://" not in path and Path(path).exists():
                shutil.rmtree(path)  # a phase killed before Tune saved any state: nothing to continue
            tuner = tune.Tuner(
                trainable,
                param_space=param_space,
                tune_config=tune.TuneConfig(reuse_actors=reuse, max_concurrent_trials=concurrent,
                                            trial_name_creator=_trial_name, trial_dirname_creator=_trial_name,
                                            scheduler=self._scheduler(phase)),
                run_config=tune.RunConfig(
                    name=name, storage_path=storage, stop=stop, verbose=s.verbose,
                    callbacks=self._callbacks(phase, problem, storage),
                    checkpoint_config=checkpoints,
                    failure_config=tune.FailureConfig(max_failures=failures),
                ),
            )
        grid = tuner.fit()
        self.experiment_dirs.append(str(Path(grid.experiment_path)))
        self.shapes.append(shape)
        unfinished = []
        by_key = dict(zip(keys, todo))
        results = list(grid)
        members: list[str | None] = [None] * len(results)
        if phase.population is not None:
            # PBT's exploit copies the donor's whole config (run name included) into the member: members are
            # identified by their trial, created in the order of the phase's runs.
            order = sorted(range(len(results)), key=lambda i: _trial_index(results[i]))
            for spec, i in zip(todo, order):
                members[i] = spec.name
        for res, member in zip(results, members):
            metrics = res.metrics or {}
            run = member or (res.config or {}).get("trial", {}).get("run", {}).get("name", "?")
            if metrics.get("raymix_error"):
                raise _error_class(metrics.get("raymix_error_type"))(
                    f"run {run!r} of phase {phase.name!r} failed: {metrics['raymix_error']}")
            if res.error is not None:
                # the root cause is the last line worth quoting
                cause = str(res.error).strip().splitlines()
                raise RaymixError(f"a trial of phase {phase.name!r} failed {int(s.max_failures) + 1} time(s): "
                                  f"{cause[-1] if cause else res.error!r} (full trace under {grid.experiment_path})")
            if "run_result" not in metrics or (phase.pruning is not None and not metrics.get("done")):
                unfinished.append(run)  # (a trial ASHA stopped has done=True and its partial result)
                continue
            rr = RunResult.from_dict(json.loads(metrics["run_result"]))
            if member is not None:
                spec = next(sp for sp in todo if sp.name == member)
                rr.spec = RunSpec.from_dict({**spec.to_dict(), "policy_config": rr.spec.policy_config,
                                             "tags": {**spec.tags, "mixture": rr.spec.policy_config.get("mixture")}})
            if res.checkpoint is not None:
                rr.checkpoint = checkpoint_uri(res.checkpoint)
            elif s.workers_per_trial > 1:  # the checkpoint is the Train run's, named in the metrics
                rr.checkpoint = checkpoint_from_metrics(metrics)
            else:
                raise CheckpointError(f"trial for run {run!r} left no checkpoint")
            key = _spec_key(rr.spec, {"handoff": res.config["trial"].get("handoff"),
                                      "reference": res.config["trial"].get("reference")})
            self._accept(rr)
            if key in by_key:
                self.trained[key] = rr
                self._record(key, rr)
        if unfinished:
            # Tune returns early only when it was interrupted (Ctrl-C / SIGUSR1) after saving its state.
            raise TrialsInterrupted(f"phase {phase.name!r} was interrupted with runs {unfinished} unfinished; "
                                    f"their state is saved under {grid.experiment_path}")


def _trial_index(result: Any) -> int:
    """Creation index of a Tune trial (its id ends in a zero-padded counter: ``<experiment>_00003``)."""
    tid = str((result.metrics or {}).get("trial_id", ""))
    try:
        return int(tid.rsplit("_", 1)[-1])
    except ValueError:
        raise RaymixError(f"cannot tell the creation order of Tune trial {tid!r}") from None


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)
