"""Data: corpus sources, tokenizers, group-tagged token shards, the mixture sampler and Ray Data streams.

Ray is imported only by :mod:`raymix.data.streaming` and by shard building; ``RayDataGroupStream``,
``open_ray_streams`` and ``data_resources`` are resolved lazily here so that the local reader path and
the sampler work without importing Ray.
"""

from __future__ import annotations

from typing import Any

from raymix.data.batch import Batch, BatchSource
from raymix.data.corpus import CorpusSource
from raymix.data.embedded import EmbeddedSource
from raymix.data.manifest import Manifest, load_manifest
from raymix.data.presets import PresetSource, available_presets
from raymix.data.reader import load_eval_set, read_group_windows
from raymix.data.sampler import GroupStream, LocalGroupStream, MixtureSampler, open_sampler
from raymix.data.shards import assign_splits, build_shards
from raymix.data.sources import FolderSource, HFSource
from raymix.data.tokenizer import (
    TokenizerInfo,
    check_compatible,
    load_tokenizer,
    save_tokenizer,
    tokenizer_info,
    train_bpe,
)

_LAZY_STREAMING = ("RayDataGroupStream", "open_ray_streams", "data_resources")

__all__ = [
    "Batch",
    "BatchSource",
    "CorpusSource",
    "EmbeddedSource",
    "FolderSource",
    "HFSource",
    "PresetSource",
    "available_presets",
    "GroupStream",
    "LocalGroupStream",
    "Manifest",
    "MixtureSampler",
    "TokenizerInfo",
    "assign_splits",
    "build_shards",
    "check_compatible",
    "load_eval_set",
    "load_manifest",
    "load_tokenizer",
    "open_sampler",
    "read_group_windows",
    "save_tokenizer",
    "tokenizer_info",
    "train_bpe",
    *_LAZY_STREAMING,
]


def __getattr__(name: str) -> Any:
    if name in _LAZY_STREAMING:
        from raymix.data import streaming

        return getattr(streaming, name)
    raise AttributeError(f"module 'raymix.data' has no attribute {name!r}")
