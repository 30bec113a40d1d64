"""Driver-side Tune callbacks: live progress of trials and experiment tracking through Ray's integrations.

* :class:`ProgressCallback` — ``on_trial_result`` runs on the driver for every result a trial reports
  (one per mixing round, wherever the trial runs), so it feeds :class:`raymix.progress.ExperimentProgress`
  with the run's ``step`` and ``p/<group>``; raymix warnings a trial forwards (result key ``warnings``) are
  shown once.
* :func:`tracking_callbacks` — Tune's own logger callbacks for ``--log tensorboard|mlflow|wandb``:
  TensorBoard event files in each trial's directory (``TBXLoggerCallback``), MLflow runs in a local file
  store ``<out>/mlruns`` (``MLflowLoggerCallback``; ``MLFLOW_TRACKING_URI`` overrides), Weights & Biases
  runs in offline mode
  (``WandbLoggerCallback``; ``wandb sync`` uploads them later).  Every trial logs, per round, ``p/<g>``,
  ``train_loss/<g>``, ``round_val_loss/<g>``, ``A/<g_i>/<g_j>`` (A^t of online methods) at x = the
  run's own step (``timesteps_total``), and the final ``val_loss/<g>``, ``test_loss/<g>``,
  ``avg_test_ppl``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ray import tune

from raymix.errors import ConfigError

#: names accepted by ``--log`` / ``ExperimentConfig.log``
TRACKERS = ("tensorboard", "mlflow", "wandb")


class ProgressCallback(tune.Callback):
    """Forwards every trial result (one per round) to an :class:`~raymix.progress.ExperimentProgress`."""

    def __init__(self, progress: Any) -> None:
        self.progress = progress

    def __getstate__(self) -> dict[str, Any]:
        # Tune pickles its callbacks into the experiment state; the live display (a terminal stream) stays here.
        # A restored experiment gets a new callback from the executor (raymix.tune.executor).
        return {**self.__dict__, "progress": None}

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        if self.progress is None:
            return
        for msg in json.loads(result.get("warnings") or "[]"):
            self.progress.warn(msg)
        if "run" not in result or "step" not in result:
            return
        groups = self.progress.groups or tuple(k[2:] for k in result if k.startswith("p/"))
        p = [result[f"p/{g}"] for g in groups] if all(f"p/{g}" in result for g in groups) else None
        self.progress.run_round(result["run"], int(result["step"]), p)


def check_trackers(names: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Validate ``--log`` names; raises :class:`ConfigError` quoting a bad one."""
    bad = [n for n in names if n not in TRACKERS]
    if bad:
        raise ConfigError(f"unknown tracker(s) {bad}; --log takes any of {list(TRACKERS)} (comma-separated)")
    return tuple(dict.fromkeys(names))


def mlflow_uri(out: str | os.PathLike) -> str:
    """The local MLflow file store of an experiment: ``file://<out>/mlruns``."""
    return (Path(out).expanduser().resolve() / "mlruns").as_uri()


def tracking_callbacks(names: tuple[str, ...], out: str | os.PathLike, experiment: str,
                       tags: dict[str, str] | None = None) -> list[tune.Callback]:
    """Tune logger callbacks for the trackers in ``names`` (see the module docstring)."""
    callbacks: list[tune.Callback] = []
    for name in check_trackers(names):
        if name == "tensorboard":
            from ray.tune.logger import TBXLoggerCallback

            callbacks.append(TBXLoggerCallback())
        elif name == "mlflow":
            try:
                import mlflow  # noqa: F401
            except ImportError:
                raise ConfigError("--log mlflow needs the mlflow package: pip install 'raymix[tracking]'") from None
            from ray.air.integrations.mlflow import MLflowLoggerCallback

            # MLflow ≥ 3 keeps its file store in maintenance mode and refuses it unless allowed; a sqlite store
            # took ~20 s to create its tables (docs/DECISIONS.md).  MLFLOW_TRACKING_URI (a server, sqlite)
            # takes precedence.
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
            uri = os.environ.get("MLFLOW_TRACKING_URI") or mlflow_uri(out)
            callbacks.append(MLflowLoggerCallback(tracking_uri=uri, experiment_name=experiment,
                                                  tags=dict(tags or {})))
        else:
            try:
                import wandb  # noqa: F401
            except ImportError:
                raise ConfigError("--log wandb needs the wandb package: pip install 'raymix[tracking]'") from None
            from ray.air.integrations.wandb import WandbLoggerCallback

            # Offline: no account or network needed; `wandb sync <out>/tune/.../wandb/offline-run-*` uploads later.
            os.environ.setdefault("WANDB_MODE", "offline")
            os.environ.setdefault("WANDB_SILENT", "true")
            callbacks.append(WandbLoggerCallback(project=experiment, group=(tags or {}).get("method"),
                                                 mode=os.environ["WANDB_MODE"]))
    return callbacks
