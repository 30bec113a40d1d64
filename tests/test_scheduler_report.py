"""Pruned sweeps and PBT through the CLI and the report: listed, comparable, plotted against extra steps."""

from __future__ import annotations

import json

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
    stored = json.loads((out / "results" / "grid_search_asha-seed0.json").read_text())
    pruned = [r for r in stored["runs"] if r["stopped_at"] is not None]
    assert pruned and all(len(r["history"]) < 9 for r in pruned)
