"""Multi-worker trials: one run trained data-parallel by Ray Train's ``TorchTrainer`` inside a Tune trial.

With ``TuneSettings.workers_per_trial`` W > 1 a phase's trials are :func:`run_trial` (a Tune function
trainable) instead of :class:`~raymix.tune.trainable.MixingTrainable`.  Ray Train V2 runs Train inside
Tune this way: the trial function builds a ``TorchTrainer`` whose W workers each execute
:func:`train_loop_per_worker` and calls ``fit()``; Ray Train starts the workers and the process group
(gloo on CPU, nccl on GPU), and ``TuneReportCallback`` forwards rank 0's reports to the Tune trial.

Every worker builds the same :class:`~raymix.methods.driver.RunDriver` from the trial config
(:func:`~raymix.tune.trainable.build_driver`): the :class:`~raymix.train.model_backend.ModelBackend`
detects the process group and trains its slice of every global batch (``raymix.train.distributed``), so
every rank's policy sees the same losses and chooses the same p.  One ``ray.train.report`` per mixing
round carries the same metrics as a single-worker trial; rank 0 attaches a checkpoint (the same
``state.pt`` directory as ``MixingTrainable``) every ``checkpoint_frequency`` rounds and at the end.  A
restarted worker group resumes from the latest one (``ray.train.get_checkpoint``); hand-offs and DoReMi
references load ordinary raymix checkpoints, whichever number of workers wrote them.

The Tune trial's own result then has no Tune checkpoint; its last result (reported by :func:`run_trial`
after ``fit()``) names the final Train checkpoint's path or URI in ``checkpoint_path``
(:func:`checkpoint_from_metrics`).
"""

from __future__ import annotations

import os
import re
import tempfile
from typing import Any

from raymix.errors import CheckpointError, ConfigError, DistributedError, RaymixError

#: Key of the trial config holding the Ray Train settings of a multi-worker trial.
WORKERS_KEY = "workers"
#: Metric in which ``TuneReportCallback`` names the persisted Train checkpoint (a storage path).
CHECKPOINT_PATH_KEY = "checkpoint_path"
def train_loop_per_worker(config: dict[str, Any]) -> None:
    """Body of every Ray Train worker: the run's driver, round by round, one report per round."""
    import ray.train

    from raymix.tune.trainable import build_driver, load_state, round_result, save_state

    workers = config[WORKERS_KEY]
    freq = int(workers.get("checkpoint_frequency", 0))
    rank = ray.train.get_context().get_world_rank()
    try:
        driver = build_driver(config)
        restored = ray.train.get_checkpoint()
        if restored is not None:  # the worker group was restarted after a failure: continue the same run
            with restored.as_directory() as directory:
                driver.load_state_dict(load_state(directory))
    except RaymixError as e:
        return _report_error(config, e)
    while True:
        try:
            metrics = round_result(driver)
        except RaymixError as e:
            return _report_error(config, e)
        done = bool(metrics["done"])
        # Every rank reports (a report is a barrier); the states are identical, so rank 0 alone saves.
        if rank == 0 and (done or (freq > 0 and len(driver.history) % freq == 0)):
            with tempfile.TemporaryDirectory(prefix="raymix-ckpt-") as tmp:
                save_state(driver.state_dict(), tmp)
                ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(tmp))
        else:
            ray.train.report(metrics)
        if done:
            return


def _report_error(config: dict[str, Any], error: Exception) -> None:
    """Bad input and NaN losses fail every rank alike and would fail again on a restart: like
    ``MixingTrainable``, report them as the run's last result (``raymix_error``) instead of raising, so
    Ray Train's retries are spent on real faults.  A :class:`DistributedError` (ranks that disagree) is
    raised: the other ranks are blocked in a collective, and only a failed worker ends the group."""
    import ray.train

    if isinstance(error, DistributedError):
        raise error
    ray.train.report({"run": config["trial"]["run"]["name"], "done": True, "raymix_error": str(error),
                      "raymix_error_type": type(error).__name__})


def _rounds_callback():
    """A ``TuneReportCallback`` that forwards every round's report except the final one.

    A result with ``done=True`` ends a Tune trial at once: forwarded from inside the Train run, it had Tune
    stop the trial actor while the Train controller was still shutting down, and the workers' placement
    group was never released (measured: the next phase's workers timed out).  :func:`run_trial` reports
    the final result itself once ``fit()`` has returned."""
    from ray.tune.integration.ray_train import TuneReportCallback

    class RoundsToTune(TuneReportCallback):
        def after_report(self, run_context, metrics, checkpoint):
            if metrics and metrics[0].get("done"):
                return
            super().after_report(run_context, metrics, checkpoint)

    return RoundsToTune()


def run_trial(config: dict[str, Any]) -> None:
    """Tune function trainable of a multi-worker trial: a ``TorchTrainer`` over W workers, fitted; then the
    final result (rank 0's last report) with the final checkpoint's path or URI in ``checkpoint_path``."""
    from ray import tune
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    from raymix.tune.executor import checkpoint_uri

    w = config[WORKERS_KEY]
    # Ray Train gives up on a worker group that has not started within 60 s; on a busy node (workers import
    # torch while other trials train) start-up is slow.  Ray propagates this variable to the controller.
    os.environ.setdefault("RAY_TRAIN_WORKER_GROUP_START_TIMEOUT_S", "600")
    gpus = float(w.get("gpus_per_worker", 0.0))
    resources = {"CPU": float(w.get("cpus_per_worker", 1.0))}
    if gpus > 0:
        resources["GPU"] = gpus
    trainer = TorchTrainer(
        train_loop_per_worker,
        train_loop_config=config,
        scaling_config=ScalingConfig(num_workers=int(w["num_workers"]), use_gpu=gpus > 0,
                                     resources_per_worker=resources),
        torch_config=TorchConfig(backend="nccl" if gpus > 0 else "gloo"),
        run_config=RunConfig(name=train_run_name(config["trial"]["run"]["name"]), storage_path=w["storage_path"],
                             callbacks=[_rounds_callback()], checkpoint_config=CheckpointConfig(num_to_keep=2),
                             failure_config=FailureConfig(max_failures=int(w.get("max_failures", 0)))),
    )
    result = trainer.fit()
    name = config["trial"]["run"]["name"]
    if result.error is not None:
        raise RaymixError(f"the {w['num_workers']} Ray Train workers of run {name!r} failed: {result.error}")
    if (result.metrics or {}).get("raymix_error"):
        tune.report(dict(result.metrics))  # bad input / NaN losses: the executor raises it with its own class
        return
    if result.checkpoint is None or not (result.metrics or {}).get("done"):
        raise CheckpointError(f"the Ray Train run of {name!r} ended without its final result and checkpoint "
                              f"(metrics: {sorted(result.metrics or {})})")
    tune.report({**result.metrics, CHECKPOINT_PATH_KEY: checkpoint_uri(result.checkpoint)})


def train_run_name(run_name: str) -> str:
    """Name of the Ray Train run of a raymix run (a directory under the Tune experiment)."""
    return "train-" + re.sub(r"[^A-Za-z0-9_.-]+", "_", run_name)


def workers_config(*, num_workers: int, cpus_per_worker: float, gpus_per_worker: float, storage_path: str,
                   experiment: str, checkpoint_frequency: int, max_failures: int) -> dict[str, Any]:
    """The ``config["workers"]`` of a phase's multi-worker trials; their Train runs live in the experiment
    directory ``storage_path/experiment``, one per raymix run (:func:`train_run_name`)."""
    if num_workers < 2:
        raise ConfigError(f"a multi-worker trial needs num_workers >= 2, got {num_workers!r}")
    return {"num_workers": int(num_workers), "cpus_per_worker": float(cpus_per_worker),
            "gpus_per_worker": float(gpus_per_worker), "storage_path": f"{storage_path.rstrip('/')}/{experiment}",
            "checkpoint_frequency": int(checkpoint_frequency), "max_failures": int(max_failures)}


def max_concurrent(workers: int, cpus_per_worker: float, gpus_per_worker: float) -> int:
    """How many W-worker trials the cluster holds at once (at least 1).  The trial functions themselves
    reserve nothing, so without this cap Tune would start every trial and their Train runs would queue."""
    import ray

    total = ray.cluster_resources()
    fits = [total.get("CPU", 0.0) // (workers * cpus_per_worker)] if cpus_per_worker > 0 else []
    if gpus_per_worker > 0:
        fits.append(total.get("GPU", 0.0) // (workers * gpus_per_worker))
    return max(1, int(min(fits))) if fits else 1


def checkpoint_from_metrics(metrics: dict[str, Any]) -> str:
    """Path or URI of the final Train checkpoint, named in a multi-worker trial's last result."""
    path = metrics.get(CHECKPOINT_PATH_KEY)
    if not path:
        raise CheckpointError(f"multi-worker trial of run {metrics.get('run')!r} reported no checkpoint "
                              f"(metrics: {sorted(metrics)})")
    return str(path)
