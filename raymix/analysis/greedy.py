"""Greedy vs optimal dynamic mixtures over T rounds (paper §4.4, App. C.3, Table 10).

EGD is greedy: it picks ``p^t`` to minimize the loss after round t only.  The paper checks what that costs
by brute force: with ``S`` steps split into ``T = 2`` rounds and ``P = {0.1, …, 0.9}``, train every
schedule ``(p^1, p^2) ∈ P × P``; the greedy schedule takes the best ``p^1`` after round 1 and then, given
it, the best ``p^2``.  The functions here do the bookkeeping on losses that the trainer-side sweep
produced (or on any callable, e.g. a simulator); they train nothing themselves.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from raymix.errors import ConfigError, FitError

__all__ = ["GreedyVsOptimal", "greedy_vs_optimal"]

Schedule = tuple[Hashable, ...]


@dataclass(frozen=True)
class GreedyVsOptimal:
    """Outcome of :func:`greedy_vs_optimal` (one column pair of Table 10).

    Attributes:
        greedy_schedule: ``(p^1, …, p^T)`` chosen round by round.
        greedy_loss: loss after all T rounds of the greedy schedule.
        optimal_schedule: the best schedule in ``P^T``.
        optimal_loss: its loss.
        greedy_is_optimal: whether the greedy loss equals the optimum (within ``rtol``).
        n_evaluations: distinct schedules / prefixes whose loss was looked up.
    """

    greedy_schedule: Schedule
    greedy_loss: float
    optimal_schedule: Schedule
    optimal_loss: float
    greedy_is_optimal: bool
    n_evaluations: int

    @property
    def regret(self) -> float:
        """``greedy_loss − optimal_loss`` (≥ 0)."""
        return self.greedy_loss - self.optimal_loss


def _candidate(c: Any) -> Hashable:
    """Arrays/lists become tuples of floats so they can key a table; scalars and tuples pass through."""
    if isinstance(c, np.ndarray) or isinstance(c, list):
        return tuple(float(x) for x in np.asarray(c, dtype=float).ravel())
    if isinstance(c, np.generic):
        return c.item()
    try:
        hash(c)
    except TypeError:
        raise ConfigError(f"candidate mixture {c!r} is not hashable; use a float, tuple or array") from None
    return c


def greedy_vs_optimal(
    candidates: Sequence[Any],
    loss_after: Callable[[Schedule], float] | Mapping[Schedule, float],
    rounds: int = 2,
    *,
    rtol: float = 1e-9,
    max_schedules: int = 1_000_000,
) -> GreedyVsOptimal:
    """Compare the greedy round-by-round schedule with the brute-force optimum over ``P^T``.

    Args:
        candidates: the sweep ``P``: mixtures as floats (``p_1`` for m=2, as in Table 10), tuples or arrays.
        loss_after: average loss (e.g. mean per-group validation loss or PPL; lower is better) after training
            on a schedule prefix ``(p^1, …, p^t)``, ``1 ≤ t ≤ T``.  Either a callable or a mapping from
            schedule tuples — which must then hold every prefix the greedy walk visits (all ``(p^1,)`` and
            ``(p^1*, p^2)`` …) and all ``|P|^T`` full schedules.
        rounds: T ≥ 1.
        rtol: relative tolerance of ``greedy_is_optimal``.
        max_schedules: refuse brute force above this many schedules (``|P|^T``).

    Returns:
        :class:`GreedyVsOptimal`.  Ties go to the earlier candidate in ``candidates`` order.
    """
    if not isinstance(rounds, (int, np.integer)) or isinstance(rounds, bool) or rounds < 1:
        raise ConfigError(f"rounds (T) must be an int >= 1, got {rounds!r}")
    cands = [_candidate(c) for c in candidates]
    if not cands:
        raise ConfigError("candidates is empty; give the sweep's mixtures P")
    if len(set(cands)) != len(cands):
        raise ConfigError(f"candidates contain duplicates: {cands}; each mixture once")
    n_sched = len(cands) ** int(rounds)
    if n_sched > max_schedules:
        raise ConfigError(
            f"|P|^T = {len(cands)}^{rounds} = {n_sched} schedules exceeds max_schedules={max_schedules}; "
            f"use fewer candidates/rounds or raise max_schedules"
        )
    if not (callable(loss_after) or isinstance(loss_after, Mapping)):
        raise ConfigError(f"loss_after must be a callable or a mapping schedule -> loss, got {loss_after!r}")

    cache: dict[Schedule, float] = {}

    def loss(s: Schedule) -> float:
        if s not in cache:
            if isinstance(loss_after, Mapping):
                if s not in loss_after:
                    raise FitError(
                        f"the loss table has no entry for schedule {s!r}; it needs every greedy prefix and all "
                        f"{n_sched} full schedules"
                    )
                v = loss_after[s]
            else:
                v = loss_after(s)
            try:
                v = float(v)
            except (TypeError, ValueError):
                raise FitError(f"loss of schedule {s!r} is {v!r}, not a number") from None
            if not np.isfinite(v):
                raise FitError(f"loss of schedule {s!r} is {v!r}; losses must be finite (drop diverged runs)")
            cache[s] = v
        return cache[s]

    prefix: Schedule = ()
    for _ in range(int(rounds)):
        best = min(cands, key=lambda c: loss(prefix + (c,)))  # min keeps the first of equal values
        prefix = prefix + (best,)
    greedy_loss = loss(prefix)

    opt_sched, opt_loss = None, np.inf
    for s in itertools.product(cands, repeat=int(rounds)):
        v = loss(tuple(s))
        if v < opt_loss:
            opt_sched, opt_loss = tuple(s), v
    is_opt = greedy_loss <= opt_loss + rtol * max(abs(opt_loss), 1e-300)
    return GreedyVsOptimal(prefix, greedy_loss, opt_sched, float(opt_loss), bool(is_opt), len(cache))
