"""The per-process shard cache: a reused actor builds its next backend without re-reading the shards."""

from __future__ import annotations

import numpy as np

from raymix.data.cache import cached_eval_set, cached_sampler, clear_shard_cache, shard_cache_info
from raymix.data.reader import load_eval_set
from raymix.data.sampler import open_sampler


def test_cached_sampler_gives_open_samplers_batches_and_reads_once(shard_dir):
    clear_shard_cache()
    ref = open_sampler(shard_dir, "train", batch_size=6, seed=3)
    a = cached_sampler(shard_dir, "train", 6, 3)
    b = cached_sampler(shard_dir, "train", 6, 3)  # a second trial in the same process
    for counts in ([2, 2, 2], [6, 0, 0], [1, 2, 3]) * 20:  # past an epoch of the smallest group
        want = ref.next_batch(counts=np.array(counts))
        for s in (a, b):
            got = s.next_batch(counts=np.array(counts))
            assert np.array_equal(got.input_ids, want.input_ids) and np.array_equal(got.groups, want.groups)
    info = shard_cache_info()
    assert info["misses"] == 1 + len(ref.groups) and info["hits"] >= 1 + len(ref.groups)
    ev = cached_eval_set(shard_dir, "val", 4)
    again = cached_eval_set(shard_dir, "val", 4)
    assert again is ev and all(np.array_equal(ev[g], w) for g, w in load_eval_set(shard_dir, "val", 4).items())
    assert not next(iter(ev.values())).flags.writeable  # shared between backends: nobody may write into it
    clear_shard_cache()
