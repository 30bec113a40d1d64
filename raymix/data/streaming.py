"""Ray Data streaming of token shards, and the resource recipe that keeps it from deadlocking under Tune.

:class:`RayDataGroupStream` reads one group's parquet files with ``ray.data.read_parquet`` and
re-chunks them on the consumer into the same deterministic epoch order as the local reader
(:func:`raymix.data.sampler.epoch_order`), so switching ``streaming="local"`` ↔ ``"ray"`` does not
change a single batch.  Use it on clusters, with shards larger than RAM, or on remote storage.

**No deadlock under Tune.**  Ray Data tasks request 1 CPU by default.  A Tune trial that holds
every CPU of the cluster (e.g. two 1-CPU trials on a 2-CPU node) and then streams data waits forever
for a CPU that its own siblings hold — silently.  Measured on ``ray.init(num_cpus=2)`` with two
concurrent 1-CPU trials each streaming 3 groups (tests/data/test_streaming.py):

* read tasks with ``num_cpus=1``: neither trial finished within 100 s (deadlock);
* trials ``{CPU: 0.5}`` + a reserved data bundle ``{CPU: 0.5}`` in a ``PlacementGroupFactory`` and read
  tasks of ``num_cpus=0.5``: did not finish within 90 s either (Ray Data's tasks are not scheduled into
  the trial's data bundle);
* read tasks with ``num_cpus=0`` (:data:`READ_NUM_CPUS`, the default here): both finished in ~26 s,
  mostly Tune and worker start-up.

So the recipe is: streams run read tasks with ``read_num_cpus=0`` (decoding token windows from parquet
is light, I/O-bound work next to a training step), and trials request their compute with
:func:`data_resources`, which asks nothing extra for data.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from raymix.data.manifest import MANIFEST_FILE, Manifest, load_manifest
from raymix.data.reader import windows_from_table
from raymix.data.sampler import (
    DEFAULT_SHUFFLE_WINDOW,
    GroupStream,
    _select_groups,
    chunk_permutation,
    file_permutation,
)
from raymix.errors import ConfigError, ShardError
from raymix.logs import tame_ray_loggers

__all__ = ["READ_NUM_CPUS", "RayDataGroupStream", "data_resources", "ensure_ray", "open_ray_streams",
           "quiet_ray_data"]

#: CPUs requested by each Ray Data read task of a stream (0: never waits for a CPU slot held by trials).
READ_NUM_CPUS = 0.0


def _guard_fsspec_http() -> None:
    """Work around a Ray Data import race when ``aiohttp`` is not installed.

    Ray Data probes ``fsspec.implementations.http`` from several threads while listing files; without
    ``aiohttp`` one thread can see the half-initialised module and raise ``ImportError`` instead of
    ``ModuleNotFoundError`` (which Ray catches).  Marking the module absent makes every probe fail the
    same, caught way.  No effect when aiohttp is installed.
    """
    if importlib.util.find_spec("aiohttp") is None and "fsspec.implementations.http" not in sys.modules:
        sys.modules["fsspec.implementations.http"] = None  # type: ignore[assignment]


_guard_fsspec_http()

import ray  # noqa: E402  (after the guard above)
import ray.data  # noqa: E402


def ensure_ray(num_cpus: int | None = None) -> bool:
    """Start a local Ray runtime unless one is running (or we are inside a Ray worker); return True if started."""
    if ray.is_initialized():
        return False
    tame_ray_loggers()  # Ray's console output (e.g. its token-authentication notice): quiet unless --verbose
    ray.init(num_cpus=num_cpus, include_dashboard=False, ignore_reinit_error=True, log_to_driver=False,
             configure_logging=False)
    tame_ray_loggers()  # also the handlers that appeared with ray.init
    return True


def _configure(ds: ray.data.Dataset) -> ray.data.Dataset:
    """Order-preserving, quiet execution: stream order must be a deterministic function of the file order."""
    ctx = ds.context
    ctx.execution_options.preserve_order = True
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
    return ds


@contextmanager
def quiet_ray_data(level: int = logging.WARNING) -> Iterator[None]:
    """Temporarily raise the ``ray.data`` logger level (its INFO lines would drown CLI progress output)."""
    logger = logging.getLogger("ray.data")
    old = logger.level
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.setLevel(old)


def data_resources(trial_cpus: float = 1.0, trial_gpus: float = 0.0) -> Any:
    """Per-trial resources for Tune trials that stream data: a one-bundle ``tune.PlacementGroupFactory``.

    The bundle ``{"CPU": trial_cpus, "GPU": trial_gpus}`` runs the trainable.  Nothing is reserved for data:
    the streams' read tasks request ``num_cpus=0`` (:data:`READ_NUM_CPUS`), which is what keeps trials that
    hold every CPU from deadlocking (see the module docstring for the measurements).  Streams opened inside
    such trials must keep ``read_num_cpus=0``.  Use as ``tune.with_resources(trainable, data_resources(1))``.
    """
    from ray import tune

    if trial_cpus < 0 or trial_gpus < 0 or (trial_cpus == 0 and trial_gpus == 0):
        raise ConfigError(f"trial resources must be >= 0 and not all zero, got trial_cpus={trial_cpus}, "
                          f"trial_gpus={trial_gpus}")
    bundle: dict[str, float] = {"CPU": float(trial_cpus)}
    if trial_gpus:
        bundle["GPU"] = float(trial_gpus)
    return tune.PlacementGroupFactory([bundle])


def _read_parquet_files(batch: pa.Table, filesystem: Any = None) -> pa.Table:
    """Ray Data read UDF: the ``input_ids`` of the parquet files named in ``batch["path"]``, concatenated."""
    tables = [pq.read_table(p, columns=["input_ids"], filesystem=filesystem) for p in batch.column("path").to_pylist()]
    return pa.concat_tables(tables) if len(tables) > 1 else tables[0]


def _read_files(paths: Sequence[str], filesystem: Any, num_cpus: float) -> ray.data.Dataset:
    """A Ray Data dataset of the windows of ``paths``, one read task per file, in exactly this file order.

    Why not ``ray.data.read_parquet``: it re-lists and samples files on every call (per epoch and per
    re-position) and its path probing imports ``fsspec.implementations.http`` from worker threads, which
    fails intermittently when ``aiohttp`` is absent.  The file list is known from the manifest, so one
    map task per file over ``from_items`` gives the same parallel, prefetched read with a fixed order.
    """
    ds = ray.data.from_items([{"path": p} for p in paths], override_num_blocks=len(paths))
    return _configure(ds.map_batches(_read_parquet_files, batch_size=1, batch_format="pyarrow",
                                     fn_kwargs={"filesystem": filesystem}, num_cpus=num_cpus))


def _close_quietly(it: Any) -> None:
    """Close a generator/iterator; at interpreter exit Ray's logging may already be gone, so ignore errors."""
    close = getattr(it, "close", None)
    if close is not None:
        try:
            close()
        except Exception:  # noqa: BLE001  (best-effort cleanup of a background read)
            pass


class RayDataGroupStream(GroupStream):
    """A :class:`~raymix.data.sampler.GroupStream` reading one group's parquet files through Ray Data.

    Each epoch is one Ray Data read (one task per parquet file) over the files in the epoch's seeded order, consumed with
    ``iter_batches(prefetch_batches=...)`` (reads run ahead of the trainer) and re-chunked into
    ``shuffle_window``-sized chunks that are permuted exactly like the local reader's.

    Cost of :meth:`load_state_dict` / re-positioning to ``(epoch, index)``: a new Ray Data execution that
    starts at the file containing chunk ``index // shuffle_window`` and discards the rows before that
    chunk — at most one file plus one chunk are read and thrown away (O(file + shuffle_window) windows),
    never the epoch's prefix.  Memory: one chunk plus the prefetched blocks.

    Args:
        group: group name.
        paths: the group's parquet files in canonical (part) order; local paths or URIs.
        row_counts: windows per file (from the manifest).
        seq_len: tokens per window.
        read_num_cpus: CPUs per read task (default 0; a positive value can deadlock inside Tune trials that
            hold every CPU — see the module docstring).
        prefetch_batches: Ray Data blocks fetched ahead of consumption.
        filesystem: optional ``pyarrow.fs.FileSystem`` for the paths.
    """

    def __init__(self, group: str, paths: Sequence[str], row_counts: Sequence[int], seq_len: int, *, seed: int = 0,
                 shuffle_window: int = DEFAULT_SHUFFLE_WINDOW, shuffle: bool = True,
                 read_num_cpus: float = READ_NUM_CPUS, prefetch_batches: int = 2, filesystem: Any = None) -> None:
        super().__init__(group, row_counts, seq_len, seed=seed, shuffle_window=shuffle_window, shuffle=shuffle)
        if len(paths) != len(self.row_counts):
            raise ShardError(f"group {group!r}: {len(paths)} paths but {len(self.row_counts)} row counts")
        if read_num_cpus < 0:
            raise ConfigError(f"read_num_cpus={read_num_cpus!r} must be >= 0")
        self.paths = [str(p) for p in paths]
        self.read_num_cpus = float(read_num_cpus)
        self.prefetch_batches = int(prefetch_batches)
        self.filesystem = filesystem
        self._chunks: Iterator[np.ndarray] | None = None
        self._chunk = np.zeros((0, self.seq_len), dtype=np.int32)
        self._chunk_pos = 0
        self._pending: tuple[int, int] | None = (0, 0)

    def _epoch_chunks(self, epoch: int, start_chunk: int) -> Iterator[np.ndarray]:
        """Permuted chunks ``start_chunk, start_chunk+1, …`` of ``epoch``: each ``(≤W, seq_len)`` int32."""
        w = self.shuffle_window
        order = file_permutation(len(self.paths), self.seed, self.group, epoch, self.shuffle)
        cum = np.concatenate([[0], np.cumsum([self.row_counts[f] for f in order])])
        start_row = start_chunk * w
        first = int(np.searchsorted(cum, start_row, side="right") - 1)
        skip = int(start_row - cum[first])
        paths = [self.paths[f] for f in order[first:]]
        ds = _read_files(paths, self.filesystem, self.read_num_cpus)
        expected = self.num_windows - int(cum[first])
        seen = 0
        buf: list[np.ndarray] = []
        buffered = 0
        chunk = start_chunk
        batches = iter(ds.iter_batches(batch_size=None, batch_format="pyarrow", prefetch_batches=self.prefetch_batches))
        try:
            for table in batches:
                arr = windows_from_table(table, self.seq_len)
                seen += len(arr)
                if skip:
                    drop = min(skip, len(arr))
                    arr, skip = arr[drop:], skip - drop
                if not len(arr):
                    continue
                buf.append(arr)
                buffered += len(arr)
                while buffered >= w:
                    data = np.concatenate(buf) if len(buf) > 1 else buf[0]
                    head, rest = data[:w], data[w:]
                    buf, buffered = ([rest] if len(rest) else []), len(rest)
                    yield head[chunk_permutation(w, self.seed, self.group, epoch, chunk, self.shuffle)]
                    chunk += 1
            if seen != expected:
                raise ShardError(f"group {self.group!r}: read {seen} windows from {len(paths)} files but the manifest "
                                 f"lists {expected}; the shards changed since the manifest was written — rebuild them")
            if buffered:
                data = np.concatenate(buf) if len(buf) > 1 else buf[0]
                yield data[chunk_permutation(len(data), self.seed, self.group, epoch, chunk, self.shuffle)]
        finally:
            _close_quietly(batches)

    def _start(self) -> None:
        assert self._pending is not None
        epoch, index = self._pending
        self._pending = None
        k = index // self.shuffle_window
        self._chunks = self._epoch_chunks(epoch, k)
        self._chunk = next(self._chunks)
        self._chunk_pos = index - k * self.shuffle_window

    def _read(self, k: int) -> np.ndarray:
        if self._pending is not None:
            self._start()
        parts = []
        while k > 0:
            if self._chunk_pos == len(self._chunk):
                assert self._chunks is not None
                self._chunk, self._chunk_pos = next(self._chunks), 0
            n = min(k, len(self._chunk) - self._chunk_pos)
            parts.append(self._chunk[self._chunk_pos:self._chunk_pos + n])
            self._chunk_pos += n
            k -= n
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def _seek(self, epoch: int, index: int) -> None:
        self.close()
        self._pending = (epoch, index)

    def close(self) -> None:
        """Stop the running Ray Data execution (if any)."""
        if self._chunks is not None:
            _close_quietly(self._chunks)
            self._chunks = None


def _read_remote_manifest(uri: str) -> tuple[Manifest, Any, str]:
    import pyarrow.fs as pafs

    fs, root = pafs.FileSystem.from_uri(uri)
    try:
        with fs.open_input_stream(f"{root.rstrip('/')}/{MANIFEST_FILE}") as fh:
            text = fh.read().decode("utf-8")
    except (FileNotFoundError, OSError) as exc:
        raise ShardError(f"cannot read {uri.rstrip('/')}/{MANIFEST_FILE} ({exc}); is it a complete shard directory?"
                         ) from exc
    return Manifest.from_json(text), fs, root.rstrip("/")


def open_ray_streams(shards_dir: str | os.PathLike[str], split: str = "train", *, seed: int = 0,
                     groups: Sequence[str] | None = None, shuffle_window: int = DEFAULT_SHUFFLE_WINDOW,
                     verify: bool | str = True, read_num_cpus: float = READ_NUM_CPUS, prefetch_batches: int = 2,
                     ) -> Mapping[str, RayDataGroupStream]:
    """``{group: RayDataGroupStream}`` for ``split`` of a shard directory (local path or URI).

    Local directories are validated by :func:`~raymix.data.manifest.load_manifest` (``verify``); for URIs
    the manifest is read through ``pyarrow.fs`` and file checksums are not re-computed.
    """
    path = os.fspath(shards_dir)
    if "://" in path:
        manifest, fs, root = _read_remote_manifest(path)
        manifest.require_split(split)
    else:
        manifest, fs, root = load_manifest(path, verify=verify, split=split), None, os.path.abspath(path)
    names = _select_groups(manifest.groups, groups)
    streams = {}
    for g in names:
        entries = manifest.files_for(split, g)
        streams[g] = RayDataGroupStream(
            g, [f"{root}/{e.path}" for e in entries], [e.rows for e in entries], manifest.seq_len, seed=seed,
            shuffle_window=shuffle_window, read_num_cpus=read_num_cpus, prefetch_batches=prefetch_batches,
            filesystem=fs,
        )
    return streams
