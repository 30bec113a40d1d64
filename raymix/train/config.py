"""Training hyperparameters (paper App. D), as a typed config that round-trips through Tune's param_space."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from raymix.config import Config, check, check_range, field

PRECISIONS = ("auto", "fp32", "bf16")
DEVICES = ("auto", "cpu", "cuda")


@dataclass
class TrainConfig(Config):
    """How one run trains: batch, horizon, AdamW + warmup/cosine schedule, precision, device, eval caching.

    Paper App. D: batch 8 × 2048 tokens, S = 5000 (m = 2, 3) or 40000 (m = 7), 500 warmup steps, cosine
    decay, weight decay 0.01, gradient clipping 1.0.  The learning rate in the paper's text is 5e-5 → 1e-5;
    the authors' code trained with 5e-4, which is the default here (5e-5 barely moves a from-scratch model
    in a few thousand steps), decaying to 1e-4 to keep the text's 5:1 peak/floor ratio.
    """

    batch_size: int = field(8, help="sequences per optimizer step (B)")
    total_steps: int = field(5000, help="length S of the run in optimizer steps (the LR schedule's horizon)")
    lr: float = field(5e-4, help="peak learning rate after warmup")
    min_lr: float = field(1e-4, help="learning rate at the end of the cosine decay")
    warmup_steps: int = field(500, help="linear warmup steps at paper scale (App. D: 500)")
    warmup_max_fraction: float = field(
        0.1, help="cap on warmup as a fraction of total_steps, so short CPU runs are not all warmup: "
                  "effective warmup = min(warmup_steps, floor(warmup_max_fraction * total_steps))")
    weight_decay: float = field(0.01, help="AdamW weight decay on matrices/embeddings (none on biases, LayerNorm)")
    adam_beta1: float = field(0.9, help="AdamW beta1")
    adam_beta2: float = field(0.999, help="AdamW beta2 (PyTorch default)")
    adam_eps: float = field(1e-8, help="AdamW epsilon")
    grad_clip: float = field(1.0, help="max global gradient L2 norm; 0 disables clipping")
    grad_accumulation: int = field(
        1, help="micro-batches per optimizer step; must divide batch_size; gradients are accumulated so the "
                "update equals the full-batch one")
    seed: int = field(0, help="seed of the model initialization and of the data sources")
    precision: str = field("auto", help="'fp32', 'bf16' (autocast; weights stay fp32) or 'auto' = bf16 on CUDA, "
                                        "fp32 on CPU")
    device: str = field("auto", help="'cpu', 'cuda' or 'auto' (cuda when available)")
    eval_batch_size: int = field(16, help="sequences per forward pass during evaluation")
    eval_examples: int | None = field(
        256, help="per-group cap on the cached evaluation windows of each split; None keeps them all")
    threads: int | None = field(None, help="torch intra-op threads; None = $OMP_NUM_THREADS or the CPU count")

    def validate(self) -> None:
        for name in ("batch_size", "total_steps", "grad_accumulation", "eval_batch_size"):
            value = getattr(self, name)
            check(_is_int(value) and value >= 1, f"TrainConfig.{name} must be a positive integer, got {value!r}")
        for name in ("warmup_steps", "seed"):
            value = getattr(self, name)
            check(_is_int(value) and value >= 0, f"TrainConfig.{name} must be a non-negative integer, got {value!r}")
        check(self.batch_size % self.grad_accumulation == 0,
              f"TrainConfig.grad_accumulation={self.grad_accumulation} must divide batch_size={self.batch_size} "
              f"(each micro-batch has batch_size / grad_accumulation sequences)")
        check_range("TrainConfig.lr", self.lr, 0.0, lo_open=True)
        check_range("TrainConfig.min_lr", self.min_lr, 0.0, self.lr)
        check_range("TrainConfig.warmup_max_fraction", self.warmup_max_fraction, 0.0, 1.0)
        check_range("TrainConfig.weight_decay", self.weight_decay, 0.0)
        check_range("TrainConfig.adam_beta1", self.adam_beta1, 0.0, 1.0, hi_open=True)
        check_range("TrainConfig.adam_beta2", self.adam_beta2, 0.0, 1.0, hi_open=True)
        check_range("TrainConfig.adam_eps", self.adam_eps, 0.0, lo_open=True)
        check_range("TrainConfig.grad_clip", self.grad_clip, 0.0)
        check(self.precision in PRECISIONS, f"TrainConfig.precision must be one of {PRECISIONS}, got {self.precision!r}")
        check(self.device in DEVICES, f"TrainConfig.device must be one of {DEVICES}, got {self.device!r}")
        if self.eval_examples is not None:
            check(_is_int(self.eval_examples) and self.eval_examples >= 1,
                  f"TrainConfig.eval_examples must be a positive integer or None, got {self.eval_examples!r}")
        if self.threads is not None:
            check(_is_int(self.threads) and self.threads >= 1,
                  f"TrainConfig.threads must be a positive integer or None, got {self.threads!r}")

    @property
    def effective_warmup_steps(self) -> int:
        """Warmup actually used: ``min(warmup_steps, floor(warmup_max_fraction · total_steps))``."""
        return min(self.warmup_steps, int(self.warmup_max_fraction * self.total_steps))

    def resolve_device(self) -> torch.device:
        """The torch device to train on."""
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        check(self.device != "cuda" or torch.cuda.is_available(),
              "TrainConfig.device='cuda' but torch sees no CUDA device; use device='auto' or 'cpu'")
        return torch.device(self.device)

    def autocast_dtype(self, device: torch.device) -> torch.dtype | None:
        """bf16 when autocast is on for ``device``, None for fp32 compute."""
        if self.precision == "bf16" or (self.precision == "auto" and device.type == "cuda"):
            return torch.bfloat16
        return None

    def resolve_threads(self) -> int:
        """Intra-op threads: the field, else ``$OMP_NUM_THREADS``, else the CPU count."""
        if self.threads is not None:
            return int(self.threads)
        env = os.environ.get("OMP_NUM_THREADS", "")
        if env.strip().isdigit() and int(env) >= 1:
            return int(env)
        return os.cpu_count() or 1


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
