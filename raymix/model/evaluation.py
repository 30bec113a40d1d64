"""Per-group evaluation on fixed, cached windows, and the paper's metric (average per-group test PPL).

Every method reads per-group validation losses (Aioli's LearnParams reads them after every segment;
Skill-It every round) and every result table reports per-group test perplexity.  The evaluation sets are
fixed (``raymix.data.reader.load_eval_set``: windows spread over each group's held-out documents), moved to
the device once and reused, so that two evaluations differ only by the model.  Token losses are computed
in fp32 from the logits and summed in fp64 per group (the authors computed eval losses in bf16 and then
took differences of them over a few steps — ALGORITHMS.md).

``max_examples`` evaluates a subset of N cached windows per group (the cheap subset Aioli's LearnParams and
the per-round evaluations use).  The subset must represent the group, so it is not the first N windows in
file order (a few documents): :func:`spread_subset` draws it spread over the documents of the cached set
(one window per document, documents in a seeded random order, before a second window of any document),
fixed per run by ``subset_seed`` and kept in the backend's state (:meth:`GroupEvaluator.subset_state`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from raymix.data.reader import spread_subset, stable_key, window_documents
from raymix.errors import CheckpointError, DataError, SplitNotFoundError
from raymix.model.gpt import check_token_ids, group_sums, iter_chunks, token_losses

if TYPE_CHECKING:
    from raymix.train.distributed import Collective


def perplexity(losses: np.ndarray) -> np.ndarray:
    """Per-group perplexity ``exp(L_i)`` of ``(m,)`` mean token losses (nats)."""
    return np.exp(np.asarray(losses, dtype=np.float64))


def average_perplexity(losses: np.ndarray) -> float:
    """The paper's metric: ``(1/m) Σ_i exp(L_i)``, the average over groups of per-group test perplexity.

    Not ``exp(mean_i L_i)``: the paper averages perplexities, which weighs a badly served group more.
    """
    return float(np.mean(perplexity(losses)))


class GroupEvaluator:
    """Fixed per-group evaluation windows of several splits, cached on the device.

    Args:
        groups: group names; every returned ``(m,)`` array follows this order.
        eval_sets: ``{split: {group: (n_g, T) int array}}`` of packed token windows.  A group may be
            missing from a split or have ``n_g = 0``; its loss is then ``nan``.
        device: where windows are cached and the model runs.
        batch_size: windows per forward pass.
        max_examples: cap on the windows kept per group (the first ones); None keeps all.
        vocab_size: if given, every cached token id is checked against it once, up front.
        eos_id: the end-of-document token, to find the documents of *contiguous* cached windows for the
            ``max_examples`` subsets (:func:`spread_subset`); None treats every window as its own document.
        documents: ``{split: {group: (n_g,) ints}}``, the document of every cached window — given, it replaces
            the EOS count (needed when the cached windows are themselves a spread sample: ``load_eval_documents``).
        subset_seed: seed of those subsets (the run's seed: fixed per run, identical on resume).
    """

    def __init__(self, groups: Sequence[str], eval_sets: Mapping[str, Mapping[str, np.ndarray]], *,
                 device: torch.device | str = "cpu", batch_size: int = 16, max_examples: int | None = None,
                 vocab_size: int | None = None, eos_id: int | None = None,
                 documents: Mapping[str, Mapping[str, np.ndarray]] | None = None, subset_seed: int = 0) -> None:
        self.groups = tuple(groups)
        self.device = torch.device(device)
        self.batch_size = int(batch_size)
        self.subset_seed = int(subset_seed)
        documents_in = documents
        self._windows: dict[str, list[torch.Tensor]] = {}
        self._documents: dict[str, list[np.ndarray]] = {}
        self._subsets: dict[tuple[str, int], list[np.ndarray]] = {}
        self._selections: dict[tuple[str, int | None], tuple[torch.Tensor, torch.Tensor, np.ndarray]] = {}
        unknown = {split: sorted(set(sets) - set(self.groups)) for split, sets in eval_sets.items()}
        unknown = {s: g for s, g in unknown.items() if g}
        if unknown:
            raise DataError(f"evaluation sets name groups {unknown} that are not among the trained groups "
                            f"{list(self.groups)}; build them from the same shards")
        for split, sets in eval_sets.items():
            per_group, doc_list, lengths = [], [], set()
            for g in self.groups:
                arr = np.asarray(sets.get(g, np.zeros((0, 2), dtype=np.int64)))
                if arr.ndim != 2:
                    raise DataError(f"evaluation windows of split {split!r}, group {g!r} must be a 2-D (n, seq_len) "
                                    f"array, got shape {arr.shape}")
                given = (documents_in or {}).get(split, {}).get(g)
                if given is not None:
                    given = np.asarray(given, dtype=np.int64)
                    if given.shape != (len(arr),):
                        raise DataError(f"documents of split {split!r}, group {g!r} name {given.size} windows, the "
                                        f"set has {len(arr)}; pass one document id per window")
                if max_examples is not None:
                    arr = arr[:max_examples]
                if len(arr):
                    lengths.add(arr.shape[1])
                    if vocab_size is not None:
                        check_token_ids(arr, vocab_size)
                doc_list.append(window_documents(arr, eos_id) if given is None else given[: len(arr)])
                # Own copy: the caller's arrays may be read-only memory maps, and the cache must not change under us.
                per_group.append(torch.from_numpy(np.array(arr, dtype=np.int64)).to(self.device))
            if len(lengths) > 1:
                raise DataError(f"evaluation windows of split {split!r} have different lengths {sorted(lengths)}; "
                                f"all windows of a split must share one seq_len")
            if lengths and min(lengths) < 2:
                raise DataError(f"evaluation windows of split {split!r} have seq_len {min(lengths)}; need >= 2 "
                                f"tokens to form one next-token target")
            self._windows[split] = per_group
            self._documents[split] = doc_list

    @property
    def splits(self) -> tuple[str, ...]:
        return tuple(self._windows)

    def sizes(self, split: str) -> np.ndarray:
        """``(m,)`` cached windows per group of ``split``."""
        return np.array([len(w) for w in self._split(split)], dtype=np.int64)

    def _split(self, split: str) -> list[torch.Tensor]:
        if split not in self._windows:
            raise SplitNotFoundError(f"no cached evaluation set for split {split!r}; available: {list(self._windows)} "
                                     f"(pass it in eval_sets, e.g. {{'val': ..., 'test': ...}})")
        return self._windows[split]

    def subset(self, split: str, max_examples: int) -> list[np.ndarray]:
        """Per group, the sorted indices of the ``max_examples`` cached windows that a subset evaluation uses
        (:func:`spread_subset`, seeded by ``(subset_seed, split, group)``; all windows when there are fewer)."""
        key = (split, int(max_examples))
        if key not in self._subsets:
            self._subsets[key] = [
                spread_subset(docs, int(max_examples),
                              np.random.default_rng([self.subset_seed, stable_key(split), stable_key(g)]))
                for g, docs in zip(self.groups, self._documents_of(split))]
        return self._subsets[key]

    def _documents_of(self, split: str) -> list[np.ndarray]:
        self._split(split)
        return self._documents[split]

    def subset_state(self) -> dict[str, Any]:
        """The subsets drawn so far, ``{"split/n": [indices per group]}`` — saved with the run's state."""
        return {f"{split}/{n}": [idx.tolist() for idx in sub] for (split, n), sub in self._subsets.items()}

    def load_subset_state(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`subset_state`, so a resumed run evaluates exactly the windows it evaluated before."""
        for key, per_group in state.items():
            split, _, n = key.rpartition("/")
            sizes = self.sizes(split)
            idx = [np.asarray(i, dtype=np.int64) for i in per_group]
            if len(idx) != len(self.groups) or any(len(i) and (i.min() < 0 or i.max() >= s) for i, s in zip(idx, sizes)):
                raise CheckpointError(f"saved evaluation subset {key!r} does not fit the cached windows (per group "
                                      f"{sizes.tolist()}); resume with the same shards and eval_examples")
            self._subsets[(split, int(n))] = idx
            self._selections.pop((split, int(n)), None)

    def _selection(self, split: str, max_examples: int | None) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
        """All groups' selected windows concatenated ``(N, T)`` (every cached window, or the
        :meth:`subset` of ``max_examples`` per group), their group ids ``(N,)``, and the per-group window
        counts ``(m,)`` — cached per (split, max_examples)."""
        key = (split, max_examples)
        if key not in self._selections:
            windows = self._split(split)
            if max_examples is not None:
                windows = [w[torch.as_tensor(idx, device=w.device)] if len(idx) < len(w) else w
                           for w, idx in zip(windows, self.subset(split, max_examples))]
            counts = np.array([len(w) for w in windows], dtype=np.int64)
            nonempty = [w for w in windows if len(w)]
            ids = torch.cat(nonempty) if nonempty else torch.zeros((0, 2), dtype=torch.int64, device=self.device)
            group_ids = torch.repeat_interleave(torch.arange(len(windows), device=self.device),
                                                torch.as_tensor(counts, device=self.device))
            self._selections[key] = (ids, group_ids, counts)
        return self._selections[key]

    @torch.inference_mode()
    def window_losses(self, model: nn.Module, split: str = "test", *,
                      autocast_dtype: torch.dtype | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per group, (mean next-token loss of every cached window ``(n,)``, its document id ``(n,)``): what
        :meth:`evaluate` averages, kept apart so that its sampling noise can be measured (a bootstrap over
        documents, as windows of one document are correlated)."""
        was_training = model.training
        model.eval()
        out = []
        try:
            for windows, docs in zip(self._split(split), self._documents_of(split)):
                losses = [token_losses(model, windows[c], autocast_dtype).mean(dim=1, dtype=torch.float64)
                          for c in iter_chunks(len(windows), self.batch_size)]
                vals = torch.cat(losses).cpu().numpy() if losses else np.zeros(0)
                out.append((vals, np.asarray(docs)))
        finally:
            model.train(was_training)
        return out

    @torch.inference_mode()  # no autograd bookkeeping at all (cheaper than no_grad; outputs never need grads)
    def evaluate(self, model: nn.Module, split: str = "val", *, max_examples: int | None = None,
                 autocast_dtype: torch.dtype | None = None, collective: Collective | None = None) -> np.ndarray:
        """``(m,)`` fp64 mean next-token loss (nats) per group; ``nan`` for a group without windows.

        Runs in eval mode and restores the model's previous mode.  Windows of different groups share
        forward passes (batches are cut across group boundaries), then losses are reduced per group.
        With a data-parallel ``collective`` each rank evaluates its contiguous share of the selected
        windows and the per-group sums are all-reduced: every rank returns the same losses.
        """
        if max_examples is not None and (not isinstance(max_examples, int) or max_examples < 1):
            raise DataError(f"max_examples must be a positive integer or None, got {max_examples!r}")
        ids, group_ids, counts = self._selection(split, max_examples)
        m = len(self.groups)
        sums = torch.zeros(m, dtype=torch.float64, device=self.device)
        start, stop = collective.shard_bounds(len(ids)) if collective is not None else (0, len(ids))
        was_training = model.training
        model.eval()
        try:
            for chunk in iter_chunks(stop - start, self.batch_size):
                chunk = slice(start + chunk.start, start + chunk.stop)
                losses = token_losses(model, ids[chunk], autocast_dtype)  # (b, T-1) fp32
                sums += group_sums(losses.sum(dim=1, dtype=torch.float64), group_ids[chunk], m)
        finally:
            model.train(was_training)
        if collective is not None:
            collective.all_reduce_(sums)
        tokens = counts * (ids.shape[1] - 1)
        out = np.full(m, np.nan)
        np.divide(sums.cpu().numpy(), tokens, out=out, where=tokens > 0)
        return out
