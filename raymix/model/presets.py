"""GPT-NeoX (Pythia-style) model configurations and the named presets raymix trains.

The paper trains Pythia-160M's configuration from scratch (App. D: 12 layers, width 768, 12 heads,
context 2048, rotary embeddings on 25% of each head, parallel residual).  The smaller presets keep the
same architecture family so that every method runs on a laptop CPU with the same code path:

=============  ======  =====  =====  =======  ==================================
preset         layers  width  heads  context  use
=============  ======  =====  =====  =======  ==================================
``tiny``       2       128    4      128      tests, ``raymix demo`` (~2.5M params at an 8k vocab)
``small``      4       256    4      256      CPU experiments
``medium``     6       384    6      256      CPU / small GPU experiments
``pythia-160m``12      768    12     2048     the paper's setting (GPU)
=============  ======  =====  =====  =======  ==================================

``vocab_size`` is the tokenizer's vocabulary and is normally left ``None`` in a preset: it is filled in
from the data's manifest (:func:`raymix.train.model_backend.from_shards`), and a model whose vocabulary
disagrees with the data's raises :class:`~raymix.errors.TokenizerMismatchError`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from raymix.config import Config, check, check_range, field
from raymix.errors import ConfigError, TokenizerMismatchError

#: Attention implementations a :class:`ModelConfig` may ask for; "auto" is resolved by
#: :func:`raymix.model.gpt.resolve_attention` (flash-attn 2 on CUDA when installed, else SDPA).
ATTENTION_CHOICES = ("auto", "sdpa", "eager", "flash_attention_2")


@dataclass
class ModelConfig(Config):
    """Architecture of a GPT-NeoX causal LM (the fields map 1:1 onto ``transformers.GPTNeoXConfig``)."""

    n_layers: int = field(2, help="number of transformer blocks")
    d_model: int = field(128, help="hidden width")
    n_heads: int = field(4, help="attention heads; must divide d_model")
    d_ff: int | None = field(None, help="MLP inner width; None = 4 * d_model (GPT-NeoX default)")
    context_length: int = field(128, help="maximum sequence length (rotary positions), in tokens")
    vocab_size: int | None = field(
        None, help="tokenizer vocabulary size; None = take it from the data's manifest before building")
    vocab_multiple: int = field(
        1, help="pad the embedding/unembedding rows up to a multiple of this (Pythia pads 50277 -> 50304 "
                "with 128); padded rows are never targets")
    rotary_pct: float = field(0.25, help="fraction of each head's dimensions that get rotary embeddings")
    rotary_base: float = field(10000.0, help="rotary embedding base (theta)")
    parallel_residual: bool = field(True, help="GPT-NeoX parallel attention+MLP residual (Pythia: True)")
    layer_norm_eps: float = field(1e-5, help="LayerNorm epsilon")
    init_std: float = field(0.02, help="std of the normal weight initialization")
    tie_embeddings: bool = field(False, help="tie input embedding and output projection (Pythia: False)")
    attention: str = field("auto", help=f"attention implementation, one of {ATTENTION_CHOICES}")

    def validate(self) -> None:
        for name in ("n_layers", "d_model", "n_heads", "context_length", "vocab_multiple"):
            value = getattr(self, name)
            check(isinstance(value, int) and not isinstance(value, bool) and value >= 1,
                  f"ModelConfig.{name} must be a positive integer, got {value!r}")
        check(self.d_model % self.n_heads == 0,
              f"ModelConfig.d_model={self.d_model} is not divisible by n_heads={self.n_heads}; "
              f"choose n_heads among the divisors of d_model")
        head_dim = self.d_model // self.n_heads
        rotary_dims = int(head_dim * self.rotary_pct)
        check(rotary_dims % 2 == 0,
              f"ModelConfig.rotary_pct={self.rotary_pct} gives {rotary_dims} rotary dimensions per head "
              f"(head_dim={head_dim}); rotary embeddings need an even count")
        if self.d_ff is not None:
            check(isinstance(self.d_ff, int) and self.d_ff >= 1,
                  f"ModelConfig.d_ff must be a positive integer or None, got {self.d_ff!r}")
        if self.vocab_size is not None:
            check(isinstance(self.vocab_size, int) and not isinstance(self.vocab_size, bool)
                  and self.vocab_size >= 2,
                  f"ModelConfig.vocab_size must be an integer >= 2 or None (taken from the data), "
                  f"got {self.vocab_size!r}")
        check_range("ModelConfig.rotary_pct", self.rotary_pct, 0.0, 1.0)
        check_range("ModelConfig.rotary_base", self.rotary_base, 0.0, lo_open=True)
        check_range("ModelConfig.layer_norm_eps", self.layer_norm_eps, 0.0, lo_open=True)
        check_range("ModelConfig.init_std", self.init_std, 0.0, lo_open=True)
        check(self.attention in ATTENTION_CHOICES,
              f"ModelConfig.attention must be one of {ATTENTION_CHOICES}, got {self.attention!r}")

    @property
    def ffn_width(self) -> int:
        """MLP inner width actually used."""
        return self.d_ff if self.d_ff is not None else 4 * self.d_model

    @property
    def padded_vocab_size(self) -> int:
        """Rows of the embedding matrix: ``vocab_size`` rounded up to ``vocab_multiple``."""
        if self.vocab_size is None:
            raise ConfigError("ModelConfig.vocab_size is None; set it from the tokenizer/manifest with "
                              "config.with_vocab(manifest.vocab_size) before building the model")
        return int(math.ceil(self.vocab_size / self.vocab_multiple) * self.vocab_multiple)

    def with_vocab(self, data_vocab_size: int) -> ModelConfig:
        """This config with ``vocab_size`` set to the data's vocabulary.

        Raises :class:`TokenizerMismatchError` when ``vocab_size`` is already set to another value: token
        ids of the data would index the wrong (or missing) embedding rows.
        """
        if self.vocab_size is None:
            return self.replace(vocab_size=int(data_vocab_size))
        if int(self.vocab_size) != int(data_vocab_size):
            raise TokenizerMismatchError(
                f"model vocab_size={self.vocab_size} but the data's tokenizer has vocab_size={data_vocab_size}; "
                f"leave ModelConfig.vocab_size=None to take it from the data, or rebuild the shards with the "
                f"model's tokenizer")
        return self

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> ModelConfig:
        """The named preset (see the module docstring), with ``overrides`` applied to its fields."""
        if name not in PRESETS:
            raise ConfigError(f"unknown model preset {name!r}; valid presets: {sorted(PRESETS)}")
        values = dict(PRESETS[name])
        values.update(overrides)
        return cls.from_dict(values)


#: Field values of each named preset (plain dicts so they round-trip through Tune's param_space).
PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {"n_layers": 2, "d_model": 128, "n_heads": 4, "context_length": 128},
    "small": {"n_layers": 4, "d_model": 256, "n_heads": 4, "context_length": 256},
    "medium": {"n_layers": 6, "d_model": 384, "n_heads": 6, "context_length": 256},
    # EleutherAI/pythia-160m config.json: hidden 768, 12 layers, 12 heads, intermediate 3072,
    # max_position_embeddings 2048, rotary_pct 0.25, rotary_emb_base 10000, use_parallel_residual,
    # untied embeddings, vocab padded to 50304 (tokenizer 50277).
    "pythia-160m": {"n_layers": 12, "d_model": 768, "n_heads": 12, "d_ff": 3072, "context_length": 2048,
                    "rotary_pct": 0.25, "rotary_base": 10000.0, "parallel_residual": True,
                    "tie_embeddings": False, "vocab_multiple": 128},
}


def available_presets() -> list[str]:
    """Names accepted by :meth:`ModelConfig.from_preset`."""
    return sorted(PRESETS)


def resolve_model_config(spec: ModelConfig | str | dict[str, Any]) -> ModelConfig:
    """Accept a config, a preset name or a ``to_dict()`` dict (as found in a Tune ``param_space``)."""
    if isinstance(spec, ModelConfig):
        return spec
    if isinstance(spec, str):
        return ModelConfig.from_preset(spec)
    if isinstance(spec, dict):
        return ModelConfig.from_dict(spec)
    raise ConfigError(f"model config must be a ModelConfig, a preset name {available_presets()} or a dict, "
                      f"got {type(spec).__name__} {spec!r}")
