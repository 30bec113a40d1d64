"""User-provided corpus sources: a folder tree (:class:`FolderSource`) and Hugging Face ``datasets``
(:class:`HFSource`, including the SlimPajama schema the paper uses — groups are
``meta.redpajama_set_name``, paper §5 / Appendix D).

Both implement :class:`raymix.data.corpus.CorpusSource`: cheap construction, sorted ``groups()``,
deterministic ``iter_documents(group)``, provenance in ``describe()``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from raymix.data.corpus import CorpusSource
from raymix.errors import ConfigError, DataError, EmptyGroupError, SourceUnavailableError

__all__ = ["FolderSource", "HFSource", "SLIMPAJAMA_GROUPS", "clean_group_name"]

_VALID_GROUP = re.compile(r"^[A-Za-z0-9_.\-]+$")
FOLDER_SUFFIXES = (".txt", ".jsonl", ".parquet")


def _check_group_name(name: str, where: str) -> None:
    if not _VALID_GROUP.match(name) or name in (".", ".."):
        raise DataError(
            f"group name {name!r} (from {where}) is not a valid path component; "
            "use only letters, digits, '_', '-', '.'"
        )


def _files_digest(entries: Sequence[tuple[str, int]]) -> str:
    """sha256 over sorted ``relative_path\\tsize`` lines: a cheap fingerprint of a file tree."""
    h = hashlib.sha256()
    for rel, size in sorted(entries):
        h.update(f"{rel}\t{size}\n".encode())
    return h.hexdigest()


class FolderSource(CorpusSource):
    """Documents from ``root/<group>/**`` — one sub-folder per group, the folder name is the group name.

    Files (recursive, sorted by relative path for a deterministic order; hidden files skipped):

    * ``.txt`` — one document per file, or with ``txt_mode="paragraphs"`` one document per
      blank-line-separated block;
    * ``.jsonl`` — one JSON object per line, the document in field ``text_field`` (default ``"text"``);
    * ``.parquet`` — column ``text_field``.

    Files with other suffixes are ignored.  Empty / whitespace-only documents are skipped.
    """

    name = "folders"

    def __init__(self, root: str | os.PathLike[str], *, txt_mode: str = "file", text_field: str = "text",
                 encoding: str = "utf-8") -> None:
        if txt_mode not in ("file", "paragraphs"):
            raise ConfigError(f"txt_mode={txt_mode!r} is not valid; use 'file' (one document per .txt file) "
                              "or 'paragraphs' (one document per blank-line-separated block)")
        self.root = Path(root).expanduser()
        self.txt_mode = txt_mode
        self.text_field = text_field
        self.encoding = encoding
        if not self.root.is_dir():
            raise SourceUnavailableError(f"corpus folder {str(self.root)!r} does not exist or is not a directory; "
                                         "pass a folder that holds one sub-folder per group")
        self._groups = sorted(p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))
        if not self._groups:
            raise DataError(f"corpus folder {str(self.root)!r} has no sub-folders; create one sub-folder per "
                            "group (its name is the group name) and put .txt/.jsonl/.parquet files in it")
        for g in self._groups:
            _check_group_name(g, f"folder {str(self.root / g)!r}")

    def groups(self) -> list[str]:
        return list(self._groups)

    def _group_dir(self, group: str) -> Path:
        if group not in self._groups:
            raise DataError(f"unknown group {group!r}; groups in {str(self.root)!r}: {self._groups}")
        return self.root / group

    def files(self, group: str) -> list[Path]:
        """Data files of ``group`` in iteration order (sorted relative POSIX paths)."""
        base = self._group_dir(group)
        out = []
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            for fn in filenames:
                if not fn.startswith(".") and fn.endswith(FOLDER_SUFFIXES):
                    out.append(Path(dirpath) / fn)
        return sorted(out, key=lambda p: p.relative_to(base).as_posix())

    def iter_documents(self, group: str) -> Iterator[str]:
        n = 0
        for path in self.files(group):
            for doc in self._read(path):
                if doc.strip():
                    n += 1
                    yield doc
        if n == 0:
            raise EmptyGroupError(
                f"group {group!r} has no documents: folder {str(self.root / group)!r} holds no non-empty "
                f"{'/'.join(FOLDER_SUFFIXES)} document; add files or remove the folder"
            )

    def _read(self, path: Path) -> Iterator[str]:
        suffix = path.suffix
        if suffix == ".parquet":
            yield from self._read_parquet(path)
            return
        try:
            text = path.read_text(encoding=self.encoding)
        except (OSError, UnicodeDecodeError) as e:
            raise SourceUnavailableError(f"cannot read {str(path)!r} as {self.encoding} text: {e}; "
                                         "fix the file's permissions/encoding or remove it") from e
        if "\x00" in text:
            # NUL never occurs in text; a binary file would be tokenized byte by byte (and slow BPE training 100x)
            raise DataError(f"{str(path)!r} contains NUL bytes ({text.count(chr(0))} of {len(text)} characters): it is a "
                            "binary file, not text — remove it from the corpus folder")
        if suffix == ".txt":
            if self.txt_mode == "file":
                yield text
            else:
                blocks = re.split(r"\n(?:[ \t]*\n)+", text.replace("\r\n", "\n"))
                yield from (b.strip("\n").rstrip() for b in blocks)
            return
        for lineno, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"bad JSON at {path}:{lineno}: {e.msg} in {line[:80]!r}; "
                                "each line of a .jsonl file must be one JSON object") from e
            if not isinstance(obj, dict) or not isinstance(obj.get(self.text_field), str):
                raise DataError(f"{path}:{lineno} has no string field {self.text_field!r} (got {line[:80]!r}); "
                                f"each line must look like {{\"{self.text_field}\": \"...\"}}")
            yield obj[self.text_field]

    def _read_parquet(self, path: Path) -> Iterator[str]:
        import pyarrow.parquet as pq

        try:
            pf = pq.ParquetFile(path)
        except Exception as e:  # pyarrow raises ArrowInvalid / OSError subclasses
            raise SourceUnavailableError(f"cannot read parquet file {str(path)!r}: {e}") from e
        if self.text_field not in pf.schema_arrow.names:
            raise DataError(f"parquet file {str(path)!r} has no column {self.text_field!r} "
                            f"(columns: {pf.schema_arrow.names}); rename the text column or pass text_field=")
        for batch in pf.iter_batches(columns=[self.text_field], batch_size=1024):
            for value in batch.column(0).to_pylist():
                if isinstance(value, str):
                    yield value

    def describe(self) -> dict[str, Any]:
        groups: dict[str, Any] = {}
        for g in self._groups:
            base = self.root / g
            entries = [(p.relative_to(base).as_posix(), p.stat().st_size) for p in self.files(g)]
            groups[g] = {"files": len(entries), "bytes": sum(s for _, s in entries), "sha256": _files_digest(entries)}
        return {"kind": self.name, "root": str(self.root.resolve()), "txt_mode": self.txt_mode,
                "text_field": self.text_field, "groups": groups}


# ------------------------------------------------------------------------------------------ Hugging Face

#: SlimPajama / RedPajama ``meta.redpajama_set_name`` values → raymix group names.
SLIMPAJAMA_GROUPS: dict[str, str] = {
    "RedPajamaArXiv": "arxiv",
    "RedPajamaBook": "book",
    "RedPajamaC4": "c4",
    "RedPajamaCommonCrawl": "commoncrawl",
    "RedPajamaGithub": "github",
    "RedPajamaStackExchange": "stackexchange",
    "RedPajamaWikipedia": "wikipedia",
}


def clean_group_name(raw: Any) -> str:
    """Map a raw group value to a group name: SlimPajama set names via :data:`SLIMPAJAMA_GROUPS`,
    anything else lower-cased with characters outside ``[a-z0-9_.-]`` replaced by ``_``."""
    s = str(raw)
    if s in SLIMPAJAMA_GROUPS:
        return SLIMPAJAMA_GROUPS[s]
    if s.startswith("RedPajama") and len(s) > len("RedPajama"):
        s = s[len("RedPajama"):]
    s = re.sub(r"[^a-z0-9_.\-]+", "_", s.strip().lower()).strip("_")
    if not s or s in (".", ".."):
        raise DataError(f"group value {raw!r} does not give a usable group name; clean the group column")
    return s


_LOCAL_BUILDERS = {".parquet": "parquet", ".jsonl": "json", ".json": "json", ".arrow": "arrow",
                   ".csv": "csv", ".txt": "text"}


def _get_field(row: dict[str, Any], dotted: str) -> Any:
    """``row["meta"]["redpajama_set_name"]`` for ``dotted="meta.redpajama_set_name"``; flat keys win."""
    if dotted in row:
        return row[dotted]
    cur: Any = row
    for part in dotted.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return None
        cur = cur[part]
    return cur


class HFSource(CorpusSource):
    """A Hugging Face dataset whose rows carry a text field and a group field.

    ``name_or_path`` is a local file / folder of ``.parquet``/``.jsonl``/``.json``/``.arrow`` files, or a
    hub dataset name (e.g. ``"DKYoon/SlimPajama-6B"``).  ``group_field`` may be nested with dots — the
    SlimPajama default is ``meta.redpajama_set_name`` whose values (``"RedPajamaGithub"``, ...) map to
    ``github``, ``arxiv``, ``book``, ``c4``, ``commoncrawl``, ``stackexchange``, ``wikipedia``.
    ``groups`` keeps only those (cleaned) groups; ``max_docs_per_group`` caps each group (first
    documents in dataset order); ``cache_dir`` is passed to ``datasets.load_dataset``.  Loading is lazy: the dataset is opened on first use.  With
    ``streaming=True`` nothing is downloaded up front; each ``iter_documents`` call is one pass over
    the stream (and ``groups()`` without ``groups=`` is one pass too).
    """

    name = "hf"

    def __init__(self, name_or_path: str, split: str = "train", text_field: str = "text",
                 group_field: str = "meta.redpajama_set_name", groups: Sequence[str] | None = None,
                 max_docs_per_group: int | None = None, streaming: bool = False,
                 cache_dir: str | os.PathLike[str] | None = None) -> None:
        if max_docs_per_group is not None and (not isinstance(max_docs_per_group, int) or max_docs_per_group < 1):
            raise ConfigError(f"max_docs_per_group={max_docs_per_group!r} must be a positive int or None")
        if groups is not None:
            groups = list(groups)
            if not groups:
                raise ConfigError("groups=[] selects nothing; pass None for all groups or a non-empty list")
            for g in groups:
                _check_group_name(g, "groups=")
        self.name_or_path = str(name_or_path)
        self.split = split
        self.text_field = text_field
        self.group_field = group_field
        self.selected = sorted(groups) if groups is not None else None
        self.max_docs_per_group = max_docs_per_group
        self.streaming = streaming
        self.cache_dir = None if cache_dir is None else str(cache_dir)
        self._local = self._local_files()
        self._dataset: Any = None
        self._index: dict[str, list[int]] | None = None

    # -- loading -----------------------------------------------------------------------------------------
    def _local_files(self) -> dict[str, list[str]] | None:
        """``{builder: files}`` for a local path, None for a hub name."""
        p = Path(self.name_or_path).expanduser()
        looks_local = p.exists() or self.name_or_path.startswith((".", "/", "~")) or p.suffix in _LOCAL_BUILDERS
        if not looks_local:
            return None
        if not p.exists():
            raise SourceUnavailableError(f"local dataset path {self.name_or_path!r} does not exist; pass an existing "
                                         "file/folder of parquet/jsonl/arrow files or a hub dataset name")
        files = [p] if p.is_file() else sorted(f for f in p.rglob("*") if f.is_file() and f.suffix in _LOCAL_BUILDERS)
        by_builder: dict[str, list[str]] = {}
        for f in files:
            if f.suffix not in _LOCAL_BUILDERS:
                raise DataError(f"file {str(f)!r} has unsupported suffix {f.suffix!r}; use one of {sorted(_LOCAL_BUILDERS)}")
            by_builder.setdefault(_LOCAL_BUILDERS[f.suffix], []).append(str(f))
        if not by_builder:
            raise SourceUnavailableError(f"folder {self.name_or_path!r} holds no data files with suffix in "
                                         f"{sorted(_LOCAL_BUILDERS)}")
        if len(by_builder) > 1:
            raise DataError(f"folder {self.name_or_path!r} mixes formats {sorted(by_builder)}; keep one format per dataset")
        return by_builder

    def _load(self) -> Any:
        if self._dataset is not None:
            return self._dataset
        import datasets

        try:
            if self._local is not None:
                ((builder, files),) = self._local.items()
                ds = datasets.load_dataset(builder, data_files={self.split: files}, split=self.split,
                                           streaming=self.streaming, cache_dir=self.cache_dir)
            else:
                ds = datasets.load_dataset(self.name_or_path, split=self.split, streaming=self.streaming,
                                           cache_dir=self.cache_dir)
        except (ConnectionError, TimeoutError, OSError) as e:
            raise SourceUnavailableError(
                f"cannot load dataset {self.name_or_path!r} (split {self.split!r}): {type(e).__name__}: {e}. "
                "The Hugging Face hub is unreachable or the dataset is not cached; download it where the hub is "
                "reachable (e.g. `huggingface-cli download --repo-type dataset NAME --local-dir DIR`) and pass DIR"
            ) from e
        except Exception as e:  # datasets raises its own DatasetNotFoundError, ValueError for bad splits, ...
            raise SourceUnavailableError(
                f"cannot load dataset {self.name_or_path!r} (split {self.split!r}): {type(e).__name__}: {e}; "
                "check the name/path and split, or pass a local folder of parquet/jsonl files"
            ) from e
        cols = getattr(ds, "column_names", None)
        if cols is not None and self.text_field not in cols:
            raise DataError(f"dataset {self.name_or_path!r} has no text field {self.text_field!r} "
                            f"(columns: {cols}); pass text_field=")
        top = self.group_field.split(".")[0]
        if cols is not None and self.group_field not in cols and top not in cols:
            raise DataError(f"dataset {self.name_or_path!r} has no group field {self.group_field!r} "
                            f"(columns: {cols}); pass group_field= (dots address nested fields)")
        self._dataset = ds
        return ds

    def _group_values(self, ds: Any) -> list[Any]:
        """All raw group values of a map-style dataset, in row order (reads only the group column)."""
        if self.group_field in ds.column_names:
            return list(ds[self.group_field])
        top, rest = self.group_field.split(".", 1)
        values = []
        for v in ds[top]:
            values.append(_get_field({top: v}, f"{top}.{rest}"))
        return values

    def _build_index(self) -> dict[str, list[int]]:
        if self._index is not None:
            return self._index
        ds = self._load()
        index: dict[str, list[int]] = {}
        for i, raw in enumerate(self._group_values(ds)):
            if raw is None:
                raise DataError(f"row {i} of {self.name_or_path!r} has no value in group field {self.group_field!r}")
            g = clean_group_name(raw)
            if self.selected is not None and g not in self.selected:
                continue
            rows = index.setdefault(g, [])
            if self.max_docs_per_group is None or len(rows) < self.max_docs_per_group:
                rows.append(i)
        self._check_selected(index)
        self._index = index
        return index

    def _check_selected(self, found: dict[str, Any]) -> None:
        if self.selected is None:
            if not found:
                raise EmptyGroupError(f"dataset {self.name_or_path!r} has no rows with a group in {self.group_field!r}")
            return
        missing = [g for g in self.selected if g not in found]
        if missing:
            raise EmptyGroupError(f"group(s) {missing} have no rows in {self.name_or_path!r} (field "
                                  f"{self.group_field!r}); groups present: {sorted(found)}")

    # -- CorpusSource --------------------------------------------------------------------------------------
    def groups(self) -> list[str]:
        if self.streaming:
            if self.selected is not None:
                return list(self.selected)
            seen: dict[str, bool] = {}
            for row in self._load():
                raw = _get_field(row, self.group_field)
                if raw is not None:
                    seen[clean_group_name(raw)] = True
            self._check_selected(seen)
            return sorted(seen)
        return sorted(self._build_index())

    def iter_documents(self, group: str) -> Iterator[str]:
        if self.streaming:
            yield from self._iter_streaming(group)
            return
        index = self._build_index()
        if group not in index:
            raise DataError(f"unknown group {group!r}; groups of {self.name_or_path!r}: {sorted(index)}")
        ds = self._load()
        n = 0
        rows = index[group]
        for start in range(0, len(rows), 1024):
            for text in ds.select(rows[start:start + 1024])[self.text_field]:
                if isinstance(text, str) and text.strip():
                    n += 1
                    yield text
        if n == 0:
            raise EmptyGroupError(f"group {group!r} of {self.name_or_path!r} has only empty {self.text_field!r} values")

    def _iter_streaming(self, group: str) -> Iterator[str]:
        if self.selected is not None and group not in self.selected:
            raise DataError(f"unknown group {group!r}; selected groups: {self.selected}")
        n = 0
        for row in self._load():
            raw = _get_field(row, self.group_field)
            if raw is None or clean_group_name(raw) != group:
                continue
            text = row.get(self.text_field)
            if isinstance(text, str) and text.strip():
                n += 1
                yield text
                if self.max_docs_per_group is not None and n >= self.max_docs_per_group:
                    return
        if n == 0:
            raise EmptyGroupError(f"group {group!r} has no documents in {self.name_or_path!r} "
                                  f"(field {self.group_field!r})")

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": self.name, "name_or_path": self.name_or_path, "split": self.split,
            "text_field": self.text_field, "group_field": self.group_field, "streaming": self.streaming,
            "max_docs_per_group": self.max_docs_per_group, "selected_groups": self.selected,
        }
        if self._local is not None:
            base = Path(self.name_or_path).expanduser()
            entries = []
            for files in self._local.values():
                entries += [(Path(f).relative_to(base).as_posix() if base.is_dir() else Path(f).name,
                             os.path.getsize(f)) for f in files]
            out["files"] = len(entries)
            out["bytes"] = sum(s for _, s in entries)
            out["sha256"] = _files_digest(entries)
        if not self.streaming:
            ds = self._load()
            out["fingerprint"] = getattr(ds, "_fingerprint", None)
            out["groups"] = {g: {"documents": len(rows)} for g, rows in self._build_index().items()}
        return out
