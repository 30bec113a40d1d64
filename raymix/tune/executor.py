"""Running a method's phases as Ray Tune experiments (one ``Tuner.fit()`` per phase).

Each run of a phase becomes a trial of :class:`~raymix.tune.trainable.MixingTrainable` (a
``tune.grid_search`` over the phase's runs); trials of a phase run concurrently, spread over the
cluster's nodes.  A later phase names earlier runs' checkpoints for hand-offs (``resume_from``) and
DoReMi references (``reference_from``); the executor passes their Tune checkpoint paths.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ray
from ray import tune

from raymix.config import Config, check
from raymix.errors import CheckpointError, RaymixError
from raymix.logs import tame_ray_loggers
from raymix.methods.base import Executor, MixingProblem, Phase
from raymix.methods.driver import BackendSpec, start_step
from raymix.methods.runs import RunResult
from raymix.tune.trainable import MixingTrainable


@dataclass
class TuneSettings(Config):
    """How trials are placed and stored."""

    storage_path: str = "~/raymix_results"
    experiment: str = "raymix"
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    max_concurrent_trials: int | None = None
    checkpoint_frequency: int = 0
    max_failures: int = 0
    verbose: int = 0
    ray_init: dict[str, Any] = field(default_factory=dict)
    #: experiment trackers fed by Tune's logger callbacks: any of "tensorboard", "mlflow", "wandb"
    log: tuple[str, ...] = ()
    #: where trackers keep their local stores (MLflow's ``mlruns``); default: ``storage_path``
    tracking_dir: str | None = None
    #: the trackers' experiment (MLflow experiment, W&B project); default: ``experiment``
    tracking_name: str | None = None

    def validate(self) -> None:
        check(float(self.cpus_per_trial) > 0, f"cpus_per_trial must be > 0, got {self.cpus_per_trial!r}")
        check(float(self.gpus_per_trial) >= 0, f"gpus_per_trial must be >= 0, got {self.gpus_per_trial!r}")
        check(int(self.checkpoint_frequency) >= 0,
              f"checkpoint_frequency must be >= 0 rounds, got {self.checkpoint_frequency!r}")
        from raymix.tune.tracking import check_trackers

        check_trackers(self.log)

    def resources(self) -> tune.PlacementGroupFactory:
        """One bundle per trial.  Nothing is reserved for Ray Data: the streams' read tasks ask for 0 CPUs
        (``raymix.data.streaming``), which is what keeps trials holding every CPU from deadlocking; a
        reserved data bundle was measured to hang (docs/DECISIONS.md)."""
        from raymix.data.streaming import data_resources

        return data_resources(float(self.cpus_per_trial), float(self.gpus_per_trial))


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


def _trial_name(trial: Any) -> str:
    """Trials are named after their run (trackers show these names), unique within a phase."""
    return f"{trial.config['trial']['run']['name']}_{trial.trial_id}"


class TuneExecutor(Executor):
    """Runs each phase as a Tune experiment; keeps finished runs' checkpoint paths for later phases."""

    def __init__(self, backend: BackendSpec | None = None, settings: TuneSettings | None = None) -> None:
        self.backend_spec = backend or BackendSpec()
        self.settings = settings or TuneSettings()
        self.checkpoints: dict[str, str] = {}
        self.results: dict[str, RunResult] = {}
        self.experiment_dirs: list[str] = []

    def _trial(self, spec) -> dict[str, Any]:
        def path(name: str | None) -> str | None:
            if name is None:
                return None
            if name not in self.checkpoints:
                raise CheckpointError(f"run {spec.name!r} needs the checkpoint of run {name!r}, which has not "
                                      f"finished; finished runs: {sorted(self.checkpoints)}")
            return self.checkpoints[name]

        return {"run": spec.to_dict(), "handoff": path(spec.resume_from), "reference": path(spec.reference_from)}

    def run_phase(self, phase: Phase, problem: MixingProblem) -> list[RunResult]:
        # Runs identical to finished ones (e.g. the sweep that "X" and "aioli+X" share) are not trained again.
        todo = [spec for spec in phase.runs
                if spec.name not in self.results or self.results[spec.name].spec != spec]
        if todo:
            if self.progress is not None:
                self.progress.phase_started(phase.name, [(s.name, start_step(s, self.results), s.steps) for s in todo])
            try:
                self._fit(Phase(phase.name, todo), problem)
            finally:
                if self.progress is not None:
                    self.progress.phase_finished()
        return [self.results[spec.name] for spec in phase.runs]

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

    def _fit(self, phase: Phase, problem: MixingProblem) -> None:
        s = self.settings
        ensure_ray(**s.ray_init)
        trials = [self._trial(spec) for spec in phase.runs]
        # numbered: phases of different methods may share a name ("final") within one executor
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{s.experiment}-{len(self.experiment_dirs):02d}-{phase.name}")
        storage = os.path.abspath(os.path.expanduser(s.storage_path)) if "://" not in s.storage_path else s.storage_path
        tuner = tune.Tuner(
            tune.with_resources(MixingTrainable, s.resources()),
            param_space={"trial": tune.grid_search(trials), "backend": self.backend_spec.to_dict()},
            tune_config=tune.TuneConfig(reuse_actors=True, max_concurrent_trials=s.max_concurrent_trials,
                                        trial_name_creator=_trial_name),
            run_config=tune.RunConfig(
                name=safe, storage_path=storage, stop={"done": True}, verbose=s.verbose,
                callbacks=self._callbacks(phase, problem, storage),
                checkpoint_config=tune.CheckpointConfig(checkpoint_at_end=True, num_to_keep=2,
                                                        checkpoint_frequency=int(s.checkpoint_frequency)),
                failure_config=tune.FailureConfig(max_failures=int(s.max_failures)),
            ),
        )
        if s.verbose == 0:
            # Tune's new console output prints experiment tables even at verbose=0; the legacy one is silent.
            os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
        grid = tuner.fit()
        self.experiment_dirs.append(str(Path(grid.experiment_path)))
        for res in grid:
            if res.error is not None:
                # the root cause (e.g. a RaymixError raised in the trial) is the last line worth quoting
                cause = str(res.error).strip().splitlines()
                raise RaymixError(f"a trial of phase {phase.name!r} failed: {cause[-1] if cause else res.error!r} "
                                  f"(full trace under {grid.experiment_path})")
            name = res.config["trial"]["run"]["name"]
            if "run_result" not in (res.metrics or {}):
                raise RaymixError(f"trial for run {name!r} ended without a final result (metrics: "
                                  f"{sorted(res.metrics or {})})")
            rr = RunResult.from_dict(json.loads(res.metrics["run_result"]))
            if res.checkpoint is None:
                raise CheckpointError(f"trial for run {name!r} left no checkpoint")
            rr.checkpoint = checkpoint_uri(res.checkpoint)
            self.checkpoints[name] = rr.checkpoint
            self.results[name] = rr
