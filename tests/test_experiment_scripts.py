"""The experiment scripts under experiments/ build valid configs and run (simulator)."""

from __future__ import annotations

from experiments import fidelity, paper


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
    assert "| aioli |" in out and "greedy recovers the optimum" in out


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
