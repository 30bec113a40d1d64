"""Fixtures for model/trainer tests: a seeded in-memory BatchSource fake and tiny configs."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from raymix.data.batch import Batch
from raymix.model.presets import ModelConfig
from raymix.train.config import TrainConfig

VOCAB = 96
SEQ_LEN = 17  # 16 next-token targets per window
GROUPS = ("code", "books", "web")


class ArraySource:
    """A BatchSource over fixed per-group token windows, read cyclically in order.

    Group counts of a batch are ``Multinomial(batch_size, p)`` from the source's own numpy Generator;
    rows are then shuffled with it.  ``state_dict`` = generator state + read positions (exact resume).
    """

    def __init__(self, windows: dict[str, np.ndarray], batch_size: int, seed: int = 0) -> None:
        self.groups = tuple(windows)
        self.windows = windows
        self.batch_size = batch_size
        self.seq_len = next(iter(windows.values())).shape[1]
        self.rng = np.random.default_rng(seed)
        self.positions = {g: 0 for g in self.groups}
        self.history: list[Batch] = []

    def next_batch(self, mixture: np.ndarray | None = None, *, counts: np.ndarray | None = None,
                   batch_size: int | None = None) -> Batch:
        n = batch_size or self.batch_size
        if counts is None:
            counts = self.rng.multinomial(n, np.asarray(mixture, dtype=float))
        counts = np.asarray(counts, dtype=np.int64)
        assert counts.sum() == n, (counts, n)
        rows, gids = [], []
        for i, g in enumerate(self.groups):
            data = self.windows[g]
            for _ in range(int(counts[i])):
                rows.append(data[self.positions[g] % len(data)])
                self.positions[g] += 1
                gids.append(i)
        order = self.rng.permutation(n)
        batch = Batch(input_ids=np.stack(rows)[order].astype(np.int64), groups=np.asarray(gids, dtype=np.int64)[order])
        self.history.append(batch)
        return batch

    def state_dict(self) -> dict[str, Any]:
        return {"rng": self.rng.bit_generator.state, "positions": dict(self.positions)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["rng"]
        self.positions = dict(state["positions"])


def make_windows(seed: int, n: int = 40, groups: tuple[str, ...] = GROUPS, seq_len: int = SEQ_LEN,
                 vocab: int = VOCAB) -> dict[str, np.ndarray]:
    """Per-group random windows; each group uses a different slice of the vocabulary so groups differ."""
    rng = np.random.default_rng(seed)
    out = {}
    for i, g in enumerate(groups):
        lo = (i * vocab) // (2 * len(groups))
        out[g] = rng.integers(lo, lo + vocab // 2, size=(n, seq_len), dtype=np.int64)
    return out


@pytest.fixture
def model_config() -> ModelConfig:
    return ModelConfig.from_preset("tiny", vocab_size=VOCAB, context_length=32, d_model=32, n_heads=2)


@pytest.fixture
def train_config() -> TrainConfig:
    return TrainConfig(batch_size=6, total_steps=20, lr=1e-3, min_lr=1e-4, warmup_steps=2, seed=0,
                       precision="fp32", device="cpu", eval_batch_size=4, eval_examples=8, threads=1)


@pytest.fixture
def make_backend(model_config, train_config):
    """Factory: a ModelBackend over ArraySources (train seed 1, val seed 2) with val/test eval sets."""
    from raymix.train.model_backend import ModelBackend

    def factory(model_cfg: ModelConfig | None = None, train_cfg: TrainConfig | None = None, *,
                source_seed: int = 1, val: bool = True, **train_changes: Any) -> ModelBackend:
        tc = (train_cfg or train_config).replace(**train_changes) if train_changes else (train_cfg or train_config)
        train_source = ArraySource(make_windows(10), tc.batch_size, seed=source_seed)
        val_source = ArraySource(make_windows(11), tc.batch_size, seed=source_seed + 1) if val else None
        eval_sets = {"val": make_windows(12, n=10), "test": make_windows(13, n=10)}
        return ModelBackend(GROUPS, model_cfg or model_config, tc, train_source, eval_sets, val_source=val_source)

    return factory


@pytest.fixture
def kit():
    """The helpers above, for test modules (tests/ is not a package, so they cannot import conftest)."""
    import types

    return types.SimpleNamespace(GROUPS=GROUPS, VOCAB=VOCAB, SEQ_LEN=SEQ_LEN, ArraySource=ArraySource,
                                 make_windows=make_windows)
