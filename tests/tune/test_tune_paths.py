"""raymix on Ray Tune: tune.run / Tuner idioms, searchers, exact checkpoint restore, restricted hand-off."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from ray import tune

from raymix.laws import LogLinearStaticLaw
from raymix.methods import MixingProblem, get_method, run_method
from raymix.methods.driver import BackendSpec
from raymix.tune.executor import TuneExecutor, TuneSettings
from raymix.tune.searchers import DMLSearcher, simplex_space, static_trial, with_mixture
from raymix.tune.trainable import MixingTrainable, load_state

pytestmark = pytest.mark.ray
GROUPS = ("github", "c4")


def test_tune_run_idiom(ray_runtime, tmp_path):
    base = static_trial(GROUPS, steps=400, rounds=4)
    analysis = tune.run(
        MixingTrainable,
        config={**base, "trial": tune.grid_search([with_mixture(base, p)["trial"] for p in ([0.3, 0.7], [0.7, 0.3])])},
        stop={"done": True}, storage_path=str(tmp_path), name="run-idiom", verbose=0, reuse_actors=True,
        checkpoint_at_end=True,
    )
    assert len(analysis.trials) == 2
    for t in analysis.trials:
        r = t.last_result
        assert r["done"] and r["step"] == 400 and r["avg_test_ppl"] > 1
        assert set(r) >= {"p/github", "p/c4", "val_loss/github", "test_loss/c4"}


def test_tuner_with_dml_searcher_fits_and_launches_the_optimum(ray_runtime, tmp_path):
    base = static_trial(GROUPS, steps=300, rounds=2)
    searcher = DMLSearcher(base, GROUPS, runs=4, seed=0)
    tuner = tune.Tuner(MixingTrainable,
                       tune_config=tune.TuneConfig(search_alg=searcher, num_samples=5, reuse_actors=True),
                       run_config=tune.RunConfig(storage_path=str(tmp_path), name="dml", stop={"done": True},
                                                 verbose=0))
    grid = tuner.fit()
    by_run = {r.metrics["run"]: r.metrics for r in grid}
    assert sorted(by_run) == ["dml-00", "dml-01", "dml-02", "dml-03", "dml-optimum"]
    assert searcher.optimum is not None and np.isclose(searcher.optimum.sum(), 1)
    # the law was fitted on the four sweep trials' final validation losses ...
    sweep = [by_run[f"dml-0{i}"] for i in range(4)]
    P = [[r[f"p/{g}"] for g in GROUPS] for r in sweep]
    L = [[r[f"val_loss/{g}"] for g in GROUPS] for r in sweep]
    np.testing.assert_allclose(P, searcher.points, atol=1e-12)
    np.testing.assert_allclose(LogLinearStaticLaw(seed=0).fit(P, L).optimal_mixture(), searcher.optimum, atol=1e-9)
    # ... and the dml-optimum trial really trained at the law's optimum (every round's p)
    opt = by_run["dml-optimum"]
    assert [opt[f"p/{g}"] for g in GROUPS] == pytest.approx(searcher.optimum, abs=1e-12)
    assert opt["step"] == 300 and opt["done"]


def test_tuner_with_optuna_over_the_simplex(ray_runtime, tmp_path):
    from ray.tune.search.optuna import OptunaSearch

    base = static_trial(GROUPS, steps=200, rounds=1)
    tuner = tune.Tuner(MixingTrainable, param_space={**base, **simplex_space(2)},
                       tune_config=tune.TuneConfig(search_alg=OptunaSearch(seed=0), metric="avg_val_loss",
                                                   mode="min", num_samples=3),
                       run_config=tune.RunConfig(storage_path=str(tmp_path), name="optuna", stop={"done": True},
                                                 verbose=0))
    grid = tuner.fit()
    ps = [(r.metrics["p/github"], r.metrics["p/c4"]) for r in grid]
    assert len({round(a, 6) for a, _ in ps}) == 3 and all(np.isclose(a + b, 1) for a, b in ps)


def test_trainable_restore_is_exact(tmp_path):
    cfg = with_mixture(static_trial(GROUPS, steps=600, rounds=6), [0.4, 0.6])
    a = MixingTrainable(config=cfg)
    for _ in range(3):
        a.train()
    ckpt = a.save(str(tmp_path / "ck"))
    rest_a = [a.train() for _ in range(3)]
    b = MixingTrainable(config=cfg)
    b.restore(ckpt)
    rest_b = [b.train() for _ in range(3)]
    for x, y in zip(rest_a, rest_b):
        assert x["step"] == y["step"]
        assert x["round_val_loss/c4"] == y["round_val_loss/c4"]
    assert rest_b[-1]["avg_test_ppl"] == rest_a[-1]["avg_test_ppl"]
    a.stop()
    b.stop()


def test_restricted_handoff_resumes_the_truncated_trial(ray_runtime, tmp_path):
    ex = TuneExecutor(BackendSpec(), TuneSettings(storage_path=str(tmp_path), experiment="handoff"))
    prob = MixingProblem(groups=GROUPS, total_steps=5000, setting="restricted", with_aioli=True)
    res = run_method(get_method("grid_search"), prob, ex)
    final = res.final
    resumed = next(r for r in res.runs if r.spec.name == final.spec.resume_from)
    # the resumed checkpoint is the truncated trial's: its own step counter says S/20
    assert resumed.spec.steps == 250 and load_state(resumed.checkpoint)["history"][-1]["step"] == 250
    assert final.history[0].step > 250 and final.history[-1].step == 5000
    # Tune's training_iteration restarted in the new Tuner; our step counter did not
    assert load_state(final.checkpoint)["backend"] is not None
    assert final.spec.policy_config["init_mixture"] == pytest.approx(resumed.spec.tags["mixture"])
    # automatic sizing on the 2-CPU runtime: the 10-run sweep's trials get 1 CPU, the one final run both,
    # and torch inside each trial trains on as many threads
    assert [(s.cpus, s.threads) for s in ex.shapes] == [(1.0, 1), (2.0, 2)]
    sweep = [r for r in res.runs if r.spec.role == "search"]
    for exp_dir, threads, n in zip(ex.experiment_dirs, (1, 2), (len(sweep), 1)):
        used = [json.loads(f.read_text().splitlines()[-1])["threads"] for f in Path(exp_dir).glob("*/result.json")]
        assert used == [threads] * n


def test_methods_sharing_an_executor_train_shared_runs_once(ray_runtime, tmp_path):
    ex = TuneExecutor(BackendSpec(), TuneSettings(storage_path=str(tmp_path), experiment="shared"))
    gs = run_method(get_method("grid_search"), MixingProblem(groups=GROUPS, total_steps=2000, setting="restricted"),
                    ex)
    ags = run_method(get_method("grid_search"),
                     MixingProblem(groups=GROUPS, total_steps=2000, setting="restricted", with_aioli=True,
                                   aioli={"rounds": 5, "sweeps": 2}), ex)
    # phases fitted: the sweep, the plain final run, and Aioli's final run — the sweep is not repeated
    assert len(ex.experiment_dirs) == 3
    assert [r.spec.name for r in gs.runs[:-1]] == [r.spec.name for r in ags.runs[:-1]]
    assert ags.final.spec.resume_from in ex.checkpoints
    # DML sweeps the same cover as grid search under other run names: only its final run is trained
    restricted = MixingProblem(groups=GROUPS, total_steps=2000, setting="restricted")
    dml = run_method(get_method("dml"), restricted, ex)
    assert len(ex.experiment_dirs) == 4
    assert [r.val_loss for r in dml.extra_runs] == [r.val_loss for r in gs.extra_runs]
    assert all(r.spec.name.startswith("dml") for r in dml.extra_runs)
    # a new driver (a continued experiment) finds every run in the storage's record: nothing is trained
    again = TuneExecutor(BackendSpec(), TuneSettings(storage_path=str(tmp_path), experiment="shared"))
    dml2 = run_method(get_method("dml"), restricted, again)
    assert again.experiment_dirs == [] and dml2.final.test_loss == dml.final.test_loss


def test_a_child_of_a_different_parent_with_the_same_name_is_trained(ray_runtime, tmp_path):
    from raymix.methods.base import Phase
    from raymix.methods.handoff import static_run

    prob = MixingProblem(groups=GROUPS, total_steps=2000)
    ex = TuneExecutor(BackendSpec(), TuneSettings(storage_path=str(tmp_path), experiment="names"))
    children = []
    for p in (0.2, 0.8):
        ex.run_phase(Phase("parent", [static_run("parent", [p, 1 - p], prob, steps=1000, role="truncated")]), prob)
        child = static_run("child", [0.5, 0.5], prob, steps=1200, role="search", resume_from="parent")
        children.append(ex.run_phase(Phase("child", [child]), prob)[0])
    assert children[0].val_loss != children[1].val_loss and len(ex.experiment_dirs) == 4
