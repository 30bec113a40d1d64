"""Tune trials report progress to the driver every round; MLflow tracking through Tune's callback (offline)."""

from __future__ import annotations

import io

import pytest

from raymix.experiment import ExperimentConfig, run_experiment
from raymix.methods.driver import BackendSpec
from raymix.progress import ExperimentProgress
from raymix.tune.tracking import mlflow_uri

pytestmark = pytest.mark.ray


def test_tune_trials_report_rounds_warnings_and_mlflow_metrics(ray_runtime, tmp_path):
    from mlflow.tracking import MlflowClient

    out = io.StringIO()
    # EMA with the shift_sum normalisation bounds p: the trial warns (in its own process) every run
    cfg = ExperimentConfig(methods=("aioli",), seeds=(0,), total_steps=1000, rounds=4, backend=BackendSpec(),
                           aioli={"rounds": 4, "ema": 0.5}, executor="tune", out=str(tmp_path), name="tracked",
                           log=("mlflow",))
    (res,) = run_experiment(cfg, progress=ExperimentProgress(out, interval=0))
    lines = out.getvalue().splitlines()
    # per-round progress reached the driver through the Tune callback (not only the end of the trial)
    shown = [ln for ln in lines if ln.startswith("[aioli seed=0] final: ")]
    assert [s for s in ("250/1000", "500/1000", "750/1000", "1000/1000") if any(s in ln for ln in shown)] == \
        ["250/1000", "500/1000", "750/1000", "1000/1000"]
    assert sum(ln.startswith("raymix: warning: Aioli with EMA") for ln in lines) == 1

    client = MlflowClient(tracking_uri=mlflow_uri(tmp_path))
    exp = client.get_experiment_by_name("tracked")
    (run,) = client.search_runs([exp.experiment_id])
    assert run.data.tags["method"] == "aioli" and run.data.tags["phase"] == "final"
    assert run.info.run_name.startswith("final_")
    p = client.get_metric_history(run.info.run_id, "p/github")
    assert [m.step for m in p] == [h.step for h in res.final.history] == [250, 500, 750, 1000]
    assert [round(m.value, 6) for m in p] == [round(h.mixture[0], 6) for h in res.final.history]
    a = client.get_metric_history(run.info.run_id, "A/c4/github")
    assert [m.value for m in a] == pytest.approx([h.interactions[1][0] for h in res.final.history])
    assert len(client.get_metric_history(run.info.run_id, "train_loss/c4")) == 4
    assert run.data.metrics["avg_test_ppl"] == pytest.approx(res.final.avg_test_ppl)
    assert run.data.metrics["test_loss/github"] == pytest.approx(res.final.test_loss[0])


@pytest.mark.timeout(60)
def test_trial_warning_forwarding_keeps_raymix_warnings_and_reemits_others_once():
    """A trial records raymix's warnings for the driver and re-emits every other warning once, after the recording
    context: re-emitting inside it appended to the list being iterated (an endless loop, an out-of-memory kill)."""
    import types
    import warnings

    from raymix.errors import RaymixWarning
    from raymix.tune.trainable import MixingTrainable

    trial = types.SimpleNamespace(_warnings=[])
    with warnings.catch_warnings(record=True) as outer:
        warnings.simplefilter("always")
        with MixingTrainable._forwarding_warnings(trial):
            warnings.warn("library notice", UserWarning, stacklevel=1)
            warnings.warn("p cannot leave [0.45, 0.55]", RaymixWarning, stacklevel=1)
            warnings.warn("p cannot leave [0.45, 0.55]", RaymixWarning, stacklevel=1)
    assert trial._warnings == ["p cannot leave [0.45, 0.55]"] * 2  # the driver de-duplicates
    assert [str(w.message) for w in outer] == ["library notice"]
