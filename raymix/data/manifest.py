"""The shard manifest: what a shard directory contains, how it was built, and how to verify it.

Layout of a shard directory (written by :func:`raymix.data.shards.build_shards`)::

    OUT/manifest.json                       # written last: its presence marks a complete build
    OUT/tokenizer.json
    OUT/{split}/group={g}/part-00000.parquet   # columns: input_ids fixed_size_list<int32>[seq_len], group string

:func:`load_manifest` validates the directory: every listed file exists and (optionally) matches its
SHA-256, so a truncated or swapped shard fails loudly instead of training on garbage.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from raymix.data.tokenizer import TokenizerInfo
from raymix.errors import ShardError, SplitNotFoundError

__all__ = ["MANIFEST_FILE", "MANIFEST_VERSION", "SPLITS", "FileEntry", "GroupSplitStats", "Manifest",
           "file_sha256", "load_manifest"]

MANIFEST_FILE = "manifest.json"
#: Bumped on any incompatible change of the layout or of this schema.
MANIFEST_VERSION = 1
#: The splits a build writes: train, and the held-out documents halved into val and test (paper App. D).
SPLITS: tuple[str, ...] = ("train", "val", "test")


@dataclass
class GroupSplitStats:
    """Counts for one (split, group).

    Attributes:
        documents: documents assigned to the split.
        tokens: tokens in the written windows (``sequences * seq_len``; EOS separators included).
        sequences: windows of ``seq_len`` tokens written.
        dropped_tokens: tail tokens shorter than one window, not written.
    """

    documents: int
    tokens: int
    sequences: int
    dropped_tokens: int = 0


@dataclass
class FileEntry:
    """One parquet file: its path relative to the shard directory, rows (windows) and SHA-256."""

    path: str
    split: str
    group: str
    rows: int
    sha256: str


@dataclass
class Manifest:
    """Everything needed to read, verify and reproduce a shard directory.

    Attributes:
        groups: group names, sorted.
        seq_len: tokens per window.
        tokenizer: vocabulary size, EOS id/token and SHA-256 of the tokenizer saved beside the shards.
        stats: ``stats[split][group]`` counts.
        files: every parquet file, in canonical (split, group, part) order.
        sources: provenance from ``CorpusSource.describe()``.
        seed: seed of the document-level split.
        split_fractions: ``{"train": f, "val": f, "test": f}`` fractions of documents requested.
        raymix_version: package version that built the shards.
        version: manifest schema version (:data:`MANIFEST_VERSION`).
    """

    groups: list[str]
    seq_len: int
    tokenizer: TokenizerInfo
    stats: dict[str, dict[str, GroupSplitStats]]
    files: list[FileEntry]
    sources: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    split_fractions: dict[str, float] = field(default_factory=dict)
    raymix_version: str = ""
    version: int = MANIFEST_VERSION

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.vocab_size

    @property
    def eos_id(self) -> int:
        return self.tokenizer.eos_id

    @property
    def splits(self) -> list[str]:
        return [s for s in SPLITS if s in self.stats] + sorted(set(self.stats) - set(SPLITS))

    def require_split(self, split: str) -> None:
        """Raise :class:`SplitNotFoundError` unless ``split`` was built."""
        if split not in self.stats:
            raise SplitNotFoundError(
                f"split {split!r} is not in these shards (splits: {self.splits}); use one of those or rebuild"
            )

    def files_for(self, split: str, group: str) -> list[FileEntry]:
        """Files of one (split, group) in part order; raises on an unknown split or group."""
        self.require_split(split)
        if group not in self.groups:
            raise ShardError(f"group {group!r} is not in these shards (groups: {self.groups}); pick one of those")
        return [f for f in self.files if f.split == split and f.group == group]

    def tokens(self, split: str, group: str) -> int:
        self.require_split(split)
        return self.stats[split][group].tokens

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "raymix_version": self.raymix_version,
            "groups": list(self.groups),
            "seq_len": self.seq_len,
            "vocab_size": self.tokenizer.vocab_size,
            "eos_id": self.tokenizer.eos_id,
            "tokenizer": self.tokenizer.to_dict(),
            "seed": self.seed,
            "split_fractions": dict(self.split_fractions),
            "stats": {s: {g: asdict(st) for g, st in per.items()} for s, per in self.stats.items()},
            "files": [asdict(f) for f in self.files],
            "sources": self.sources,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Manifest:
        try:
            version = int(data["version"])
            if version > MANIFEST_VERSION:
                raise ShardError(
                    f"manifest version {version} is newer than this raymix understands ({MANIFEST_VERSION}); "
                    "upgrade raymix"
                )
            return cls(
                groups=list(data["groups"]),
                seq_len=int(data["seq_len"]),
                tokenizer=TokenizerInfo.from_dict(data["tokenizer"]),
                stats={s: {g: GroupSplitStats(**st) for g, st in per.items()} for s, per in data["stats"].items()},
                files=[FileEntry(**f) for f in data["files"]],
                sources=dict(data.get("sources", {})),
                seed=int(data.get("seed", 0)),
                split_fractions={k: float(v) for k, v in data.get("split_fractions", {}).items()},
                raymix_version=str(data.get("raymix_version", "")),
                version=version,
            )
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, ShardError):
                raise
            raise ShardError(f"manifest is malformed ({type(exc).__name__}: {exc}); rebuild the shards") from exc

    def check_consistent(self) -> None:
        """Raise :class:`ShardError` unless groups, stats and files agree: every group has stats and at least one
        file in every split, and no file or stat names a group or split the manifest does not list."""
        where = "; the manifest was edited or the build is incomplete — rebuild with `raymix data build --overwrite`"
        if not self.groups or len(set(self.groups)) != len(self.groups):
            raise ShardError(f"manifest groups must be unique names, at least one, got {self.groups!r}{where}")
        if not isinstance(self.seq_len, int) or self.seq_len < 2:
            raise ShardError(f"manifest seq_len must be an integer >= 2, got {self.seq_len!r}{where}")
        for split, per in self.stats.items():
            missing = [g for g in self.groups if g not in per]
            extra = sorted(set(per) - set(self.groups))
            if missing or extra:
                raise ShardError(f"manifest split {split!r} has counts for groups {sorted(per)} but lists groups "
                                 f"{self.groups} (missing {missing}, not listed {extra}){where}")
        have = {(f.split, f.group) for f in self.files}
        stray = sorted({f"{f.split}/{f.group}" for f in self.files if f.group not in self.groups or
                        f.split not in self.stats})
        if stray:
            raise ShardError(f"manifest lists files of {stray}, which are not among its groups {self.groups} / "
                             f"splits {self.splits}{where}")
        empty = [f"{s}/{g}" for s in self.splits for g in self.groups if (s, g) not in have]
        if empty:
            raise ShardError(f"manifest lists group(s) with no files: {empty}{where}")

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False)

    def data_digest(self) -> str:
        """Hex SHA-256 of what identifies the data (see :func:`data_digest`)."""
        return data_digest(self.to_dict())

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ShardError(f"manifest is not valid JSON ({exc}); rebuild the shards") from exc
        if not isinstance(data, dict):
            raise ShardError(f"manifest must be a JSON object, got {type(data).__name__}; rebuild the shards")
        return cls.from_dict(data)

    def save(self, shards_dir: str | os.PathLike[str]) -> Path:
        """Write ``manifest.json`` atomically (temp file + rename) into ``shards_dir``."""
        path = Path(shards_dir) / MANIFEST_FILE
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(self.to_json())
        os.replace(tmp, path)
        return path


#: Manifest fields that describe where the data came from, not what it is: left out of :func:`data_digest`.
PROVENANCE_FIELDS = ("sources", "raymix_version")


def data_digest(manifest: dict[str, Any]) -> str:
    """Hex SHA-256 of a manifest's data identity: every file's checksum, the tokenizer's, the windows' length,
    the split and the counts, as canonical JSON (sorted keys).

    Left out are :data:`PROVENANCE_FIELDS`: the sources' descriptions change with where the fetch cache lives
    and whether an artefact came from it or from the network, though the shards are byte-identical; what the
    sources put into the shards is in the files' checksums.  Two shard directories with the same digest hold
    the same tokens."""
    ident = {k: v for k, v in manifest.items() if k not in PROVENANCE_FIELDS}
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()


#: Digests already verified in this process, keyed by (absolute path, size, mtime_ns): a trainer that opens
#: the train sampler, a val sampler and two eval sets from one directory hashes each file once, not four times.
_VERIFIED: dict[tuple[str, int, int], str] = {}


def _verified_sha256(path: Path) -> str:
    st = path.stat()
    key = (str(path.absolute()), st.st_size, st.st_mtime_ns)
    digest = _VERIFIED.get(key)
    if digest is None:
        digest = _VERIFIED[key] = file_sha256(path)
    return digest


def file_sha256(path: str | os.PathLike[str], chunk_bytes: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes, read in ``chunk_bytes`` chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(chunk_bytes):
            h.update(chunk)
    return h.hexdigest()


def load_manifest(shards_dir: str | os.PathLike[str], *, verify: bool | str = True,
                  split: str | None = None) -> Manifest:
    """Read and validate ``shards_dir/manifest.json``.

    Args:
        shards_dir: a directory written by ``build_shards``.
        verify: ``True`` — every listed file must exist and match its SHA-256 (reads every byte once);
            ``"exists"`` — only check that every listed file exists (cheap, for huge shard sets);
            ``False`` — trust the manifest.
        split: when given, raise :class:`SplitNotFoundError` unless this split was built, and verify only
            its files.

    Raises:
        ShardError: no manifest (an incomplete or foreign directory), a malformed manifest, a missing file
            (named), or a checksum mismatch (named, both hashes quoted).
        SplitNotFoundError: ``split`` was not built.
    """
    root = Path(shards_dir)
    path = root / MANIFEST_FILE
    if not root.is_dir():
        raise ShardError(f"shard directory {str(root)!r} does not exist; build it with `raymix data build --out ...`")
    if not path.is_file():
        raise ShardError(
            f"{str(path)!r} is missing: {str(root)!r} is not a complete shard directory (the manifest is written "
            "last, so an interrupted build has none); rebuild with `raymix data build --overwrite`"
        )
    manifest = Manifest.from_json(path.read_text())
    manifest.check_consistent()
    if split is not None:
        manifest.require_split(split)
    if verify:
        for s in manifest.splits:
            on_disk = {p.name[len("group="):] for p in (root / s).glob("group=*") if p.is_dir()}
            unlisted = sorted(on_disk - set(manifest.groups))
            if unlisted:
                raise ShardError(
                    f"{str(root / s)!r} holds shards of group(s) {unlisted} that the manifest does not list (it lists "
                    f"{manifest.groups}): the manifest was edited or belongs to another build, and training would "
                    "silently drop those groups — rebuild with `raymix data build --overwrite`")
        for entry in manifest.files:
            if split is not None and entry.split != split:
                continue
            fpath = root / entry.path
            if not fpath.is_file():
                raise ShardError(
                    f"shard file {str(fpath)!r} listed in the manifest is missing; the directory is incomplete — "
                    "rebuild it with `raymix data build --overwrite`"
                )
            if verify == "exists":
                continue
            digest = _verified_sha256(fpath)
            if digest != entry.sha256:
                raise ShardError(
                    f"shard file {str(fpath)!r} is corrupt or was replaced: sha256 {digest} but the manifest says "
                    f"{entry.sha256}; rebuild the shards with `raymix data build --overwrite`"
                )
    return manifest
