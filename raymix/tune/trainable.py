"""The Ray Tune trainable of raymix: one ``step()`` = one mixing round of one run.

``MixingTrainable`` wraps :class:`raymix.methods.driver.RunDriver`.  Its config::

    {"trial": {"run": RunSpec dict,
               "handoff": checkpoint dir of a run to continue (restricted Aioli+method) or None,
               "reference": checkpoint dir of DoReMi's reference run or None,
               "threads": torch threads (optional; the trial's CPUs, set by the executor)},
     "backend": BackendSpec dict}

Every result carries ``step`` (the backend's own step counter — Tune's ``training_iteration`` restarts
on a hand-off to a new Tuner, ours does not), per-group proportions ``p/<g>``, training losses, the
round's A^t when the policy has one, ``done``, and the metrics a scheduler or searcher optimises:
``avg_val_loss`` (mean over groups) and ``val_loss/<g>`` — the latest validation losses, measured at
the end of every mixing round on the round's evaluation subset (``round_val_loss/<g>`` keeps the round's
own values), so ASHA, HyperBand and PBT can compare trials at round boundaries.  The last result
replaces them with the final losses on the whole cached validation set and adds per-group test
losses, ``avg_test_ppl`` (the paper's metric) and ``run_result`` (the JSON of the whole
:class:`~raymix.methods.runs.RunResult`), which executors and ``raymix report`` read.

Checkpoints are directories holding ``state.pt`` (``torch.save`` of ``RunDriver.state_dict()``: model,
optimizer, LR schedule, sampler position, policy state — p history, A history, EMA — and RNGs).
"""

from __future__ import annotations

import contextlib
import json
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import ray
import torch
from ray import tune

from raymix.errors import CheckpointError, RaymixError, RaymixWarning
from raymix.methods.driver import BackendSpec, RunDriver, build_backend, reference_model_state
from raymix.methods.runs import RunSpec
from raymix.tune.searchers import mixture_from_space

STATE_FILE = "state.pt"


def save_state(state: dict[str, Any], directory: str | os.PathLike) -> Path:
    """Write a run state into ``directory`` atomically (temp file + rename)."""
    path = Path(directory) / STATE_FILE
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)
    return path


def load_state(directory: str | os.PathLike) -> dict[str, Any]:
    """Read a run state written by :func:`save_state` (a Tune checkpoint directory)."""
    path = Path(directory) / STATE_FILE
    if not path.is_file():
        raise CheckpointError(f"no raymix run state at {str(path)!r}; expected a checkpoint directory written "
                              "by MixingTrainable")
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # noqa: BLE001 - any unpickling failure means a corrupt checkpoint
        raise CheckpointError(f"cannot read run state {str(path)!r}: {e}") from e


def _checkpoint_dir(ref: Any) -> str:
    """A local directory for a checkpoint given as a path, URI or ``ray.tune.Checkpoint``."""
    if ref is None:
        raise CheckpointError("missing checkpoint reference")
    if isinstance(ref, tune.Checkpoint):
        return ref.to_directory()
    ref = str(ref)
    if "://" in ref:
        return tune.Checkpoint(ref).to_directory()
    return ref


def _flat(prefix: str, groups: list[str], values) -> dict[str, float]:
    return {} if values is None else {f"{prefix}/{g}": float(v) for g, v in zip(groups, values)}


def build_driver(config: dict[str, Any]) -> RunDriver:
    """The :class:`RunDriver` of a trial config (see the module docstring): the run's backend, its hand-off
    state and DoReMi reference loaded from their checkpoints.  Used by :class:`MixingTrainable` and by every
    worker of a multi-worker trial (``raymix.tune.workers``), which builds the same driver on each rank."""
    trial = config["trial"]
    backend_spec = BackendSpec.from_dict(config.get("backend") or {})
    # Torch threads = the trial's CPUs (the executor sizes them per phase), unless the user set
    # TrainConfig.threads; Ray's OMP_NUM_THREADS for the actor is the fallback.
    threads = backend_spec.train.get("threads") or trial.get("threads") \
        or int(os.environ.get("OMP_NUM_THREADS", "0") or 0) or None
    if threads:
        torch.set_num_threads(int(threads))
        if backend_spec.kind == "model":
            backend_spec.train = {**backend_spec.train, "threads": int(threads)}
    run = dict(trial["run"])
    searched = mixture_from_space(config, len(run["policy_config"].get("mixture") or []) or 0)
    if searched is not None:  # a searcher over simplex_space() chose p
        run["policy_config"] = {**run["policy_config"], "mixture": searched}
        run["tags"] = {**run.get("tags", {}), "mixture": searched}
    spec = RunSpec.from_dict(run)
    backend = build_backend(backend_spec, spec)
    handoff = load_state(_checkpoint_dir(trial["handoff"])) if trial.get("handoff") else None
    reference = None
    if trial.get("reference"):
        reference = reference_model_state(backend_spec, load_state(_checkpoint_dir(trial["reference"])))
    return RunDriver(spec, backend, handoff_state=handoff, reference_state=reference)


def round_result(driver: RunDriver, report_partial: bool = False) -> dict[str, Any]:
    """Run the driver's next round (none once it is done) and return the trial result of the module docstring;
    with ``report_partial`` an unfinished run's result carries its partial RunResult (for ASHA-stopped trials)."""
    d, groups = driver, list(driver.backend.groups)
    out: dict[str, Any] = {"run": d.spec.name, "role": d.spec.role}
    if not d.done:
        r = d.round()
        out.update(_flat("p", groups, r.mixture))
        out.update(_flat("train_loss", groups, r.train_loss))
        out.update(_flat("round_val_loss", groups, r.val_loss))
        if r.val_loss is not None:
            out.update(_flat("val_loss", groups, r.val_loss))
            out["avg_val_loss"] = float(np.mean(r.val_loss))
        if r.interactions is not None:
            out["A"] = json.dumps(r.interactions)
            # one scalar per entry, for trackers (MLflow, TensorBoard, W&B log numbers only)
            for gi, row in zip(groups, r.interactions):
                out.update(_flat(f"A/{gi}", groups, row))
    out["step"] = d.backend.step
    # Tune's loggers (TensorBoard, MLflow) use timesteps_total as the x axis: the run's own step
    out["timesteps_total"] = d.backend.step
    out["done"] = d.done
    out["threads"] = torch.get_num_threads()
    out["node"] = ray.get_runtime_context().get_node_id() if ray.is_initialized() else None
    if d.done:
        res = d.result()
        out.update(_flat("val_loss", groups, res.val_loss))
        out.update(_flat("test_loss", groups, res.test_loss))
        out["avg_val_loss"] = res.avg_val_loss
        out["avg_test_ppl"] = res.avg_test_ppl
        out["run_result"] = json.dumps(res.to_dict())
    elif report_partial:
        out["run_result"] = json.dumps(d.partial_result().to_dict())
    return out


class MixingTrainable(tune.Trainable):
    """Ray Tune trainable running one raymix run (see the module docstring for config and results)."""

    @contextlib.contextmanager
    def _forwarding_warnings(self) -> Iterator[None]:
        """raymix's own warnings travel to the driver in the next result (trial output is not forwarded there),
        which shows each once (``raymix.tune.tracking.ProgressCallback``); others stay in the trial's log."""
        recorded: list[warnings.WarningMessage] = []
        try:
            with warnings.catch_warnings(record=True) as caught:
                # Only raymix's own warnings are recorded every time (the driver shows each once); every other
                # category keeps the process's filters and their once-per-location registry.
                warnings.simplefilter("always", RaymixWarning)
                try:
                    yield
                finally:
                    recorded = list(caught)
        finally:
            # Re-emitted *after* the recording context: re-emitting inside it appended each warning to the list
            # being iterated, a loop that grew a trial to 20 GB and an out-of-memory kill.
            for w in recorded:
                if issubclass(w.category, RaymixWarning):
                    self._warnings.append(str(w.message))
                else:
                    warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)

    def setup(self, config: dict[str, Any]) -> None:
        self._warnings: list[str] = []
        # Bad input and NaN losses are deterministic: a retry from the last checkpoint would fail the same way.
        # They are reported as the trial's last result (``raymix_error``) instead of raised, so Tune's
        # max_failures retries only real faults (a killed process, a lost node, an out-of-memory kill).
        self.error: RaymixError | None = None
        try:
            with self._forwarding_warnings():
                self._setup(config)
        except RaymixError as e:
            self.error = e

    def _setup(self, config: dict[str, Any]) -> None:
        self.backend_spec = BackendSpec.from_dict(config.get("backend") or {})
        self.driver = build_driver(config)
        self.spec = self.driver.spec
        self.groups = list(self.driver.backend.groups)
        # Under a trial scheduler that may stop the trial at any round (ASHA), every result carries the partial
        # RunResult so that a stopped run's curve reaches the executor.
        self.report_partial = bool(config["trial"].get("report_partial", False))

    def step(self) -> dict[str, Any]:
        if self.error is None:
            try:
                return self._step()
            except RaymixError as e:
                self.error = e
        run = self.config.get("trial", {}).get("run", {}).get("name")
        return {"run": run, "done": True, "raymix_error": str(self.error),
                "raymix_error_type": type(self.error).__name__}

    def _step(self) -> dict[str, Any]:
        with self._forwarding_warnings():
            out = round_result(self.driver, report_partial=self.report_partial)
        if self._warnings:
            out["warnings"] = json.dumps(sorted(set(self._warnings)))
            self._warnings = []
        return out

    def save_checkpoint(self, checkpoint_dir: str) -> None:
        if self.error is not None:
            return  # a failed run has nothing worth resuming; its last result carries the error
        save_state(self.driver.state_dict(), checkpoint_dir)

    def load_checkpoint(self, checkpoint: str | dict | None) -> None:
        """Restore this run — or, under PBT, continue a donor member's checkpoint (Tune's exploit restores the
        donor's checkpoint into this trial after ``reset_config`` with the donor's perturbed config)."""
        directory = checkpoint if isinstance(checkpoint, str) else None
        if directory is None:
            raise CheckpointError(f"MixingTrainable checkpoints are directories, got {type(checkpoint).__name__}")
        state = load_state(directory)
        self.driver.load_state_dict(state, exploit=bool(self.config.get("trial", {}).get("population")))

    def reset_config(self, new_config: dict[str, Any]) -> bool:
        # reuse_actors: rebuild the run in the same actor instead of starting a new process.
        self.setup(new_config)
        self.config = new_config
        return True
