"""Online methods of the paper's tables: Skill-It, DoReMi, DoGE and Aioli with its ablations.

Skill-It, DoReMi and DoGE are linear-dynamic-law methods with EGD and method-specific A^t (paper Thm. 1);
Skill-It runs online in the final run, DoReMi and DoGE average a proxy run's weights into a static p.
Aioli estimates A^t itself during the final run and needs no extra run (paper §5, Algorithm 1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from raymix.config import Config, check, field
from raymix.estimators.skill_it import SkillItUpdater, skills_graph
from raymix.methods.base import MixingMethod, MixingProblem, Phase, Plan
from raymix.methods.handoff import aioli_config, final_run, static_run
from raymix.methods.hparams import doge_defaults, doremi_defaults, short_run_steps, skill_it_defaults
from raymix.methods.policies import DoGEConfig, DoReMiConfig, SkillItConfig
from raymix.methods.runs import RunSpec


def _merge(defaults: dict, config: Config, keys: tuple[str, ...]) -> dict:
    """Paper defaults for ``keys``, overridden by the fields of ``config`` the user set (non-None)."""
    return {**defaults, **{k: getattr(config, k) for k in keys if getattr(config, k) is not None}}


@dataclass
class SkillItMethodConfig(Config):
    """Skill-It: m one-group runs build the skills graph, then the online run (None = paper value)."""

    rounds: int | None = field(None, help="T (paper: 10; 20 for m=7)")
    eta: float | None = field(None, help="η (paper: 0.2)")
    window: int | None = field(None, help="loss window (paper: 3)")
    graph_steps: int | None = field(None, help="steps of each one-group run; None = S (S/(2m) restricted)")
    eval_examples: int | None = field(None, help="per-group validation examples per evaluation")


class SkillIt(MixingMethod):
    """Skill-It (Chen et al. 2023; paper §3.3.2).  The graph is indexed by group *name*."""

    name = "skill_it"
    config_cls = SkillItMethodConfig
    extra_runs = "m"

    def plan(self, problem: MixingProblem) -> Plan:
        cfg = self.config
        steps = int(cfg.graph_steps or short_run_steps("skill_it", problem.m, problem.total_steps, problem.setting))
        runs = []
        for j, g in enumerate(problem.groups):
            onehot = np.eye(problem.m)[j]
            # Each graph run is a complete run of its own length (its own LR horizon).
            runs.append(static_run(f"skill-it-graph-{g}", onehot, problem, steps=steps, total_steps=steps,
                                   role="graph", eval_examples=cfg.eval_examples, rounds=1, eval_start=True))
        results = yield Phase("skill-it-graph", runs)
        # Keyed by group *name* on both axes (the authors' positional indexing transposed the matrix).
        start = {g: dict(zip(r.groups, r.summary["val_start"])) for g, r in zip(problem.groups, results)}
        end = {g: dict(zip(r.groups, r.summary["val_end"])) for g, r in zip(problem.groups, results)}
        graph = skills_graph(start, end, problem.groups)
        hp = _merge(skill_it_defaults(problem.m, problem.setting), cfg, ("rounds", "eta", "window"))
        hp["graph"] = [list(map(float, row)) for row in graph]
        hp["eval_examples"] = cfg.eval_examples
        if problem.with_aioli:
            # Aioli+Skill-It: the static p Skill-It's rule gives from the graph and the graph runs' final
            # validation losses (the only losses the restricted budget pays for); see docs/DECISIONS.md.
            loss = np.mean([[end[run][g] for g in problem.groups] for run in problem.groups], axis=0)
            upd = SkillItUpdater(graph, eta=hp["eta"], window=hp["window"])
            p = upd.update(loss)
            return final_run(problem, p, s_method=steps)
        S = int(problem.total_steps)
        return RunSpec(name="final", policy="skill_it", policy_config=SkillItConfig.from_dict(hp).to_dict(),
                       steps=S, total_steps=S, seed=problem.seed, role="final", tags={"graph": hp["graph"]})


@dataclass
class ProxyMethodConfig(Config):
    """A proxy-model method (DoReMi / DoGE); None = paper value."""

    eta: float | None = field(None, help="η of the weight update")
    proxy_steps: int | None = field(None, help="steps of the proxy (and reference) runs; None = paper rule")


class DoReMi(MixingMethod):
    """DoReMi (Xie et al. 2023): reference run (stratified) → proxy run → averaged weights → final run."""

    name = "doremi"
    config_cls = ProxyMethodConfig
    extra_runs = "2"

    def plan(self, problem: MixingProblem) -> Plan:
        steps = int(self.config.proxy_steps or short_run_steps("doremi", problem.m, problem.total_steps,
                                                               problem.setting))
        ref = static_run("doremi-reference", np.full(problem.m, 1 / problem.m), problem, steps=steps,
                         total_steps=steps, role="reference")
        yield Phase("doremi-reference", [ref])
        hp = _merge(doremi_defaults(problem.m, problem.setting), self.config, ("eta",))
        proxy = RunSpec(name="doremi-proxy", policy="doremi", seed=problem.seed, role="proxy",
                        policy_config=DoReMiConfig(rounds=min(problem.rounds, steps), **hp).to_dict(),
                        steps=steps, total_steps=steps, reference_from="doremi-reference")
        (res,) = yield Phase("doremi-proxy", [proxy])
        return final_run(problem, res.summary["mixture"], s_method=steps)


class DoGE(MixingMethod):
    """DoGE (Fan et al. 2024): proxy run with gradient-alignment weights → averaged weights → final run."""

    name = "doge"
    config_cls = ProxyMethodConfig
    extra_runs = "1"

    def plan(self, problem: MixingProblem) -> Plan:
        steps = int(self.config.proxy_steps or short_run_steps("doge", problem.m, problem.total_steps,
                                                               problem.setting))
        hp = _merge(doge_defaults(problem.m, problem.setting), self.config, ("eta",))
        proxy = RunSpec(name="doge-proxy", policy="doge", seed=problem.seed, role="proxy",
                        policy_config=DoGEConfig(rounds=min(problem.rounds, steps), **hp).to_dict(),
                        steps=steps, total_steps=steps)
        (res,) = yield Phase("doge-proxy", [proxy])
        return final_run(problem, res.summary["mixture"], s_method=steps)


@dataclass
class AioliMethodConfig(Config):
    """Aioli overrides on top of the paper's values for this m and setting (fields of AioliConfig)."""

    overrides: dict | None = field(None, help="AioliConfig fields to override, e.g. {'eta': 0.3, 'ema': 0.1}")


class Aioli(MixingMethod):
    """Aioli (paper §5, Algorithm 1): no extra runs; learns A^t during the final run.

    ``get_method("aioli", eta=0.3)`` and ``get_method("aioli", {"overrides": {"eta": 0.3}})`` are equivalent.
    """

    name = "aioli"
    config_cls = AioliMethodConfig
    extra_runs = "0"
    _ablation: dict = {}

    def __init__(self, config: Config | dict | None = None, **overrides) -> None:
        fields = {**(config.to_dict() if isinstance(config, Config) else dict(config or {})), **overrides}
        fields = {**(fields.pop("overrides", None) or {}), **fields}
        self.config = AioliMethodConfig(overrides=fields)
        aioli_config(MixingProblem(groups=("a", "b")), **fields)  # unknown or invalid fields fail here, not later

    def plan(self, problem: MixingProblem) -> Plan:
        check(not problem.with_aioli, "the 'aioli' method is Aioli itself; with_aioli applies to other methods")
        S = int(problem.total_steps)
        cfg = aioli_config(problem, **{**(self.config.overrides or {}), **self._ablation})
        return RunSpec(name="final", policy="aioli", policy_config=cfg.to_dict(), steps=S, total_steps=S,
                       seed=problem.seed, role="final")
        yield  # a generator that plans no phase


class AioliStatic(Aioli):
    """Ablation (paper App. E.2): T = 1 — learn A^1 once at the start, keep p^1 for the whole run."""

    name = "aioli_static"
    _ablation = {"rounds": 1}


class AioliDiagonal(Aioli):
    """Ablation (paper App. E.2): diagonal A^t, A_ii = β_ii / p^{t,i}_i."""

    name = "aioli_diagonal"
    _ablation = {"diagonal": True}
