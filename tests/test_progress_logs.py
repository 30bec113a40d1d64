"""Live progress (terminal bars / plain periodic lines), quiet logging with a full log file, warnings once."""

from __future__ import annotations

import io
import logging
import warnings

from raymix.errors import RaymixWarning
from raymix.experiment import ExperimentConfig, run_experiment
from raymix.methods.driver import BackendSpec
from raymix.progress import ExperimentProgress, progress_bar


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def _feed(progress: ExperimentProgress) -> None:
    progress.start(2, desc="compare")
    progress.item_started("aioli", 0, ("github", "c4"))
    progress.phase_started("final", [("final", 0, 300)])
    for step, p in ((100, [0.5, 0.5]), (200, [0.41, 0.59]), (300, [0.38, 0.62])):
        progress.run_round("final", step, p)
    progress.warn("Aioli with EMA can only reach p in [...]")
    progress.warn("Aioli with EMA can only reach p in [...]")
    progress.phase_finished()
    progress.item_finished("[aioli seed=0] avg test PPL 3.000")
    progress.close()


def test_plain_lines_when_output_is_not_a_terminal():
    out = io.StringIO()
    _feed(ExperimentProgress(out, interval=0))
    text = out.getvalue()
    assert "\r" not in text and "\x1b" not in text and "█" not in text
    lines = text.splitlines()
    steps = [ln for ln in lines if ln.startswith("[aioli seed=0] final:")]
    # one line at the start, one per round (interval 0), the final state at the end
    assert steps[0].startswith("[aioli seed=0] final: 0/300 steps (0%)")
    assert any("200/300 steps (67%)" in ln and "p=[0.41 0.59]" in ln and "ETA" in ln for ln in steps)
    assert "300/300 steps (100%)" in steps[-1] and "elapsed" in steps[-1]
    assert sum("raymix: warning: Aioli with EMA" in ln for ln in lines) == 1
    assert lines[-1] == "[aioli seed=0] avg test PPL 3.000"


def test_periodic_lines_are_rate_limited():
    out = io.StringIO()
    bar = progress_bar(1000, "tokenizing", unit="documents", stream=out, interval=3600)
    for _ in range(100):
        bar.update(10)
    bar.close()
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and "0/1000" in lines[0] and "1000/1000 documents (100%)" in lines[1]


def test_terminal_gets_a_live_bar():
    out = _Tty()
    _feed(ExperimentProgress(out))
    text = out.getvalue()
    assert "\r" in text and "%|" in text and "method-seeds" in text and "p=[0.38 0.62]" in text
    assert text.count("raymix: warning:") == 1


def test_local_experiment_reports_every_phase_and_round(tmp_path):
    out = io.StringIO()
    cfg = ExperimentConfig(methods=("stratified", "grid_search", "aioli"), total_steps=2000, backend=BackendSpec(),
                           executor="local", out=str(tmp_path), rounds=4)
    run_experiment(cfg, progress=ExperimentProgress(out, interval=0))
    lines = out.getvalue().splitlines()
    assert any(ln.startswith("[grid_search seed=0] gs (9 runs): 18000/18000 steps (100%)") and "9/9 runs done" in ln
               for ln in lines)
    # the final run is the best sweep run, already at its stop step: said so, no empty bar
    assert not any("0/0 steps" in ln for ln in lines)
    assert "[grid_search seed=0] final: final starts where the run it resumes stopped (nothing to train; evaluating)" in lines
    aioli = [ln for ln in lines if ln.startswith("[aioli seed=0] final:")]
    assert "2000/2000 steps" in aioli[-1] and "p=[" in aioli[-1]
    # the online method's p moves: at least two different proportions were shown
    assert len({ln.split("p=")[1] for ln in aioli if "p=" in ln}) >= 2
    assert any(ln.startswith("[aioli seed=0] avg test PPL") for ln in lines)


def test_quiet_screen_full_log_file(tmp_path, capsys):
    from raymix.logs import setup_logging, tame_ray_loggers

    ray_data = logging.getLogger("ray.data")
    ray_data.propagate = False
    ray_data.addHandler(console := logging.StreamHandler())  # as Ray Data configures itself
    try:
        log_file = setup_logging(tmp_path / "raymix.log")
        tame_ray_loggers()
        ray_data.info("Starting execution of Dataset dataset_0")
        logging.getLogger("ray.tune").error("Trial errored\nTraceback (most recent call last): ...")
        logging.getLogger("raymix").debug("[aioli seed=0] final step 100/300")
        for _ in range(3):
            warnings.warn("a too-short schedule", RaymixWarning, stacklevel=1)
        warnings.warn("some library's deprecation", UserWarning, stacklevel=1)
    finally:
        ray_data.removeHandler(console)
    err = capsys.readouterr().err
    assert "Starting execution" not in err and "Traceback" not in err and "deprecation" not in err
    assert err.count("raymix: warning: a too-short schedule") == 1
    text = log_file.read_text()
    for expected in ("Starting execution of Dataset", "Traceback", "final step 100/300", "a too-short schedule",
                     "some library's deprecation"):
        assert expected in text
