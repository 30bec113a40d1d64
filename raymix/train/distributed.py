"""Data parallelism for :class:`~raymix.train.model_backend.ModelBackend`, on plain ``torch.distributed``.

A run trained by W workers (ranks) follows the trajectory of one worker on the same global batch:

* every rank holds the same model, optimizer, schedule and sampler state (weights are broadcast from
  rank 0 once; after that every update is identical on every rank);
* every rank draws the **full global batch** from its own copy of the sampler (same seed, same position,
  same p), so the sampler states never diverge, and trains on its own contiguous slice of the rows
  (:meth:`Collective.shard`): the slices are disjoint, cover the batch and depend only on (B, rank, W);
* each rank backpropagates ``(token-loss sum of its rows) / (tokens of the global batch)``; summing the
  gradients over ranks (:meth:`Collective.all_reduce_grads`, one flat all-reduce per optimizer step)
  gives exactly the gradient of the global batch's mean token loss, whatever the slice sizes;
* per-group loss sums (training statistics, evaluations) are summed over ranks before dividing by the
  global token counts, so every rank returns the same ``(m,)`` losses.

Floating-point sums are then taken in another order than with one worker (per-rank partial sums, then
the all-reduce), which is the only difference to a single worker (see docs/DECISIONS.md for the measured
size).  Nothing here imports Ray: Ray Train (``raymix.tune.workers``) only starts the processes and
initialises the process group (gloo on CPU, nccl on GPU).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch
import torch.distributed as dist

from raymix.errors import DistributedError

__all__ = ["Collective", "DistributedError"]

class Collective:
    """The data-parallel group a backend trains in; with one process every method is a no-op.

    Args:
        rank: this process's rank in ``[0, world_size)``.
        world_size: number of processes; 1 = not distributed.

    Use :meth:`detect` to read them from an initialised ``torch.distributed`` process group.
    """

    def __init__(self, rank: int = 0, world_size: int = 1) -> None:
        if world_size < 1 or not 0 <= rank < world_size:
            raise DistributedError(f"rank {rank!r} must lie in [0, world_size={world_size!r}) and world_size >= 1")
        if world_size > 1 and not (dist.is_available() and dist.is_initialized()):
            raise DistributedError(f"world_size={world_size} needs an initialised torch.distributed process group "
                                   "(Ray Train's TorchTrainer or torch.distributed.init_process_group)")
        self.rank = int(rank)
        self.world_size = int(world_size)

    @classmethod
    def detect(cls) -> Collective:
        """Rank and world size of the default process group, or a single process when there is none."""
        if dist.is_available() and dist.is_initialized():
            return cls(dist.get_rank(), dist.get_world_size())
        return cls()

    @property
    def active(self) -> bool:
        """More than one process: the collective operations communicate."""
        return self.world_size > 1

    def __repr__(self) -> str:
        return f"Collective(rank={self.rank}, world_size={self.world_size})"

    # ------------------------------------------------------------------ slicing
    def shard_bounds(self, n: int) -> tuple[int, int]:
        """``[start, stop)`` of this rank's contiguous share of ``n`` rows: ``⌊r·n/W⌋ .. ⌊(r+1)·n/W⌋``.

        The shares of all ranks are disjoint, cover ``0..n`` and differ in size by at most one."""
        return (self.rank * n) // self.world_size, ((self.rank + 1) * n) // self.world_size

    def shard(self, n: int) -> slice:
        """This rank's rows of a batch of ``n`` rows (see :meth:`shard_bounds`)."""
        return slice(*self.shard_bounds(n))

    # ------------------------------------------------------------------ reductions
    def all_reduce_(self, tensor: torch.Tensor) -> torch.Tensor:
        """Sum ``tensor`` over ranks, in place; returns it."""
        if self.active:
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def all_reduce_grads(self, params: Iterable[torch.nn.Parameter]) -> None:
        """Sum every parameter's gradient over ranks with one flat all-reduce (a missing grad counts as 0).

        Each rank's gradient is of its rows' token-loss sum over the *global* token count, so the sum is
        the global batch's gradient, identical on every rank afterwards."""
        if not self.active:
            return
        params = list(params)
        if not params:
            return
        ref = params[0]
        flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1).to(ref.dtype)
                          for p in params])
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        offset = 0
        for p in params:
            n = p.numel()
            p.grad = flat[offset:offset + n].view_as(p).to(p.dtype)
            offset += n

    def broadcast_module_(self, module: torch.nn.Module, src: int = 0) -> None:
        """Copy ``src``'s parameters and buffers to every rank (what DDP does at construction)."""
        if not self.active:
            return
        with torch.no_grad():
            for t in list(module.parameters()) + list(module.buffers()):
                dist.broadcast(t.data, src=src)

    def agree(self, values: np.ndarray, what: str, *, device: torch.device | str = "cpu",
              atol: float = 1e-12) -> np.ndarray:
        """Rank 0's ``values`` on every rank; raises :class:`DistributedError` when this rank's differ.

        Guards the contract that every rank sees the same p (or counts): a policy that decided
        differently on another rank would otherwise train on silently inconsistent batches."""
        arr = np.asarray(values, dtype=np.float64)
        if not self.active:
            return arr
        t = torch.as_tensor(arr, dtype=torch.float64, device=device).clone()
        dist.broadcast(t, src=0)
        ref = t.cpu().numpy()
        if ref.shape != arr.shape or not np.allclose(ref, arr, rtol=0.0, atol=atol):
            raise DistributedError(f"rank {self.rank} has {what} {arr.tolist()} but rank 0 has {ref.tolist()}; every "
                                   "rank of a data-parallel run must drive the backend identically (same policy "
                                   "state, same evaluations)")
        return ref
