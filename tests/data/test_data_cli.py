"""`raymix data build` / `raymix data info` through a parser built with `register`."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from conftest import make_documents

from raymix.data.cli import register
from raymix.data.manifest import load_manifest
from raymix.errors import RaymixError

pytestmark = pytest.mark.ray


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="raymix")
    register(p.add_subparsers(dest="command", required=True))
    return p


def _run(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    return args.func(args)


def test_help_and_required_source(capsys):
    with pytest.raises(SystemExit):
        _parser().parse_args(["data", "build", "--out", "x"])  # no corpus chosen
    assert "one of the arguments" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        _parser().parse_args(["data", "build", "--folders", "a", "--embedded", "--out", "x"])


def test_groups_select_a_preset_subset():
    from raymix.data.cli import make_source

    args = _parser().parse_args(["data", "build", "--preset", "realmix", "--groups", "code, speeches", "--out", "x"])
    assert make_source(args).groups() == ["code", "speeches"]
    args = _parser().parse_args(["data", "build", "--embedded", "--groups", "code", "--out", "x"])
    with pytest.raises(RaymixError, match="--groups 'code' selects groups of a --preset"):
        make_source(args)
    args = _parser().parse_args(["data", "build", "--preset", "realmix", "--groups", "code,wiki", "--out", "x"])
    with pytest.raises(RaymixError, match="wiki"):
        make_source(args)


def test_build_from_folders_then_info(tmp_path: Path, ray_runtime, capsys):
    corpus = tmp_path / "corpus"
    for g in ("code", "prose"):
        (corpus / g).mkdir(parents=True)
        for i, doc in enumerate(make_documents(g, 24)):
            (corpus / g / f"{i:03d}.txt").write_text(doc)
    out = tmp_path / "shards"
    assert _run(["data", "build", "--folders", str(corpus), "--out", str(out), "--seq-len", "16",
                 "--vocab-size", "300", "--heldout-fraction", "0.25", "--seed", "1"]) == 0
    cap = capsys.readouterr()
    assert "tokenized 48/48 documents" in cap.err and "wrote" in cap.err  # progress on stderr
    m = load_manifest(out)
    assert m.groups == ["code", "prose"] and m.seq_len == 16 and m.vocab_size == 300 and m.seed == 1
    assert m.sources["kind"] == "folders"
    assert _run(["data", "info", str(out), "--verify"]) == 0
    info = capsys.readouterr().out
    for g in m.groups:
        for s in ("train", "val", "test"):
            st = m.stats[s][g]
            assert f"{g:<16}{s:<7}{st.documents:>11,}{st.sequences:>11,}{st.tokens:>14,}" in info
    assert m.tokenizer.sha256 in info and "seq_len: 16" in info
    # a second build into the same directory needs --overwrite
    with pytest.raises(RaymixError, match="overwrite"):
        _run(["data", "build", "--folders", str(corpus), "--out", str(out), "--vocab-size", "300"])


def test_info_on_a_non_shard_directory_is_clear(tmp_path: Path):
    with pytest.raises(RaymixError, match="manifest.json"):
        _run(["data", "info", str(tmp_path)])


def test_build_embedded_smoke(tmp_path: Path, ray_runtime):
    pytest.importorskip("raymix.data.embedded")
    out = tmp_path / "emb"
    assert _run(["data", "build", "--embedded", "--out", str(out), "--seq-len", "64", "--vocab-size", "512",
                 "--max-docs-per-group", "40"]) == 0
    m = load_manifest(out)
    assert len(m.groups) >= 3 and all(m.stats["train"][g].sequences > 0 for g in m.groups)
