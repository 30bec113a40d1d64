"""A per-process cache of what a backend reads from a local shard directory.

Tune reuses a trial's actor (process) for the next trial of the phase (``reuse_actors``), and in-process
executors build one backend per run: without a cache each of them verifies the manifest's checksums (every
byte of the split), reads every training window, and reads the evaluation windows again.  The cache keeps,
for **one** shard directory at a time (a different directory, or a rewritten manifest, clears it):

* the manifest, verified once per split;
* each (split, group)'s windows (read-only arrays, shared by every sampler built from them: a
  :class:`~raymix.data.sampler.LocalGroupStream` never writes to its windows);
* evaluation sets per (split, windows per group).

Samplers built from the cache give exactly the batches of :func:`raymix.data.sampler.open_sampler`
(same streams, same seeds).  Remote URIs and Ray Data streams are not cached.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from raymix.data.manifest import MANIFEST_FILE, Manifest, load_manifest
from raymix.data.sampler import DEFAULT_SHUFFLE_WINDOW, LocalGroupStream, MixtureSampler

__all__ = ["cached_eval_set", "cached_manifest", "cached_sampler", "clear_shard_cache", "shard_cache_info"]

_lock = threading.Lock()
_stamp: tuple | None = None
_entries: dict[tuple, Any] = {}
_hits = 0
_misses = 0


def _directory_stamp(shards_dir: str | os.PathLike[str]) -> tuple:
    root = Path(shards_dir).resolve()
    st = (root / MANIFEST_FILE).stat()
    return (str(root), st.st_mtime_ns, st.st_size)


def _get(shards_dir: str | os.PathLike[str], key: tuple, make: Callable[[], Any]) -> Any:
    global _stamp, _hits, _misses
    stamp = _directory_stamp(shards_dir)
    with _lock:
        if stamp != _stamp:
            _entries.clear()
            _stamp = stamp
        if key in _entries:
            _hits += 1
            return _entries[key]
    value = make()  # outside the lock: reading shards may take a while; a racing duplicate is harmless
    with _lock:
        _misses += 1
        if _stamp == stamp:
            _entries.setdefault(key, value)
    return value


def clear_shard_cache() -> None:
    """Drop everything cached (tests; freeing memory)."""
    global _stamp, _hits, _misses
    with _lock:
        _entries.clear()
        _stamp = None
        _hits = _misses = 0


def shard_cache_info() -> dict[str, Any]:
    """``{"directory", "entries", "hits", "misses"}`` of the cache in this process."""
    with _lock:
        return {"directory": None if _stamp is None else _stamp[0], "entries": len(_entries), "hits": _hits,
                "misses": _misses}


def cached_manifest(shards_dir: str | os.PathLike[str], split: str) -> Manifest:
    """:func:`~raymix.data.manifest.load_manifest` with ``split`` (checksums verified once per process)."""
    return _get(shards_dir, ("manifest", split), lambda: load_manifest(shards_dir, split=split))


def _windows(shards_dir: str | os.PathLike[str], split: str, group: str) -> np.ndarray:
    from raymix.data.reader import read_group_windows

    def make() -> np.ndarray:
        arr = read_group_windows(shards_dir, split, group, manifest=cached_manifest(shards_dir, split))
        arr.setflags(write=False)
        return arr

    return _get(shards_dir, ("windows", split, group), make)


def cached_sampler(shards_dir: str | os.PathLike[str], split: str, batch_size: int, seed: int) -> MixtureSampler:
    """``open_sampler(shards_dir, split, batch_size, seed, streaming="local")`` over cached windows."""
    manifest = cached_manifest(shards_dir, split)
    streams = {g: LocalGroupStream(g, _windows(shards_dir, split, g),
                                   row_counts=[f.rows for f in manifest.files_for(split, g)], seed=seed,
                                   shuffle_window=DEFAULT_SHUFFLE_WINDOW)
               for g in manifest.groups}
    return MixtureSampler(streams, batch_size, seed)


def cached_eval_set(shards_dir: str | os.PathLike[str], split: str, max_examples_per_group: int | None,
                    loader: Callable[..., dict[str, np.ndarray]] | None = None) -> dict[str, np.ndarray]:
    """``loader(shards_dir, split, max_examples_per_group=…, manifest=…)`` (default
    :func:`raymix.data.reader.load_eval_set`; also ``load_eval_documents``), read once per process."""
    if loader is None:
        from raymix.data.reader import load_eval_set as loader

    def make() -> dict[str, np.ndarray]:
        out = loader(shards_dir, split, max_examples_per_group=max_examples_per_group,
                     manifest=cached_manifest(shards_dir, split))
        for arr in out.values():
            arr.setflags(write=False)
        return out

    return _get(shards_dir, ("eval", getattr(loader, "__name__", repr(loader)), split, max_examples_per_group), make)
