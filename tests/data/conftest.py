"""Shared fixtures for the data tests: in-memory corpus sources, a tiny built shard directory, a Ray runtime."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from raymix.data.corpus import CorpusSource

_WORDS = {
    "code": "def class return import self lambda yield for while if else try except raise with as pass".split(),
    "prose": "the king spoke unto his people and they were glad of heart for the harvest was great".split(),
    "web": "subscribe click here newsletter unsubscribe http www com free offer reply thread list".split(),
}


def make_documents(group: str, n: int, seed: int = 0, min_words: int = 20, max_words: int = 80) -> list[str]:
    """Deterministic pseudo-documents with a group-specific vocabulary (so BPE learns distinct merges)."""
    rng = random.Random(f"{group}-{seed}")
    words = _WORDS.get(group, _WORDS["prose"])
    return [f"{group} doc {i}: " + " ".join(rng.choice(words) for _ in range(rng.randint(min_words, max_words)))
            for i in range(n)]


class MemorySource(CorpusSource):
    """A CorpusSource over in-memory documents: ``{group: [doc, ...]}``."""

    name = "memory"

    def __init__(self, docs: dict[str, list[str]], fail_after: int | None = None) -> None:
        self.docs = docs
        self.fail_after = fail_after  # raise after yielding this many documents in total (simulated failure)
        self._yielded = 0

    def groups(self) -> list[str]:
        return sorted(self.docs)

    def iter_documents(self, group: str) -> Iterator[str]:
        for d in self.docs[group]:
            if self.fail_after is not None and self._yielded >= self.fail_after:
                raise OSError("simulated read failure")
            self._yielded += 1
            yield d

    def describe(self) -> dict:
        return {"kind": self.name, "groups": {g: {"documents": len(d)} for g, d in self.docs.items()}}


def tiny_corpus(n_docs: int = 60) -> dict[str, list[str]]:
    return {g: make_documents(g, n_docs) for g in ("code", "prose", "web")}


@pytest.fixture(scope="session")
def shard_dir(tmp_path_factory, ray_runtime) -> Path:
    """A tiny shard directory: 3 groups × 60 documents, BPE vocab 300, seq_len 32, 2 files per train group."""
    from raymix.data.shards import build_shards

    out = tmp_path_factory.mktemp("shards") / "tiny"
    build_shards(MemorySource(tiny_corpus()), out, vocab_size=300, seq_len=32, heldout_fraction=0.2, seed=0,
                 rows_per_file=64)
    return out
