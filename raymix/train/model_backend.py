"""ModelBackend: the :class:`~raymix.backend.TrainingBackend` that trains a real GPT-NeoX model.

Mixing methods drive it through ``train`` (static / dynamic mixtures and LearnParams segments),
``proxy_train`` (DoReMi's excess-loss and DoGE's gradient-alignment proxies, paper Lemma 3 and Table 1)
and ``evaluate`` (per-group losses on fixed cached windows).  One optimizer step = one batch of
``batch_size`` packed windows composed per example (paper App. D), optionally split into
``grad_accumulation`` micro-batches whose gradients are summed so the update equals the full batch's.

Data parallel: inside an initialised ``torch.distributed`` process group (Ray Train's workers) every
rank draws the same global batch, trains on its own slice and all-reduces gradients and per-group loss
sums, so W workers follow one worker's trajectory (:mod:`raymix.train.distributed`).

No Ray here: the Tune trainable wraps this object and checkpoints its ``state_dict``.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from raymix.backend import ProxySignals, TrainingBackend, TrainStats, WeightRule
from raymix.data.batch import Batch, BatchSource
from raymix.errors import CheckpointError, ConfigError, DataError, MethodError
from raymix.mixture import Mixture, as_weights
from raymix.model.evaluation import GroupEvaluator
from raymix.model.gpt import build_model, check_token_ids, group_sums, iter_chunks, token_losses
from raymix.model.optim import WarmupCosineSchedule, build_optimizer
from raymix.model.presets import ModelConfig, resolve_model_config
from raymix.train.config import TrainConfig
from raymix.train.distributed import Collective

#: Bumped when the layout of :meth:`ModelBackend.state_dict` changes.
STATE_FORMAT = 1


def stratified_counts(n: int, m: int, offset: int = 0) -> np.ndarray:
    """``(m,)`` equal per-group counts summing to ``n``; the ``n mod m`` extra examples go to groups
    ``offset, offset+1, …`` (mod m), so rotating ``offset`` with the step spreads them evenly over time."""
    counts = np.full(m, n // m, dtype=np.int64)
    for j in range(n % m):
        counts[(offset + j) % m] += 1
    return counts


class _GroupLossMeter:
    """Per-group token-loss sums on the device (fp64) and token/example counts on the host.

    Summing on the device avoids a host sync every step; :meth:`stats` syncs once per call.  Under data
    parallelism each rank sums its own rows and counts the global batch; :meth:`stats` all-reduces the sums.
    """

    def __init__(self, m: int, device: torch.device, collective: Collective | None = None) -> None:
        self.collective = collective or Collective()
        self.loss_sums = torch.zeros(m, dtype=torch.float64, device=device)
        self.tokens = np.zeros(m, dtype=np.int64)
        self.examples = np.zeros(m, dtype=np.int64)

    def add(self, row_sums: torch.Tensor, group_ids: torch.Tensor) -> None:
        self.loss_sums += group_sums(row_sums.detach().double(), group_ids, len(self.tokens))

    def count(self, groups: np.ndarray, tokens_per_row: int) -> None:
        per_group = np.bincount(groups, minlength=len(self.tokens))
        self.examples += per_group
        self.tokens += per_group * tokens_per_row

    def stats(self, steps: int) -> TrainStats:
        losses = np.full(len(self.tokens), np.nan)
        sums = self.collective.all_reduce_(self.loss_sums.clone())
        np.divide(sums.cpu().numpy(), self.tokens, out=losses, where=self.tokens > 0)
        return TrainStats(steps=steps, group_train_loss=losses, group_examples=self.examples.copy())


class ModelBackend(TrainingBackend):
    """A GPT-NeoX model, its AdamW optimizer and warmup/cosine schedule, data sources and eval sets.

    Args:
        groups: the ``m`` group names; every ``(m,)`` array in or out follows this order.
        model_config: a :class:`ModelConfig`, a preset name or its dict; ``vocab_size`` must be set.
        train_config: a :class:`TrainConfig` or its dict.
        train_source: batches of the training split (``groups`` must match).
        eval_sets: ``{split: {group: (n, seq_len) int array}}`` — cached once on the device, capped at
            ``train_config.eval_examples`` windows per group.
        val_source: batches of the validation split for DoGE's validation part of a proxy batch.
        eos_id: end-of-document token of the shards: subset evaluations (``evaluate(max_examples=N)``) draw
            their N windows spread over documents, seeded by the run's seed (``GroupEvaluator``).
        eval_documents: ``{split: {group: (n,) ints}}`` the document of every window of ``eval_sets``
            (``raymix.data.reader.load_eval_documents``); needed when ``eval_sets`` are a spread sample.
        collective: the data-parallel group; None detects an initialised ``torch.distributed`` group
            (rank, world size) and otherwise trains alone.  Every rank must be given the same arguments.
    """

    def __init__(self, groups: Sequence[str], model_config: ModelConfig | str | dict[str, Any],
                 train_config: TrainConfig | dict[str, Any], train_source: BatchSource,
                 eval_sets: Mapping[str, Mapping[str, np.ndarray]], val_source: BatchSource | None = None, *,
                 eos_id: int | None = None,
                 eval_documents: Mapping[str, Mapping[str, np.ndarray]] | None = None,
                 collective: Collective | None = None) -> None:
        self.groups = tuple(groups)
        if len(self.groups) < 1 or len(set(self.groups)) != len(self.groups):
            raise ConfigError(f"groups must be unique names, at least one, got {list(self.groups)}")
        self.model_config = resolve_model_config(model_config)
        self.train_config = train_config if isinstance(train_config, TrainConfig) else TrainConfig.from_dict(train_config)
        if self.model_config.vocab_size is None:
            raise ConfigError("ModelConfig.vocab_size is None; set it from the data (config.with_vocab("
                              "manifest.vocab_size)) or build the backend with from_shards()")
        for name, source in (("train_source", train_source), ("val_source", val_source)):
            if source is None:
                continue
            if tuple(source.groups) != self.groups:
                raise DataError(f"{name} has groups {list(source.groups)} but the backend trains {list(self.groups)}; "
                                f"open the source on the same shards (same group order)")
            if source.seq_len - 1 > self.model_config.context_length:
                raise ConfigError(f"{name} windows have seq_len={source.seq_len} ({source.seq_len - 1} positions fed "
                                  f"to the model) but the model context_length is {self.model_config.context_length}; "
                                  f"use a larger preset context or shorter windows")
        self.train_source = train_source
        self.val_source = val_source
        self.collective = collective if collective is not None else Collective.detect()
        tc = self.train_config
        if tc.batch_size < self.collective.world_size:
            raise ConfigError(f"batch_size={tc.batch_size} is smaller than the {self.collective.world_size} data-parallel "
                              f"workers; every worker needs at least one row per step: use at most {tc.batch_size} "
                              f"workers or a larger batch")
        torch.set_num_threads(tc.resolve_threads())
        self.device = tc.resolve_device()
        self.autocast_dtype = tc.autocast_dtype(self.device)
        self.model = build_model(self.model_config, self.device, seed=tc.seed)
        self.collective.broadcast_module_(self.model)  # same seed gives the same init; make it certain
        self.model.train()
        self._params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = build_optimizer(self.model, lr=tc.lr, weight_decay=tc.weight_decay,
                                         betas=(tc.adam_beta1, tc.adam_beta2), eps=tc.adam_eps)
        self.schedule = WarmupCosineSchedule(self.optimizer, lr=tc.lr, min_lr=tc.min_lr,
                                             warmup_steps=tc.effective_warmup_steps, total_steps=tc.total_steps)
        self.evaluator = GroupEvaluator(self.groups, eval_sets, device=self.device, batch_size=tc.eval_batch_size,
                                        max_examples=tc.eval_examples, vocab_size=self.model_config.vocab_size,
                                        eos_id=eos_id, documents=eval_documents, subset_seed=tc.seed)
        self.reference: torch.nn.Module | None = None
        self._group_grads: torch.Tensor | None = None  # (m, |θ|) device buffer for DoGE, allocated lazily
        self._step = 0

    # ------------------------------------------------------------------ properties
    @property
    def step(self) -> int:
        return self._step

    @property
    def total_steps(self) -> int:
        return self.train_config.total_steps

    @property
    def batch_size(self) -> int:
        return self.train_config.batch_size

    @property
    def lr(self) -> float:
        """Learning rate of the next optimizer step."""
        return self.schedule.current_lr

    # ------------------------------------------------------------------ training
    def train(self, steps: int, mixture: np.ndarray | Mixture | None = None, *,
              counts: np.ndarray | None = None) -> TrainStats:
        """Train ``steps`` optimizer steps on batches drawn with ``mixture`` or fixed ``counts``.

        The objective is the mean token loss over the batch; the reported ``group_train_loss`` is the
        token-weighted mean over the call of each group's token losses (before each update).
        """
        self._check_steps(steps)
        if (mixture is None) == (counts is None):
            raise ConfigError("train() takes exactly one of mixture=(m,) proportions or counts=(m,) integers, got "
                              f"mixture={mixture!r}, counts={counts!r}")
        p = as_weights(mixture, self.groups) if mixture is not None else None
        c = self._check_counts(counts, self.batch_size) if counts is not None else None
        if p is not None:
            p = self.collective.agree(p, "mixture p", device=self.device)
        else:
            c = self.collective.agree(c, "batch counts", device=self.device).astype(np.int64)
        meter = _GroupLossMeter(self.m, self.device, self.collective)
        rows = self.collective.shard(self.batch_size)
        for _ in range(steps):
            # Every rank draws the whole global batch (its sampler stays in step with the others') and
            # trains on its own slice; the gradient is normalised by the global token count.
            batch = (self.train_source.next_batch(mixture=p) if p is not None
                     else self.train_source.next_batch(counts=c))
            ids, gids = self._to_device(batch, expected=self.batch_size, rows=rows)
            tokens = self.batch_size * (ids.shape[1] - 1)
            meter.count(batch.groups, ids.shape[1] - 1)
            self.optimizer.zero_grad(set_to_none=True)
            for chunk in iter_chunks(len(ids), self._micro_size()):
                row_sums = token_losses(self.model, ids[chunk], self.autocast_dtype).sum(dim=1)
                # Sum of token losses / all tokens of the step: the micro-batch gradients add up to the
                # gradient of the full batch's mean token loss (real accumulation, not an average of means).
                (row_sums.sum() / tokens).backward()
                meter.add(row_sums, gids[chunk])
            self._optimizer_step()
        return meter.stats(steps)

    def proxy_train(self, steps: int, rule: WeightRule, *, reference: bool = False, alignment: bool = False,
                    val_fraction: float = 0.0) -> TrainStats:
        """Train a proxy with the per-step reweighted objective ``Σ_i w_i · L_train,i`` (paper Lemma 3).

        Each step: stratified counts over the ``B − round(val_fraction·B)`` training rows (equal per group,
        the remainder rotated with the step); with ``reference`` the frozen reference model's per-group
        losses on the same rows (DoReMi); with ``alignment`` per-group gradients ``g_i`` and the gradient
        ``g_val`` of the validation rows, giving ``⟨g_i, g_val⟩`` and ``‖g_i‖`` computed on the device
        (DoGE) and the update ``Σ_i w_i g_i`` reusing those gradients.
        """
        self._check_steps(steps)
        if not 0.0 <= float(val_fraction) < 1.0:
            raise ConfigError(f"val_fraction must lie in [0, 1), got {val_fraction!r}")
        n_val = int(round(float(val_fraction) * self.batch_size))
        n_train = self.batch_size - n_val
        if n_val > 0 and not alignment:
            raise ConfigError(f"val_fraction={val_fraction} draws validation rows that only alignment=True uses; "
                              f"pass alignment=True (DoGE) or val_fraction=0")
        if alignment and n_val == 0:
            raise ConfigError(f"alignment=True needs a validation part: val_fraction={val_fraction} gives "
                              f"round({val_fraction}·{self.batch_size}) = 0 rows; DoGE uses 0.25 (m=2) or 0.5 (m>=3)")
        if n_val > 0 and self.val_source is None:
            raise ConfigError("val_fraction > 0 needs a val_source; build the backend with val_source=... "
                              "(from_shards opens one on the 'val' split)")
        if n_train < 1:
            raise ConfigError(f"val_fraction={val_fraction} leaves no training rows in a batch of {self.batch_size}")
        if reference and self.reference is None:
            raise MethodError("proxy_train(reference=True) needs a reference model; call set_reference("
                              "other_backend.model_state()) first")
        meter = _GroupLossMeter(self.m, self.device, self.collective)
        # Data parallel: every rank draws the whole stratified batch and works on its slice of the rows
        # (and of the validation rows); loss sums and DoGE's per-group gradients are summed over ranks
        # before the weight rule sees them, so every rank computes the same weights.
        rows, val_rows = self.collective.shard(n_train), self.collective.shard(n_val)
        for _ in range(steps):
            counts = stratified_counts(n_train, self.m, offset=self._step)
            batch = self.train_source.next_batch(counts=counts, batch_size=n_train)
            ids, gids = self._to_device(batch, expected=n_train, rows=rows)
            meter.count(batch.groups, ids.shape[1] - 1)
            val_ids, val_tokens = None, 0
            if n_val > 0:
                val_batch = self.val_source.next_batch(counts=stratified_counts(n_val, self.m, offset=self._step),
                                                       batch_size=n_val)
                val_ids, _ = self._to_device(val_batch, expected=n_val, rows=val_rows)
                val_tokens = n_val * (val_ids.shape[1] - 1)
            group_tokens = torch.as_tensor(counts * (ids.shape[1] - 1), dtype=torch.float64, device=self.device)
            self.optimizer.zero_grad(set_to_none=True)
            align = norms = kept = None
            if alignment:
                sums, align, norms = self._group_gradients(ids, np.asarray(batch.groups)[rows], val_ids,
                                                           group_tokens, val_tokens)
            else:
                sums, kept = self._group_loss_sums(ids, gids)
            meter.loss_sums += sums
            signals = ProxySignals(
                step=self._step, lr=self.schedule.current_lr,
                train_loss=_safe_mean(self.collective.all_reduce_(sums.clone()), group_tokens),
                reference_loss=self._reference_losses(ids, gids, group_tokens) if reference else None,
                alignment=align.cpu().numpy() if align is not None else None,
                grad_norm=norms.cpu().numpy() if norms is not None else None)
            w = self.collective.agree(self._check_weights(rule(signals)), "proxy weights", device=self.device)
            w_t = torch.as_tensor(w, dtype=torch.float64, device=self.device)
            if alignment:
                self._write_combined_gradient(w_t)  # from all-reduced g_i: already the global direction
            else:
                self._weighted_backward(ids, gids, w_t, group_tokens, kept)
            self._optimizer_step(reduce=not alignment)
        return meter.stats(steps)

    def _group_loss_sums(self, ids: torch.Tensor, gids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Per-group token-loss sums ``(m,)`` of the batch; with a single micro-batch also the row sums with
        their graph, so the weighted backward needs no second forward."""
        micro = self._micro_size()
        if micro >= len(ids):
            row_sums = token_losses(self.model, ids, self.autocast_dtype).sum(dim=1)
            return group_sums(row_sums.detach().double(), gids, self.m), row_sums
        sums = torch.zeros(self.m, dtype=torch.float64, device=self.device)
        with torch.no_grad():  # accumulation: signals first, then re-forward each micro-batch with the weights
            for chunk in iter_chunks(len(ids), micro):
                rows = token_losses(self.model, ids[chunk], self.autocast_dtype).sum(dim=1)
                sums += group_sums(rows.double(), gids[chunk], self.m)
        return sums, None

    def _weighted_backward(self, ids: torch.Tensor, gids: torch.Tensor, w: torch.Tensor, group_tokens: torch.Tensor,
                           kept: torch.Tensor | None) -> None:
        """Backward of ``Σ_i w_i · (token-loss sum of group i) / tokens_i`` over the batch."""
        per_token = torch.where(group_tokens > 0, w / group_tokens.clamp(min=1), torch.zeros_like(w))
        coef = per_token[gids].float()  # (B,) weight of each row's token-loss sum
        if kept is not None:
            (kept * coef).sum().backward()
            return
        for chunk in iter_chunks(len(ids), self._micro_size()):
            rows = token_losses(self.model, ids[chunk], self.autocast_dtype).sum(dim=1)
            (rows * coef[chunk]).sum().backward()

    def _group_gradients(self, ids: torch.Tensor, groups: np.ndarray, val_ids: torch.Tensor,
                         group_tokens: torch.Tensor, val_tokens: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """DoGE's per-group gradients, all on the device.

        Fills ``self._group_grads[i]`` with ``g_i = ∇ L_train,i`` (zero for an absent group), computes
        ``g_val = ∇ L_val`` into a scratch buffer, and returns this rank's per-group loss sums ``(m,)``,
        ``⟨g_i, g_val⟩`` ``(m,)`` and ``‖g_i‖`` ``(m,)`` — only ``O(m)`` numbers ever leave the device.
        ``ids`` / ``groups`` / ``val_ids`` are this rank's rows; each mean is over the global token counts
        ``group_tokens`` ``(m,)`` and ``val_tokens``, and the ``(m + 1, |θ|)`` buffer is all-reduced, so
        under data parallelism every rank holds the global batch's gradients.
        """
        numel = sum(p.numel() for p in self._params)
        if self._group_grads is None or self._group_grads.shape != (self.m + 1, numel):
            self._group_grads = torch.zeros(self.m + 1, numel, dtype=torch.float32, device=self.device)
        buf = self._group_grads
        sums = torch.zeros(self.m, dtype=torch.float64, device=self.device)
        micro = self._micro_size()
        tokens = group_tokens.cpu().numpy()
        for i in range(self.m):
            rows = np.flatnonzero(groups == i)
            if len(rows) == 0:  # absent from the batch, or only from this rank's slice
                buf[i].zero_()
                continue
            sub = ids[torch.as_tensor(rows, device=self.device)]
            sums[i] = self._backward_mean(sub, micro, tokens=int(tokens[i]))
            self._flatten_grads_into(buf[i])
        if len(val_ids):
            self._backward_mean(val_ids, micro, tokens=val_tokens)
            self._flatten_grads_into(buf[self.m])
        else:
            buf[self.m].zero_()
        self.collective.all_reduce_(buf)
        g, g_val = buf[: self.m], buf[self.m]
        return sums, g @ g_val, g.norm(dim=1)

    def _backward_mean(self, ids: torch.Tensor, micro: int, tokens: int | None = None) -> torch.Tensor:
        """Zero the grads, backpropagate the token-loss sum of ``ids`` over ``tokens`` (default: the tokens of
        ``ids``, i.e. their mean token loss; micro-batched); return the token-loss sum."""
        self.optimizer.zero_grad(set_to_none=True)
        tokens = tokens if tokens is not None else ids.shape[0] * (ids.shape[1] - 1)
        total = torch.zeros((), dtype=torch.float64, device=self.device)
        for chunk in iter_chunks(len(ids), micro):
            rows = token_losses(self.model, ids[chunk], self.autocast_dtype).sum(dim=1)
            (rows.sum() / tokens).backward()
            total += rows.detach().double().sum()
        return total

    def _flatten_grads_into(self, out: torch.Tensor) -> None:
        offset = 0
        for p in self._params:
            n = p.numel()
            if p.grad is None:  # a parameter the loss does not reach (none in GPT-NeoX, kept for safety)
                out[offset:offset + n].zero_()
            else:
                out[offset:offset + n].copy_(p.grad.reshape(-1))
            offset += n

    def _write_combined_gradient(self, w: torch.Tensor) -> None:
        """Set every parameter's grad to its slice of ``Σ_i w_i g_i`` (the DoGE update direction)."""
        combined = w.float() @ self._group_grads[: self.m]  # (|θ|,)
        offset = 0
        for p in self._params:
            n = p.numel()
            p.grad = combined[offset:offset + n].view_as(p)
            offset += n

    @torch.no_grad()
    def _reference_losses(self, ids: torch.Tensor, gids: torch.Tensor, group_tokens: torch.Tensor) -> np.ndarray:
        sums = torch.zeros(self.m, dtype=torch.float64, device=self.device)
        for chunk in iter_chunks(len(ids), self._micro_size()):
            rows = token_losses(self.reference, ids[chunk], self.autocast_dtype).sum(dim=1)
            sums += group_sums(rows.double(), gids[chunk], self.m)
        return _safe_mean(self.collective.all_reduce_(sums), group_tokens)

    def _optimizer_step(self, reduce: bool = True) -> None:
        if reduce:  # sum of the ranks' slices = the global batch's gradient
            self.collective.all_reduce_grads(self._params)
        if self.train_config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self._params, self.train_config.grad_clip)
        self.schedule.apply()
        self.optimizer.step()
        self.schedule.step()
        self._step += 1

    # ------------------------------------------------------------------ checks
    def _micro_size(self) -> int:
        """Rows per micro-batch: the configured ``batch_size / grad_accumulation``."""
        return max(1, self.batch_size // self.train_config.grad_accumulation)

    def _check_steps(self, steps: int) -> None:
        if not isinstance(steps, (int, np.integer)) or isinstance(steps, bool) or steps < 0:
            raise ConfigError(f"steps must be a non-negative integer, got {steps!r}")
        if self._step + steps > self.total_steps:
            raise ConfigError(f"training {steps} more steps from step {self._step} would reach {self._step + steps}, "
                              f"past total_steps={self.total_steps} (the LR schedule's horizon); train at most "
                              f"{self.total_steps - self._step} steps or raise TrainConfig.total_steps")

    def _check_counts(self, counts: np.ndarray, total: int) -> np.ndarray:
        c = np.asarray(counts)
        if c.shape != (self.m,) or (not np.issubdtype(c.dtype, np.integer) and not np.all(c == np.round(c))):
            raise ConfigError(f"counts must be {self.m} integers (one per group {list(self.groups)}), got {counts!r}")
        c = c.astype(np.int64)
        if (c < 0).any() or c.sum() != total:
            raise ConfigError(f"counts must be non-negative and sum to batch_size={total}, got {c.tolist()} "
                              f"(sum {int(c.sum())})")
        return c

    def _check_weights(self, w: Any) -> np.ndarray:
        arr = np.asarray(w, dtype=np.float64)
        if arr.shape != (self.m,) or not np.all(np.isfinite(arr)) or (arr < 0).any():
            raise MethodError(f"the proxy weight rule must return {self.m} finite non-negative weights (groups "
                              f"{list(self.groups)}), got {w!r}")
        return arr

    def _to_device(self, batch: Batch, *, expected: int,
                   rows: slice | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Validate the whole batch, then move its ``rows`` (default all) to the device."""
        ids, groups = np.asarray(batch.input_ids), np.asarray(batch.groups)
        if ids.ndim != 2 or ids.shape[0] != expected or groups.shape != (expected,):
            raise DataError(f"the batch source returned input_ids of shape {ids.shape} and groups of shape "
                            f"{groups.shape}; expected ({expected}, seq_len) and ({expected},)")
        if ids.shape[1] < 2 or ids.shape[1] - 1 > self.model_config.context_length:
            raise DataError(f"batch windows have seq_len={ids.shape[1]}; need 2 <= seq_len <= context_length + 1 "
                            f"= {self.model_config.context_length + 1}")
        if groups.min() < 0 or groups.max() >= self.m:
            raise DataError(f"batch group ids {np.unique(groups).tolist()} fall outside [0, {self.m})")
        check_token_ids(ids, self.model_config.vocab_size)
        if rows is not None:
            ids, groups = ids[rows], groups[rows]
        if not ids.flags.writeable:  # e.g. Arrow-backed rows; torch cannot share read-only memory
            ids = ids.copy()
        non_blocking = self.device.type == "cuda"
        return (torch.as_tensor(ids, dtype=torch.int64).to(self.device, non_blocking=non_blocking),
                torch.as_tensor(groups, dtype=torch.int64).to(self.device, non_blocking=non_blocking))

    # ------------------------------------------------------------------ evaluation / reference
    def evaluate(self, split: str = "val", *, max_examples: int | None = None) -> np.ndarray:
        """``(m,)`` fp64 mean token loss per group on the cached windows of ``split`` (eval mode, no grad)."""
        return self.evaluator.evaluate(self.model, split, max_examples=max_examples,
                                       autocast_dtype=self.autocast_dtype, collective=self.collective)

    def set_reference(self, state: dict[str, Any]) -> None:
        """Freeze a copy of another backend's model (its :meth:`model_state` or :meth:`state_dict`)."""
        weights = state.get("model", state) if isinstance(state, Mapping) else None
        if not isinstance(weights, Mapping):
            raise CheckpointError(f"set_reference expects other_backend.model_state() (a dict with 'model'), got "
                                  f"{type(state).__name__}")
        self.reference = self._frozen_copy(weights)

    def _frozen_copy(self, weights: Mapping[str, torch.Tensor]) -> torch.nn.Module:
        with torch.random.fork_rng(devices=[]):  # building draws a throw-away init; keep our RNG stream intact
            model = build_model(self.model_config, self.device)
        try:
            model.load_state_dict(weights)
        except RuntimeError as exc:
            raise CheckpointError(f"reference weights do not fit this model config {self.model_config.to_dict()}: "
                                  f"{exc}") from exc
        model.eval()
        model.requires_grad_(False)
        return model

    # ------------------------------------------------------------------ state
    def model_state(self) -> dict[str, Any]:
        """Only what a reference needs: ``{"model": weights}`` (CPU copies)."""
        return {"model": _cpu_clone(self.model.state_dict())}

    def state_dict(self) -> dict[str, Any]:
        """Everything that changes during training, as CPU copies detached from the live objects."""
        rng: dict[str, Any] = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(),
                               "python": random.getstate()}
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        return {
            "format": STATE_FORMAT,
            "groups": list(self.groups),
            "model_config": self.model_config.to_dict(),
            "step": self._step,
            "model": _cpu_clone(self.model.state_dict()),
            "optimizer": _cpu_clone(self.optimizer.state_dict()),
            "schedule": self.schedule.state_dict(),
            "train_source": copy.deepcopy(self.train_source.state_dict()),
            "val_source": copy.deepcopy(self.val_source.state_dict()) if self.val_source is not None else None,
            "rng": rng,
            "reference": _cpu_clone(self.reference.state_dict()) if self.reference is not None else None,
            "eval_subsets": self.evaluator.subset_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` exactly (the next ``train`` call gives the same losses)."""
        if not isinstance(state, Mapping) or state.get("format") != STATE_FORMAT:
            raise CheckpointError(f"not a ModelBackend state (format {STATE_FORMAT} expected, got "
                                  f"{state.get('format') if isinstance(state, Mapping) else type(state).__name__})")
        if tuple(state["groups"]) != self.groups:
            raise CheckpointError(f"checkpoint groups {state['groups']} differ from this backend's {list(self.groups)}; "
                                  f"resume with the same data groups in the same order")
        mine = {k: v for k, v in self.model_config.to_dict().items() if k != "attention"}
        theirs = {k: v for k, v in dict(state["model_config"]).items() if k != "attention"}
        if mine != theirs:
            raise CheckpointError(f"checkpoint model config {theirs} differs from this backend's {mine}")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["schedule"])
        self.train_source.load_state_dict(copy.deepcopy(state["train_source"]))
        if state.get("val_source") is not None:
            if self.val_source is None:
                raise CheckpointError("checkpoint holds a val_source state but this backend has no val_source")
            self.val_source.load_state_dict(copy.deepcopy(state["val_source"]))
        rng = state["rng"]
        torch.set_rng_state(rng["torch"])
        np.random.set_state(rng["numpy"])
        random.setstate(rng["python"])
        if "cuda" in rng and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["cuda"])
        self.reference = self._frozen_copy(state["reference"]) if state.get("reference") is not None else None
        self.evaluator.load_subset_state(state.get("eval_subsets") or {})
        self._step = int(state["step"])


def _safe_mean(sums: torch.Tensor, tokens: torch.Tensor) -> np.ndarray:
    """``(m,)`` host array ``sums / tokens`` with ``nan`` where a group has no tokens."""
    s, t = sums.cpu().numpy(), tokens.cpu().numpy()
    out = np.full(s.shape, np.nan)
    np.divide(s, t, out=out, where=t > 0)
    return out


def _cpu_clone(obj: Any) -> Any:
    """Deep copy of a (nested) state dict with every tensor cloned to the CPU, so later training cannot
    mutate a saved state and checkpoints never pin device memory."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        out = type(obj)((k, _cpu_clone(v)) for k, v in obj.items())
        if hasattr(obj, "_metadata"):  # nn.Module.state_dict() keeps per-module versions there
            out._metadata = copy.deepcopy(obj._metadata)
        return out
    if isinstance(obj, list):
        return [_cpu_clone(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_cpu_clone(v) for v in obj)
    return copy.deepcopy(obj)



def from_shards(shards_dir: str | Path, model_config: ModelConfig | str | dict[str, Any],
                train_config: TrainConfig | dict[str, Any], streaming: str = "local", *,
                val_source: bool = True, eval_splits: Sequence[str] = ("val", "test")) -> ModelBackend:
    """A :class:`ModelBackend` over a shard directory (``raymix data build``).

    Reads the manifest (groups, vocabulary), takes the model's ``vocab_size`` from it (an explicitly set,
    different one raises :class:`~raymix.errors.TokenizerMismatchError`), opens the training sampler (and
    a validation sampler for DoGE when ``val_source``), and caches the first
    ``train_config.eval_examples`` windows per group of each split in ``eval_splits`` (subset evaluations
    draw from them spread over documents, found by the manifest's EOS token).
    """
    from raymix.data.manifest import load_manifest
    from raymix.data.reader import load_eval_documents, load_eval_set
    from raymix.data.sampler import open_sampler

    tc = train_config if isinstance(train_config, TrainConfig) else TrainConfig.from_dict(train_config)
    if streaming == "local" and "://" not in str(shards_dir) and (Path(shards_dir) / "manifest.json").is_file():
        # Verified manifests, training windows and evaluation sets are read once per process (a Tune actor
        # reused for the next trial, or an in-process executor): raymix.data.cache.
        from raymix.data.cache import cached_eval_set, cached_manifest, cached_sampler

        manifest = cached_manifest(shards_dir, "train")
        train = cached_sampler(shards_dir, "train", tc.batch_size, tc.seed)
        val = cached_sampler(shards_dir, "val", tc.batch_size, tc.seed + 1) if val_source else None
        eval_sets = {split: cached_eval_set(shards_dir, split, tc.eval_examples, load_eval_set) for split in eval_splits}
        docs = {split: cached_eval_set(shards_dir, split, tc.eval_examples, load_eval_documents)
                for split in eval_splits}
        mc = _model_config_for(manifest, model_config, shards_dir)
        return ModelBackend(tuple(manifest.groups), mc, tc, train, eval_sets, val_source=val,
                            eos_id=manifest.eos_id, eval_documents=docs)
    manifest = load_manifest(shards_dir)
    mc = _model_config_for(manifest, model_config, shards_dir)
    train = open_sampler(shards_dir, split="train", batch_size=tc.batch_size, seed=tc.seed, streaming=streaming)
    val = (open_sampler(shards_dir, split="val", batch_size=tc.batch_size, seed=tc.seed + 1, streaming=streaming)
           if val_source else None)
    eval_sets = {split: load_eval_set(shards_dir, split, max_examples_per_group=tc.eval_examples)
                 for split in eval_splits}
    docs = {split: load_eval_documents(shards_dir, split, max_examples_per_group=tc.eval_examples)
            for split in eval_splits}
    return ModelBackend(tuple(manifest.groups), mc, tc, train, eval_sets, val_source=val, eos_id=manifest.eos_id,
                        eval_documents=docs)


def _model_config_for(manifest, model_config: ModelConfig | str | dict[str, Any], shards_dir) -> ModelConfig:
    mc = resolve_model_config(model_config).with_vocab(int(manifest.vocab_size))
    if manifest.seq_len - 1 > mc.context_length:
        raise ConfigError(f"shards in {shards_dir} hold windows of seq_len={manifest.seq_len} but the model context is "
                          f"{mc.context_length}; pick a preset with context_length >= {manifest.seq_len - 1} or "
                          f"rebuild the shards with a shorter seq_len")
    return mc
