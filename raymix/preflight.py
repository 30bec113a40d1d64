"""The plan check: every method and seed of an experiment is dry-run before anything trains.

A run that fails after hours of training on a plan that could never work (an impossible Aioli budget, a
negative seed, shards whose windows exceed the model's context, a trial asking for 64 CPUs) wastes the
hours.  :func:`check_experiment` finds these in seconds, before Ray starts and before anything is written:

* seeds: integers >= 0, no duplicate (a repeated seed would be averaged as if it were a second run);
* data (model backends): the manifest is consistent with the files on disk, the splits exist, every
  group has files, the shards' windows fit the preset's context, the training config is valid;
* plans: each (method, seed) is driven to completion by :class:`StandInExecutor`, which runs every planned
  run with **the real policies** (``raymix.methods.policies`` — Aioli's round and LearnParams segment
  schedule, Skill-It/DoReMi/DoGE rounds, static rounds) on a stand-in backend: the mixing-law simulator with
  the data's group names, the run's horizon and the real batch size.  The schedule code that will run in
  the trials is the code checked, so the check cannot disagree with training;
* resources: an explicitly requested ``cpus_per_trial`` / ``gpus_per_trial`` must fit on one node of the
  cluster (the local machine when Ray is not running yet).

The stand-in trains the simulator, not the model, so data-dependent branches of a plan (which sweep run
wins, which p DML's law gives) may differ from the real run; every branch trains runs of the same kinds
and lengths, which is what can be impossible.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from raymix.errors import ConfigError, PlanError, RaymixError, ResourceError
from raymix.methods.base import MixingProblem
from raymix.methods.driver import BackendSpec, LocalExecutor
from raymix.methods.runs import RunSpec
from raymix.sim import LinearDynamicSimulator, SimBackend

if TYPE_CHECKING:
    from raymix.backend import TrainingBackend
    from raymix.experiment import ExperimentConfig


def check_seeds(seeds: Any) -> tuple[int, ...]:
    """Seeds as ints; each an integer >= 0 (not a bool, not a float), no duplicates."""
    out = []
    for s in seeds:
        if isinstance(s, bool) or not isinstance(s, (int, np.integer)):
            raise ConfigError(f"seeds must be integers >= 0, got {s!r} in {list(seeds)!r}")
        if s < 0:
            raise ConfigError(f"seeds must be integers >= 0, got {int(s)} in {[int(x) for x in seeds]!r}")
        out.append(int(s))
    dup = sorted({s for s in out if out.count(s) > 1})
    if dup:
        raise ConfigError(f"seeds {out} repeat {dup}: a repeated seed is the same run, not another sample; "
                          "give distinct seeds")
    return tuple(out)


@dataclass
class DataFacts:
    """What the plan check needs to know about the data a backend trains on."""

    groups: tuple[str, ...]
    batch_size: int
    seq_len: int | None = None
    context_length: int | None = None


def check_data(spec: BackendSpec) -> DataFacts:
    """Groups and batch size of ``spec``'s data; for a model backend also the shards against the preset."""
    if spec.kind == "sim":
        from raymix.sim import get_preset

        sc = get_preset(spec.scenario)
        return DataFacts(groups=tuple(sc.groups), batch_size=int(spec.sim_options.get("batch_size", sc.batch_size)))
    from raymix.data.manifest import load_manifest
    from raymix.model.presets import ModelConfig
    from raymix.train.config import TrainConfig

    manifest = load_manifest(spec.shards, verify="exists")
    for split in ("train", "val", "test"):
        manifest.require_split(split)
    train = TrainConfig.from_dict(dict(spec.train))
    mc = ModelConfig.from_preset(spec.model).replace(**spec.model_options)
    if manifest.seq_len - 1 > mc.context_length:
        raise ConfigError(f"shards {spec.shards!r} hold windows of seq_len={manifest.seq_len} ({manifest.seq_len - 1} "
                          f"positions) but preset {spec.model!r} has a context of {mc.context_length} tokens; pick a "
                          f"preset with context >= {manifest.seq_len - 1} (--preset) or rebuild the shards with "
                          f"--seq-len {mc.context_length}")
    return DataFacts(groups=tuple(manifest.groups), batch_size=int(train.batch_size), seq_len=manifest.seq_len,
                     context_length=mc.context_length)


class StandInBackend(SimBackend):
    """The simulator with proxy runs (DoReMi / DoGE) compressed: the first step of each ``proxy_train`` call goes
    through the real per-step rule and argument checks, the remaining steps advance the simulator at once."""

    def proxy_train(self, steps: int, rule: Any, **kw: Any) -> Any:
        if steps <= 1:
            return super().proxy_train(steps, rule, **kw)
        first = super().proxy_train(1, rule, **kw)
        self.sim.train(np.full((int(steps) - 1, self.m), 1.0 / self.m))
        return type(first)(int(steps), first.group_train_loss, first.group_examples * int(steps))


class StandInExecutor(LocalExecutor):
    """A :class:`LocalExecutor` whose runs train the mixing-law simulator instead of the model.

    Every run is driven by :class:`~raymix.methods.driver.RunDriver` with its real policy, on a
    :class:`~raymix.sim.SimBackend` with the data's groups, the real batch size and the run's own horizon
    (for a simulator experiment: the real backend, which costs milliseconds anyway).
    """

    def __init__(self, backend: BackendSpec, facts: DataFacts) -> None:
        super().__init__(backend)
        self.facts = facts
        self.trained_steps = 0
        self.planned_runs = 0

    def build_backend(self, spec: RunSpec) -> TrainingBackend:
        self.planned_runs += 1
        self.trained_steps += int(spec.steps)
        b = self.backend_spec
        if b.kind == "sim":
            return StandInBackend.from_preset(b.scenario, seed=spec.seed, total_steps=spec.total_steps, **b.sim_options)
        m = len(self.facts.groups)
        A0 = np.full((m, m), 0.2) + np.diag(np.full(m, 1.5))
        sim = LinearDynamicSimulator(A0, L0=np.full(m, 4.0), floor=np.full(m, 2.0), total_steps=int(spec.total_steps),
                                     train_noise=1e-5, seed=int(spec.seed))
        return StandInBackend(sim, groups=self.facts.groups, batch_size=self.facts.batch_size, seed=int(spec.seed))

    def data_groups(self) -> tuple[str, ...]:
        return self.facts.groups

    def reference_state(self, state: dict[str, Any]) -> dict[str, Any]:
        if self.backend_spec.kind == "sim":
            return super().reference_state(state)
        return state["backend"]  # a SimBackend state is what SimBackend.set_reference takes


@dataclass
class PreflightReport:
    """What the plan check looked at."""

    methods: int
    seeds: int
    runs: int
    steps: int
    seconds: float
    groups: tuple[str, ...] = ()
    notes: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (f"plan checked: {self.methods} method(s) x {self.seeds} seed(s), {self.runs} runs, "
                f"{self.steps:,} training steps on groups {list(self.groups)} ({self.seconds:.1f}s)")


def check_experiment(cfg: ExperimentConfig) -> PreflightReport:
    """Dry-run every (method, seed) of ``cfg``; raise one :class:`~raymix.errors.RaymixError` on the first
    impossible one (the message names the method and seed).  Writes nothing; starts no Ray."""
    from raymix.experiment import parse_method
    from raymix.methods import get_method, run_method

    t0 = time.perf_counter()
    seeds = check_seeds(cfg.seeds)
    facts = check_data(cfg.backend)
    if cfg.executor == "tune":
        from raymix.tune.executor import TuneSettings

        TuneSettings.from_dict({k: v for k, v in cfg.tune.items() if v is not None and k != "experiment"})
        check_trial_resources(cfg.tune)
    runs = steps = 0
    for seed in seeds:
        executor = StandInExecutor(cfg.backend, facts)
        for label in cfg.methods:
            name, handoff = parse_method(label)
            try:
                problem = MixingProblem(groups=facts.groups, total_steps=cfg.total_steps, seed=seed,
                                        setting=cfg.setting, with_aioli=handoff, rounds=cfg.rounds,
                                        aioli=dict(cfg.aioli))
                method = get_method(name, cfg.method_configs.get(label, cfg.method_configs.get(name)))
                run_method(method.for_plan_check(), problem, executor)
            except RaymixError as e:
                raise PlanError(f"method {label!r} (seed {seed}) cannot run as planned: {e}") from e
        runs += executor.planned_runs
        steps += executor.trained_steps
    return PreflightReport(methods=len(cfg.methods), seeds=len(seeds), runs=runs, steps=steps,
                           seconds=time.perf_counter() - t0, groups=facts.groups)


# ------------------------------------------------------------------------------------------- resources
def _requested(tune: dict[str, Any], key: str) -> float | None:
    v = tune.get(key)
    if v is None or isinstance(v, str):  # None / "auto": chosen by the executor from the cluster, never too big
        return None
    if isinstance(v, bool):
        raise ConfigError(f"{key} must be a number, got {v!r}")
    try:
        x = float(v)
    except (TypeError, ValueError):
        raise ConfigError(f"{key} must be a number, got {v!r}") from None
    if not np.isfinite(x) or x < 0:
        raise ConfigError(f"{key} must be a finite number >= 0, got {v!r}")
    return x


def node_capacity(ray_init: dict[str, Any] | None = None) -> dict[str, float] | None:
    """Largest CPU and GPU counts any one node offers: the running Ray cluster's nodes, else what a local
    ``ray.init(**ray_init)`` would get.  None when connecting to a cluster that is not known yet
    (``RAY_ADDRESS`` / ``address=``): the executor checks again once connected."""
    ray_init = dict(ray_init or {})
    try:
        import ray

        if ray.is_initialized():
            nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
            return {"CPU": max((float(r.get("CPU", 0)) for r in nodes), default=0.0),
                    "GPU": max((float(r.get("GPU", 0)) for r in nodes), default=0.0)}
    except ImportError:  # pragma: no cover - ray is a dependency
        pass
    if ray_init.get("address") or os.environ.get("RAY_ADDRESS"):
        return None
    cpus = ray_init.get("num_cpus")
    if cpus is None:
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    gpus = ray_init.get("num_gpus")
    if gpus is None:
        gpus = _local_gpus()
    return {"CPU": float(cpus), "GPU": float(gpus)}


def _local_gpus() -> int:
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1"):
        return 0
    try:
        import torch

        return int(torch.cuda.device_count())
    except Exception:  # noqa: BLE001 - no torch / no driver: no GPU
        return 0


def check_trial_resources(tune: dict[str, Any], capacity: dict[str, float] | None | str = "detect") -> None:
    """Refuse explicit per-trial requests no node can satisfy (Tune would wait for them for ever).

    ``capacity``: ``{"CPU": n, "GPU": n}`` of the largest node, None when unknown (nothing to check), or
    ``"detect"`` (:func:`node_capacity`)."""
    cpus, gpus = _requested(tune, "cpus_per_trial"), _requested(tune, "gpus_per_trial")
    if cpus is not None and cpus <= 0:
        raise ConfigError(f"cpus_per_trial must be > 0, got {tune.get('cpus_per_trial')!r}")
    cap = node_capacity(tune.get("ray_init")) if capacity == "detect" else capacity
    if cap is None:
        return
    if cpus is not None and cpus > cap["CPU"]:
        raise ResourceError(f"--cpus-per-trial {cpus:g} asks for more CPUs than any node has ({cap['CPU']:g}); a "
                            f"trial must fit on one node — use --cpus-per-trial {max(1, int(cap['CPU']))} or less")
    if gpus is not None and gpus > cap["GPU"]:
        where = "this machine has no GPU" if cap["GPU"] == 0 else f"the largest node has {cap['GPU']:g}"
        raise ResourceError(f"--gpus-per-trial {gpus:g} asks for more GPUs than any node offers ({where}); "
                            f"use --gpus-per-trial {cap['GPU']:g} or run on a cluster with GPUs")
