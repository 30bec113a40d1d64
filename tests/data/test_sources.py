"""FolderSource and HFSource on small files generated in the test (no network)."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from raymix.data.corpus import CorpusSource
from raymix.data.sources import SLIMPAJAMA_GROUPS, FolderSource, HFSource, clean_group_name
from raymix.errors import ConfigError, DataError, EmptyGroupError, RaymixError, SourceUnavailableError

# ------------------------------------------------------------------------------------------------ folders


@pytest.fixture()
def tree(tmp_path):
    root = tmp_path / "corpus"
    (root / "code" / "sub").mkdir(parents=True)
    (root / "code" / "b.txt").write_text("print('b')\n")
    (root / "code" / "a.txt").write_text("print('a')\n")
    (root / "code" / "sub" / "c.txt").write_text("print('c')\n")
    (root / "code" / "notes.md").write_text("ignored suffix")
    (root / "code" / ".hidden.txt").write_text("hidden file is skipped")
    (root / "books").mkdir()
    (root / "books" / "x.jsonl").write_text(
        json.dumps({"text": "Call me Ishmael."}) + "\n\n" + json.dumps({"text": "It was the best of times."}) + "\n"
    )
    pq.write_table(pa.table({"text": ["Parquet doc one.", "", "Parquet doc two."], "id": [1, 2, 3]}),
                   root / "books" / "y.parquet")
    return root


def test_folder_groups_documents_and_order(tree):
    src = FolderSource(tree)
    assert isinstance(src, CorpusSource)
    assert src.groups() == ["books", "code"]
    # sorted relative paths: a.txt, b.txt, sub/c.txt; hidden and .md skipped
    assert list(src.iter_documents("code")) == ["print('a')\n", "print('b')\n", "print('c')\n"]
    # jsonl before parquet (sorted names), empty parquet value skipped
    assert list(src.iter_documents("books")) == ["Call me Ishmael.", "It was the best of times.",
                                                 "Parquet doc one.", "Parquet doc two."]
    assert list(src.iter_documents("books")) == list(src.iter_documents("books"))  # deterministic passes


def test_folder_paragraph_mode(tmp_path):
    (tmp_path / "g").mkdir()
    (tmp_path / "g" / "p.txt").write_text("para one\nline two\n\n  \npara two\r\n\r\npara three\n")
    src = FolderSource(tmp_path, txt_mode="paragraphs")
    assert list(src.iter_documents("g")) == ["para one\nline two", "para two", "para three"]
    with pytest.raises(ConfigError, match="'sentences'"):
        FolderSource(tmp_path, txt_mode="sentences")


def test_folder_describe_counts_and_digest(tree):
    d = FolderSource(tree).describe()
    assert d["kind"] == "folders"
    assert d["groups"]["code"]["files"] == 3
    assert d["groups"]["code"]["bytes"] == 3 * len("print('a')\n")
    assert d["groups"]["books"]["files"] == 2
    before = d["groups"]["code"]["sha256"]
    assert len(before) == 64
    (tree / "code" / "a.txt").write_text("print('a changed')\n")
    after = FolderSource(tree).describe()["groups"]["code"]["sha256"]
    assert after != before
    assert FolderSource(tree).describe()["groups"]["books"]["sha256"] == d["groups"]["books"]["sha256"]


def test_folder_errors(tmp_path):
    with pytest.raises(SourceUnavailableError, match="nope"):
        FolderSource(tmp_path / "nope")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(DataError, match="no sub-folders"):
        FolderSource(tmp_path)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "blank.txt").write_text("   \n")
    src = FolderSource(tmp_path)
    with pytest.raises(EmptyGroupError, match="'empty'") as ei:
        list(src.iter_documents("empty"))
    assert str(tmp_path / "empty") in str(ei.value)
    with pytest.raises(DataError, match="unknown group 'other'"):
        list(src.iter_documents("other"))
    (tmp_path / "bad name").mkdir()
    with pytest.raises(DataError, match="'bad name'"):
        FolderSource(tmp_path)


def test_folder_bad_jsonl_line_quotes_file_and_line(tmp_path):
    (tmp_path / "g").mkdir()
    f = tmp_path / "g" / "d.jsonl"
    f.write_text('{"text": "ok"}\n{"text": broken}\n')
    src = FolderSource(tmp_path)
    with pytest.raises(DataError, match=rf"{f}:2"):
        list(src.iter_documents("g"))
    f.write_text('{"text": "ok"}\n{"body": "no text"}\n')
    with pytest.raises(DataError, match=rf"{f}:2.*'text'"):
        list(src.iter_documents("g"))


def test_folder_unreadable_file_quotes_path(tmp_path):
    (tmp_path / "g").mkdir()
    f = tmp_path / "g" / "latin.txt"
    f.write_bytes(b"caf\xe9 cr\xe8me")
    with pytest.raises(SourceUnavailableError, match="latin.txt") as ei:
        list(FolderSource(tmp_path).iter_documents("g"))
    assert isinstance(ei.value, RaymixError)
    # the encoding is configurable
    assert list(FolderSource(tmp_path, encoding="latin-1").iter_documents("g")) == ["café crème"]


def test_folder_parquet_without_text_column(tmp_path):
    (tmp_path / "g").mkdir()
    pq.write_table(pa.table({"content": ["x"]}), tmp_path / "g" / "d.parquet")
    with pytest.raises(DataError, match="no column 'text'.*content"):
        list(FolderSource(tmp_path).iter_documents("g"))
    assert list(FolderSource(tmp_path, text_field="content").iter_documents("g")) == ["x"]


# ------------------------------------------------------------------------------------------ hugging face

ROWS = [
    ("def f():\n    return 1\n", "RedPajamaGithub"),
    ("The cat sat on the mat.", "RedPajamaC4"),
    ("import os\n", "RedPajamaGithub"),
    ("Chapter 1. It was a dark night.", "RedPajamaBook"),
    ("Another web page.", "RedPajamaC4"),
    ("class A: pass\n", "RedPajamaGithub"),
]


def _slimpajama_rows():
    return [{"text": t, "meta": {"redpajama_set_name": g}} for t, g in ROWS]


@pytest.fixture()
def sp_parquet(tmp_path):
    d = tmp_path / "sp_parquet"
    d.mkdir()
    rows = _slimpajama_rows()
    pq.write_table(pa.Table.from_pylist(rows[:3]), d / "train-00000.parquet")
    pq.write_table(pa.Table.from_pylist(rows[3:]), d / "train-00001.parquet")
    return d


@pytest.fixture()
def sp_jsonl(tmp_path):
    f = tmp_path / "sp.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in _slimpajama_rows()))
    return f


def test_clean_group_names():
    assert {clean_group_name(k) for k in SLIMPAJAMA_GROUPS} == {
        "github", "arxiv", "book", "c4", "commoncrawl", "stackexchange", "wikipedia"}
    assert clean_group_name("RedPajamaNewSet") == "newset"
    assert clean_group_name("Web Text!") == "web_text"
    with pytest.raises(DataError, match="'!!'"):
        clean_group_name("!!")


@pytest.mark.parametrize("fixture", ["sp_parquet", "sp_jsonl"])
def test_hf_slimpajama_schema(request, fixture, tmp_path):
    path = request.getfixturevalue(fixture)
    src = HFSource(str(path), cache_dir=tmp_path / "hf_cache")
    assert src.groups() == ["book", "c4", "github"]
    assert list(src.iter_documents("github")) == [ROWS[0][0], ROWS[2][0], ROWS[5][0]]
    assert list(src.iter_documents("c4")) == [ROWS[1][0], ROWS[4][0]]
    d = src.describe()
    assert d["kind"] == "hf" and d["groups"]["github"]["documents"] == 3
    assert len(d["sha256"]) == 64


def test_hf_group_selection_and_cap(sp_parquet, tmp_path):
    src = HFSource(str(sp_parquet), groups=["github", "book"], max_docs_per_group=2, cache_dir=tmp_path / "c")
    assert src.groups() == ["book", "github"]
    assert list(src.iter_documents("github")) == [ROWS[0][0], ROWS[2][0]]
    with pytest.raises(DataError, match="'c4'"):
        list(src.iter_documents("c4"))
    with pytest.raises(EmptyGroupError, match="wikipedia"):
        HFSource(str(sp_parquet), groups=["wikipedia"], cache_dir=tmp_path / "c").groups()
    with pytest.raises(ConfigError, match="max_docs_per_group=0"):
        HFSource(str(sp_parquet), max_docs_per_group=0)


def test_hf_streaming_matches_map_style(sp_jsonl, tmp_path):
    full = HFSource(str(sp_jsonl), cache_dir=tmp_path / "c")
    stream = HFSource(str(sp_jsonl), streaming=True, cache_dir=tmp_path / "c")
    assert stream.groups() == full.groups()
    for g in full.groups():
        assert list(stream.iter_documents(g)) == list(full.iter_documents(g))
    capped = HFSource(str(sp_jsonl), streaming=True, max_docs_per_group=1, groups=["github"])
    assert list(capped.iter_documents("github")) == [ROWS[0][0]]


def test_hf_flat_group_column(tmp_path):
    f = tmp_path / "flat.parquet"
    pq.write_table(pa.table({"content": ["a", "b", "c"], "domain": ["Law", "Med", "Law"]}), f)
    src = HFSource(str(f), text_field="content", group_field="domain", cache_dir=tmp_path / "c")
    assert src.groups() == ["law", "med"]
    assert list(src.iter_documents("law")) == ["a", "c"]
    with pytest.raises(DataError, match="no text field 'text'"):
        HFSource(str(f), group_field="domain", cache_dir=tmp_path / "c").groups()
    with pytest.raises(DataError, match="no group field 'meta.redpajama_set_name'"):
        HFSource(str(f), text_field="content", cache_dir=tmp_path / "c").groups()


def test_hf_missing_local_path(tmp_path):
    with pytest.raises(SourceUnavailableError, match="does not exist"):
        HFSource(str(tmp_path / "missing.parquet"))


def test_hf_hub_unreachable_is_source_unavailable(monkeypatch):
    import datasets

    calls = []

    def offline(*args, **kwargs):
        calls.append(args)
        raise ConnectionError("Couldn't reach 'DKYoon/SlimPajama-6B' on the Hub (LocalEntryNotFoundError)")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    src = HFSource("DKYoon/SlimPajama-6B")  # construction does no I/O
    assert calls == []
    with pytest.raises(SourceUnavailableError, match="DKYoon/SlimPajama-6B.*local") as ei:
        src.groups()
    assert calls == [("DKYoon/SlimPajama-6B",)]
    assert isinstance(ei.value, DataError)
