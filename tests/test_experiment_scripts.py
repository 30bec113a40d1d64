"""The experiment scripts under experiments/ build valid configs and run (simulator)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from experiments import cpu_scale, fidelity, paper
from raymix.errors import ConfigError
from raymix.methods.policies import AioliConfig, aioli_schedule


def test_paper_configs_follow_the_paper():
    t2 = paper.table2("shards", 2, "out")
    assert t2.total_steps == 5000 and len(t2.seeds) == 5 and t2.setting == "unrestricted"
    assert t2.backend.model == "pythia-160m" and t2.tune["gpus_per_trial"] == 1
    t3 = paper.table3("shards", 7, "out")
    assert t3.total_steps == 40000 and len(t3.seeds) == 3 and t3.setting == "restricted"
    assert "aioli+grid_search" in t3.methods


def test_fidelity_study_on_the_simulator(capsys):
    assert fidelity.main(["--scenario", "two_group_interacting", "--steps", "3000", "--t", "1000"]) == 0
    out = capsys.readouterr().out
    assert "log-linear static" in out and "linear dynamic" in out
    assert "| aioli |" in out
    # the verdict printed is the one the Table 10 numbers support
    rows = {line.split("|")[1].strip(): line.split("|")[2:4] for line in out.splitlines()
            if line.startswith("| greedy |") or line.startswith("| optimal |")}
    same = rows["greedy"][0].strip() == rows["optimal"][0].strip()
    assert ("greedy recovers the optimum" in out) == same
    assert ("greedy does NOT recover the optimum" in out) == (not same)


def test_greedy_verdict_says_what_the_schedules_say():
    g = {"greedy": "0.3, 0.7", "greedy_ppl": 30.1, "optimal": "0.3, 0.7", "optimal_ppl": 30.1, "same": True}
    assert fidelity.greedy_verdict(g).startswith("greedy recovers the optimum")
    g = {**g, "optimal": "0.1, 0.9", "optimal_ppl": 29.5, "same": False}
    verdict = fidelity.greedy_verdict(g)
    assert "does NOT recover" in verdict and "0.1, 0.9" in verdict and "29.500" in verdict


def test_paper_settings_are_experiment_files():
    from pathlib import Path

    from raymix.experiment import ExperimentConfig, load_experiment_file

    files = sorted(Path(paper.CONFIGS).glob("*.yaml"))
    assert {f.stem for f in files} >= {"table2", "table2-m7", "table3", "table3-m7", "ablations", "ablations-m7",
                                       "cpu-compare"}
    for f in files:  # every file is a valid experiment once given its data
        data = load_experiment_file(f)
        ExperimentConfig.from_dict({**data, "backend": {**data["backend"], "shards": "shards"}})
    assert paper.config_file("table3", 7).name == "table3-m7.yaml" and paper.config_file("table2", 3).name == "table2.yaml"
    abl = paper.table21_ablations("shards", 3, "out")
    assert abl.methods == ("stratified", "aioli", "aioli_static", "aioli_diagonal") and abl.backend.streaming == "ray"


def test_cpu_scale_settings_fit_aioli_schedules():
    t3 = cpu_scale.experiment("table3", "realmix", "shards", "out", steps=2000, seeds=(0, 1, 2))
    assert t3.setting == "restricted" and "aioli+doge" in t3.methods and t3.methods[0] == "stratified"
    assert (t3.aioli["sweeps"], t3.aioli["delta"]) == (2, 0.07)  # m = 6 takes the paper's m = 7 values
    for table, (budget, _) in cpu_scale.TABLES.items():
        for name, (groups, _) in cpu_scale.SETTINGS.items():
            cfg = cpu_scale.experiment(table, name, "shards", "out", steps=1000, seeds=(0,))
            rounds = cfg.aioli["rounds"]
            # the longest restricted prefix (Aioli+DoGE, S/2) still leaves K equal segments per round ...
            aioli_schedule(AioliConfig.from_dict(cfg.aioli), len(groups), 500 if budget == "restricted" else 0, 1000)
            if rounds < 20:  # ... and one more round would not
                with pytest.raises(ConfigError, match="segments"):
                    aioli_schedule(AioliConfig.from_dict({**cfg.aioli, "rounds": rounds + 1}), len(groups),
                                   500 if budget == "restricted" else 0, 1000)
    with pytest.raises(ConfigError, match="too short"):
        cpu_scale.aioli_overrides(6, "restricted", 100)


def test_eval_noise_bootstrap_resamples_documents():
    from experiments import eval_noise

    rng = np.random.default_rng(0)
    docs = np.repeat(np.arange(10), 20)  # 10 documents of 20 windows: the noise is between documents
    doc_level = rng.normal(5.0, 0.3, 10)
    vals = doc_level[docs] + rng.normal(0, 0.01, docs.size)
    draws = eval_noise.bootstrap([(vals, docs)], 2000, np.random.default_rng(1), other=[(vals, docs)])
    se = draws["loss"][:, 0].std(ddof=1)
    # ≈ the between-document SE (0.3/√10 ≈ 0.095), far above a window-level bootstrap's (≈ 0.3/√200)
    assert 0.06 < se < 0.13
    assert np.all(draws["diff"] == 0)  # the same model against itself on the same documents
    np.testing.assert_allclose(draws["ppl"], np.exp(draws["loss"][:, 0]))


def test_a_variant_reuses_the_main_tables_stratified_runs(tmp_path):
    from raymix.experiment import ExperimentConfig, result_path, run_experiment
    from raymix.methods.driver import BackendSpec

    base = dict(methods=("stratified", "aioli"), seeds=(0, 1), total_steps=2000, backend=BackendSpec(),
                executor="local")
    run_experiment(ExperimentConfig(out=str(tmp_path / "main"), **base))
    variant = ExperimentConfig(out=str(tmp_path / "variant"), aioli={"rounds": 4}, **base)
    copied = cpu_scale.reuse_results(variant, tmp_path / "main")
    assert copied == ["stratified-seed0", "stratified-seed1"]  # Aioli's settings differ: trained anew
    assert result_path(variant.out, "stratified", 1).read_text() == result_path(tmp_path / "main", "stratified", 1).read_text()
    longer = ExperimentConfig(out=str(tmp_path / "longer"), **{**base, "total_steps": 3000})
    assert cpu_scale.reuse_results(longer, tmp_path / "main") == []  # another S: not the same run


def _fig3_seed(seed: int, sims: dict[str, float], deltas: dict[str, float], t: int = 300) -> dict:
    fit = {"mse": 1e-4 * (seed + 1), "r2": 0.9 + 0.01 * seed, "n_fits": len(sims), "n_runs": 9 * len(sims)}
    return {"seed": seed, "t": t, "window": 50, "S": 1000, "groups": ["a", "b"],
            "methods": {k: {"sim": v} for k, v in sims.items()}, "improvement_vs_stratified": deltas,
            "dynamic_law_fit": fit}


def test_fig3_seeds_combine_into_means_and_a_rank_correlation(tmp_path, capsys):
    from experiments import fidelity_real
    from raymix.errors import DataError

    # sim and improvement (−Δ) rise together on every seed: ρ = +1; aioli_diagonal is not a Table 2 method
    runs = [_fig3_seed(s, {"aioli": 0.9 + s / 100, "doge": 0.2 + s / 100, "skill_it": -0.5 + s / 100,
                           "aioli_diagonal": 0.5},
                       {"aioli": -2.0 - s, "doge": 1.0 - s / 10, "skill_it": 10.0 - s}) for s in (0, 1, 2)]
    for s, r in enumerate(runs):
        (tmp_path / f"s{s}").mkdir()
        (tmp_path / f"s{s}" / "fig3.json").write_text(json.dumps(r))
    assert fidelity_real.main(["combine", *(str(tmp_path / f"s{s}") for s in range(3)),
                               "--out", str(tmp_path / "all")]) == 0
    c = fidelity_real.combine(runs)
    assert c["methods"]["aioli"]["sim_mean_se"][0] == pytest.approx(0.91)
    assert c["methods"]["aioli"]["sim_mean_se"][1] == pytest.approx(0.01 / np.sqrt(3))  # std 0.01, 3 seeds
    assert c["methods"]["aioli"]["delta_mean_se"][0] == pytest.approx(-3.0)
    assert c["methods"]["aioli_diagonal"]["delta_mean_se"] is None
    rho = c["spearman_sim_vs_improvement"]
    assert rho["n"] == 9 and rho["rho"] == pytest.approx(1.0)  # diagonal points left out: it has no Table 2 improvement
    assert c["dynamic_law_fit"]["r2"][0] == pytest.approx(0.91) and c["dynamic_law_fit"]["n_runs"] == 108
    md = (tmp_path / "all" / "fig3-seeds.md").read_text()
    assert "| aioli | 0.910 ± 0.006 |" in md and "ρ = +" in md and "not in Table 2" in md
    assert (tmp_path / "all" / "fig3-seeds.png").stat().st_size > 1000
    with pytest.raises(DataError, match="one result per seed"):
        fidelity_real.combine([runs[0], runs[0]])
    with pytest.raises(DataError, match="differ in"):
        fidelity_real.combine([runs[0], _fig3_seed(1, {"aioli": 0.1}, {"aioli": 0.0}, t=200)])
    with pytest.raises(DataError, match="no fig3.json"):
        fidelity_real.main(["combine", str(tmp_path), "--out", str(tmp_path / "x")])


def test_fig3_study_records_each_invocation_before_it_runs(tmp_path, monkeypatch):
    """An interrupted study (killed, out of time) continued by the same command must list every invocation
    with its commit: provenance is written before the study, not after it."""
    from experiments import fidelity_real

    src = tmp_path / "table2"
    src.mkdir()
    (src / "experiment.json").write_text("{}")
    monkeypatch.setattr("raymix.progress.console_progress", lambda *a, **k: None)

    def killed(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(fidelity_real, "study", killed)
    argv = ["--from", str(src), "--seed", "1", "--t", "300", "--window", "50", "--out", str(tmp_path / "fig3")]
    for _ in range(2):
        with pytest.raises(KeyboardInterrupt):
            fidelity_real.main(argv)
    runs = json.loads((tmp_path / "fig3" / "provenance.json").read_text())["invocations"]
    assert len(runs) == 2 and all(r["command"].endswith("--out " + str(tmp_path / "fig3")) for r in runs)
    assert not (tmp_path / "fig3" / "fig3.json").exists()  # nothing presented as a finished study


def test_provenance_records_the_data_and_the_package_versions(make_shards):
    """A results folder says which data it was trained on (equal digests: equal tokens) and with which
    versions of the packages that shape a result, so a rerun that disagrees can be told apart."""
    from importlib.metadata import version

    from raymix.data.manifest import load_manifest

    shards = make_shards(groups=("github", "c4"))
    cfg = cpu_scale.experiment("table2", "gh_c4", str(shards), "out", steps=100, seeds=(0,))
    entry = cpu_scale.provenance(cfg, ["table2", "--setting", "gh_c4"])
    man = load_manifest(shards, verify=False)
    assert entry["data"]["digest"] == man.data_digest() and entry["data"]["tokenizer_sha256"] == man.tokenizer.sha256
    assert entry["packages"]["torch"] == version("torch") and entry["packages"]["ray"] == version("ray")
    assert entry["packages"]["python"].count(".") == 2 and entry["packages"]["pyarrow"]
    assert entry["command"] == "python -m experiments.cpu_scale table2 --setting gh_c4"


def test_variant_pairs_a_variant_with_its_base_by_seed(tmp_path, capsys):
    """experiments.variant on the committed gh_c4 folders gives the figures experiments/README.md quotes for
    the 3-eval-window variant; copied runs are left out, and folders that do not pair are refused."""
    import shutil

    from experiments import variant
    from raymix.errors import ConfigError, DataError

    res = Path(__file__).resolve().parents[1] / "experiments" / "results"
    base, n3 = res / "gh_c4" / "table2", res / "gh_c4" / "aioli-n3"
    c = variant.compare(base, n3)
    assert [r["label"] for r in c["rows"]] == ["aioli"]  # stratified was copied by --reuse-from: the same runs
    row = c["rows"][0]
    assert row["seeds"] == [0, 1, 2, 3, 4] and (row["mean"], row["se"]) == (
        pytest.approx(-1.269, abs=5e-4), pytest.approx(0.654, abs=5e-4))
    assert row["per_seed"][0] == pytest.approx(row["variant"][0] - row["base"][0]) and row["verdict"] == "within noise"
    assert set(c["changed"]) == {"aioli"} and c["changed"]["aioli"][1]["eval_examples"] == 3
    readme = (res.parent / "README.md").read_text()
    assert "| 3 − 8 windows | −1.269 ± 0.654 |" in readme
    # a variant whose aioli+X runs learned X's p exactly as the base did says so, seed by seed
    v = tmp_path / "v"
    shutil.copytree(n3, v, ignore=shutil.ignore_patterns("*.png", "*.csv", "*.md", "raymix.log"))
    for s in (0, 1):
        f = v / "results" / f"aioli-seed{s}.json"
        d = json.loads(f.read_text())
        d["mixture"] = json.loads((base / "results" / f"aioli-seed{s}.json").read_text())["mixture"]
        f.write_text(json.dumps(d))
    assert variant.main([str(base), str(v), "--metric", "avg_val_loss", "--out", str(tmp_path / "v.md")]) == 0
    md = (tmp_path / "v.md").read_text()
    assert "| aioli |" in md and "| seeds 0, 1 |" in md and md in capsys.readouterr().out + "\n"
    with pytest.raises(ConfigError, match="differ in"):
        variant.compare(base, res / "cc_gh_w" / "table3")
    with pytest.raises(ConfigError, match=r"not in both folders"):
        variant.compare(base, n3, labels=["doge"])
    with pytest.raises(DataError, match="share no method label"):
        variant.compare(base, base)
    with pytest.raises(DataError, match="no experiment.json"):
        variant.compare(base, tmp_path)


def test_law_holdout_refits_dmls_law_and_scores_it_out_of_sample(tmp_path, capsys, monkeypatch):
    """experiments.law_holdout on the committed gh_c4 Table 2 folder: refitting DML's law on DML's own sweep picks
    DML's p again on every seed, the held-out R² is below the in-sample one, and experiments/README.md quotes
    the rows it prints."""
    from experiments import law_holdout
    from raymix.errors import DataError

    res = Path(__file__).resolve().parents[1] / "experiments" / "results"
    rows = law_holdout.study(res / "gh_c4" / "table2")
    assert [r["seed"] for r in rows] == [0, 1, 2] and all(r["runs"] == 9 and r["m"] == 2 for r in rows)
    assert all(r["same_p"] and r["same_horizon"] for r in rows)
    assert all(r["r2_loo_min"] <= r["r2_loo"] < r["r2_in"] <= 1 for r in rows)
    strat = json.loads((res / "gh_c4" / "table2" / "results" / "stratified-seed0.json").read_text())
    dml = json.loads((res / "gh_c4" / "table2" / "results" / "dml-seed0.json").read_text())
    assert rows[0]["measured_gain"] == pytest.approx(dml["avg_val_loss"] - strat["avg_val_loss"])
    monkeypatch.chdir(res.parents[1])  # the README quotes the command as run from the repository root
    assert law_holdout.main(["experiments/results/gh_c4/table2", "--out", str(tmp_path / "h.md")]) == 0
    md = (tmp_path / "h.md").read_text()
    assert md == capsys.readouterr().out and md.count("| `experiments/results/gh_c4/table2` |") == 3
    readme = (res.parent / "README.md").read_text()
    assert all(line in readme for line in md.splitlines()[2:])
    with pytest.raises(DataError, match="no seed with both dml and stratified"):
        law_holdout.study(res / "gh_c4" / "aioli-n3")
