"""raymix phases under Tune's real trial schedulers: ASHA-pruned sweeps and PBT over the mixture."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from ray.tune.schedulers.async_hyperband import _Bracket

from raymix.methods import MixingProblem, get_method, run_method
from raymix.methods.driver import BackendSpec, LocalExecutor
from raymix.methods.schedules import Population, Pruning
from raymix.tune.executor import TuneExecutor, TuneSettings
from raymix.tune.schedulers import asha_scheduler, explore_mixture, pbt_scheduler
from raymix.tune.searchers import static_trial, with_mixture
from raymix.tune.trainable import MixingTrainable, load_state

GROUPS = ("github", "c4")


@pytest.mark.parametrize("grace,rf,max_t", [(1, 3, 9), (1, 2, 4), (2, 2, 16), (3, 3, 9), (1, 4, 20)])
def test_rungs_are_ashas_milestones(grace, rf, max_t):
    ray_rungs = sorted(m for m, _ in _Bracket(grace, max_t, rf, 0)._rungs if m < max_t)
    assert Pruning(grace_rounds=grace, reduction_factor=rf).rungs(max_t) == [int(m) for m in ray_rungs]
    # same cut: ASHA (mode-signed, max) stops below its cutoff; ours keeps values <= our cutoff
    vals = [3.1, 2.7, 2.9, 3.5, 2.2, 3.0]
    ray_cut = _Bracket(grace, max_t, rf, 0).cutoff({str(i): -v for i, v in enumerate(vals)})
    assert Pruning(grace_rounds=grace, reduction_factor=rf).cutoff(vals) == pytest.approx(-ray_cut)


def test_prior_rung_values_enter_ashas_rungs():
    sched = asha_scheduler(Pruning(grace_rounds=1, reduction_factor=2, prior={"1": [2.0, 3.0]}), max_rounds=4)
    rungs = dict(sched._brackets[0]._rungs)
    assert sorted(rungs[1].values()) == [-3.0, -2.0] and rungs[2] == {}


def test_a_member_resumes_the_donors_checkpoint_exactly(tmp_path):
    """Tune's PBT exploit = reset_config(donor's config, perturbed) + restore(donor's checkpoint)."""
    donor_cfg = with_mixture(static_trial(GROUPS, steps=600, rounds=6), [0.35, 0.65])
    donor_cfg["trial"]["population"] = True
    donor = MixingTrainable(config=copy.deepcopy(donor_cfg))
    for _ in range(2):
        donor.train()
    ckpt = donor.save(str(tmp_path / "ck"))
    member = MixingTrainable(config=with_mixture(donor_cfg, [0.8, 0.2]))
    member.train()
    member.reset_config(copy.deepcopy(donor_cfg))  # exploit without perturbation ...
    member.restore(ckpt)
    assert member.driver.backend.step == 200 and len(member.driver.history) == 2
    rest_d = [donor.train() for _ in range(4)]
    rest_m = [member.train() for _ in range(4)]
    for a, b in zip(rest_d, rest_m):  # ... continues exactly as the donor
        assert a["step"] == b["step"] and a["avg_val_loss"] == b["avg_val_loss"]
        assert a["train_loss/github"] == b["train_loss/github"]
    assert rest_m[-1]["avg_test_ppl"] == rest_d[-1]["avg_test_ppl"]
    explored = explore_mixture(Population(seed=0))(donor_cfg)  # explore: the same checkpoint, a new p
    assert not np.allclose(explored["trial"]["run"]["policy_config"]["mixture"], [0.35, 0.65])
    moved = MixingTrainable(config=explored)
    moved.restore(ckpt)
    r = moved.train()
    assert r["step"] == 300 and r["p/github"] == pytest.approx(explored["trial"]["run"]["tags"]["mixture"][0])
    for t in (donor, member, moved):
        t.stop()


@pytest.mark.ray
def test_pruned_sweep_on_tune_keeps_stopped_trials_checkpoints(ray_runtime, tmp_path):
    cfg = {"runs": 4, "rounds": 2, "grace_rounds": 1, "reduction_factor": 2}
    prob = MixingProblem(groups=GROUPS, total_steps=800)
    ex = TuneExecutor(BackendSpec(), TuneSettings(storage_path=str(tmp_path), experiment="asha"))
    res = run_method(get_method("grid_search_asha", cfg), prob, ex)
    local = run_method(get_method("grid_search_asha", cfg), prob, LocalExecutor(BackendSpec()))
    sweep = [r for r in res.runs if r.spec.role == "search"]
    stopped = [r for r in sweep if r.pruned]
    assert stopped, "ASHA stopped no trial"
    for r in stopped:
        # stopped at the rung (round 1 of 2 = step 400), curve and checkpoint kept
        assert r.stopped_at == 400 and r.history[-1].step == r.stopped_at
        assert load_state(r.checkpoint)["backend"] is not None
        assert len(load_state(r.checkpoint)["history"]) == len(r.history)
    assert res.extra_steps == sum(r.trained_steps for r in sweep) < 4 * 800
    assert res.mixture == pytest.approx(local.mixture)  # the best mixture survives either way


@pytest.mark.ray
def test_tune_does_not_hand_one_schedules_pruned_runs_to_another(ray_runtime, tmp_path):
    """Regression (gh_c4 Table 2 analog): dml_asha (grace 3) took grid_search_asha's runs, pruned at round 1
    under grace 1, from the experiment's record, because the static specs were equal."""
    prob = MixingProblem(groups=GROUPS, total_steps=600)
    ex = TuneExecutor(BackendSpec(), TuneSettings(storage_path=str(tmp_path), experiment="two-schedules"))
    gs = run_method(get_method("grid_search_asha", {"runs": 4, "rounds": 6, "grace_rounds": 1,
                                                    "reduction_factor": 2}), prob, ex)
    assert any(r.pruned and len(r.history) == 1 for r in gs.runs if r.spec.role == "search")
    dml = run_method(get_method("dml_asha", {"runs": 4, "rounds": 6, "grace_rounds": 3, "reduction_factor": 2}),
                     prob, ex)
    search = [r for r in dml.runs if r.spec.role == "search"]
    assert all(len(r.history) >= 3 for r in search), [len(r.history) for r in search]
    assert not any(name.startswith("dml-asha") for name in ex.reused)


def test_pbt_exploit_keeps_the_members_own_run_name(tmp_path):
    """Tune builds an exploiting member's config from the donor's; the member must go on reporting (and
    checkpointing) under its own run name, on the donor's perturbed mixture, from the donor's checkpoint."""
    from types import SimpleNamespace

    def member_cfg(name: str, p: list[float]) -> dict:
        cfg = with_mixture(static_trial(GROUPS, steps=600, rounds=6, name=name), p)
        cfg["trial"]["population"] = True
        return cfg

    donor = MixingTrainable(config=member_cfg("pbt-00", [0.35, 0.65]))
    donor.train()
    ckpt = donor.save(str(tmp_path / "ck"))
    member = SimpleNamespace(config=member_cfg("pbt-03", [0.8, 0.2]))
    new_config, _ = pbt_scheduler(Population(seed=0), steps=600, rounds=6)._get_new_config(
        member, SimpleNamespace(config=donor.config))
    assert new_config["trial"]["run"]["name"] == "pbt-03" and donor.config["trial"]["run"]["name"] == "pbt-00"
    p = new_config["trial"]["run"]["policy_config"]["mixture"]
    assert not np.allclose(p, [0.35, 0.65]) and not np.allclose(p, [0.8, 0.2])  # the donor's p, perturbed
    trainable = MixingTrainable(config=member_cfg("pbt-03", [0.8, 0.2]))
    trainable.reset_config(new_config)
    trainable.restore(ckpt)
    r = trainable.train()
    assert r["run"] == "pbt-03" and r["step"] == 200 and r["p/github"] == pytest.approx(p[0])
    for t in (donor, trainable):
        t.stop()


@pytest.mark.ray
@pytest.mark.slow
def test_pbt_on_tune_matches_the_in_process_population(ray_runtime, tmp_path):
    # exploit after round 2 of 4: rounds 1 and 3 are evaluated on the per-round subset, round 2 on the whole set
    cfg = {"population": 3, "rounds": 4, "interval_rounds": 2}
    prob = MixingProblem(groups=GROUPS, total_steps=800)
    ex = TuneExecutor(BackendSpec(), TuneSettings(storage_path=str(tmp_path), experiment="pbt"))
    res = run_method(get_method("pbt", cfg), prob, ex)
    local = run_method(get_method("pbt", cfg), prob, LocalExecutor(BackendSpec()))
    members = [r for r in res.runs if r.spec.role == "search"]
    assert [r.spec.name for r in members] == [f"pbt-0{i}" for i in range(3)]
    # synchronous PBT on Tune and the lockstep population in-process: same exploits, same perturbations
    for a, b in zip(members, [r for r in local.runs if r.spec.role == "search"]):
        np.testing.assert_allclose([h.mixture for h in a.history], [h.mixture for h in b.history], rtol=1e-12)
        assert a.val_loss == pytest.approx(b.val_loss, rel=1e-12)
    assert any(np.ptp([h.mixture[0] for h in r.history]) > 0 for r in members)
    assert all(r.spec.policy_config["decision_rounds"] == [2] for r in members)
    assert res.final.avg_test_ppl == pytest.approx(local.final.avg_test_ppl) and res.extra_steps == 3 * 800


def test_dml_searcher_refuses_a_trial_a_scheduler_stopped():
    from raymix.errors import ConfigError
    from raymix.tune.searchers import DMLSearcher

    searcher = DMLSearcher(static_trial(GROUPS, steps=100, rounds=4), GROUPS, runs=3)
    searcher.suggest("t0")
    with pytest.raises(ConfigError, match="stopped at step 25 of 100.*dml_asha"):
        searcher.on_trial_complete("t0", {"step": 25, "val_loss/github": 1.0, "val_loss/c4": 2.0})
