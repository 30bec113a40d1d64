"""The embedded default corpus shipped inside the package (no download)."""

from __future__ import annotations

import gzip
import json
from importlib import resources
from pathlib import Path

import pytest

from raymix.data import embedded
from raymix.data.corpus import CorpusSource
from raymix.data.embedded import EmbeddedSource, embedded_manifest
from raymix.errors import ConfigError, DataError, SourceUnavailableError

DATA_DIR = Path(str(resources.files("raymix.data").joinpath("embedded")))


def test_at_least_three_real_domains_of_useful_size():
    src = EmbeddedSource()
    assert isinstance(src, CorpusSource) and src.name == "embedded"
    groups = src.groups()
    assert groups == sorted(groups) and len(groups) >= 3
    assert {"code", "books", "speeches"} <= set(groups)
    for g in groups:
        docs = list(src.iter_documents(g))
        size = sum(len(d.encode("utf-8")) for d in docs)
        assert 500_000 <= size <= 2_000_000, (g, size)
        assert all(isinstance(d, str) and d.strip() for d in docs)
        assert len(docs) >= 10
        assert size == embedded_manifest()["groups"][g]["text_bytes"]


def test_content_is_the_real_domain():
    src = EmbeddedSource()
    code = "\n".join(src.iter_documents("code"))
    assert code.count("def ") > 500 and "import " in code
    books = "\n".join(src.iter_documents("books"))
    assert books.count("LORD") > 100 and "\n\n" in books
    speeches = "\n".join(src.iter_documents("speeches"))
    assert "Congress" in speeches and "def " not in speeches
    if "reference" in src.groups():
        ref = "\n".join(src.iter_documents("reference"))
        assert "[1913 Webster]" not in ref and "{" not in ref and "[a^]" not in ref
        assert ", n." in ref


def test_shipped_size_and_provenance_recorded():
    manifest = embedded_manifest()
    total = 0
    for g, e in manifest["groups"].items():
        path = DATA_DIR / e["file"]
        total += path.stat().st_size
        assert e["license"], g
        assert len(e["sha256"]) == 64
        src = e["source"]
        assert src["component"] and src["license"] == e["license"]
        if "artefacts" in src:
            assert all(a["version"] and len(a["sha256"]) == 64 for a in src["artefacts"])
        else:  # the local CPython stdlib: version + a digest of the file list
            assert src["package"] == "cpython" and src["version"] and len(src["sha256"]) == 64
    assert total <= 3_000_000
    d = EmbeddedSource().describe()
    assert d["kind"] == "embedded" and set(d["groups"]) == set(manifest["groups"])
    assert d["groups"]["code"]["license"] == "PSF-2.0"


def test_deterministic_and_selection():
    a, b = EmbeddedSource(), EmbeddedSource(groups=["speeches", "code"])
    assert b.groups() == ["code", "speeches"]
    assert list(a.iter_documents("code")) == list(b.iter_documents("code"))
    assert list(b.iter_documents("code")) == list(b.iter_documents("code"))
    with pytest.raises(ConfigError, match=r"\['wiki'\].*code"):
        EmbeddedSource(groups=["code", "wiki"])
    with pytest.raises(DataError, match="unknown group 'books'"):
        list(b.iter_documents("books"))


def test_tampered_file_is_detected(monkeypatch):
    real = embedded._read_resource

    def tampered(name: str) -> bytes:
        data = real(name)
        if name == "code.jsonl.gz":
            return gzip.compress(gzip.decompress(data) + json.dumps({"text": "injected"}).encode() + b"\n")
        return data

    monkeypatch.setattr(embedded, "_read_resource", tampered)
    src = EmbeddedSource()
    with pytest.raises(DataError, match="code.jsonl.gz.*sha256"):
        list(src.iter_documents("code"))
    assert list(src.iter_documents("books"))


def test_missing_file_is_source_unavailable(monkeypatch):
    monkeypatch.setattr(embedded, "_DIR", "no-such-dir")
    with pytest.raises(SourceUnavailableError, match="SOURCES.json.*make_embedded_data"):
        EmbeddedSource()


def test_selection_of_whole_documents_is_seeded():
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "make_embedded_data", Path(__file__).resolve().parents[2] / "scripts" / "make_embedded_data.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    docs = [f"doc {i} " + "x" * (i % 7) * 10 for i in range(200)]
    pick = mod.select_documents(docs, 2_000, seed=0)
    assert pick == mod.select_documents(docs, 2_000, seed=0)
    assert pick != mod.select_documents(docs, 2_000, seed=1)
    assert sum(len(d) for d in pick) <= 2_000 and len(pick) > 5
    assert pick == [d for d in docs if d in set(pick)]  # source order kept, documents whole
