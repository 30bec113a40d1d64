"""Shard building on Ray Data: layout, manifest, splits, packing with EOS, atomic output, bad inputs."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from conftest import MemorySource, make_documents, tiny_corpus

from raymix.data.manifest import SPLITS, Manifest, load_manifest
from raymix.data.reader import load_eval_documents, load_eval_set, read_group_windows, window_documents
from raymix.data.shards import assign_splits, build_shards
from raymix.data.tokenizer import check_compatible, load_tokenizer, train_bpe
from raymix.errors import (
    ConfigError,
    DataError,
    EmptyGroupError,
    RaymixError,
    ShardError,
    SplitNotFoundError,
    TokenizerMismatchError,
)

pytestmark = pytest.mark.ray


def test_layout_and_manifest(shard_dir: Path):
    m = load_manifest(shard_dir)
    assert m.groups == ["code", "prose", "web"] and m.seq_len == 32 and m.vocab_size == 300
    assert m.splits == list(SPLITS)
    for s in SPLITS:
        for g in m.groups:
            files = sorted((shard_dir / s / f"group={g}").glob("part-*.parquet"))
            assert [str(f.relative_to(shard_dir)) for f in files] == [e.path for e in m.files_for(s, g)]
            st = m.stats[s][g]
            assert st.sequences > 0 and st.tokens == st.sequences * 32
            table = pq.read_table(files[0])
            assert table.column_names == ["input_ids", "group"]
            assert set(table.column("group").to_pylist()) == {g}
            assert table.schema.field("input_ids").type.list_size == 32
    assert len(m.files_for("train", "code")) >= 2  # rows_per_file=64 splits train into several parts
    assert (shard_dir / "tokenizer.json").is_file()
    check_compatible(m, load_tokenizer(shard_dir))
    assert m.sources["kind"] == "memory"
    assert m.split_fractions == pytest.approx({"train": 0.8, "val": 0.1, "test": 0.1})


def test_manifest_roundtrip(shard_dir: Path):
    m = load_manifest(shard_dir)
    again = Manifest.from_json(m.to_json())
    assert again == m
    assert json.loads(again.to_json()) == json.loads((shard_dir / "manifest.json").read_text())


def test_split_determinism():
    a = assign_splits(200, 0.1, seed=0, group="code")
    assert np.array_equal(a, assign_splits(200, 0.1, seed=0, group="code"))
    assert not np.array_equal(a, assign_splits(200, 0.1, seed=1, group="code"))
    assert not np.array_equal(a, assign_splits(200, 0.1, seed=0, group="web"))
    counts = np.bincount(a, minlength=3)
    assert counts.tolist() == [180, 10, 10]  # held-out documents halved into val and test
    tiny = np.bincount(assign_splits(3, 0.01, 0, "g"), minlength=3)
    assert tiny.tolist() == [1, 1, 1]  # val and test always get a document


def _eos_positions_are_document_ends(windows: np.ndarray, docs_ids: list[list[int]], eos: int) -> None:
    stream = np.concatenate([np.asarray(d + [eos], dtype=np.int32) for d in docs_ids])
    flat = windows.reshape(-1)
    assert np.array_equal(flat, stream[: len(flat)])


def test_packing_puts_eos_between_documents(tmp_path: Path, ray_runtime):
    docs = {g: make_documents(g, 12, min_words=5, max_words=15) for g in ("a", "b")}
    tok = train_bpe([d for v in docs.values() for d in v], vocab_size=300)
    m = build_shards(MemorySource(docs), tmp_path / "s", tokenizer=tok, seq_len=8, heldout_fraction=0.25, seed=3)
    for g in ("a", "b"):
        codes = assign_splits(12, 0.25, 3, g)
        for code, split in enumerate(SPLITS):
            ids = [tok.encode(d, add_special_tokens=False).ids for d, c in zip(docs[g], codes, strict=True)
                   if c == code]
            windows = read_group_windows(tmp_path / "s", split, g, manifest=m)
            _eos_positions_are_document_ends(windows, ids, m.eos_id)
            assert m.stats[split][g].documents == len(ids)
            total = sum(len(x) + 1 for x in ids)
            assert m.stats[split][g].tokens + m.stats[split][g].dropped_tokens == total


def test_same_seed_same_files_different_seed_different_split(tmp_path: Path, ray_runtime):
    src = MemorySource(tiny_corpus(30))
    tok = train_bpe([d for v in src.docs.values() for d in v], vocab_size=300)
    kw = dict(tokenizer=tok, seq_len=16, heldout_fraction=0.2)
    m1 = build_shards(src, tmp_path / "a", seed=5, **kw)
    m2 = build_shards(src, tmp_path / "b", seed=5, **kw)
    m3 = build_shards(src, tmp_path / "c", seed=6, **kw)
    assert [f.sha256 for f in m1.files] == [f.sha256 for f in m2.files]
    assert [f.sha256 for f in m1.files] != [f.sha256 for f in m3.files]


def test_eval_set_is_fixed_and_spread_over_documents(shard_dir: Path):
    ev = load_eval_set(shard_dir, "val", max_examples_per_group=5)
    assert set(ev) == {"code", "prose", "web"}
    eos = load_manifest(shard_dir).eos_id
    for g, arr in ev.items():
        assert arr.shape == (5, 32) and arr.dtype == np.int32
        assert np.array_equal(arr, load_eval_set(shard_dir, "val", 5)[g])  # the same windows every time
        every = read_group_windows(shard_dir, "val", g)
        docs = window_documents(every, eos)
        rows = [int(np.flatnonzero((every == w).all(axis=1))[0]) for w in arr]
        assert rows == sorted(rows)  # file order
        # 5 windows from min(5, #documents) documents — the first 5 windows cover fewer
        assert len(set(docs[rows])) == min(5, docs.max() + 1) > len(set(docs[:5]))
    # The documents of the (non-contiguous) cached windows, and subsets of them spread over those documents.
    docs = load_eval_documents(shard_dir, "val", 5)
    for g, arr in ev.items():
        every = read_group_windows(shard_dir, "val", g)
        rows = [int(np.flatnonzero((every == w).all(axis=1))[0]) for w in arr]
        np.testing.assert_array_equal(docs[g], window_documents(every, eos)[rows])
    from raymix.model.evaluation import GroupEvaluator

    evaluator = GroupEvaluator(list(ev), {"val": ev}, documents={"val": docs}, subset_seed=1)
    for g, idx in zip(ev, evaluator.subset("val", 3)):
        assert len(set(docs[g][idx])) == min(3, len(set(docs[g])))
    full = load_eval_set(shard_dir, "test")
    assert full["code"].shape[0] == load_manifest(shard_dir).stats["test"]["code"].sequences


# ---- bad inputs ---------------------------------------------------------------------------------------------


def test_empty_group_is_clear(tmp_path: Path, ray_runtime):
    docs = tiny_corpus(10)
    docs["empty"] = []
    with pytest.raises(EmptyGroupError, match="'empty'"):
        build_shards(MemorySource(docs), tmp_path / "s", vocab_size=300, seq_len=16)
    assert not (tmp_path / "s").exists()


def test_text_with_no_tokens_is_clear(tmp_path: Path, ray_runtime):
    docs = tiny_corpus(10)
    docs["code"][4] = ""
    with pytest.raises(DataError, match="document 4 of group 'code' tokenizes to no tokens"):
        build_shards(MemorySource(docs), tmp_path / "s", vocab_size=300, seq_len=16)
    assert not (tmp_path / "s").exists()
    assert [p.name for p in tmp_path.iterdir()] == []  # temp directory removed too


def test_too_few_tokens_for_a_window_says_what_to_change(tmp_path: Path, ray_runtime):
    with pytest.raises(EmptyGroupError, match=r"fewer than one window of seq_len=4096.*lower --seq-len"):
        build_shards(MemorySource(tiny_corpus(10)), tmp_path / "s", vocab_size=300, seq_len=4096)


def test_failure_mid_build_leaves_nothing_complete(tmp_path: Path, ray_runtime):
    src = MemorySource(tiny_corpus(20))
    tok = train_bpe([d for v in src.docs.values() for d in v], vocab_size=300)
    src.fail_after = 60 + 25  # 60 documents: passes the counting pass, fails inside the tokenize/pack pass
    with pytest.raises(OSError, match="simulated"):
        build_shards(src, tmp_path / "s", tokenizer=tok, seq_len=16)
    assert list(tmp_path.iterdir()) == []
    # an existing good build survives a failed --overwrite rebuild untouched
    src.fail_after = None
    good = build_shards(src, tmp_path / "s", tokenizer=tok, seq_len=16)
    src.fail_after, src._yielded = 60 + 10, 0
    with pytest.raises(OSError):
        build_shards(src, tmp_path / "s", tokenizer=tok, seq_len=16, overwrite=True)
    assert load_manifest(tmp_path / "s") == good
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s"]


def test_existing_output_needs_overwrite_and_must_be_shards(tmp_path: Path, ray_runtime):
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "precious.txt").write_text("x")
    with pytest.raises(ConfigError, match="overwrite"):
        build_shards(MemorySource(tiny_corpus(10)), tmp_path / "s", vocab_size=300, seq_len=16)
    with pytest.raises(ConfigError, match="not a shard directory"):
        build_shards(MemorySource(tiny_corpus(10)), tmp_path / "s", vocab_size=300, seq_len=16, overwrite=True)
    assert (tmp_path / "s" / "precious.txt").is_file()


def test_bad_arguments(tmp_path: Path):
    src = MemorySource(tiny_corpus(10))
    with pytest.raises(ConfigError, match="exactly one of tokenizer"):
        build_shards(src, tmp_path / "s")
    with pytest.raises(ConfigError, match="heldout_fraction=1.5"):
        build_shards(src, tmp_path / "s", vocab_size=300, heldout_fraction=1.5)
    with pytest.raises(ConfigError, match="seq_len=1"):
        build_shards(src, tmp_path / "s", vocab_size=300, seq_len=1)


def test_missing_split_and_file_and_corrupt_shard(shard_dir: Path, tmp_path: Path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(shard_dir, copy)
    with pytest.raises(SplitNotFoundError, match="'dev'"):
        load_manifest(copy, split="dev")
    with pytest.raises(SplitNotFoundError):
        load_eval_set(copy, "dev")
    m = load_manifest(copy)
    target = copy / m.files[3].path
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.write_bytes(bytes(data))
    with pytest.raises(ShardError, match=r"corrupt or was replaced: sha256 [0-9a-f]{64} but the manifest says"):
        load_manifest(copy)
    os.remove(target)
    with pytest.raises(ShardError, match=f"{m.files[3].path}.*missing"):
        load_manifest(copy)
    assert load_manifest(copy, verify=False) == m
    os.remove(copy / "manifest.json")
    with pytest.raises(ShardError, match="manifest.json' is missing"):
        load_manifest(copy)


def test_tokenizer_mismatch_against_shards(shard_dir: Path):
    m = load_manifest(shard_dir)
    other = train_bpe(make_documents("web", 30), vocab_size=300)
    with pytest.raises(TokenizerMismatchError, match=m.tokenizer.sha256):
        check_compatible(m, other)
    with pytest.raises(TokenizerMismatchError, match="vocab_size=256"):
        check_compatible(m, 256)


def test_errors_are_raymix_errors():
    for e in (EmptyGroupError, ShardError, SplitNotFoundError, TokenizerMismatchError, DataError):
        assert issubclass(e, RaymixError)
