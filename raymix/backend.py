"""The training backend: what a mixing method may do to the model it is mixing data for.

Mixing methods (``raymix.methods``) never touch a model, an optimizer or a data loader directly.
They drive a :class:`TrainingBackend`, which is implemented twice:

* :class:`raymix.sim.SimBackend` — a mixing-law simulator with a known right answer (milliseconds);
* :class:`raymix.train.ModelBackend` — a real GPT-NeoX model trained on group-tagged token shards.

so that every method runs, and is tested, end to end on both.  The backend knows nothing of Ray.

Lifecycle: construct → optionally ``load_state_dict`` → any sequence of ``train`` / ``proxy_train`` /
``evaluate`` calls → ``state_dict`` at any point between calls.  ``step`` is the backend's own global
optimizer-step counter; it is part of the state and survives checkpoint/resume and hand-offs between
trials (Tune's ``training_iteration`` does not).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

SPLITS = ("train", "val", "test")


@dataclass
class TrainStats:
    """What a stretch of training reports.

    Attributes:
        steps: optimizer steps taken by this call.
        group_train_loss: ``(m,)`` mean per-token training loss per group over the call; ``nan`` for a
            group that got no examples.
        group_examples: ``(m,)`` number of sequences drawn per group over the call.
    """

    steps: int
    group_train_loss: np.ndarray
    group_examples: np.ndarray


@dataclass
class ProxySignals:
    """Per-step signals handed to a proxy method's weight update (DoReMi, DoGE).

    Attributes:
        step: global step about to be taken (0-based).
        lr: learning rate of that step.
        train_loss: ``(m,)`` per-group mean token loss of the model on this step's batch (``nan`` where
            the group is absent from the batch).
        reference_loss: ``(m,)`` the same batch under the frozen reference model (DoReMi), else None.
        alignment: ``(m,)`` ⟨g_i, g_val⟩ — gradient of group i's training loss dotted with the gradient of
            the validation part of the batch (DoGE), else None.  Computed on the device.
        grad_norm: ``(m,)`` ‖g_i‖ (DoGE), else None.
    """

    step: int
    lr: float
    train_loss: np.ndarray
    reference_loss: np.ndarray | None = None
    alignment: np.ndarray | None = None
    grad_norm: np.ndarray | None = None
    extra: dict[str, Any] = field(default_factory=dict)


#: A proxy method's per-step rule: signals of the batch → the group weights of this step's objective.
WeightRule = Callable[[ProxySignals], np.ndarray]


class TrainingBackend(ABC):
    """A model being trained on ``m`` data groups, plus fixed per-group evaluation sets."""

    #: Group names, in the order of every ``(m,)`` array the backend takes or returns.
    groups: tuple[str, ...]

    @property
    def m(self) -> int:
        return len(self.groups)

    @property
    @abstractmethod
    def step(self) -> int:
        """Global optimizer steps taken so far (own counter, restored by ``load_state_dict``)."""

    @property
    @abstractmethod
    def total_steps(self) -> int:
        """Length S of the run this backend belongs to (the LR schedule's horizon)."""

    @property
    @abstractmethod
    def batch_size(self) -> int:
        """Sequences per optimizer step."""

    @abstractmethod
    def train(self, steps: int, mixture: np.ndarray | None = None, *, counts: np.ndarray | None = None) -> TrainStats:
        """Train ``steps`` optimizer steps.

        Exactly one of:
            mixture: ``(m,)`` proportions; each batch is composed per example, the group counts of a
                batch drawn ``~ Multinomial(batch_size, p)`` (paper App. D).
            counts: ``(m,)`` non-negative integers summing to ``batch_size``: fixed per-batch counts
                (used by LearnParams segments so that no group is rounded away or made negative).
        """

    @abstractmethod
    def proxy_train(self, steps: int, rule: WeightRule, *, reference: bool = False, alignment: bool = False,
                    val_fraction: float = 0.0) -> TrainStats:
        """Train a proxy model with a per-step reweighted objective (DoReMi / DoGE; paper Lemma 3).

        Each step draws a stratified batch (equal counts per group; with ``val_fraction`` > 0 that
        fraction of the batch is drawn from the validation split instead, for DoGE), computes the
        :class:`ProxySignals` asked for (``reference`` needs :meth:`set_reference` first; ``alignment``
        computes per-group gradients), calls ``rule`` and updates the model with the objective
        ``Σ_i w_i · L_train,i`` for the returned weights ``w``.
        """

    @abstractmethod
    def set_reference(self, state: dict[str, Any]) -> None:
        """Freeze a copy of another backend's trained model (``state_dict`` of it) as DoReMi's reference."""

    @abstractmethod
    def evaluate(self, split: str = "val", *, max_examples: int | None = None) -> np.ndarray:
        """``(m,)`` mean per-token loss per group on the fixed cached evaluation set of ``split``.

        ``max_examples`` limits each group to the first that many cached sequences (Aioli's LearnParams
        evaluation subset); None uses the whole cached set.  Losses are accumulated in fp32 or better.
        """

    def perplexity(self, split: str = "test") -> np.ndarray:
        """``(m,)`` per-group perplexity ``exp(mean token loss)``."""
        return np.exp(self.evaluate(split))

    @abstractmethod
    def state_dict(self) -> dict[str, Any]:
        """Everything that changes during training (model, optimizer, schedule, sampler, RNGs, step)."""

    @abstractmethod
    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` exactly: the next ``train`` call gives the same losses."""

    def model_state(self) -> dict[str, Any]:
        """The state a DoReMi reference needs (defaults to the whole state)."""
        return self.state_dict()


def _nonfinite(values: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    v = np.asarray(values, dtype=float)
    bad = ~np.isfinite(v)
    return bad & mask if mask is not None else bad


class FiniteGuard(TrainingBackend):
    """A backend wrapper that stops a run the moment a loss stops being finite.

    Every ``train`` / ``proxy_train`` (per-group training losses of the groups that got examples) and every
    ``evaluate`` result is checked; a NaN or an infinity raises :class:`~raymix.errors.NonFiniteError` naming
    the step, the groups and the values — so no NaN reaches a LearnParams solve, a proportion update (p), a
    checkpoint that is later resumed, or a result table ("PPL nan").  :class:`raymix.methods.driver.RunDriver`
    wraps every backend it drives.  Everything else is delegated to the wrapped backend (``inner``).
    """

    def __init__(self, inner: TrainingBackend) -> None:
        self.inner = inner
        self.groups = inner.groups

    def __getattr__(self, name: str) -> Any:  # backend-specific extras (A_star, model, sim, ...)
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    def _fail(self, what: str, values: np.ndarray, bad: np.ndarray) -> None:
        from raymix.errors import NonFiniteError

        worst = {g: float(v) for g, v, b in zip(self.groups, np.asarray(values, dtype=float), bad) if b}
        lr = getattr(self.inner, "lr", None)
        hint = f" (learning rate {lr:.3g})" if isinstance(lr, float) else ""
        raise NonFiniteError(f"{what} became non-finite by step {self.inner.step}: {worst}{hint}; training diverged — "
                             "lower the learning rate (--lr / TrainConfig.lr), check the data, or use fp32")

    def _check_stats(self, stats: TrainStats, what: str) -> TrainStats:
        bad = _nonfinite(stats.group_train_loss, np.asarray(stats.group_examples) > 0)
        if bad.any():
            self._fail(what, stats.group_train_loss, bad)
        return stats

    @property
    def step(self) -> int:
        return self.inner.step

    @property
    def total_steps(self) -> int:
        return self.inner.total_steps

    @property
    def batch_size(self) -> int:
        return self.inner.batch_size

    def train(self, steps: int, mixture: np.ndarray | None = None, *, counts: np.ndarray | None = None) -> TrainStats:
        what = "the training loss of a LearnParams segment" if counts is not None else "the training loss"
        return self._check_stats(self.inner.train(steps, mixture, counts=counts), what)

    def proxy_train(self, steps: int, rule: WeightRule, *, reference: bool = False, alignment: bool = False,
                    val_fraction: float = 0.0) -> TrainStats:
        stats = self.inner.proxy_train(steps, rule, reference=reference, alignment=alignment, val_fraction=val_fraction)
        return self._check_stats(stats, "the proxy run's training loss")

    def set_reference(self, state: dict[str, Any]) -> None:
        self.inner.set_reference(state)

    def evaluate(self, split: str = "val", *, max_examples: int | None = None) -> np.ndarray:
        values = self.inner.evaluate(split, max_examples=max_examples)
        bad = _nonfinite(values)
        if bad.any():
            self._fail(f"the {split} loss", values, bad)
        return values

    def state_dict(self) -> dict[str, Any]:
        return self.inner.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.inner.load_state_dict(state)

    def model_state(self) -> dict[str, Any]:
        return self.inner.model_state()
