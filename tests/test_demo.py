"""`raymix demo --quick` through the command line with its default executor (Ray Tune), and the CLI's
default executor for run/compare: the path a new user takes first."""

from __future__ import annotations

from pathlib import Path

import pytest

from raymix.cli import build_parser, main
from raymix.data.manifest import load_manifest
from raymix.demo import QUICK
from raymix.report import load_results

DEMO_METHODS = {"stratified", "aioli", "grid_search", "aioli+grid_search"}


def test_cli_default_executor_is_tune():
    from raymix.cli import _experiment

    parser = build_parser()
    for argv, methods in ((["run", "--method", "aioli", "--sim", "two_group_interacting"], ["aioli"]),
                          (["compare", "--methods", "stratified,aioli", "--sim", "two_group_interacting"],
                           ["stratified", "aioli"])):
        assert _experiment(parser.parse_args(argv), methods, [0], "t").executor == "tune", argv
    assert parser.parse_args(["demo"]).executor == "tune"


@pytest.mark.ray
@pytest.mark.timeout(1200)  # five Tune phases; on a machine shared by many Ray instances this took > 600 s
def test_demo_quick_runs_every_stage_on_tune(ray_runtime, tmp_path, capsys, baseline_losses):
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--out", str(out)]) == 0
    table = capsys.readouterr().out
    assert all(f"| {m} |" in table for m in DEMO_METHODS), table
    results = {r.method: r for r in load_results(out)}
    assert set(results) == DEMO_METHODS
    # every run trained as a Ray Tune trial (the default executor): its checkpoint is in the Tune storage
    tune_dir = (out / "tune").resolve()
    for res in results.values():
        for run in res.runs:
            assert run.checkpoint and Path(run.checkpoint).resolve().is_relative_to(tune_dir), run.spec.name
    # Aioli+GS resumed the truncated grid-search trial that trained on grid search's choice
    gs, ags = results["grid_search"], results["aioli+grid_search"]
    resumed = next(r for r in gs.runs if r.spec.name == ags.final.spec.resume_from)
    assert resumed.spec.role == "search" and resumed.spec.tags["mixture"] == pytest.approx(gs.mixture)
    assert ags.final.history[0].step > resumed.spec.steps
    # every final model learned: per-group test loss closes half of the uniform → unigram gap
    base = baseline_losses(out / "shards-quick", "test", QUICK["eval_examples"])
    for res in results.values():
        for g, loss in zip(res.final.groups, res.final.test_loss):
            uniform, unigram = base[g]
            assert loss < uniform - 0.5 * (uniform - unigram), (res.method, g, loss, uniform, unigram)
    assert load_manifest(out / "shards-quick").seq_len == 64
    assert (out / "report.md").is_file() and list(out.glob("*.png"))
