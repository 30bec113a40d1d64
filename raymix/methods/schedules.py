"""Trial schedulers over the runs of a phase, without Ray: successive halving and population-based training.

Framing data mixing as hyperparameter optimisation buys what HPO engines do with trials:

* :class:`Pruning` — successive halving on the average validation loss at mixing-round boundaries
  (Li et al., "A System for Massively Parallel Hyperparameter Tuning", 2020: ASHA).  Rungs are at
  ``grace_rounds · reduction_factor^k`` rounds; at a rung, a run continues only if its average
  validation loss is within the best ``1/reduction_factor`` of the values recorded at that rung.  On
  Ray Tune the phase runs under ``ray.tune.schedulers.ASHAScheduler`` with the same rungs;
  in-process (:class:`~raymix.methods.driver.LocalExecutor`) every run reaches a rung before the cut is
  made (synchronous successive halving: the cut sees the whole rung, which is the limit ASHA
  approaches when all trials report a rung before any is decided; docs/DECISIONS.md).
* :class:`Population` — population-based training over the mixture (Jaderberg et al. 2017): every
  ``interval_rounds`` rounds, the worst ``quantile`` of the members copy the *checkpoint* of a random
  member of the best ``quantile`` (model, optimizer, schedule, sampler position, policy state, step
  counter: :meth:`RunDriver.state_dict <raymix.methods.driver.RunDriver.state_dict>`) and continue on
  a perturbed copy of its proportions (:func:`perturb_mixture`).  On Ray Tune this is
  ``ray.tune.schedulers.PopulationBasedTraining(synch=True)`` with :func:`perturb_mixture` as its
  ``custom_explore_fn``; in-process the members advance in lockstep, which is what ``synch=True`` does.

Both objects are plain configs: they travel inside a :class:`~raymix.methods.base.Phase` and are
turned into Tune schedulers at the edge (``raymix.tune.schedulers``).  Metric: ``avg_val_loss`` (mean
over groups of the per-group validation loss), lower is better.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from raymix.config import Config, check, check_range, field
from raymix.errors import MethodError
from raymix.mixture import as_weights

if TYPE_CHECKING:
    from raymix.methods.base import Phase
    from raymix.methods.runs import RoundReport, RunResult

#: The metric every scheduler of raymix optimises (a key of each Tune result), and its direction.
METRIC, MODE = "avg_val_loss", "min"


@dataclass
class Pruning(Config):
    """Successive halving over a phase's runs (ASHA on Ray Tune); see the module docstring."""

    grace_rounds: int = field(1, help="rounds every run trains before it can be stopped (ASHA grace_period)")
    reduction_factor: float = field(3.0, help="rung spacing and the kept fraction 1/rf (ASHA reduction_factor)")
    prior: dict[str, list[float]] = field(
        default_factory=dict, help="values recorded at each rung (key: rung in rounds) by earlier phases of the "
                                   "same search (sequential searchers such as Optuna), which the cut also sees")

    def validate(self) -> None:
        check(int(self.grace_rounds) >= 1, f"grace_rounds must be >= 1, got {self.grace_rounds!r}")
        check_range("reduction_factor", self.reduction_factor, 1.0, lo_open=True)

    def rungs(self, max_rounds: int) -> list[int]:
        """Rounds at which runs can be stopped, ascending: ASHA's milestones ``grace·rf^k`` below ``max_rounds``
        (a run that reaches ``max_rounds`` is finished, never cut)."""
        grace, rf = int(self.grace_rounds), float(self.reduction_factor)
        if max_rounds <= grace:
            return []
        n = int(np.log(max_rounds / grace) / np.log(rf) + 1)  # ASHA's MAX_RUNGS (bracket s = 0)
        return sorted(r for r in {math.ceil(grace * rf ** k - 1e-9) for k in range(n)} if r < max_rounds)

    def cutoff(self, recorded: list[float]) -> float | None:
        """The worst value still kept: the ``100/rf`` percentile of the recorded values (ASHA's cutoff)."""
        vals = np.asarray([v for v in recorded if np.isfinite(v)], dtype=float)
        if vals.size == 0:
            return None
        return float(np.percentile(vals, 100.0 / float(self.reduction_factor)))

    def survivors(self, rung: int, values: dict[str, float]) -> list[str]:
        """Names of the runs that continue past ``rung`` given every run's value there (synchronous cut over
        this phase's values and the ``prior`` recorded at the same rung); order preserved."""
        recorded = [*self.prior.get(str(rung), []), *values.values()]
        cut = self.cutoff(recorded)
        if cut is None:
            return list(values)
        return [name for name, v in values.items() if np.isfinite(v) and v <= cut]


@dataclass
class Population(Config):
    """Population-based training over the mixture p; see the module docstring."""

    interval_rounds: int = field(1, help="rounds between exploit/explore steps (PBT perturbation_interval)")
    quantile: float = field(0.25, help="fraction of members that copy (bottom) and are copied (top)")
    factors: tuple[float, ...] = field((0.8, 1.2), help="multiplicative perturbations of each proportion")
    resample_probability: float = field(0.25, help="probability of drawing a fresh p ~ Dirichlet(1) instead")
    min_share: float = field(0.01, help="floor of every proportion after a perturbation (keeps groups alive)")
    seed: int = field(0, help="seed of the donors' choice and of the perturbations")

    def validate(self) -> None:
        check(int(self.interval_rounds) >= 1, f"interval_rounds must be >= 1, got {self.interval_rounds!r}")
        check_range("quantile", self.quantile, 0.0, 0.5, lo_open=True)
        check(len(self.factors) >= 1 and all(float(f) > 0 for f in self.factors),
              f"factors must be positive numbers, got {self.factors!r}")
        check_range("resample_probability", self.resample_probability, 0.0, 1.0)
        check_range("min_share", self.min_share, 0.0, 0.5, hi_open=True)

    def exploit_pairs(self, scores: dict[str, float], rng: np.random.Generator) -> list[tuple[str, str]]:
        """(member, donor) pairs: each member of the worst quantile copies a random member of the best one.

        Quantile size as Tune's PBT: ``ceil(n·quantile)``, at most ``floor(n/2)``; ties keep the given order.
        """
        names = sorted(scores, key=lambda k: scores[k])  # best (lowest loss) first; stable
        n = len(names)
        k = min(math.ceil(n * float(self.quantile)), n // 2)
        if k == 0:
            return []
        top, bottom = names[:k], names[n - k:]
        return [(member, top[int(rng.integers(len(top)))]) for member in bottom]

    def exploit_rounds(self, steps: int, rounds: int) -> list[int]:
        """The rounds (1-based, before the last) after which the members exploit and explore, for runs of
        ``steps`` steps in ``rounds`` rounds: Tune's synchronous PBT rule — a member is due once its step is
        :func:`interval_steps` past the last exploit — on the round boundaries every member shares.  It is every
        ``interval_rounds``-th round unless rounds are shorter than ``interval_rounds`` steps."""
        from raymix.methods.policies import _split_evenly  # the static policy's own round boundaries

        interval = interval_steps(steps, rounds, int(self.interval_rounds))
        out, last = [], 0
        ends = np.cumsum(_split_evenly(int(steps), int(rounds)))
        for r, t in enumerate(ends[:-1].tolist(), start=1):
            if t - last >= interval:
                out.append(r)
                last = t
        return out

    def explore(self, p: Any, rng: np.random.Generator) -> np.ndarray:
        """A perturbed copy of the donor's mixture (see :func:`perturb_mixture`)."""
        return perturb_mixture(p, rng, factors=self.factors, resample_probability=self.resample_probability,
                               min_share=self.min_share)


def interval_steps(steps: int, rounds: int, interval_rounds: int) -> int:
    """PBT's perturbation interval in optimizer steps for runs of ``steps`` split into ``rounds`` rounds (the
    larger rounds come first, so every ``interval_rounds``-th boundary is at least this far from the last)."""
    return max(1, (int(steps) // int(rounds)) * int(interval_rounds))


def perturb_mixture(p: Any, rng: np.random.Generator, *, factors: tuple[float, ...] = (0.8, 1.2),
                    resample_probability: float = 0.25, min_share: float = 0.01) -> np.ndarray:
    """PBT's *explore* on the simplex: each p_i is multiplied by a factor drawn from ``factors`` (Tune's
    multiplicative perturbation, applied per coordinate; never one factor for all, which the renormalisation
    would undo) and the result renormalised; with probability
    ``resample_probability`` p is redrawn from Dirichlet(1) instead (Tune's resampling).  Every proportion is
    then floored at ``min_share`` and renormalised, so no group is switched off for good.  Returns ``(m,)``.
    """
    w = as_weights(p)
    if rng.random() < float(resample_probability):
        q = rng.dirichlet(np.ones(w.size))
    else:
        f = np.asarray(factors, dtype=float)
        pick = rng.integers(len(f), size=w.size)
        if len(set(f.tolist())) > 1 and np.unique(f[pick]).size == 1:
            # one common factor would be undone by the renormalisation: move one coordinate the other way
            j = int(rng.integers(w.size))
            pick[j] = int(rng.choice([k for k in range(len(f)) if f[k] != f[pick[j]]]))
        q = w * f[pick]
    q = q / q.sum()
    floor = float(min_share)
    if floor > 0 and q.min() < floor:
        # water-filling: groups below the floor get exactly the floor, the others share the rest pro rata
        low = q < floor
        while True:
            rest = 1.0 - floor * low.sum()
            scaled = np.where(low, floor, q / q[~low].sum() * rest)
            new_low = scaled < floor - 1e-15
            if not (new_low & ~low).any():
                q = scaled
                break
            low |= new_low
    return q / q.sum()


# ---------------------------------------------------------------------------------------- in-process runs
class SteppedRun(Protocol):
    """What the in-process schedulers drive (a :class:`~raymix.methods.driver.RunDriver`)."""

    history: list[RoundReport]

    @property
    def done(self) -> bool: ...

    def round(self) -> RoundReport: ...


def round_value(report: RoundReport) -> float:
    """The scheduler metric of one round: mean over groups of its validation losses (NaN if none)."""
    return float(np.mean(report.val_loss)) if report.val_loss is not None else float("nan")


def run_successive_halving(runs: dict[str, SteppedRun], pruning: Pruning, max_rounds: int) -> dict[str, int]:
    """Train ``runs`` under synchronous successive halving; returns ``{name: rounds trained}`` of the runs
    that were stopped at a rung (the others trained to the end)."""
    alive = list(runs)
    stopped: dict[str, int] = {}
    for rung in pruning.rungs(max_rounds):
        for name in alive:
            run = runs[name]
            while len(run.history) < rung and not run.done:
                run.round()
        values = {name: round_value(runs[name].history[rung - 1]) for name in alive
                  if len(runs[name].history) >= rung}
        keep = set(pruning.survivors(rung, values))
        for name in alive:
            if name in values and name not in keep:
                stopped[name] = rung
        alive = [n for n in alive if n not in stopped]
    for name in alive:
        run = runs[name]
        while not run.done:
            run.round()
    return stopped


def run_population(runs: dict[str, Any], population: Population, max_rounds: int,
                   exploit: Any, exploit_at: list[int] | None = None) -> dict[str, Any]:
    """Train ``runs`` (RunDrivers) as a PBT population in lockstep; returns the final drivers by member name.

    After the rounds ``exploit_at`` (default: every ``interval_rounds`` rounds; the driver passes
    :meth:`Population.exploit_rounds`, Tune's rule), never after the last, the members are ranked by their last
    round's average validation loss; each member of the worst quantile is replaced by ``exploit(member, donor,
    mixture)`` — a driver that continues the donor's checkpoint on ``population.explore(donor's p)``.
    """
    rng = np.random.default_rng(int(population.seed))
    runs = dict(runs)
    every = int(population.interval_rounds)
    at = list(range(every, max_rounds, every)) if exploit_at is None else sorted(set(exploit_at))
    done_rounds = 0
    for target in at:
        if target >= max_rounds:
            break
        for r in runs.values():
            for _ in range(target - done_rounds):
                if not r.done:
                    r.round()
        done_rounds = target
        if any(r.done for r in runs.values()):
            break
        scores = {name: round_value(r.history[-1]) for name, r in runs.items()}
        for member, donor in population.exploit_pairs(scores, rng):
            p = population.explore(runs[donor].history[-1].mixture, rng)
            runs[member] = exploit(runs[member], runs[donor], [float(x) for x in p])
    for r in runs.values():
        while not r.done:
            r.round()
    return runs


def rung_table(results: list[RunResult], rung: int) -> tuple[list[RunResult], np.ndarray]:
    """Runs that reached ``rung`` rounds and their per-group validation losses there, ``(n, m)``: the losses
    at a common step, usable by law fits even for runs that were stopped later."""
    reached = [r for r in results if len(r.history) >= rung and r.history[rung - 1].val_loss is not None]
    m = len(results[0].groups) if results else 0
    L = np.array([r.history[rung - 1].val_loss for r in reached], dtype=float).reshape(len(reached), m)
    return reached, L  # (0, m) when no run has a loss there


def deepest_common_rung(results: list[RunResult], min_runs: int) -> int:
    """The largest round count reached by at least ``min_runs`` of ``results`` (0 if none)."""
    depth = sorted((len(r.history) for r in results), reverse=True)
    return depth[min_runs - 1] if len(depth) >= min_runs else 0


def check_scheduled_runs(phase: Phase) -> None:
    """A scheduled phase holds fresh static runs of the same length and rounds (rungs and intervals are
    counted in rounds, and members exchange checkpoints)."""
    if not phase.runs:
        raise MethodError(f"scheduled phase {phase.name!r} has no runs")
    kind = "pruned" if phase.pruning is not None else "population"
    for spec in phase.runs:
        if spec.resume_from is not None or spec.reference_from is not None:
            raise MethodError(f"{kind} phase {phase.name!r}: run {spec.name!r} resumes or references another run; "
                              "scheduled runs must start fresh")
        if spec.policy != "static":
            raise MethodError(f"{kind} phase {phase.name!r}: run {spec.name!r} uses policy {spec.policy!r}; "
                              "trial schedulers here drive static-mixture runs")
    shape = {(s.steps, s.total_steps, int(s.policy_config.get("rounds", 0))) for s in phase.runs}
    if len(shape) != 1:
        raise MethodError(f"{kind} phase {phase.name!r}: runs differ in (steps, total_steps, rounds) {sorted(shape)}; "
                          "a scheduler compares runs at common round boundaries")


def schedule_digest(phase: Phase) -> str:
    """``"asha:<digest>"`` / ``"pbt:<digest>"``: the trial scheduler's settings (rungs, prior, population)
    and the identities of all the phase's runs — what a scheduled run's outcome depends on besides its own
    spec (the cut at a rung compares it with the others; a member takes over others' checkpoints)."""
    kind, cfg = ("asha", phase.pruning) if phase.pruning is not None else ("pbt", phase.population)
    runs = sorted(json.dumps({**spec.identity(), "schedule": None}, sort_keys=True, default=str)
                  for spec in phase.runs)
    blob = json.dumps({"scheduler": cfg.to_dict(), "runs": runs}, sort_keys=True, default=str)
    return f"{kind}:{hashlib.sha256(blob.encode()).hexdigest()[:16]}"


def phase_rounds(phase: Phase) -> int:
    """Rounds of each run of a scheduled phase."""
    spec = phase.runs[0]
    return min(int(spec.policy_config.get("rounds", 1)), int(spec.steps))
