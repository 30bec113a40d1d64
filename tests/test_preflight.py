"""The plan check: whole plans dry-run before anything trains; impossible ones fail with one line, nothing written."""

from __future__ import annotations

import pytest

from raymix.cli import build_parser, main
from raymix.errors import ConfigError, PlanError, ResourceError
from raymix.experiment import ExperimentConfig
from raymix.methods.driver import BackendSpec
from raymix.methods.policies import AioliPolicy
from raymix.methods.registry import METHODS
from raymix.preflight import check_experiment, check_trial_resources


@pytest.fixture
def no_training(monkeypatch):
    """Fail the test if anything starts Ray or builds a real backend (the check must come first)."""
    import raymix.tune.executor as executor

    def boom(*a, **k):
        raise AssertionError("training or Ray started before the plan check failed")

    monkeypatch.setattr(executor, "ensure_ray", boom)
    monkeypatch.setattr(executor.TuneExecutor, "run_phase", boom)


def test_impossible_aioli_budget_fails_before_stratified_and_the_sweep_train(tmp_path, capsys, no_training):
    out = tmp_path / "Y"
    rc = main(["compare", "--methods", "stratified,grid_search,aioli", "--sim", "two_group_interacting",
               "--steps", "100", "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2
    line = [x for x in err.splitlines() if x.startswith("raymix: error:")]
    assert len(line) == 1 and "'aioli' (seed 0)" in line[0] and "LearnParams" in line[0]
    assert "Traceback" not in err and not out.exists()


@pytest.mark.parametrize("argv, needle", [
    (["run", "--method", "stratified", "--seed", "-1"], "seeds must be integers >= 0"),
    (["compare", "--methods", "stratified", "--seeds", "-1"], "seeds must be integers >= 0"),
    (["compare", "--methods", "stratified", "--seeds", "0,0"], "repeat [0]"),
    (["compare", "--methods", "stratified", "--seeds", "0,x"], "'x' is not an integer"),
    (["compare", "--methods", "stratified", "--cpus-per-trial", "4096"], "more CPUs than any node has"),
    (["compare", "--methods", "stratified", "--gpus-per-trial", "4096"], "more GPUs than any node offers"),
])
def test_late_failures_are_now_early(tmp_path, capsys, no_training, argv, needle):
    out = tmp_path / "o"
    assert main([*argv, "--sim", "two_group_interacting", "--out", str(out)]) == 2
    assert needle in capsys.readouterr().err and not out.exists()


def test_the_check_runs_the_policies_own_schedule_code(monkeypatch, tmp_path):
    """The dry run asks AioliPolicy for its round/segment schedule itself, so it can never disagree with training."""
    calls = []
    real = AioliPolicy.schedule

    def spy(self):
        plans = real(self)
        calls.append(plans[self.round].segment_steps)
        return plans

    monkeypatch.setattr(AioliPolicy, "schedule", spy)
    cfg = ExperimentConfig(methods=("aioli",), total_steps=2000, backend=BackendSpec(), out=str(tmp_path / "o"))
    check_experiment(cfg)
    assert len(calls) == 20 and min(calls) >= 1  # T = 20 rounds, each asking the policy for its segments

    def refuse(self):
        raise ConfigError(f"schedule refused for a dynamic phase from step {self.dyn_start}")

    monkeypatch.setattr(AioliPolicy, "schedule", refuse)
    with pytest.raises(PlanError, match="'aioli' .*schedule refused for a dynamic phase from step 0"):
        check_experiment(cfg)


def test_every_method_plans_on_model_data_with_the_cli_defaults(make_shards, tmp_path):
    shards = make_shards(groups=("a", "b", "c"), seq_len=129)
    methods = sorted(METHODS)
    args = build_parser().parse_args(["compare", "--data", str(shards), "--methods", ",".join(methods),
                                      "--out", str(tmp_path / "o")])
    from raymix.cli import _experiment

    report = check_experiment(_experiment(args, methods, [0], "compare"))
    assert report.methods == len(methods) and report.groups == ("a", "b", "c")
    assert report.runs > len(methods) and not (tmp_path / "o").exists()


def test_shard_windows_longer_than_the_preset_context_are_refused(make_shards, tmp_path):
    shards = make_shards(seq_len=257)
    cfg = ExperimentConfig(methods=("stratified",), backend=BackendSpec(kind="model", shards=str(shards)),
                           out=str(tmp_path / "o"))
    with pytest.raises(ConfigError, match="seq_len=257 .* context of 128 tokens.*--seq-len 128"):
        check_experiment(cfg)
    check_experiment(cfg.replace(backend=BackendSpec(kind="model", shards=str(shards), model="small")))


def test_paper_experiments_pass_the_check(make_shards, tmp_path):
    """Table 3 at paper scale (m = 7, S = 40000, Pythia-160M, 2049-token windows), planned in seconds."""
    from experiments.paper import table3

    shards = make_shards(groups=tuple(f"g{i}" for i in range(7)), seq_len=2049, rows=2)
    for make in (table3,):
        cfg = make(str(shards), 7, str(tmp_path / make.__name__))
        cfg = cfg.replace(seeds=cfg.seeds[:1], tune={"cpus_per_trial": None, "gpus_per_trial": None})
        report = check_experiment(cfg)
        assert report.steps >= 40000 * len(cfg.methods)


def test_resource_requests_against_capacity():
    cap = {"CPU": 8.0, "GPU": 1.0}
    check_trial_resources({"cpus_per_trial": 8, "gpus_per_trial": 1}, capacity=cap)
    check_trial_resources({"cpus_per_trial": None, "gpus_per_trial": "auto"}, capacity=cap)  # chosen by the executor
    with pytest.raises(ResourceError, match="--cpus-per-trial 9 .*\\(8\\)"):
        check_trial_resources({"cpus_per_trial": 9}, capacity=cap)
    with pytest.raises(ResourceError, match="--gpus-per-trial 2"):
        check_trial_resources({"gpus_per_trial": 2}, capacity=cap)
    with pytest.raises(ConfigError, match="finite"):
        check_trial_resources({"cpus_per_trial": float("inf")}, capacity=cap)
    check_trial_resources({"cpus_per_trial": 10 ** 6}, capacity=None)  # unknown cluster (RAY_ADDRESS): checked later
