"""The contract between data streaming and training: a batch of group-tagged token windows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np


@dataclass
class Batch:
    """One training batch.

    Attributes:
        input_ids: ``(B, T)`` int64 token ids; each row is a fixed-length packed window of documents
            separated by EOS (labels are the inputs shifted by one inside the model).
        groups: ``(B,)`` int64 index of each row's group in the sampler's ``groups``.
    """

    input_ids: np.ndarray
    groups: np.ndarray

    def __len__(self) -> int:
        return int(self.input_ids.shape[0])


@runtime_checkable
class BatchSource(Protocol):
    """What a trainer consumes: batches composed per example from mixture proportions.

    Implemented by :class:`raymix.data.sampler.MixtureSampler` (local reader or Ray Data streams).
    ``next_batch`` takes exactly one of ``mixture`` (``(m,)`` proportions: per-batch group counts are
    drawn ``~ Multinomial(batch_size, p)`` from the source's own RNG) or ``counts`` (``(m,)`` fixed
    non-negative integer counts summing to ``batch_size``).  ``state_dict`` captures the RNG and every
    group's read position so that after ``load_state_dict`` the next batches are identical.
    """

    groups: tuple[str, ...]
    batch_size: int
    seq_len: int

    def next_batch(self, mixture: np.ndarray | None = None, *, counts: np.ndarray | None = None,
                   batch_size: int | None = None) -> Batch: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...
