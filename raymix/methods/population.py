"""Population-based training over the mixture proportions (Jaderberg et al. 2017, on the simplex).

A population of ``population`` static-mixture runs starts from a cover of the simplex; every
``interval_rounds`` rounds the worst quarter copies the checkpoint of a random member of the best quarter
(model, optimizer, LR schedule, sampler position, policy state, step counter) and continues on a
perturbed copy of its proportions (:func:`raymix.methods.schedules.perturb_mixture`).  The result is a
*schedule* of p found by selection, not a law: in the LMO framework's terms (paper Table 1) PBT sets
p^t by evaluating the population's losses at round boundaries and keeping the best, i.e. a zeroth-order
search over the dynamic mixture, with the population as its extra cost.

* unrestricted: members train the full S steps; the best member (lowest final average validation
  loss) *is* the final model — the final run resumes it and trains nothing more.  Extra cost: the
  population, ``population · S`` steps (the winner included, as grid search's winning run is).
* restricted: members train S/20 steps with the full run's LR horizon (like truncated sweep runs), and
  the final run — or Aioli, for "aioli+pbt" — resumes the best member on its last p.

On Ray Tune the phase runs under ``PopulationBasedTraining(synch=True)``; in-process the same
exploit/explore steps run in lockstep (:func:`raymix.methods.schedules.run_population`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from raymix.config import Config, check, field
from raymix.methods.base import MixingMethod, MixingProblem, Phase, Plan
from raymix.methods.handoff import ROUND_EVAL_EXAMPLES, static_run
from raymix.methods.schedules import Population
from raymix.methods.sweeps import finish_with
from raymix.simplex import default_cover


@dataclass
class PBTConfig(Config):
    """Population-based training over p."""

    population: int = field(8, help="members of the population (initial p: a cover of the simplex)")
    rounds: int = field(20, help="round boundaries of each member's run (evaluation after each)")
    interval_rounds: int = field(2, help="rounds between exploit/explore steps (PBT perturbation_interval)")
    quantile: float = field(0.25, help="fraction of members that copy (bottom) and are copied (top)")
    factors: tuple[float, ...] = field((0.8, 1.2), help="multiplicative perturbations of each proportion")
    resample_probability: float = field(0.25, help="probability of a fresh p ~ Dirichlet(1) at explore")
    min_share: float = field(0.01, help="floor of every proportion after a perturbation")
    eval_examples: int | None = field(None, help="per-group validation examples of the evaluations the exploit "
                                                 "decisions read (None = the whole cached set)")
    curve_examples: int | None = field(ROUND_EVAL_EXAMPLES, help="per-group validation examples of the other "
                                                                 "rounds' evaluations (between exploits); "
                                                                 "= eval_examples evaluates every round alike")

    def validate(self) -> None:
        check(int(self.population) >= 2, f"population must be >= 2 members, got {self.population!r}")
        check(int(self.rounds) >= 2, f"rounds must be >= 2 (PBT acts between rounds), got {self.rounds!r}")
        check(int(self.interval_rounds) < int(self.rounds),
              f"interval_rounds ({self.interval_rounds!r}) must be < rounds ({self.rounds!r})")
        Population(interval_rounds=self.interval_rounds, quantile=self.quantile, factors=self.factors,
                   resample_probability=self.resample_probability, min_share=self.min_share)


class PopulationBasedTraining(MixingMethod):
    """PBT over p: a population trains on different p; the worst copy the best's checkpoints and perturb p."""

    name = "pbt"
    config_cls = PBTConfig
    extra_runs = "population"

    def plan(self, problem: MixingProblem) -> Plan:
        cfg: PBTConfig = self.config
        S = int(problem.total_steps)
        steps = max(1, int(round(S / 20))) if problem.restricted else S
        rounds = min(int(cfg.rounds), steps)
        points = default_cover(problem.m, int(cfg.population), seed=problem.seed)
        pop = Population(interval_rounds=min(int(cfg.interval_rounds), rounds - 1) or 1, quantile=cfg.quantile,
                         factors=cfg.factors, resample_probability=cfg.resample_probability,
                         min_share=cfg.min_share, seed=problem.seed)
        # only the exploit rounds are decisions: the others are evaluated on the small per-round subset
        runs = [static_run(f"pbt-{i:02d}", p, problem, steps=steps, role="search", rounds=rounds,
                           eval_examples=cfg.curve_examples, decisions=(pop.exploit_rounds(steps, rounds),
                                                                        cfg.eval_examples))
                for i, p in enumerate(points)]
        results = yield Phase("pbt", runs, population=pop)
        best = min(results, key=lambda r: float(np.mean(r.val_loss)))
        p_last = np.asarray(best.history[-1].mixture, dtype=float)
        return (yield from finish_with(problem, p_last, [best], best.spec.steps))
