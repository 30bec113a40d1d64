"""The final run of every method, in both settings of the paper (§6.1 unrestricted, §6.2 restricted).

* plain method: train the final run of S steps on the learned static ``p_method``;
* "Aioli+method" (restricted setting, paper §6.2): run Aioli with ``p_init = p_method`` and
  ``S_init = S_method`` (the length of the method's short runs).  For sweep-based methods the final run
  *resumes the truncated trial* that already trained S_init steps on ``p_method`` (same model, optimizer,
  schedule and step counter) instead of retraining that prefix; proxy-based methods (DoReMi, DoGE,
  Skill-It) have no such trial and train a fresh model on ``p_method`` for the S_init prefix.

As Algorithm 1 (line 3: "Set p⁰ = Unif(m)" after the S_init steps on p_init) and the authors' code, the
dynamic phase starts from uniform: p_method shapes the model during the S_init prefix, and Aioli's EGD then
moves p from the centre of the simplex.  ``AioliConfig.start="p_init"`` starts the dynamic phase from
p_method instead, floored away from the simplex faces (``raymix.methods.policies.START_FLOOR``): EGD is
multiplicative, so a p_method on a face (DML's m = 2 closed form clips to 0/1) would starve a group for ever.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from raymix.methods.base import MixingProblem
from raymix.methods.hparams import aioli_defaults
from raymix.methods.policies import AioliConfig
from raymix.methods.runs import RunSpec

#: Per-group validation sequences evaluated at the end of each reporting round of a run.  Only trajectories
#: use them; decisions (sweep selection, final metrics) use the whole cached sets (RunDriver.final_losses).
ROUND_EVAL_EXAMPLES = 8


def static_run(name: str, p: Sequence[float], problem: MixingProblem, *, steps: int | None = None,
               total_steps: int | None = None, role: str = "final", resume_from: str | None = None,
               eval_examples: int | None = ROUND_EVAL_EXAMPLES, rounds: int | None = None,
               eval_start: bool = False, decisions: tuple[Sequence[int], int | None] | None = None) -> RunSpec:
    """A static-mixture run (``steps`` defaults to S; ``total_steps`` — the LR horizon — to S as well;
    ``rounds`` — reporting rounds, each ending in a validation evaluation — to the problem's).

    ``decisions = (rounds, examples)``: the rounds a trial scheduler decides on are evaluated on ``examples``
    per group (None = the whole cached set), the others on ``eval_examples`` (``StaticConfig.decision_rounds``);
    ignored when ``examples == eval_examples`` (every round is then evaluated alike).
    """
    S = int(problem.total_steps)
    steps = S if steps is None else int(steps)
    total = S if total_steps is None else int(total_steps)
    p = [float(x) for x in np.asarray(p, dtype=float)]
    config = {"mixture": p, "rounds": min(rounds or problem.rounds, steps), "eval_examples": eval_examples,
              "eval_start": eval_start}
    if decisions is not None and decisions[1] != eval_examples:
        # only then: the policy config is part of a run's identity, and other runs keep the one they had
        config.update(decision_rounds=[int(r) for r in decisions[0]], decision_examples=decisions[1])
    return RunSpec(name=name, policy="static", steps=steps, total_steps=total, seed=problem.seed, role=role,
                   resume_from=resume_from, policy_config=config, tags={"mixture": p})


def aioli_config(problem: MixingProblem, **overrides) -> AioliConfig:
    """Paper hyperparameters for this m and setting (Tables 13–18), then the problem's and caller's overrides."""
    base = aioli_defaults(problem.m, problem.setting)
    return AioliConfig.from_dict({**base, **problem.aioli, **overrides})


def final_run(problem: MixingProblem, p_method: Sequence[float], *, s_method: int = 0,
              truncated_run: str | None = None) -> RunSpec:
    """The final run for a learned static mixture, honouring the problem's setting and ``with_aioli``.

    Args:
        p_method: the proportions the method learned.
        s_method: length of the method's short runs (S_init of Aioli+method).
        truncated_run: name of a finished run that trained ``s_method`` steps on ``p_method`` with the final
            run's LR horizon; the final run resumes it.
    """
    S = int(problem.total_steps)
    p = [float(x) for x in np.asarray(p_method, dtype=float)]
    if problem.with_aioli:
        cfg = aioli_config(problem, init_mixture=p, init_steps=int(s_method))
        return RunSpec(name="final", policy="aioli", policy_config=cfg.to_dict(), steps=S, total_steps=S,
                       seed=problem.seed, role="final", resume_from=truncated_run, tags={"mixture": p, "p_init": p})
    return static_run("final", p, problem, resume_from=truncated_run)


def needs_truncated_run(problem: MixingProblem) -> bool:
    """Whether the final run should resume a truncated trial at p_method (restricted, Aioli+method)."""
    return problem.restricted and problem.with_aioli
