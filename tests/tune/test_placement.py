"""Automatic trial sizing: a phase of n trials on C CPUs gives each max(1, ⌊C/n⌋) CPUs and as many threads."""

from __future__ import annotations

import pytest

from raymix.errors import ConfigError
from raymix.tune.placement import trial_shape

CPU2 = [{"CPU": 2.0}]
GPU_CLUSTER = [{"CPU": 0.0}, {"CPU": 8.0, "GPU": 1.0}, {"CPU": 8.0, "GPU": 1.0}]


@pytest.mark.parametrize("n, cpus", [(1, 2.0), (2, 1.0), (3, 1.0), (10, 1.0)])
def test_cpus_divide_among_the_phase_trials(n, cpus):
    s = trial_shape(n, CPU2)
    assert (s.cpus, s.gpus, s.threads) == (cpus, 0.0, int(cpus))


def test_a_trial_never_spans_nodes_and_max_concurrent_counts():
    two_nodes = [{"CPU": 4.0}, {"CPU": 4.0}]
    assert trial_shape(1, two_nodes).cpus == 4.0          # not 8: one trial lives on one node
    assert trial_shape(4, two_nodes).cpus == 2.0
    assert trial_shape(4, two_nodes, max_concurrent=1).cpus == 4.0


def test_gpus_one_per_trial_and_cpus_per_gpu_trial():
    one = trial_shape(1, GPU_CLUSTER)
    assert (one.gpus, one.cpus, one.threads) == (1.0, 8.0, 8)
    five = trial_shape(5, GPU_CLUSTER)  # two GPUs: two trials at a time, each with a node's 8 CPUs
    assert (five.gpus, five.cpus, five.concurrent) == (1.0, 8.0, 2)


def test_explicit_values_win():
    s = trial_shape(1, CPU2, cpus=0.5, gpus=0.0)
    assert (s.cpus, s.threads) == (0.5, 1)
    assert trial_shape(10, CPU2, cpus=2.0).cpus == 2.0
    assert trial_shape(1, [{"CPU": 0.0}], cpus=4.0, gpus=1.0).cpus == 4.0  # autoscaler not up yet: Tune waits


def test_automatic_sizing_on_a_cluster_without_cpus_says_what_to_set():
    with pytest.raises(ConfigError, match="cpus_per_trial"):
        trial_shape(1, [{"CPU": 0.0}])
