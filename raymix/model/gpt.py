"""Building the GPT-NeoX model and computing exact per-token, per-group losses from its logits.

The model is ``transformers.GPTNeoXForCausalLM`` built from a config (never downloaded).  We do not use
the library's built-in loss: it averages over the whole batch, whereas the mixing methods need exact
per-group means (paper §2: ``L_i`` is the mean token loss of group ``i``).  :func:`token_losses` returns
the unreduced fp32 cross-entropy of every next-token prediction, and :func:`group_sums` reduces it per
group without ever leaving the device.
"""

from __future__ import annotations

import contextlib
import importlib.util
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from raymix.errors import ConfigError, RaymixWarning, TokenizerMismatchError
from raymix.model.presets import ModelConfig

if TYPE_CHECKING:
    from transformers import GPTNeoXConfig


def flash_attention_available() -> bool:
    """True when the ``flash_attn`` package is importable and a CUDA device is present."""
    return importlib.util.find_spec("flash_attn") is not None and torch.cuda.is_available()


def resolve_attention(requested: str = "auto", device: str | torch.device | None = None) -> str:
    """The ``attn_implementation`` to hand to transformers.

    ``"auto"`` gives ``"flash_attention_2"`` when flash-attn is installed and the model runs on CUDA
    (the paper's setting), else PyTorch's fused ``"sdpa"``.  Asking for ``"flash_attention_2"`` where it
    cannot run raises :class:`ConfigError` instead of failing deep inside transformers.
    """
    on_cuda = torch.cuda.is_available() if device is None else torch.device(device).type == "cuda"
    flash = flash_attention_available() and on_cuda
    if requested == "auto":
        if on_cuda and not flash:
            # the paper's setting runs flash-attention 2 on GPUs; say once that this run will be slower
            warnings.warn("flash-attention 2 is not installed: using PyTorch's sdpa attention on the GPU (slower at "
                          "paper scale); pip install 'raymix[gpu]' to use flash-attention", RaymixWarning,
                          stacklevel=2)
        return "flash_attention_2" if flash else "sdpa"
    if requested == "flash_attention_2" and not flash:
        raise ConfigError("attention='flash_attention_2' needs the flash-attn package and a CUDA device "
                          f"(flash_attn installed: {importlib.util.find_spec('flash_attn') is not None}, "
                          f"device: {device or 'default'}); use attention='auto' or 'sdpa'")
    if requested not in ("sdpa", "eager", "flash_attention_2"):
        raise ConfigError(f"unknown attention implementation {requested!r}; use auto, sdpa, eager or "
                          f"flash_attention_2")
    return requested


def neox_config(config: ModelConfig, attention: str = "sdpa") -> GPTNeoXConfig:
    """The ``transformers.GPTNeoXConfig`` of ``config`` (fp32, no KV cache, no dropout)."""
    from transformers import GPTNeoXConfig

    return GPTNeoXConfig(
        vocab_size=config.padded_vocab_size,
        hidden_size=config.d_model,
        num_hidden_layers=config.n_layers,
        num_attention_heads=config.n_heads,
        intermediate_size=config.ffn_width,
        max_position_embeddings=config.context_length,
        rotary_pct=config.rotary_pct,
        rotary_emb_base=config.rotary_base,
        use_parallel_residual=config.parallel_residual,
        layer_norm_eps=config.layer_norm_eps,
        initializer_range=config.init_std,
        tie_word_embeddings=config.tie_embeddings,
        hidden_dropout=0.0,
        attention_dropout=0.0,
        use_cache=False,
        attn_implementation=attention,
    )


def build_model(config: ModelConfig, device: str | torch.device = "cpu", *, seed: int | None = None) -> nn.Module:
    """A freshly initialized fp32 ``GPTNeoXForCausalLM`` on ``device``.

    ``seed`` (if given) seeds torch's global generator first so that two builds are identical; the
    weights are created on the CPU then moved, so the initialization does not depend on the device.
    """
    from transformers import GPTNeoXForCausalLM

    attention = resolve_attention(config.attention, device)
    if seed is not None:
        torch.manual_seed(seed)
    # fp32 master weights always (ALGORITHMS.md: the authors' pure-bf16 weights are a defect);
    # lower precision only enters through autocast.
    model = GPTNeoXForCausalLM(neox_config(config, attention)).to(dtype=torch.float32)
    return model.to(device)


def count_parameters(model: nn.Module, *, trainable_only: bool = False, exclude_embeddings: bool = False) -> int:
    """Number of parameters (``exclude_embeddings`` drops the input embedding, as Pythia's names count)."""
    total = 0
    for name, p in model.named_parameters():
        if trainable_only and not p.requires_grad:
            continue
        if exclude_embeddings and "embed_in" in name:
            continue
        total += p.numel()
    return total


def autocast_context(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """``torch.autocast`` to ``dtype`` on ``device``, or a no-op context for fp32 (``dtype`` None)."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def token_losses(model: nn.Module, input_ids: torch.Tensor, autocast_dtype: torch.dtype | None = None) -> torch.Tensor:
    """Unreduced next-token cross-entropy, ``(B, T-1)`` fp32 nats.

    Args:
        input_ids: ``(B, T)`` int64 packed windows; labels are the inputs shifted by one, so position
            ``t`` predicts token ``t+1`` and the last position has no target.
        autocast_dtype: compute dtype under autocast (bf16 on GPU) or None for fp32.

    The logits are cast to fp32 before the log-softmax so the loss is exact whatever the compute dtype.
    """
    device = input_ids.device
    with autocast_context(device, autocast_dtype):
        logits = model(input_ids=input_ids[:, :-1], use_cache=False).logits
    targets = input_ids[:, 1:]
    flat = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction="none")
    return flat.view(targets.shape)


def group_sums(row_values: torch.Tensor, groups: torch.Tensor, m: int) -> torch.Tensor:
    """``(m,)`` sum of ``row_values`` ``(B,)`` per group index ``groups`` ``(B,)`` (on the same device)."""
    out = torch.zeros(m, dtype=row_values.dtype, device=row_values.device)
    return out.index_add_(0, groups, row_values)


def check_token_ids(input_ids, vocab_size: int) -> None:
    """Raise :class:`TokenizerMismatchError` when a token id lies outside ``[0, vocab_size)``.

    ``input_ids`` is the host-side numpy batch (checking there costs no device sync).
    """
    lo, hi = int(input_ids.min()), int(input_ids.max())
    if lo < 0 or hi >= vocab_size:
        raise TokenizerMismatchError(
            f"batch holds token ids in [{lo}, {hi}] but the model's vocab_size is {vocab_size}; the shards were "
            f"tokenized with a different tokenizer — rebuild them or set ModelConfig.vocab_size from their manifest")


def iter_chunks(n: int, size: int) -> Iterator[slice]:
    """Consecutive slices of ``range(n)`` of at most ``size`` items."""
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))
