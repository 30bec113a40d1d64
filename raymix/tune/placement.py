"""How many CPUs, GPUs and torch threads each trial of a phase gets (the automatic default).

A phase of ``n`` trials on a cluster with ``C`` CPUs runs ``k = min(n, max_concurrent, trials that fit on the
GPUs)`` trials at once; each gets ``max(1, ⌊C/k⌋)`` CPUs — capped at the largest node, since a trial's bundle
lives on one node — and as many torch intra-op threads.  A single-trial phase (every final run, Aioli, each
phase of a method that has one run) therefore trains on every core, as it does in-process; a 10-run sweep on
2 CPUs runs two 1-CPU trials at a time.  GPUs: one per trial when the cluster has GPUs (a trial is one
training process on one device), none otherwise.  Whatever the user sets explicitly is kept.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from raymix.errors import ConfigError


@dataclass(frozen=True)
class TrialShape:
    """Resources of every trial of one phase.

    Attributes:
        cpus: CPUs of the trial's bundle.
        gpus: GPUs of the trial's bundle (0 on CPU clusters).
        threads: torch intra-op threads the trial trains with (``max(1, ⌊cpus⌋)``).
        concurrent: trials the cluster's CPUs were divided among (the phase's trials, capped by
            ``max_concurrent`` and by the trials that fit on the GPUs).
    """

    cpus: float
    gpus: float
    threads: int
    concurrent: int


def node_capacities() -> list[dict[str, float]]:
    """``[{"CPU": c, "GPU": g}, ...]`` of the alive nodes of the connected Ray cluster."""
    import ray

    out = []
    for node in ray.nodes():
        if not node.get("Alive", False):
            continue
        res = node.get("Resources", {})
        out.append({"CPU": float(res.get("CPU", 0.0)), "GPU": float(res.get("GPU", 0.0))})
    return out


def trial_shape(n_trials: int, nodes: Sequence[Mapping[str, float]], *, cpus: float | None = None,
                gpus: float | None = None, max_concurrent: int | None = None) -> TrialShape:
    """Resources for each of ``n_trials`` trials on ``nodes`` (see the module docstring).

    Args:
        n_trials: trials in the phase (≥ 1).
        nodes: per-node capacities ``{"CPU": …, "GPU": …}`` (:func:`node_capacities`).
        cpus, gpus: the user's explicit values; None = automatic.
        max_concurrent: the user's cap on trials at once (None = no cap).

    Explicit values are returned as given (whether they fit the cluster is Tune's and the autoscaler's
    business: an autoscaling cluster may not show its worker nodes yet).

    Raises:
        ConfigError: automatic CPUs were asked of a cluster that shows no node with a CPU (and the GPUs asked).
    """
    if n_trials < 1:
        raise ConfigError(f"a phase needs at least one trial, got {n_trials}")
    nodes = [{"CPU": float(n.get("CPU", 0.0)), "GPU": float(n.get("GPU", 0.0))} for n in nodes]
    concurrent = n_trials if max_concurrent is None else max(1, min(n_trials, int(max_concurrent)))
    if gpus is None:
        gpus = 1.0 if sum(n["GPU"] for n in nodes) >= 1 else 0.0
    gpus = float(gpus)
    usable = [n for n in nodes if n["CPU"] > 0 and n["GPU"] >= gpus]
    if usable and gpus > 0:
        concurrent = max(1, min(concurrent, sum(math.floor(n["GPU"] / gpus) for n in usable)))
    if cpus is None:
        if not usable:
            raise ConfigError(f"cannot size trials automatically: no node of the Ray cluster offers a CPU"
                              f"{f' and {gpus} GPUs' if gpus else ''} (nodes: {nodes}); set cpus_per_trial (and "
                              f"gpus_per_trial) explicitly, e.g. on an autoscaling cluster whose workers are not up yet")
        largest = max(n["CPU"] for n in usable)
        cpus = min(largest, max(1, math.floor(sum(n["CPU"] for n in usable) / concurrent)))
    cpus = float(cpus)
    return TrialShape(cpus=cpus, gpus=gpus, threads=max(1, math.floor(cpus)), concurrent=concurrent)
