"""Build group-tagged token shards from a :class:`~raymix.data.corpus.CorpusSource` on Ray Data.

Pipeline (:func:`build_shards`)::

    source.iter_documents(g)  ──►  seeded document-level split  train | val | test
         (driver, streamed)          (val/test = halves of the held-out documents, paper App. D)
    ──► ray.data.from_items(chunk of documents)  ──►  map_batches(tokenize)   (parallel, Ray Data)
    ──► ordered iter_batches  ──►  pack per (split, group): doc₁ EOS doc₂ EOS …  cut into seq_len windows
    ──► parquet  {tmp}/{split}/group={g}/part-00000.parquet   (input_ids fixed_size_list<int32>, group string)
    ──► tokenizer.json, manifest.json (last)  ──►  rename tmp → out

Packing is a sequential scan per (split, group) and stays on the driver, fed in document order by
Ray Data's order-preserving execution; it writes deterministic file names so the manifest's
checksums identify a build.  An EOS separates consecutive documents (the authors' code did not).
The tail of each (split, group) shorter than one window is dropped and counted in the manifest.
"""

from __future__ import annotations

import os
import re
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from raymix.data.corpus import CorpusSource
from raymix.data.manifest import SPLITS, FileEntry, GroupSplitStats, Manifest, file_sha256
from raymix.data.tokenizer import Tokenizer, load_tokenizer, save_tokenizer, tokenizer_info, train_bpe
from raymix.errors import ConfigError, DataError, EmptyGroupError, ShardError
from raymix.progress import progress_bar

__all__ = ["assign_splits", "build_shards"]

_GROUP_NAME = re.compile(r"^[A-Za-z0-9_.\-]+$")
#: split code stored per document: index into SPLITS
_TRAIN, _VAL, _TEST = 0, 1, 2

Progress = Callable[[str], None]


def assign_splits(num_docs: int, heldout_fraction: float, seed: int, group: str) -> np.ndarray:
    """Deterministic document-level split of one group: ``(num_docs,)`` int8 codes 0=train, 1=val, 2=test.

    A seeded permutation (seed, group) orders the documents; the first ``round(heldout_fraction · n)``
    (at least 2, so val and test each get one) are held out, and the held-out documents are halved into
    val and test (paper Appendix D: test = half of the validation data, split once by a seeded shuffle).
    """
    from raymix.data.sampler import _group_key

    if num_docs < 3:
        raise EmptyGroupError(
            f"group {group!r} has {num_docs} document(s); a train/val/test split needs at least 3 — add documents "
            "or split long ones into several"
        )
    n_held = min(max(2, int(round(heldout_fraction * num_docs))), num_docs - 1)
    perm = np.random.default_rng([seed, _group_key(group)]).permutation(num_docs)
    codes = np.full(num_docs, _TRAIN, dtype=np.int8)
    held = perm[:n_held]
    codes[held[: (n_held + 1) // 2]] = _VAL
    codes[held[(n_held + 1) // 2:]] = _TEST
    return codes


def _tokenize_batch(batch: pa.Table, tokenizer_json: str) -> pa.Table:
    """Ray Data UDF: ``text`` → ``ids`` (list<int32>); other columns pass through."""
    tok = _cached_tokenizer(tokenizer_json)
    texts = batch.column("text").to_pylist()
    encs = tok.encode_batch(texts, add_special_tokens=False)
    lengths = np.fromiter((len(e.ids) for e in encs), dtype=np.int32, count=len(encs))
    offsets = np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)]).astype(np.int32)
    flat = np.fromiter((i for e in encs for i in e.ids), dtype=np.int32, count=int(offsets[-1]))
    ids = pa.ListArray.from_arrays(pa.array(offsets), pa.array(flat))
    return batch.drop_columns(["text"]).append_column("ids", ids)


_TOKENIZER_CACHE: dict[int, Tokenizer] = {}


def _cached_tokenizer(tokenizer_json: str) -> Tokenizer:
    key = hash(tokenizer_json)
    tok = _TOKENIZER_CACHE.get(key)
    if tok is None:
        _TOKENIZER_CACHE.clear()  # one build at a time per worker: keep one tokenizer, not all ever seen
        tok = _TOKENIZER_CACHE[key] = Tokenizer.from_str(tokenizer_json)
    return tok


class _Packer:
    """Packs one (split, group)'s documents into ``seq_len`` windows and writes them in parquet parts."""

    def __init__(self, root: Path, split: str, group: str, seq_len: int, eos_id: int, rows_per_file: int) -> None:
        self.dir = root / split / f"group={group}"
        self.split, self.group, self.seq_len, self.eos_id = split, group, seq_len, eos_id
        self.rows_per_file = rows_per_file
        self.pending: list[np.ndarray] = []
        self.pending_tokens = 0
        self.documents = 0
        self.sequences = 0
        self.files: list[tuple[Path, int]] = []
        self._eos = np.array([eos_id], dtype=np.int32)

    def add(self, ids: np.ndarray) -> None:
        # EOS after every document: a window may start mid-document, but never joins two documents silently.
        self.pending += [ids, self._eos]
        self.pending_tokens += len(ids) + 1
        self.documents += 1
        if self.pending_tokens >= self.rows_per_file * self.seq_len:
            self._flush(final=False)

    def _flush(self, final: bool) -> None:
        tokens = np.concatenate(self.pending) if self.pending else np.zeros(0, np.int32)
        rows = len(tokens) // self.seq_len
        if not final:
            rows = (rows // self.rows_per_file) * self.rows_per_file
        for start in range(0, rows, self.rows_per_file):
            n = min(self.rows_per_file, rows - start)
            self._write(tokens[start * self.seq_len:(start + n) * self.seq_len])
        rest = tokens[rows * self.seq_len:]
        self.pending, self.pending_tokens = ([rest] if len(rest) else []), len(rest)

    def _write(self, flat: np.ndarray) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self.dir / f"part-{len(self.files):05d}.parquet"
        n = len(flat) // self.seq_len
        table = pa.table({
            "input_ids": pa.FixedSizeListArray.from_arrays(pa.array(flat, type=pa.int32()), self.seq_len),
            "group": pa.array([self.group] * n, type=pa.string()),
        })
        pq.write_table(table, path, compression="zstd")
        self.files.append((path, n))
        self.sequences += n

    def finish(self) -> GroupSplitStats:
        self._flush(final=True)
        dropped = self.pending_tokens
        self.pending, self.pending_tokens = [], 0
        return GroupSplitStats(documents=self.documents, tokens=self.sequences * self.seq_len,
                               sequences=self.sequences, dropped_tokens=dropped)


def _documents(source: CorpusSource, group: str, max_docs: int | None) -> Iterator[str]:
    for i, doc in enumerate(source.iter_documents(group)):
        if max_docs is not None and i >= max_docs:
            return
        yield doc


def _check_args(seq_len: int, heldout_fraction: float, max_docs_per_group: int | None, rows_per_file: int,
                tokenizer: Any, vocab_size: int | None) -> None:
    if not isinstance(seq_len, int) or isinstance(seq_len, bool) or seq_len < 2:
        raise ConfigError(f"seq_len={seq_len!r} must be an integer >= 2 (tokens per window), e.g. 256")
    if not 0.0 < float(heldout_fraction) < 1.0:
        raise ConfigError(f"heldout_fraction={heldout_fraction!r} must be in (0, 1), e.g. 0.1 (val + test documents)")
    if max_docs_per_group is not None and (not isinstance(max_docs_per_group, int) or max_docs_per_group < 3):
        raise ConfigError(f"max_docs_per_group={max_docs_per_group!r} must be None or an integer >= 3")
    if not isinstance(rows_per_file, int) or rows_per_file < 1:
        raise ConfigError(f"rows_per_file={rows_per_file!r} must be a positive integer")
    if (tokenizer is None) == (vocab_size is None):
        raise ConfigError("pass exactly one of tokenizer= (a Tokenizer, tokenizer.json path, 'gpt2' or 'neox') "
                          f"or vocab_size= (train a byte-level BPE); got tokenizer={tokenizer!r}, "
                          f"vocab_size={vocab_size!r}")


def _prepare_out(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise ConfigError(f"output path {str(out)!r} is an existing file, not a directory; choose another --out")
    probe = out if out.exists() else out.parent
    while not probe.exists():
        probe = probe.parent
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ConfigError(f"output path {str(out)!r} is not writable ({str(probe)!r}: permission denied); choose "
                          "a directory you can write to")
    if not out.exists():
        return
    if not overwrite:
        raise ConfigError(f"output directory {str(out)!r} already exists; pass overwrite=True (--overwrite) to replace "
                          "it or choose another --out")
    if not out.is_dir():
        raise ConfigError(f"output path {str(out)!r} exists and is not a directory; choose another --out")
    if any(out.iterdir()) and not (out / "manifest.json").is_file():
        # Refuse to delete a directory that is not a shard directory: --out ~ --overwrite must not wipe a home.
        raise ConfigError(f"refusing to overwrite {str(out)!r}: it is not empty and holds no manifest.json, so it is "
                          "not a shard directory; remove it yourself or choose another --out")


def build_shards(
    source: CorpusSource,
    out_dir: str | os.PathLike[str],
    *,
    tokenizer: Tokenizer | str | os.PathLike[str] | None = None,
    vocab_size: int | None = None,
    seq_len: int = 256,
    heldout_fraction: float = 0.1,
    seed: int = 0,
    max_docs_per_group: int | None = None,
    overwrite: bool = False,
    progress: Progress | None = None,
    eos_token: str | None = None,
    rows_per_file: int = 8192,
    chunk_chars: int = 32_000_000,
    show_progress: bool = False,
) -> Manifest:
    """Tokenize ``source`` into packed, group-tagged parquet shards under ``out_dir``; return the manifest.

    Args:
        source: the corpus (groups of documents).
        out_dir: destination; written via a temp directory beside it and renamed into place at the end,
            so a failed build leaves nothing that looks complete.
        tokenizer: a ``tokenizers.Tokenizer``, a tokenizer.json path, or ``"gpt2"``/``"neox"``; or
        vocab_size: train a byte-level BPE of this size on the **train** documents (held-out text unseen).
        seq_len: tokens per window.
        heldout_fraction: fraction of each group's documents held out, then halved into val and test.
        seed: seed of the document split (and nothing else: builds are otherwise deterministic).
        max_docs_per_group: use only each group's first N documents.
        overwrite: replace an existing shard directory.
        progress: called with one human-readable line per stage/chunk.
        eos_token: EOS token name when the tokenizer has none of the usual ones.
        rows_per_file: windows per parquet file.
        chunk_chars: characters of text per Ray Data dataset (bounds driver memory).
        show_progress: live progress bars on stderr (documents counted, documents tokenized; periodic plain
            lines when stderr is not a terminal) — :func:`raymix.progress.progress_bar`.

    Raises:
        ConfigError: bad arguments or an existing ``out_dir`` without ``overwrite``.
        EmptyGroupError: no groups, a group without documents, or a (split, group) with fewer tokens than one
            window (the message gives the counts and what to change).
        DataError: a document that tokenizes to no tokens.
    """
    _check_args(seq_len, heldout_fraction, max_docs_per_group, rows_per_file, tokenizer, vocab_size)
    say = progress or (lambda _msg: None)
    out = Path(out_dir).expanduser().absolute()
    _prepare_out(out, overwrite)
    groups = list(source.groups())
    if not groups:
        raise EmptyGroupError(f"source {source.name!r} has no groups; give it at least one group of documents")
    bad = [g for g in groups if not isinstance(g, str) or not _GROUP_NAME.match(g)]
    if bad:
        raise DataError(f"group names {bad} are not valid path components (letters, digits, '_', '-', '.'); rename them")
    groups = sorted(groups)

    # Pass 1: count documents → deterministic split codes (memory: one int8 per document).
    codes: dict[str, np.ndarray] = {}
    counting = progress_bar(len(groups), "counting documents", unit="groups", enabled=show_progress)
    for g in groups:
        counting.set_postfix_str(g, refresh=False)
        n = sum(1 for _ in _documents(source, g, max_docs_per_group))
        counting.update(1)
        if n == 0:
            raise EmptyGroupError(f"group {g!r} of source {source.name!r} has no documents; remove it or add text")
        codes[g] = assign_splits(n, heldout_fraction, seed, g)
        counts = np.bincount(codes[g], minlength=3)
        say(f"group {g}: {n} documents (train {counts[0]}, val {counts[1]}, test {counts[2]})")
    counting.close()

    tok = _resolve_tokenizer(source, groups, codes, tokenizer, vocab_size, max_docs_per_group, say)
    info = tokenizer_info(tok, eos_token)
    say(f"tokenizer: vocab_size {info.vocab_size}, eos {info.eos_token!r} = {info.eos_id}, sha256 {info.sha256[:12]}")

    out.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(out)
    # The builder's pid is in the name: a later build removes the temp folder of one that was killed (SIGKILL,
    # power loss) before its own cleanup could run.
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        stats, files = _tokenize_and_pack(source, groups, codes, tok, info.eos_id, tmp, seq_len, rows_per_file,
                                          max_docs_per_group, chunk_chars, say, show_progress)
        save_tokenizer(tok, tmp / "tokenizer.json")
        entries = [FileEntry(path=str(p.relative_to(tmp)), split=s, group=g, rows=r, sha256=file_sha256(p))
                   for (s, g), lst in sorted(files.items(), key=lambda kv: (SPLITS.index(kv[0][0]), kv[0][1]))
                   for p, r in lst]
        from raymix import __version__

        manifest = Manifest(
            groups=groups, seq_len=seq_len, tokenizer=info, stats=stats, files=entries, sources=source.describe(),
            seed=seed, split_fractions={"train": 1.0 - heldout_fraction, "val": heldout_fraction / 2,
                                        "test": heldout_fraction / 2},
            raymix_version=__version__,
        )
        manifest.save(tmp)  # last file written: its presence marks a complete build
        _swap_into_place(tmp, out, overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    total = sum(st.tokens for per in stats.values() for st in per.values())
    say(f"wrote {len(entries)} files, {total:,} tokens to {out}")
    return manifest


def _remove_stale_temps(out: Path) -> None:
    """Delete ``.{out}.tmp-{pid}-*`` folders of builds whose process no longer runs."""
    for p in out.parent.glob(f".{out.name}.tmp-*"):
        parts = p.name[len(f".{out.name}.tmp-"):].split("-")
        if len(parts) != 2 or not parts[0].isdigit():
            continue
        try:
            os.kill(int(parts[0]), 0)
        except ProcessLookupError:
            shutil.rmtree(p, ignore_errors=True)
        except PermissionError:
            pass  # another user's live process


def _resolve_tokenizer(source: CorpusSource, groups: list[str], codes: dict[str, np.ndarray], tokenizer: Any,
                       vocab_size: int | None, max_docs: int | None, say: Progress) -> Tokenizer:
    if tokenizer is not None:
        return tokenizer if isinstance(tokenizer, Tokenizer) else load_tokenizer(tokenizer)

    def train_texts() -> Iterator[str]:
        for g in groups:
            for i, doc in enumerate(_documents(source, g, max_docs)):
                if codes[g][i] == _TRAIN:
                    yield doc

    say(f"training byte-level BPE, vocab_size {vocab_size}, on the train documents")
    t0 = time.perf_counter()
    tok = train_bpe(train_texts(), int(vocab_size))  # type: ignore[arg-type]
    say(f"trained tokenizer in {time.perf_counter() - t0:.1f}s")
    return tok


def _tokenize_and_pack(source: CorpusSource, groups: list[str], codes: dict[str, np.ndarray], tok: Tokenizer,
                       eos_id: int, tmp: Path, seq_len: int, rows_per_file: int, max_docs: int | None,
                       chunk_chars: int, say: Progress, show_progress: bool = False
                       ) -> tuple[dict[str, dict[str, GroupSplitStats]], dict[tuple[str, str], list[tuple[Path, int]]]]:
    # Ray is imported here, not at module level: reading shards must not need Ray (streaming sets a guard first).
    from raymix.data.streaming import _configure, ensure_ray, quiet_ray_data, ray

    started = ensure_ray()
    tok_json = tok.to_str()
    packers = {(s, g): _Packer(tmp, s, g, seq_len, eos_id, rows_per_file) for s in SPLITS for g in groups}
    total_docs = sum(len(c) for c in codes.values())
    done_docs = 0
    total_tokens = 0
    t0 = time.perf_counter()

    def chunks() -> Iterator[list[dict[str, Any]]]:
        items: list[dict[str, Any]] = []
        size = 0
        for g in groups:
            for i, doc in enumerate(_documents(source, g, max_docs)):
                items.append({"group": g, "doc": i, "split": int(codes[g][i]), "text": doc})
                size += len(doc)
                if size >= chunk_chars:
                    yield items
                    items, size = [], 0
        if items:
            yield items

    bar = progress_bar(total_docs, "tokenizing", unit="documents", enabled=show_progress)
    try:
        with quiet_ray_data():
            for items in chunks():
                # Enough blocks for every CPU to tokenize, few enough that per-task overhead stays small.
                blocks = max(1, min(len(items) // 64, 4 * int(ray.cluster_resources().get("CPU", 1)) or 1))
                ds = _configure(ray.data.from_items(items, override_num_blocks=blocks).map_batches(
                    _tokenize_batch, batch_format="pyarrow", fn_kwargs={"tokenizer_json": tok_json}, batch_size=None))
                for table in ds.iter_batches(batch_size=None, batch_format="pyarrow", prefetch_batches=2):
                    ids_col = table.column("ids").combine_chunks()
                    flat = ids_col.flatten().to_numpy(zero_copy_only=False).astype(np.int32, copy=False)
                    offsets = ids_col.offsets.to_numpy()
                    offsets = offsets - offsets[0]  # a sliced array's offsets start at its slice offset
                    for row, (g, i, s) in enumerate(zip(table.column("group").to_pylist(), table.column("doc").to_pylist(),
                                                        table.column("split").to_pylist(), strict=True)):
                        ids = flat[offsets[row]:offsets[row + 1]]
                        if not len(ids):
                            raise DataError(f"document {i} of group {g!r} tokenizes to no tokens; the source must yield "
                                            "non-empty cleaned text — drop empty documents before building")
                        packers[(SPLITS[s], g)].add(ids)
                        total_tokens += len(ids) + 1
                    done_docs += table.num_rows
                    bar.set_postfix_str(f"{total_tokens:,} tokens", refresh=False)
                    bar.update(table.num_rows)
                rate = total_tokens / max(time.perf_counter() - t0, 1e-9)
                say(f"tokenized {done_docs}/{total_docs} documents, {total_tokens:,} tokens ({rate:,.0f} tokens/s)")
    finally:
        bar.close()
        if started:
            ray.shutdown()

    stats: dict[str, dict[str, GroupSplitStats]] = {s: {} for s in SPLITS}
    files: dict[tuple[str, str], list[tuple[Path, int]]] = {}
    for (s, g), packer in packers.items():
        st = packer.finish()
        if st.sequences == 0:
            raise EmptyGroupError(
                f"group {g!r} has only {st.dropped_tokens} tokens in {st.documents} document(s) in split {s!r}, fewer "
                f"than one window of seq_len={seq_len}; lower --seq-len, raise the held-out fraction, or add documents"
            )
        stats[s][g] = st
        files[(s, g)] = packer.files
    return stats, files


def _swap_into_place(tmp: Path, out: Path, overwrite: bool) -> None:
    """Rename the finished temp directory to ``out`` (atomic on one filesystem); replace an old build if allowed."""
    if out.exists():
        if not overwrite:
            raise ShardError(f"{str(out)!r} appeared while building; pass overwrite=True or choose another --out")
        _prepare_out(out, overwrite)
        old = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:8]}"
        os.rename(out, old)
        os.rename(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(tmp, out)

