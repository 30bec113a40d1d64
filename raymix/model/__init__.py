"""GPT-NeoX (Pythia-style) models, AdamW + warmup/cosine schedule, and per-group evaluation (no Ray)."""

from raymix.model.evaluation import GroupEvaluator, average_perplexity, perplexity
from raymix.model.gpt import (
    build_model,
    count_parameters,
    flash_attention_available,
    neox_config,
    resolve_attention,
    token_losses,
)
from raymix.model.optim import WarmupCosineSchedule, build_optimizer, decay_groups
from raymix.model.presets import PRESETS, ModelConfig, available_presets, resolve_model_config

__all__ = [
    "PRESETS",
    "GroupEvaluator",
    "ModelConfig",
    "WarmupCosineSchedule",
    "available_presets",
    "average_perplexity",
    "build_model",
    "build_optimizer",
    "count_parameters",
    "decay_groups",
    "flash_attention_available",
    "neox_config",
    "perplexity",
    "resolve_attention",
    "resolve_model_config",
    "token_losses",
]
