"""Optuna search over the simplex: data mixing as plain hyperparameter optimisation (paper §7, "HPO").

Each trial proposes m free parameters; a softmax-free *stick-breaking* map turns them into a point of
the simplex (uniform on the simplex when the parameters are uniform Beta-transformed draws), so TPE or
GP samplers search the simplex directly.  Trials run as static sweep runs (S, or S/20 restricted),
``batch`` at a time (one phase = one Tune experiment of ``batch`` concurrent trials), and the best
validation loss wins.  On Ray Tune the same search is available as ``ray.tune.search.optuna.OptunaSearch``
over :func:`stick_breaking` (see ``raymix.tune.searchers``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from raymix.config import check, field
from raymix.methods.base import MixingMethod, MixingProblem, Phase, Plan
from raymix.methods.handoff import static_run
from raymix.methods.hparams import short_run_steps
from raymix.methods.sweeps import SweepConfig, best_run, finish_with


def stick_breaking(u: np.ndarray) -> np.ndarray:
    """Map ``u ∈ [0,1]^{m−1}`` to the simplex: p_1 = 1−(1−u_1)^{1/(m−1)}… (uniform-on-simplex transform).

    With u_k ~ U(0,1), the k-th break uses Beta(1, m−k) quantiles so that p is uniform on Δ^m.
    """
    u = np.clip(np.asarray(u, dtype=float), 0.0, 1.0)
    m = u.size + 1
    p = np.zeros(m)
    rest = 1.0
    for k in range(m - 1):
        frac = 1.0 - (1.0 - u[k]) ** (1.0 / (m - 1 - k))  # Beta(1, m-1-k) quantile
        p[k] = rest * frac
        rest -= p[k]
    p[-1] = max(rest, 0.0)
    return p / p.sum()


def simplex_study(seed: int, runs: int, sampler: str = "tpe"):
    """A quiet Optuna study minimising the average validation loss: TPE seeded by the problem (random start
    for min(4, runs) trials) or a GP sampler."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    chosen = (optuna.samplers.TPESampler(seed=seed, n_startup_trials=min(4, runs)) if sampler == "tpe"
              else optuna.samplers.GPSampler(seed=seed))
    return optuna.create_study(direction="minimize", sampler=chosen)


@dataclass
class OptunaConfig(SweepConfig):
    """Optuna TPE (or GP) search over the simplex."""

    runs: int = field(10, help="number of trials")
    batch: int = field(2, help="trials proposed per phase (trained concurrently)")
    sampler: str = field("tpe", help="'tpe' or 'gp'")

    def validate(self) -> None:
        super().validate()
        check(int(self.batch) >= 1, f"batch must be >= 1, got {self.batch!r}")
        check(self.sampler in ("tpe", "gp"), f"sampler must be 'tpe' or 'gp', got {self.sampler!r}")


class OptunaSimplexSearch(MixingMethod):
    """Sequential model-based search over p with Optuna (not in the paper's tables)."""

    name = "optuna"
    config_cls = OptunaConfig
    extra_runs = "10"

    def plan(self, problem: MixingProblem) -> Plan:
        import optuna

        cfg: OptunaConfig = self.config
        study = simplex_study(problem.seed, int(cfg.runs), cfg.sampler)
        steps = int(cfg.steps) if cfg.steps else short_run_steps("optuna", problem.m, problem.total_steps,
                                                                 problem.setting)
        all_results = []
        done = 0
        while done < int(cfg.runs):
            n = min(int(cfg.batch), int(cfg.runs) - done)
            trials = [study.ask() for _ in range(n)]
            points = [stick_breaking([t.suggest_float(f"u{k}", 0.0, 1.0) for k in range(problem.m - 1)])
                      for t in trials]
            runs = [static_run(f"optuna-{done + i:02d}", p, problem, steps=steps, role="search",
                               eval_examples=cfg.eval_examples, rounds=1) for i, p in enumerate(points)]
            results = yield Phase(f"optuna-{done // max(1, int(cfg.batch)):02d}", runs)
            for t, r in zip(trials, results):
                loss = float(np.mean(r.val_loss))
                # a diverged trial is a failed trial for the sampler, never the best one
                if np.isfinite(loss):
                    study.tell(t, loss)
                else:
                    study.tell(t, state=optuna.trial.TrialState.FAIL)
            all_results.extend(results)
            done += n
        best = best_run(all_results, self.name)
        return (yield from finish_with(problem, np.asarray(best.spec.tags["mixture"]), all_results, best.spec.steps))
