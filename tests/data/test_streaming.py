"""Ray Data streams: same batches as the local reader, exact resume, and no deadlock under Tune."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from raymix.data.manifest import load_manifest
from raymix.data.sampler import open_sampler
from raymix.errors import MixtureError, ShardError, SplitNotFoundError

pytestmark = pytest.mark.ray

P = np.array([0.2, 0.3, 0.5])


def _rows(sampler, n: int, start: int = 0) -> list[np.ndarray]:
    out = []
    for i in range(start, start + n):
        b = sampler.next_batch(P) if i % 2 else sampler.next_batch(counts=[2, 2, 4])
        out.append(np.concatenate([b.input_ids.ravel(), b.groups]))
    return out


def test_ray_stream_equals_local_reader(shard_dir: Path):
    # shuffle_window=50 < windows per group, and 64-row files: exercises file order + chunk shuffles
    local = open_sampler(shard_dir, batch_size=8, seed=2, shuffle_window=50)
    ray_s = open_sampler(shard_dir, batch_size=8, seed=2, shuffle_window=50, streaming="ray", prefetch_batches=1)
    try:
        a, b = _rows(local, 90), _rows(ray_s, 90)  # 720 rows: crosses epoch boundaries of every group
        assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
        assert ray_s.streams["web"].epoch >= 1
    finally:
        ray_s.close()


def test_ray_stream_exact_resume(shard_dir: Path):
    ref = open_sampler(shard_dir, batch_size=8, seed=5, shuffle_window=40, streaming="ray")
    expected = _rows(ref, 70)
    ref.close()
    s = open_sampler(shard_dir, batch_size=8, seed=5, shuffle_window=40, streaming="ray")
    _rows(s, 41)
    state = s.state_dict()
    s.close()
    resumed = open_sampler(shard_dir, batch_size=8, seed=5, shuffle_window=40, streaming="ray")
    resumed.load_state_dict(state)
    got = _rows(resumed, 29, start=41)
    resumed.close()
    assert all(np.array_equal(x, y) for x, y in zip(expected[41:], got, strict=True))
    # a ray-stream state also resumes a local sampler (same epoch order)
    local = open_sampler(shard_dir, batch_size=8, seed=5, shuffle_window=40)
    local.load_state_dict(state)
    assert all(np.array_equal(x, y) for x, y in zip(expected[41:], _rows(local, 29, start=41), strict=True))


def test_ray_stream_bad_inputs(shard_dir: Path, tmp_path: Path):
    with pytest.raises(SplitNotFoundError):
        open_sampler(shard_dir, split="dev", streaming="ray")
    with pytest.raises(MixtureError, match="nope"):
        open_sampler(shard_dir, groups=["code", "nope"], streaming="ray")
    s = open_sampler(shard_dir, batch_size=4, groups=["web", "code"], streaming="ray")
    assert s.groups == ("web", "code")
    with pytest.raises(MixtureError, match="3 weights"):
        s.next_batch(P)  # 3 weights for 2 groups
    s.close()
    # a shard whose rows disagree with the manifest is detected while streaming
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(shard_dir, copy)
    m = load_manifest(copy)
    f0, f1 = m.files_for("val", "web")[0], m.files_for("val", "code")[0]
    shutil.copy(copy / f1.path, copy / f0.path)  # swap in another group's file
    bad = open_sampler(copy, split="val", batch_size=4, groups=["web"], streaming="ray", verify=False)
    with pytest.raises(ShardError, match="rebuild"):
        for _ in range(50):
            bad.next_batch(counts=[4])
    bad.close()


@pytest.mark.timeout(300)  # a deadlock fails here; how fast two trials run is not this test's business
def test_two_concurrent_trials_do_not_deadlock(shard_dir: Path, ray_runtime):
    """Two 1-CPU Tune trials on a 2-CPU Ray hold every CPU and both stream with Ray Data."""
    from ray import tune

    from raymix.data.streaming import data_resources

    shards = str(shard_dir)

    def trainable(config):
        s = open_sampler(shards, batch_size=8, seed=config["seed"], streaming="ray", shuffle_window=50)
        total, steps = 0, 0
        for _ in range(25):
            total += int(s.next_batch(P).input_ids.sum())
            steps += 1
        s.close()
        tune.report({"steps": steps, "checksum": total, "finished_at": time.time()})

    tuner = tune.Tuner(
        tune.with_resources(trainable, data_resources(trial_cpus=1)),
        param_space={"seed": tune.grid_search([0, 1])},
        tune_config=tune.TuneConfig(max_concurrent_trials=2),
        run_config=tune.RunConfig(storage_path=str(shard_dir.parent / "tune"), verbose=0),
    )
    results = tuner.fit()
    assert [r.metrics["steps"] for r in results] == [25, 25]
    assert not results.errors
    # each trial streamed the same data a local sampler with its seed produces
    for r in results:
        local = open_sampler(shards, batch_size=8, seed=r.config["seed"], shuffle_window=50)
        assert sum(int(local.next_batch(P).input_ids.sum()) for _ in range(25)) == r.metrics["checksum"]


def test_data_resources_recipe():
    from raymix.data.streaming import READ_NUM_CPUS, data_resources
    from raymix.errors import ConfigError

    assert READ_NUM_CPUS == 0
    pgf = data_resources(2, trial_gpus=1)
    assert pgf.bundles == [{"CPU": 2.0, "GPU": 1.0}]
    with pytest.raises(ConfigError):
        data_resources(0, 0)
