"""Training a real model for the mixing methods: :class:`ModelBackend` and :class:`TrainConfig` (no Ray)."""

from raymix.train.config import TrainConfig
from raymix.train.model_backend import ModelBackend, from_shards, stratified_counts

__all__ = ["ModelBackend", "TrainConfig", "from_shards", "stratified_counts"]
