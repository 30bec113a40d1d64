"""The contract between corpus sources (where text comes from) and shard building (how it becomes tokens).

A :class:`CorpusSource` yields cleaned text documents per named group and describes its provenance
(kind, locations, versions, licenses, checksums) for the shard manifest.  Implementations:
user folders, Hugging Face ``datasets`` (incl. the SlimPajama schema), the built-in preset of real
domains assembled from installable packages, and the embedded default shipped inside the package.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import Any


class CorpusSource(ABC):
    """Named groups of text documents.

    Lifecycle: construct (cheap; no I/O beyond checking that locations exist) → ``groups()`` →
    ``iter_documents(group)`` any number of times, each pass yielding the same documents in the same
    order (deterministic) → ``describe()`` for the manifest.  Raises
    :class:`raymix.errors.SourceUnavailableError` when the underlying data cannot be fetched/read and
    :class:`raymix.errors.EmptyGroupError` when a group yields no document.
    """

    #: short identifier used in manifests and CLI output, e.g. "folders", "hf", "preset:realmix", "embedded"
    name: str = "source"

    @abstractmethod
    def groups(self) -> list[str]:
        """Group names, sorted, each a valid path component (letters, digits, '_', '-', '.')."""

    @abstractmethod
    def iter_documents(self, group: str) -> Iterator[str]:
        """Cleaned text documents of ``group`` (non-empty strings), deterministic order."""

    def describe(self) -> dict[str, Any]:
        """Provenance for the manifest: {"kind": ..., "groups": {group: {...}}, ...}."""
        return {"kind": self.name}
