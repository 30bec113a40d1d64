"""Pruned sweeps and PBT through the CLI and the report: listed, comparable, plotted against extra steps."""

from __future__ import annotations

import json

import pytest

from raymix.cli import main
from raymix.report import comparison_rows, load_results


def test_compare_pruned_and_population_methods_and_plot_ppl_vs_extra_steps(tmp_path, capsys):
    assert main(["methods"]) == 0
    listed = capsys.readouterr().out
    for name in ("grid_search_asha", "dml_asha", "regmix_asha", "optuna_asha", "pbt"):
        assert f"\n{name} " in f"\n{listed}"
    out = tmp_path / "cmp"
    rc = main(["compare", "--sim", "two_group_interacting", "--steps", "2000", "--executor", "local",
               "--methods", "stratified,grid_search,grid_search_asha,pbt", "--out", str(out)])
    assert rc == 0
    rows = {r["method"]: r for r in comparison_rows(load_results(out))}
    # pruned runs count only the steps they trained; the population counts every member
    assert 0 < rows["grid_search_asha"]["extra_steps"] < rows["grid_search"]["extra_steps"] == 9 * 2000
    assert rows["pbt"]["extra_steps"] == 8 * 2000
    report = (out / "report.md").read_text()
    assert "![ppl vs extra steps](ppl_vs_extra_steps.png)" in report
    assert (out / "ppl_vs_extra_steps.png").stat().st_size > 1000
    # the static law is fitted on static runs only: a PBT member that took over a donor's checkpoint is not one
    from raymix.report import sweep_records

    results = load_results(out)
    search = [r for res in results for r in res.runs if r.spec.role == "search" and not r.pruned]
    static = {tuple(r.spec.tags["mixture"]) for r in search if all(h.mixture == r.spec.tags["mixture"]
                                                                   for h in r.history)}
    exploited_only = {tuple(r.spec.tags["mixture"]) for r in search} - static
    assert exploited_only, "no PBT member was exploited"
    assert {tuple(rec["p"]) for rec in sweep_records(results)} == static
    stored = json.loads((out / "results" / "grid_search_asha-seed0.json").read_text())
    pruned = [r for r in stored["runs"] if r["stopped_at"] is not None]
    assert pruned and all(len(r["history"]) < 9 for r in pruned)


def test_cost_quality_plot_pairs_seeds_against_stratified(tmp_path):
    """Over several seeds the plot shows each method's paired Δ vs stratified ± SE, not absolute PPLs whose
    spread over seeds would swamp the differences."""
    from raymix.report import cost_quality_points

    out = tmp_path / "cmp"
    assert main(["compare", "--sim", "two_group_interacting", "--steps", "300", "--executor", "local",
                 "--methods", "stratified,grid_search", "--seeds", "0,1", "--out", str(out)]) == 0
    results = load_results(out)
    label, points = cost_quality_points(results)
    assert label.startswith("Δ average test PPL vs stratified")
    by = {p["method"]: p for p in points}
    assert by["stratified"]["y"] == 0.0
    per_seed = {(r.method, r.problem.seed): r.final.avg_test_ppl for r in results}
    diffs = [per_seed[("grid_search", s)] - per_seed[("stratified", s)] for s in (0, 1)]
    assert by["grid_search"]["y"] == pytest.approx(sum(diffs) / 2)
    assert by["grid_search"]["yerr"] == pytest.approx(abs(diffs[0] - diffs[1]) / 2)
    assert by["grid_search"]["extra_steps"] == 9 * 300
    one_seed = [r for r in results if r.problem.seed == 0]
    label, points = cost_quality_points(one_seed)
    assert label.startswith("average test PPL") and {p["y"] for p in points} == {
        r.final.avg_test_ppl for r in one_seed}
