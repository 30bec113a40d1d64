"""Per-group window streams and the mixture sampler that composes training batches from them.

A batch is composed **per example** (paper §2 / Appendix D): the per-batch group counts are drawn
``c ~ Multinomial(B, p)`` from the sampler's own RNG, then ``c_i`` windows are taken from group i's
stream.  ``p`` may change between any two calls (online methods change it every round); LearnParams
segments (Algorithm 2) pass fixed ``counts`` instead, which are validated, never rounded.

Two stream implementations share one deterministic epoch order (:func:`epoch_order`), so a run
gives **identical batches** whichever reader feeds it:

* :class:`LocalGroupStream` — windows held in a numpy array (pyarrow memory-map of the local parquet
  files).  Used by tests, tiny CPU runs and single-node runs whose shards fit in RAM.  Imports no Ray.
* :class:`raymix.data.streaming.RayDataGroupStream` — Ray Data ``read_parquet`` streaming with
  prefetch.  Used on clusters, with shards larger than RAM, or on remote storage (``s3://``, ``gs://``).

Epoch order of a group (both readers): the group's parquet files in a seeded per-epoch permutation,
concatenated, cut into consecutive chunks of ``shuffle_window`` windows, each chunk permuted by its
own seeded permutation.  With ``shuffle_window ≥`` the group's window count this is a full uniform
permutation; otherwise it is a bounded-memory shuffle buffer.
"""

from __future__ import annotations

import hashlib
import os
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np

from raymix.data.batch import Batch
from raymix.errors import CheckpointError, ConfigError, DataError, MixtureError
from raymix.mixture import Mixture, as_weights

__all__ = [
    "DEFAULT_SHUFFLE_WINDOW",
    "GroupStream",
    "LocalGroupStream",
    "MixtureSampler",
    "epoch_order",
    "open_sampler",
]

#: Windows per shuffle chunk (8192 × 256 tokens × 4 B = 8 MiB of buffer per group at seq_len 256).
DEFAULT_SHUFFLE_WINDOW = 8192


def _group_key(group: str) -> int:
    """Stable 63-bit integer of a group name (Python's ``hash`` is salted per process)."""
    return int.from_bytes(hashlib.sha256(group.encode("utf-8")).digest()[:8], "little") >> 1


def file_permutation(num_files: int, seed: int, group: str, epoch: int, shuffle: bool = True) -> np.ndarray:
    """Order in which a group's files are read in ``epoch``: ``(num_files,)`` int64."""
    if not shuffle:
        return np.arange(num_files, dtype=np.int64)
    return np.random.default_rng([seed, _group_key(group), epoch, 0]).permutation(num_files)


def chunk_permutation(size: int, seed: int, group: str, epoch: int, chunk: int, shuffle: bool = True) -> np.ndarray:
    """Permutation applied inside chunk ``chunk`` (of ``size`` windows) of ``epoch``: ``(size,)`` int64."""
    if not shuffle:
        return np.arange(size, dtype=np.int64)
    return np.random.default_rng([seed, _group_key(group), epoch, chunk + 1]).permutation(size)


def epoch_order(row_counts: Sequence[int], seed: int, group: str, epoch: int, shuffle_window: int,
                shuffle: bool = True) -> np.ndarray:
    """Global window indices of ``epoch`` in read order: ``(sum(row_counts),)`` int64.

    Global index = offset of the file in canonical order + row within the file.  See the module
    docstring for the scheme; :class:`RayDataGroupStream` reproduces it chunk by chunk.
    """
    counts = np.asarray(row_counts, dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(counts)])
    files = file_permutation(len(counts), seed, group, epoch, shuffle)
    stream = np.concatenate([np.arange(offsets[f], offsets[f + 1]) for f in files]) if len(files) else np.zeros(0)
    out = np.empty_like(stream)
    for k, start in enumerate(range(0, len(stream), shuffle_window)):
        chunk = stream[start:start + shuffle_window]
        out[start:start + len(chunk)] = chunk[chunk_permutation(len(chunk), seed, group, epoch, k, shuffle)]
    return out.astype(np.int64)


class GroupStream(ABC):
    """An infinite stream of one group's windows with an exact position ``(epoch, index)``.

    Lifecycle: construct → ``take(n)`` any number of times (wrapping into the next epoch, which has
    its own seeded order) → ``state_dict()`` / ``load_state_dict()`` at any point: after a load the
    next ``take`` returns exactly what an uninterrupted stream would have returned.

    Args:
        group: group name (seeds the order together with ``seed``).
        row_counts: windows per file, in canonical file order.
        seq_len: tokens per window.
        seed: order seed.
        shuffle_window: windows per shuffle chunk (see module docstring).
        shuffle: ``False`` reads files and rows in canonical order every epoch.
    """

    def __init__(self, group: str, row_counts: Sequence[int], seq_len: int, *, seed: int = 0,
                 shuffle_window: int = DEFAULT_SHUFFLE_WINDOW, shuffle: bool = True) -> None:
        self.group = group
        self.row_counts = [int(r) for r in row_counts]
        self.seq_len = int(seq_len)
        self.seed = int(seed)
        self.shuffle = bool(shuffle)
        if shuffle_window < 1:
            raise ConfigError(f"shuffle_window={shuffle_window!r} must be >= 1 window")
        self.shuffle_window = int(shuffle_window)
        self.num_windows = int(sum(self.row_counts))
        if self.num_windows <= 0:
            raise DataError(f"group {group!r} has no windows to stream; rebuild the shards with more documents")
        self.epoch = 0
        self.index = 0

    @property
    def position(self) -> tuple[int, int]:
        """``(epoch, index)``: the next window is number ``index`` of epoch ``epoch``'s order."""
        return self.epoch, self.index

    def take(self, n: int) -> np.ndarray:
        """The next ``n`` windows as ``(n, seq_len)`` int32, crossing epoch boundaries as needed."""
        parts = []
        while n > 0:
            k = min(n, self.num_windows - self.index)
            parts.append(self._read(k))
            self.index += k
            n -= k
            if self.index == self.num_windows:
                self.epoch, self.index = self.epoch + 1, 0
                self._seek(self.epoch, 0)
        if not parts:
            return np.zeros((0, self.seq_len), dtype=np.int32)
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    @abstractmethod
    def _read(self, k: int) -> np.ndarray:
        """Return (and consume) the ``k`` windows at the current position; ``index + k <= num_windows``.

        The base class advances ``index`` afterwards."""

    @abstractmethod
    def _seek(self, epoch: int, index: int) -> None:
        """Make the next ``_read`` start at window ``index`` of ``epoch``'s order."""

    def state_dict(self) -> dict[str, Any]:
        return {"group": self.group, "epoch": self.epoch, "index": self.index, "seed": self.seed,
                "num_windows": self.num_windows, "shuffle_window": self.shuffle_window, "shuffle": self.shuffle}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Re-position exactly; raises :class:`CheckpointError` when the state is for other data or order."""
        for key in ("group", "num_windows", "seed", "shuffle_window", "shuffle"):
            if key in state and state[key] != getattr(self, key):
                raise CheckpointError(
                    f"stream state has {key}={state[key]!r} but this stream has {key}={getattr(self, key)!r}; "
                    "resume with the same shards and sampler settings"
                )
        epoch, index = int(state["epoch"]), int(state["index"])
        if epoch < 0 or not 0 <= index < self.num_windows:
            raise CheckpointError(f"stream position (epoch={epoch}, index={index}) is outside 0..{self.num_windows}")
        self.epoch, self.index = epoch, index
        self._seek(epoch, index)

    def close(self) -> None:  # noqa: B027  (optional hook, deliberately not abstract)
        """Release background resources (no-op for in-memory streams)."""


class LocalGroupStream(GroupStream):
    """A :class:`GroupStream` over windows already in memory: ``windows`` is ``(n, seq_len)`` int32.

    ``row_counts`` (windows per file, summing to n) reproduces the file-level part of the epoch order
    so that batches equal the Ray Data reader's; by default the array is one file.  Repositioning is O(n)
    (recomputing the epoch permutation); memory is the array plus one int64 index per window.
    """

    def __init__(self, group: str, windows: np.ndarray, *, row_counts: Sequence[int] | None = None, seed: int = 0,
                 shuffle_window: int = DEFAULT_SHUFFLE_WINDOW, shuffle: bool = True) -> None:
        windows = np.asarray(windows)
        if windows.ndim != 2:
            raise DataError(f"windows of group {group!r} must be 2-D (n, seq_len), got shape {windows.shape}")
        counts = [windows.shape[0]] if row_counts is None else list(row_counts)
        if sum(counts) != windows.shape[0]:
            raise DataError(f"row_counts {counts} sum to {sum(counts)} but group {group!r} has {windows.shape[0]} "
                            "windows; pass the per-file counts of these windows")
        super().__init__(group, counts, windows.shape[1], seed=seed, shuffle_window=shuffle_window, shuffle=shuffle)
        self.windows = windows
        self._order_epoch = -1
        self._order = np.zeros(0, dtype=np.int64)
        self._seek(0, 0)

    def _seek(self, epoch: int, index: int) -> None:
        if epoch != self._order_epoch:
            self._order = epoch_order(self.row_counts, self.seed, self.group, epoch, self.shuffle_window, self.shuffle)
            self._order_epoch = epoch

    def _read(self, k: int) -> np.ndarray:
        return np.ascontiguousarray(self.windows[self._order[self.index:self.index + k]], dtype=np.int32)


class MixtureSampler:
    """Composes batches per example from per-group streams; implements :class:`~raymix.data.batch.BatchSource`.

    Rows of a batch are ordered **group by group** (in the order of :attr:`groups`) unless
    ``order="shuffled"``, which applies a permutation drawn from the sampler's RNG.  Grouped order is the
    default: the per-example loss does not depend on row order, and contiguous groups make per-group
    losses a slice.

    Args:
        streams: ``{group: GroupStream}``; the mapping order is the group order of the batches.
        batch_size: default number of rows B.
        seed: seed of the sampler's own ``numpy.random.Generator`` (counts and row shuffles only; stream
            orders have their own seeds).
        order: ``"grouped"`` or ``"shuffled"``.
    """

    def __init__(self, streams: Mapping[str, GroupStream], batch_size: int, seed: int = 0, *,
                 order: Literal["grouped", "shuffled"] = "grouped") -> None:
        if not streams:
            raise DataError("MixtureSampler needs at least one group stream, got none")
        if not isinstance(batch_size, (int, np.integer)) or isinstance(batch_size, bool) or batch_size < 1:
            raise ConfigError(f"batch_size={batch_size!r} must be a positive integer")
        if order not in ("grouped", "shuffled"):
            raise ConfigError(f"order={order!r} must be 'grouped' or 'shuffled'")
        lens = {g: s.seq_len for g, s in streams.items()}
        if len(set(lens.values())) != 1:
            raise DataError(f"all groups must have the same seq_len, got {lens}; build them into one shard directory")
        self.streams = dict(streams)
        self.groups: tuple[str, ...] = tuple(self.streams)
        self.batch_size = int(batch_size)
        self.seq_len = next(iter(lens.values()))
        self.seed = int(seed)
        self.order = order
        self._rng = np.random.default_rng(self.seed)
        self.batches_drawn = 0
        #: cumulative rows served per group, ``(m,)`` int64 (useful for logging realised proportions)
        self.rows_drawn = np.zeros(len(self.groups), dtype=np.int64)

    @property
    def m(self) -> int:
        return len(self.groups)

    def _validated_counts(self, counts: Any, batch_size: int) -> np.ndarray:
        if isinstance(counts, Mapping):
            unknown = sorted(set(counts) - set(self.groups))
            if unknown:
                raise MixtureError(f"counts name unknown groups {unknown}; the data groups are {list(self.groups)}")
            counts = [counts.get(g, 0) for g in self.groups]
        arr = np.asarray(counts)
        if arr.shape != (self.m,):
            raise MixtureError(f"counts must have shape ({self.m},) for groups {list(self.groups)}, got {arr.tolist()}")
        if not np.issubdtype(arr.dtype, np.number) or not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
            raise MixtureError(f"counts must be integers, got {arr.tolist()}; round them so they sum to {batch_size}")
        ints = arr.astype(np.int64)
        if np.any(ints < 0):
            raise MixtureError(f"counts must be >= 0, got {ints.tolist()} for groups {list(self.groups)}")
        if int(ints.sum()) != batch_size:
            raise MixtureError(
                f"counts {ints.tolist()} sum to {int(ints.sum())}, not the batch size {batch_size}; adjust them "
                "(e.g. largest-remainder rounding) so they sum exactly"
            )
        return ints

    def next_batch(self, mixture: Mixture | np.ndarray | Sequence[float] | None = None, *,
                   counts: np.ndarray | Sequence[int] | Mapping[str, int] | None = None,
                   batch_size: int | None = None) -> Batch:
        """The next batch: ``input_ids (B, seq_len)`` int64 and ``groups (B,)`` int64 indices into :attr:`groups`.

        Exactly one of ``mixture`` (proportions p over :attr:`groups`, or a :class:`Mixture` naming
        exactly these groups; counts ~ Multinomial(B, p)) or ``counts`` (fixed non-negative integers
        summing to B) must be given.  ``batch_size`` overrides B for this call only.
        """
        b = self.batch_size if batch_size is None else batch_size
        if not isinstance(b, (int, np.integer)) or isinstance(b, bool) or b < 1:
            raise ConfigError(f"batch_size={b!r} must be a positive integer")
        if (mixture is None) == (counts is None):
            raise MixtureError("pass exactly one of mixture= (proportions) or counts= (fixed per-group counts)")
        if counts is not None:
            c = self._validated_counts(counts, int(b))
        else:
            p = as_weights(mixture, self.groups)
            c = self._rng.multinomial(int(b), p).astype(np.int64)
        ids = [self.streams[g].take(int(k)) for g, k in zip(self.groups, c, strict=True) if k > 0]
        input_ids = np.concatenate(ids).astype(np.int64) if ids else np.zeros((0, self.seq_len), dtype=np.int64)
        groups = np.repeat(np.arange(self.m, dtype=np.int64), c)
        if self.order == "shuffled":
            perm = self._rng.permutation(int(b))
            input_ids, groups = input_ids[perm], groups[perm]
        self.batches_drawn += 1
        self.rows_drawn += c
        return Batch(input_ids=input_ids, groups=groups)

    def state_dict(self) -> dict[str, Any]:
        """RNG bit-generator state, every stream's position, and counters (plain, JSON-able types)."""
        return {
            "groups": list(self.groups),
            "batch_size": self.batch_size,
            "seed": self.seed,
            "order": self.order,
            "rng": self._rng.bit_generator.state,
            "batches_drawn": self.batches_drawn,
            "rows_drawn": self.rows_drawn.tolist(),
            "streams": {g: s.state_dict() for g, s in self.streams.items()},
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore so that the next batches equal those of the uninterrupted run."""
        if list(state["groups"]) != list(self.groups):
            raise CheckpointError(
                f"sampler state is for groups {list(state['groups'])} but this sampler has {list(self.groups)}; "
                "resume with the same shards and groups"
            )
        if state.get("order", self.order) != self.order:
            raise CheckpointError(f"sampler state has order={state['order']!r}, this sampler {self.order!r}")
        for g, s in self.streams.items():
            s.load_state_dict(state["streams"][g])
        self._rng.bit_generator.state = state["rng"]
        self.batches_drawn = int(state.get("batches_drawn", 0))
        self.rows_drawn = np.asarray(state.get("rows_drawn", [0] * self.m), dtype=np.int64)

    def close(self) -> None:
        """Release every stream's background resources (Ray Data iterators)."""
        for s in self.streams.values():
            s.close()


def open_sampler(shards_dir: str | os.PathLike[str], split: str = "train", batch_size: int = 8, seed: int = 0, *,
                 streaming: Literal["local", "ray"] = "local", groups: Sequence[str] | None = None,
                 order: Literal["grouped", "shuffled"] = "grouped", shuffle_window: int = DEFAULT_SHUFFLE_WINDOW,
                 verify: bool | str = True, **ray_kwargs: Any) -> MixtureSampler:
    """A :class:`MixtureSampler` over ``split`` of a shard directory.

    Args:
        shards_dir: directory written by ``build_shards`` (local path; ``streaming="ray"`` also takes URIs).
        split: ``"train"``, ``"val"`` or ``"test"``.
        batch_size, seed, order: see :class:`MixtureSampler`; ``seed`` also seeds every stream's order.
        streaming: ``"local"`` (pyarrow into RAM; no Ray) or ``"ray"`` (Ray Data streams; see module docstring).
        groups: subset of the shard groups, in this order (default: all, sorted).
        shuffle_window: windows per shuffle chunk.
        verify: checksum verification of the files read (see :func:`raymix.data.manifest.load_manifest`).
        ray_kwargs: passed to :class:`~raymix.data.streaming.RayDataGroupStream` (e.g. ``num_cpus``, ``prefetch_batches``).
    """
    from raymix.data.manifest import load_manifest
    from raymix.data.reader import read_group_windows

    if streaming not in ("local", "ray"):
        raise ConfigError(f"streaming={streaming!r} must be 'local' or 'ray'")
    if streaming == "ray":
        from raymix.data.streaming import open_ray_streams

        streams = open_ray_streams(shards_dir, split, seed=seed, groups=groups, shuffle_window=shuffle_window,
                                   verify=verify, **ray_kwargs)
        return MixtureSampler(streams, batch_size, seed, order=order)
    if ray_kwargs:
        raise ConfigError(f"options {sorted(ray_kwargs)} only apply to streaming='ray'")
    manifest = load_manifest(shards_dir, verify=verify, split=split)
    names = _select_groups(manifest.groups, groups)
    local: dict[str, GroupStream] = {}
    for g in names:
        windows = read_group_windows(shards_dir, split, g, manifest=manifest)
        counts = [f.rows for f in manifest.files_for(split, g)]
        local[g] = LocalGroupStream(g, windows, row_counts=counts, seed=seed, shuffle_window=shuffle_window)
    return MixtureSampler(local, batch_size, seed, order=order)


def _select_groups(available: Sequence[str], groups: Sequence[str] | None) -> list[str]:
    if groups is None:
        return list(available)
    groups = list(groups)
    unknown = [g for g in groups if g not in available]
    if unknown or not groups or len(set(groups)) != len(groups):
        raise MixtureError(
            f"groups {groups} must be distinct names from the shard groups {list(available)} (unknown: {unknown})"
        )
    return groups
