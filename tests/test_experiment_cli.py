"""Experiments, reports and the CLI on the simulator (in-process executor: no Ray needed)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from raymix.cli import main
from raymix.errors import ConfigError, DataError, ExperimentMismatchError
from raymix.experiment import ExperimentConfig, parse_method, prepare_experiment, result_path, run_experiment
from raymix.methods.driver import BackendSpec
from raymix.report import comparison_markdown, comparison_rows, load_results, write_report


def test_parse_method():
    assert parse_method("aioli+grid_search") == ("grid_search", True)
    assert parse_method("dml") == ("dml", False)
    with pytest.raises(ConfigError, match="valid"):
        parse_method("aioli+nope")
    with pytest.raises(ConfigError, match="short runs"):
        parse_method("aioli+aioli")


def test_identical_runs_of_different_methods_are_trained_once(tmp_path, monkeypatch):
    """Grid search and DML sweep the same cover (m = 2: p1 in 0.1..0.9): DML takes grid search's nine runs;
    DoReMi's reference is the stratified run.  Shared results equal what training them alone gives."""
    from raymix.methods import driver as executor_mod

    trained: list[str] = []
    real = executor_mod.RunDriver.run_to_end

    def counting(self, *a, **k):
        trained.append(self.spec.name)
        return real(self, *a, **k)

    monkeypatch.setattr(executor_mod.RunDriver, "run_to_end", counting)
    def run(methods: tuple[str, ...], out: str):
        cfg = ExperimentConfig(methods=methods, seeds=(0,), total_steps=2000, backend=BackendSpec(),
                               executor="local", out=str(tmp_path / out))
        prepared = prepare_experiment(cfg)  # the plan check trains stand-ins: count only the experiment's runs
        trained.clear()
        return run_experiment(cfg, prepared=prepared)

    strat, gs, dml, doremi = run(("stratified", "grid_search", "dml", "doremi"), "both")
    sweep = [r.spec.name for r in dml.runs if r.spec.role == "search"]
    assert len(sweep) == 9 and not set(sweep) & set(trained)  # DML's sweep: none trained for DML
    assert doremi.runs[0].spec.role == "reference" and doremi.runs[0].spec.name not in trained
    assert doremi.runs[0].val_loss == strat.final.val_loss
    # a method's cost stays its own: DML is still charged its sweep
    assert dml.extra_steps == gs.extra_steps == 9 * 2000
    alone = run(("dml",), "alone")[0]
    assert len(trained) == 10  # alone: nine sweep runs and the final run
    assert alone.final.spec.tags["mixture"] == dml.final.spec.tags["mixture"]
    assert alone.final.test_loss == dml.final.test_loss


def test_an_experiment_grows_by_seeds_and_methods(tmp_path):
    base = dict(total_steps=2000, backend=BackendSpec(), executor="local", out=str(tmp_path))
    run_experiment(ExperimentConfig(methods=("stratified",), seeds=(0,), **base))
    first = result_path(tmp_path, "stratified", 0).read_text()
    lines: list[str] = []
    grown = run_experiment(ExperimentConfig(methods=("stratified", "aioli"), seeds=(0, 1), **base),
                           progress=lines.append)
    assert [(r.method, r.problem.seed) for r in grown] == [("stratified", 0), ("aioli", 0), ("stratified", 1), ("aioli", 1)]
    assert any("stratified seed=0] finished earlier" in line for line in lines)
    assert result_path(tmp_path, "stratified", 0).read_text() == first  # not trained again
    # anything else that changes results is still another experiment
    with pytest.raises(ExperimentMismatchError, match="different experiment .*total_steps"):
        run_experiment(ExperimentConfig(methods=("stratified",), seeds=(0,), **{**base, "total_steps": 3000}))


def test_experiment_writes_complete_results_and_report(tmp_path):
    cfg = ExperimentConfig(methods=("stratified", "aioli", "grid_search", "aioli+grid_search"), seeds=(0, 1),
                           total_steps=5000, setting="restricted", backend=BackendSpec(), executor="local",
                           out=str(tmp_path))
    results = run_experiment(cfg)
    assert len(results) == 8
    # "grid_search" and "aioli+grid_search" of one seed share the same truncated sweep: trained once
    gs, ags = results[2], results[3]
    assert (gs.method, ags.method) == ("grid_search", "aioli+grid_search")
    sweep = [r for r in gs.runs if r.spec.role == "search"]
    assert len(sweep) == 9 and all(a is b for a, b in zip(sweep, [r for r in ags.runs if r.spec.role == "search"]))
    assert result_path(tmp_path, "aioli+grid_search", 1).is_file()
    assert not list((tmp_path / "results").glob("*.tmp"))
    loaded = load_results(tmp_path)
    assert {r.method for r in loaded} == set(cfg.methods)
    ordered = comparison_rows(loaded)  # files load alphabetically; rows come in the paper's order
    assert [r["method"] for r in ordered] == ["stratified", "grid_search", "aioli+grid_search", "aioli"]
    rows = {r["method"]: r for r in ordered}
    assert rows["stratified"]["delta_vs_stratified"] == 0
    assert rows["grid_search"]["extra_steps"] == 9 * 250  # paper grid for m=2, S/20 steps each
    md = comparison_markdown(loaded)
    assert "| aioli+grid_search |" in md and "Δ PPL vs stratified (paired ± SE)" in md and "avg val loss" in md
    # differences are paired by seed: mean and standard error of the per-seed differences
    ppl = {(r.method, r.problem.seed): r.final.avg_test_ppl for r in loaded}
    d = np.array([ppl[("aioli", s)] - ppl[("stratified", s)] for s in (0, 1)])
    assert rows["aioli"]["delta_vs_stratified"] == pytest.approx(d.mean())
    assert rows["aioli"]["delta_se"] == pytest.approx(d.std(ddof=1) / np.sqrt(2)) and rows["aioli"]["delta_n"] == 2
    x = np.array([ppl[("aioli+grid_search", s)] - ppl[("grid_search", s)] for s in (0, 1)])
    assert rows["aioli+grid_search"]["vs_method"]["mean"] == pytest.approx(x.mean())
    assert rows["aioli+grid_search"]["vs_method"]["base"] == "grid_search"
    # average validation loss next to the average test PPL: in the rows and in every result file
    aioli = [r for r in loaded if r.method == "aioli"]
    assert rows["aioli"]["avg_val_loss"] == pytest.approx(np.mean([np.mean(r.final.val_loss) for r in aioli]))
    stored = json.loads(result_path(tmp_path, "aioli", 0).read_text())
    assert stored["avg_val_loss"] == pytest.approx(np.mean(stored["final"]["val_loss"]))
    text, plots = write_report(tmp_path)
    assert (tmp_path / "report.md").read_text() == text
    # Aioli's diagnostics: one row per Aioli final run (aioli and aioli+grid_search, 2 seeds each)
    diag = text.split("## Aioli diagnostics")[1]
    assert diag.count("| aioli | ") == 2 and diag.count("| aioli+grid_search | ") == 2
    assert plots and plots[0].stat().st_size > 1000
    import pandas as pd

    runs = pd.read_csv(tmp_path / "runs.csv")
    rounds = pd.read_csv(tmp_path / "rounds.csv")
    assert len(runs) == sum(len(r.runs) for r in loaded)
    assert {"p/github", "val_loss/c4", "test_loss/github", "resume_from"} <= set(runs.columns)
    aioli_rounds = rounds[(rounds.method == "aioli") & (rounds.run == "final") & (rounds.seed == 0)]
    assert aioli_rounds["A"].notna().any() and aioli_rounds.step.is_monotonic_increasing
    assert aioli_rounds["sign_agreement/github"].dropna().between(0, 1).all() and "avg_val_loss" in runs.columns


def test_handoff_rows_need_the_restricted_setting(tmp_path):
    with pytest.raises(ConfigError, match="restricted"):
        ExperimentConfig(methods=("aioli+dml",), setting="unrestricted", out=str(tmp_path))


def test_report_on_empty_directory_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="no results"):
        load_results(tmp_path)


def test_cli_run_and_compare_on_the_simulator(tmp_path, capsys):
    rc = main(["run", "--method", "doremi", "--sim", "two_group_interacting", "--steps", "2000",
               "--executor", "local", "--out", str(tmp_path / "run")])
    out = capsys.readouterr().out
    assert rc == 0 and "average test PPL" in out and "average validation loss" in out and "github" in out
    assert main(["run", "--method", "aioli", "--sim", "two_group_interacting", "--steps", "2000",
                 "--executor", "local", "--out", str(tmp_path / "run-aioli")]) == 0
    out = capsys.readouterr().out
    assert "sign agreement" in out and "reachable p" in out
    rc = main(["compare", "--methods", "stratified,aioli", "--seeds", "0", "--sim", "three_group", "--steps", "5000",
               "--executor", "local", "--out", str(tmp_path / "cmp")])
    out = capsys.readouterr().out
    assert rc == 0 and "| aioli |" in out and "avg val loss" in out
    assert json.loads((tmp_path / "cmp" / "experiment.json").read_text())["methods"] == ["stratified", "aioli"]
    assert main(["report", str(tmp_path / "cmp")]) == 0


def test_cli_errors_are_reported_not_raised(tmp_path, capsys):
    rc = main(["run", "--method", "nope", "--sim", "two_group_interacting", "--executor", "local",
               "--out", str(tmp_path)])
    assert rc == 2 and "unknown method 'nope'" in capsys.readouterr().err
    rc = main(["run", "--method", "aioli", "--sim", "no_such_scenario", "--executor", "local", "--out", str(tmp_path)])
    assert rc == 2 and "no_such_scenario" in capsys.readouterr().err


def test_cli_lists_every_method(capsys):
    from raymix.methods import available_methods

    assert main(["methods"]) == 0
    out = capsys.readouterr().out
    assert all(f"{name} " in out for name in available_methods())


def test_report_rows_follow_the_papers_order():
    from raymix.report import method_order_key

    labels = ["optuna", "aioli", "aioli+doge", "aioli_static", "doge", "dml", "aioli+grid_search", "stratified",
              "grid_search", "skill_it", "doremi", "aioli+dml"]
    assert sorted(labels, key=method_order_key) == [
        "stratified", "grid_search", "aioli+grid_search", "dml", "aioli+dml", "skill_it", "doremi", "doge",
        "aioli+doge", "aioli", "aioli_static", "optuna"]


def test_compare_runs_an_experiment_file_and_flags_override_it(tmp_path, capsys):
    f = tmp_path / "exp.yaml"
    f.write_text("# a comparison on the simulator\nname: filed\nmethods: [aioli, stratified]\nseeds: [0]\n"
                 "total_steps: 5000\nbackend: {kind: sim, scenario: three_group}\nexecutor: local\n"
                 "aioli: {rounds: 5}\nmethod_configs: {aioli: {}}\n")
    out = tmp_path / "o"
    assert main(["compare", "--config", str(f), "--steps", "3000", "--seeds", "0,1", "--out", str(out)]) == 0
    saved = json.loads((out / "experiment.json").read_text())
    assert saved["name"] == "filed" and saved["methods"] == ["aioli", "stratified"]  # from the file
    assert saved["total_steps"] == 3000 and saved["seeds"] == [0, 1]                # from the flags
    assert saved["backend"]["scenario"] == "three_group" and saved["aioli"] == {"rounds": 5}
    assert (out / "exp.yaml").read_text() == f.read_text()  # the file, copied as given
    table = capsys.readouterr().out
    assert table.index("| stratified |") < table.index("| aioli |")
    assert "[aioli seed=1] final" in (out / "raymix.log").read_text()
    # the resolved experiment.json is itself a valid experiment file
    assert main(["compare", "--config", str(out / "experiment.json"), "--seeds", "2", "--out", str(tmp_path / "o2")]) == 0
    again = json.loads((tmp_path / "o2" / "experiment.json").read_text())
    assert {k: v for k, v in again.items() if k not in ("seeds", "out", "fingerprint")} == \
        {k: v for k, v in saved.items() if k not in ("seeds", "out", "fingerprint")}


def test_compare_needs_data_methods_and_a_readable_file(tmp_path, capsys):
    assert main(["compare", "--methods", "aioli", "--executor", "local", "--out", str(tmp_path)]) == 2
    assert "--data SHARDS" in capsys.readouterr().err
    assert main(["compare", "--sim", "three_group", "--executor", "local", "--out", str(tmp_path)]) == 2
    assert "--methods" in capsys.readouterr().err
    assert main(["compare", "--config", str(tmp_path / "nope.yaml"), "--out", str(tmp_path)]) == 2
    assert "nope.yaml" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("methods: [aioli]\nbackend: {kind: sim}\nsteps: 10\n")  # not a field: total_steps is
    assert main(["compare", "--config", str(bad), "--executor", "local", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "['steps']" in err and "total_steps" in err
    assert main(["compare", "--sim", "three_group", "--methods", "aioli", "--log", "mlflow", "--executor", "local",
                 "--out", str(tmp_path)]) == 2
    assert "executor 'tune'" in capsys.readouterr().err


def test_paired_differences_and_their_verdicts():
    from raymix.report import noise_verdict

    assert noise_verdict({"n": 3, "mean": -1.0, "se": 0.2}) == "better"
    assert noise_verdict({"n": 3, "mean": 1.0, "se": 0.2}) == "worse"
    assert noise_verdict({"n": 3, "mean": -0.3, "se": 0.2}) == "within noise"
    assert noise_verdict({"n": 1, "mean": -5.0, "se": float("nan")}) == "1 seed"


def test_report_fits_the_static_law_on_the_shared_sweep(tmp_path):
    """Grid search and DML share one sweep: the Table 5 section fits it once per seed (9 distinct runs)."""
    cfg = ExperimentConfig(methods=("stratified", "grid_search", "dml"), seeds=(0, 1), total_steps=2000,
                           backend=BackendSpec(), executor="local", out=str(tmp_path))
    run_experiment(cfg)
    from raymix.report import static_fit_data

    data = static_fit_data(load_results(tmp_path))
    assert sorted(data) == [("static runs of 2000 steps", 0), ("static runs of 2000 steps", 1)]
    assert all(P.shape == (9, 2) for P, _ in data.values())
    text, plots = write_report(tmp_path)
    table5 = text.split("## Static mixing law on the sweeps")[1]
    r2 = float(table5.split("| static runs of 2000 steps | 2 | 18 | ")[1].split(" | ")[1])
    assert r2 > 0.9  # the simulator's losses follow the law it is built on
    assert {p.name for p in plots} >= {"static_law_fits.png", "loss_curves.png"}


def test_a_run_resuming_another_run_of_the_same_name_is_not_shared():
    """Two methods may each have a run called "parent": a child that resumes "parent" is keyed by which parent
    it continues, so the second child is trained, not taken from the first."""
    from raymix.methods import MixingProblem
    from raymix.methods.base import Phase
    from raymix.methods.driver import LocalExecutor
    from raymix.methods.handoff import static_run

    prob = MixingProblem(groups=("github", "c4"), total_steps=2000)
    ex = LocalExecutor(BackendSpec())
    children = []
    for p in (0.2, 0.8):
        ex.run_phase(Phase("parent", [static_run("parent", [p, 1 - p], prob, steps=1000, role="truncated")]), prob)
        child = static_run("child", [0.5, 0.5], prob, steps=1200, role="search", resume_from="parent")
        children.append(ex.run_phase(Phase("child", [child]), prob)[0])
    assert children[0].val_loss != children[1].val_loss


def test_children_of_two_identical_parents_with_different_names_are_shared():
    """dyn-parent and uniform-parent are the same run under two names: a child of each is one run."""
    from raymix.methods import MixingProblem
    from raymix.methods.base import Phase
    from raymix.methods.driver import LocalExecutor
    from raymix.methods.handoff import static_run

    prob = MixingProblem(groups=("github", "c4"), total_steps=2000)
    ex = LocalExecutor(BackendSpec())
    kids = []
    for name in ("dyn-parent", "uniform-parent"):
        ex.run_phase(Phase(name, [static_run(name, [0.5, 0.5], prob, steps=1000, role="truncated")]), prob)
        kid = static_run(f"{name}-child", [0.3, 0.7], prob, steps=1100, role="search", resume_from=name)
        kids.append(ex.run_phase(Phase("kids", [kid]), prob)[0])
    assert kids[0].val_loss == kids[1].val_loss and kids[1].spec.resume_from == "uniform-parent"


def test_the_data_identity_ignores_how_the_sources_were_described(tmp_path):
    """An experiment continues on shards rebuilt byte-identical (the sources described from another fetch cache,
    keys in another order), and refuses shards whose files differ; folders fingerprinted by raymix 0.1.0 (the
    manifest's raw bytes) still continue."""
    from raymix.experiment import _fingerprint, fingerprint, prepare_out

    shards, out = tmp_path / "shards", tmp_path / "out"
    shards.mkdir()
    manifest = {"version": 1, "raymix_version": "0.1.0", "groups": ["a", "b"], "seq_len": 8,
                "tokenizer": {"vocab_size": 16, "sha256": "t" * 64},
                "files": [{"path": "train/group=a/part-00000.parquet", "sha256": "f" * 64}],
                "sources": {"cache_dir": "/home/one/.cache", "groups": {"a": {"kind": "apt", "version": "1"}}}}

    def write(m: dict) -> None:
        (shards / "manifest.json").write_text(json.dumps(m, indent=2))

    write(manifest)
    cfg = ExperimentConfig(methods=("stratified",), seeds=(0,), total_steps=100, executor="local", out=str(out),
                           backend=BackendSpec(kind="model", shards=str(shards), model="tiny"))
    out.mkdir()
    (out / "experiment.json").write_text(json.dumps({**cfg.to_dict(), "fingerprint": fingerprint(cfg)}))
    write({**manifest, "sources": {"groups": {"a": {"version": "1", "kind": "apt"}}, "cache_dir": "/tmp/c"}})
    assert prepare_out(cfg) is True
    write({**manifest, "files": [{"path": "train/group=a/part-00000.parquet", "sha256": "e" * 64}]})
    with pytest.raises(ExperimentMismatchError, match=r"differs in the data"):
        prepare_out(cfg)

    write(manifest)
    (out / "experiment.json").write_text(json.dumps({**cfg.to_dict(), "fingerprint": _fingerprint(cfg, legacy=True)}))
    assert _fingerprint(cfg, legacy=True) != fingerprint(cfg)
    assert prepare_out(cfg) is True
