"""The embedded default corpus: small slices of real text shipped inside the package.

``raymix demo`` and the test-suite need multi-domain text without any download, so
``raymix/data/embedded/`` holds ~1.2 MB of UTF-8 text per group (gzip JSON lines, ~1.5 MB compressed
in total), built reproducibly by ``scripts/make_embedded_data.py`` from the fetchers of
:mod:`raymix.data.presets`.  ``SOURCES.json`` next to the data records for every group the source
package and version, its license, the sha256 of the fetched artefact and of the shipped file.

Groups (see ``SOURCES.json`` for exact figures): ``books`` (King James Bible chapters, public
domain), ``code`` (CPython standard-library modules, PSF-2.0), ``reference`` (GCIDE / Webster 1913
dictionary entries, GPL-2.0-or-later), ``speeches`` (US State of the Union addresses, public domain).
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Iterator, Sequence
from importlib import resources
from typing import Any

from raymix.data.corpus import CorpusSource
from raymix.errors import ConfigError, DataError, EmptyGroupError, SourceUnavailableError

__all__ = ["EmbeddedSource", "embedded_manifest"]

_PACKAGE = "raymix.data"
_DIR = "embedded"


def _read_resource(name: str) -> bytes:
    try:
        return resources.files(_PACKAGE).joinpath(_DIR, name).read_bytes()
    except (FileNotFoundError, OSError) as e:
        raise SourceUnavailableError(
            f"embedded data file {name!r} is missing from the raymix package ({_PACKAGE}/{_DIR}); reinstall raymix "
            "or rebuild the data with `python scripts/make_embedded_data.py`"
        ) from e


def embedded_manifest() -> dict[str, Any]:
    """Parsed ``SOURCES.json``: ``{"groups": {group: {file, sha256, license, source, ...}}, ...}``."""
    try:
        return json.loads(_read_resource("SOURCES.json"))
    except json.JSONDecodeError as e:
        raise DataError(f"embedded SOURCES.json is not valid JSON ({e}); rebuild with scripts/make_embedded_data.py") from e


class EmbeddedSource(CorpusSource):
    """:class:`CorpusSource` over the embedded slices; ``groups`` selects a subset.

    Each group's file is read once, checked against the sha256 recorded in ``SOURCES.json`` (a
    mismatch raises :class:`~raymix.errors.DataError`: the shipped data was altered) and kept in
    memory (a few MB), so repeated passes are cheap and identical.
    """

    name = "embedded"

    def __init__(self, groups: Sequence[str] | None = None) -> None:
        self._manifest = embedded_manifest()
        available = sorted(self._manifest.get("groups", {}))
        if not available:
            raise EmptyGroupError("embedded SOURCES.json lists no groups; rebuild with scripts/make_embedded_data.py")
        if groups is not None:
            groups = list(groups)
            unknown = sorted(set(groups) - set(available))
            if unknown or not groups:
                raise ConfigError(f"embedded group(s) {unknown or groups} unknown; available: {available}")
            self._groups = sorted(set(groups))
        else:
            self._groups = available
        self._docs: dict[str, list[str]] = {}

    def groups(self) -> list[str]:
        return list(self._groups)

    def _load(self, group: str) -> list[str]:
        if group in self._docs:
            return self._docs[group]
        if group not in self._groups:
            raise DataError(f"unknown group {group!r}; embedded groups: {self._groups}")
        entry = self._manifest["groups"][group]
        data = _read_resource(entry["file"])
        digest = hashlib.sha256(data).hexdigest()
        if digest != entry["sha256"]:
            raise DataError(f"embedded file {entry['file']!r} has sha256 {digest}, SOURCES.json records "
                            f"{entry['sha256']}; reinstall raymix or rebuild with scripts/make_embedded_data.py")
        docs = []
        for lineno, line in enumerate(gzip.decompress(data).decode("utf-8").splitlines(), start=1):
            try:
                text = json.loads(line)["text"]
            except (json.JSONDecodeError, KeyError, TypeError) as e:
                raise DataError(f"embedded {entry['file']}:{lineno} is not a {{\"text\": ...}} JSON line") from e
            if isinstance(text, str) and text.strip():
                docs.append(text)
        if not docs:
            raise EmptyGroupError(f"embedded group {group!r} ({entry['file']}) holds no documents")
        self._docs[group] = docs
        return docs

    def iter_documents(self, group: str) -> Iterator[str]:
        yield from self._load(group)

    def describe(self) -> dict[str, Any]:
        groups = {}
        for g in self._groups:
            e = self._manifest["groups"][g]
            groups[g] = {k: e[k] for k in ("file", "sha256", "license", "documents", "text_bytes", "source")
                         if k in e}
        return {"kind": self.name, "builder": self._manifest.get("builder"), "groups": groups}
