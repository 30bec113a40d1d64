"""Local (no-Ray) reader of token shards: pyarrow memory-maps the parquet files of one (split, group).

Used by tests, tiny CPU runs, single-node runs whose shards fit in RAM, and for the fixed cached
evaluation sets (a few windows per group, evaluated many times — paper Algorithm 2 evaluates after
every LearnParams segment).  This module must not import Ray.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from raymix.data.manifest import Manifest, load_manifest
from raymix.errors import ConfigError, ShardError

__all__ = ["load_eval_documents", "load_eval_set", "read_group_windows", "spread_subset", "window_documents",
           "windows_from_table"]


def windows_from_table(table: pa.Table | pa.RecordBatch, seq_len: int) -> np.ndarray:
    """The ``input_ids`` column of a shard table as ``(rows, seq_len)`` int32 (zero-copy when possible)."""
    col = table.column("input_ids")
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    if not (pa.types.is_fixed_size_list(col.type) or pa.types.is_list(col.type) or pa.types.is_large_list(col.type)):
        raise ShardError(f"input_ids column has type {col.type}, expected fixed_size_list<int32>[{seq_len}]; "
                         "rebuild the shards")
    flat = col.flatten().to_numpy(zero_copy_only=False)
    if flat.size != len(col) * seq_len:
        raise ShardError(f"input_ids rows are not all {seq_len} tokens long ({flat.size} tokens in {len(col)} rows); "
                         "the shard is corrupt — rebuild it")
    return flat.astype(np.int32, copy=False).reshape(len(col), seq_len)


def read_group_windows(shards_dir: str | os.PathLike[str], split: str, group: str, *,
                       manifest: Manifest | None = None, max_rows: int | None = None) -> np.ndarray:
    """All windows of one (split, group), files in part order: ``(n, seq_len)`` int32.

    Args:
        manifest: an already loaded (and verified) manifest; loaded and verified here when omitted.
        max_rows: stop after this many windows (reads only the files needed).
    """
    root = Path(shards_dir)
    if manifest is None:
        manifest = load_manifest(root, split=split)
    entries = manifest.files_for(split, group)
    parts: list[np.ndarray] = []
    have = 0
    for entry in entries:
        if max_rows is not None and have >= max_rows:
            break
        table = pq.read_table(root / entry.path, columns=["input_ids"], memory_map=True)
        if table.num_rows != entry.rows:
            raise ShardError(f"{entry.path} has {table.num_rows} rows but the manifest says {entry.rows}; "
                             "the shard is corrupt — rebuild it")
        arr = windows_from_table(table, manifest.seq_len)
        parts.append(arr)
        have += len(arr)
    out = np.concatenate(parts) if len(parts) > 1 else (parts[0] if parts else np.zeros((0, manifest.seq_len), np.int32))
    return out if max_rows is None else out[:max_rows]


def window_documents(windows: np.ndarray, eos_id: int | None) -> np.ndarray:
    """``(n,)`` index of the document each packed window starts in: the number of EOS tokens before its first
    token (packing puts an EOS after every document, ``raymix.data.shards``).  Without ``eos_id`` every window
    counts as its own document."""
    windows = np.asarray(windows)
    n = len(windows)
    if eos_id is None or n == 0:
        return np.arange(n, dtype=np.int64)
    eos = (windows == eos_id).sum(axis=1)
    return np.concatenate([[0], np.cumsum(eos[:-1])]).astype(np.int64)


def spread_subset(documents: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of ``n`` windows spread over documents (``documents``: ``(N,)`` document of each window).

    Documents are visited in a random order and each gives one random window of its own before any gives a
    second, so ``n`` windows cover ``min(n, #documents)`` documents.  With a fixed ``rng`` seed the order is
    fixed, and a smaller subset is a prefix of a larger one.
    """
    documents = np.asarray(documents, dtype=np.int64)
    N = len(documents)
    if n >= N:
        return np.arange(N, dtype=np.int64)
    _, doc = np.unique(documents, return_inverse=True)
    doc_rank = rng.permutation(doc.max() + 1)[doc]  # position of the window's document in the visiting order
    tie = rng.permutation(N)  # random window order within a document
    order = np.lexsort((tie, doc_rank))  # by document, then randomly within it
    pos = np.empty(N, dtype=np.int64)  # rank of each window within its own document
    sorted_docs = doc_rank[order]
    starts = np.flatnonzero(np.r_[True, sorted_docs[1:] != sorted_docs[:-1]])
    pos[order] = np.arange(N) - np.repeat(starts, np.diff(np.r_[starts, N]))
    pick = np.lexsort((doc_rank, pos))[:n]  # every document's 1st window, then every document's 2nd, ...
    return np.sort(pick)


def stable_key(name: str) -> int:
    """A seed component for a name that is the same in every process (``hash()`` is salted)."""
    return zlib.crc32(name.encode("utf-8"))


def _eval_rows(shards_dir: str | os.PathLike[str], split: str, group: str, n: int | None,
               manifest: Manifest) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All windows of (split, group), the sorted rows of the evaluation set among them, and every window's
    document (``window_documents``)."""
    windows = read_group_windows(shards_dir, split, group, manifest=manifest)
    docs = window_documents(windows, manifest.eos_id)
    rows = np.arange(len(windows))
    if n is not None and len(windows) > n:
        rows = spread_subset(docs, n, np.random.default_rng([int(manifest.seed), stable_key(split), stable_key(group)]))
    return windows, rows, docs


def _eval_args(shards_dir, split, max_examples_per_group, groups, manifest) -> tuple[Manifest, list[str]]:
    if max_examples_per_group is not None and (not isinstance(max_examples_per_group, int)
                                               or max_examples_per_group < 1):
        raise ConfigError(f"max_examples_per_group={max_examples_per_group!r} must be a positive int or None")
    if manifest is None:
        manifest = load_manifest(shards_dir, split=split)
    manifest.require_split(split)
    return manifest, (manifest.groups if groups is None else list(groups))


def load_eval_set(shards_dir: str | os.PathLike[str], split: str = "val", max_examples_per_group: int | None = None,
                  *, groups: Sequence[str] | None = None, manifest: Manifest | None = None) -> dict[str, np.ndarray]:
    """The fixed evaluation set: ``{group: (n_g, seq_len) int32}``.

    All windows of each group's split, or, with ``max_examples_per_group=N``, N of them spread over the
    split's documents (:func:`spread_subset`, in file order) — not the first N, which cover only the first
    few held-out documents.  The draw is seeded by the shards' own split seed, the split and the group, so
    every run and method on the same shards evaluates the same windows (paired comparisons).

    Raises :class:`~raymix.errors.SplitNotFoundError` for a split that was not built.
    """
    manifest, names = _eval_args(shards_dir, split, max_examples_per_group, groups, manifest)
    out = {}
    for g in names:
        windows, rows, _ = _eval_rows(shards_dir, split, g, max_examples_per_group, manifest)
        out[g] = windows[rows] if len(rows) < len(windows) else windows
    return out


def load_eval_documents(shards_dir: str | os.PathLike[str], split: str = "val",
                        max_examples_per_group: int | None = None, *, groups: Sequence[str] | None = None,
                        manifest: Manifest | None = None) -> dict[str, np.ndarray]:
    """``{group: (n_g,) int64}``: the held-out document of every window :func:`load_eval_set` returns (same
    arguments).  A capped set is not contiguous, so its documents cannot be recounted from its own EOS tokens;
    ``GroupEvaluator(documents=...)`` draws its subsets spread over these."""
    manifest, names = _eval_args(shards_dir, split, max_examples_per_group, groups, manifest)
    out = {}
    for g in names:
        _, rows, docs = _eval_rows(shards_dir, split, g, max_examples_per_group, manifest)
        out[g] = docs[rows]
    return out
