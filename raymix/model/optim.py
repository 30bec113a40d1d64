"""AdamW with decoupled weight decay groups, and the warmup + cosine learning-rate schedule (paper App. D).

Paper App. D: AdamW, weight decay 0.01 except biases and LayerNorm weights, gradient clipping at 1.0,
500 warmup steps, then cosine decay from ``lr`` to ``min_lr`` over the run's S steps.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from raymix.errors import CheckpointError, ConfigError


def decay_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW parameter groups: ``weight_decay`` on matrices/embeddings, 0 on biases and LayerNorm weights.

    A parameter is exempt when it is a bias or belongs to a normalization layer (any ``nn.LayerNorm`` or
    module whose class name contains "Norm"), matching the paper's "except biases and LayerNorm".
    """
    norm_params: set[int] = set()
    for module in model.modules():
        if isinstance(module, nn.LayerNorm) or "Norm" in type(module).__name__:
            norm_params.update(id(p) for p in module.parameters(recurse=False))
    decay, no_decay = [], []
    seen: set[int] = set()
    for name, p in model.named_parameters():
        if not p.requires_grad or id(p) in seen:  # tied weights appear once
            continue
        seen.add(id(p))
        if name.endswith(".bias") or id(p) in norm_params:
            no_decay.append(p)
        else:
            decay.append(p)
    return [{"params": decay, "weight_decay": float(weight_decay)}, {"params": no_decay, "weight_decay": 0.0}]


def build_optimizer(model: nn.Module, *, lr: float, weight_decay: float = 0.01,
                    betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> torch.optim.AdamW:
    """AdamW over :func:`decay_groups` (fp32 state; the ``foreach`` kernel is used where available)."""
    return torch.optim.AdamW(decay_groups(model, weight_decay), lr=lr, betas=betas, eps=eps)


class WarmupCosineSchedule:
    """Linear warmup to ``lr`` then cosine decay to ``min_lr`` (paper App. D), as a resumable object.

    With ``s`` the 0-based index of the optimizer step about to be taken, W warmup steps and S total:

    * ``s < W``: ``lr · (s+1)/W`` — the first step already moves (HF's variant wastes step 0 at lr=0);
    * ``W ≤ s < S``: ``min_lr + ½(lr − min_lr)(1 + cos(π · (s−W+1)/(S−W)))``, so the last step ``S−1``
      runs at exactly ``min_lr``;
    * ``s ≥ S``: ``min_lr``.

    :meth:`apply` writes the lr of the next step into every param group; :meth:`step` advances.  The
    position is the only state, so ``state_dict`` is tiny and resume is exact.
    """

    def __init__(self, optimizer: torch.optim.Optimizer | None, *, lr: float, min_lr: float, warmup_steps: int,
                 total_steps: int) -> None:
        if total_steps < 1:
            raise ConfigError(f"schedule total_steps must be >= 1, got {total_steps!r}")
        if not 0 <= warmup_steps <= total_steps:
            raise ConfigError(f"schedule warmup_steps must lie in [0, total_steps={total_steps}], got {warmup_steps!r}")
        if not 0 <= min_lr <= lr:
            raise ConfigError(f"schedule needs 0 <= min_lr <= lr, got min_lr={min_lr!r}, lr={lr!r}")
        self.optimizer = optimizer
        self.lr, self.min_lr = float(lr), float(min_lr)
        self.warmup_steps, self.total_steps = int(warmup_steps), int(total_steps)
        self.position = 0

    def lr_at(self, step: int) -> float:
        """Learning rate of the 0-based optimizer step ``step``."""
        if step < self.warmup_steps:
            return self.lr * (step + 1) / self.warmup_steps
        if step >= self.total_steps:
            return self.min_lr
        progress = (step - self.warmup_steps + 1) / (self.total_steps - self.warmup_steps)
        return self.min_lr + 0.5 * (self.lr - self.min_lr) * (1.0 + math.cos(math.pi * progress))

    @property
    def current_lr(self) -> float:
        """Learning rate of the next step."""
        return self.lr_at(self.position)

    def apply(self) -> float:
        """Set the next step's lr on the optimizer; returns it."""
        lr = self.current_lr
        if self.optimizer is not None:
            for group in self.optimizer.param_groups:
                group["lr"] = lr
        return lr

    def step(self) -> None:
        """Advance past one optimizer step."""
        self.position += 1

    def state_dict(self) -> dict[str, Any]:
        return {"position": self.position, "lr": self.lr, "min_lr": self.min_lr,
                "warmup_steps": self.warmup_steps, "total_steps": self.total_steps}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the position.  The shape (lr, warmup, horizon) stays this object's own configuration:
        a hand-off between trials may legitimately continue a checkpoint under a new horizon."""
        try:
            self.position = int(state["position"])
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"schedule state {state!r} has no integer 'position'; pass the dict returned by "
                                  f"WarmupCosineSchedule.state_dict()") from exc
