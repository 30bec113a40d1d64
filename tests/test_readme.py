"""The README's Python examples, run exactly as written (code taken from README.md at test time).

The Tune example runs against the shards the README's "Command line" section builds
(``raymix data build --embedded --seq-len 128 --out shards``), in a scratch working directory; Tune's default
storage (``~/ray_results``) is redirected to that directory so the test leaves nothing behind.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def python_block_after(heading: str) -> str:
    """The first ```python block after the line ``heading`` of README.md."""
    text = README.read_text()
    start = text.index(f"\n{heading}\n")
    m = re.compile(r"```python\n(.*?)```", re.S).search(text, start)
    assert m is not None, f"no python block after {heading!r}"
    return m.group(1)


def readme_command(prefix: str) -> list[str]:
    """The README's shell command line starting with ``prefix`` (comment stripped), as argv."""
    for line in README.read_text().splitlines():
        if line.startswith(prefix):
            return shlex.split(line.split("#", 1)[0])
    raise AssertionError(f"README has no command starting with {prefix!r}")


def test_readme_simulator_example_runs_as_written(capsys):
    code = python_block_after("## The framework in code")
    exec(compile(code, "README.md:framework", "exec"), {"__name__": "__readme__"})
    printed = capsys.readouterr().out.split()
    assert float(printed[0]) > 1  # the average test PPL it prints


@pytest.mark.ray
@pytest.mark.slow
def test_readme_tune_example_runs_as_written(ray_runtime, tmp_path, monkeypatch, capsys):
    import ray.air.config
    import ray.train.constants
    import ray.tune.experiment.experiment

    from raymix.cli import main

    monkeypatch.chdir(tmp_path)
    for mod in (ray.train.constants, ray.tune.experiment.experiment, ray.air.config):
        if hasattr(mod, "DEFAULT_STORAGE_PATH"):
            monkeypatch.setattr(mod, "DEFAULT_STORAGE_PATH", str(tmp_path / "ray_results"))
    monkeypatch.setattr(ray.train.constants, "DEFAULT_STORAGE_PATH", str(tmp_path / "ray_results"))
    argv = readme_command("raymix data build --embedded")
    assert argv[:3] == ["raymix", "data", "build"] and main(argv[1:]) == 0
    from raymix.errors import ConfigError
    from raymix.methods.driver import BackendSpec
    from raymix.tune import static_trial

    with pytest.raises(ConfigError, match="'reference'"):  # the 3-group list on the 4-group embedded data
        static_trial(("books", "code", "speeches"), steps=10, backend=BackendSpec(kind="model", shards="shards/"))
    code = python_block_after("### On Ray Tune")
    exec(compile(code, "README.md:tune", "exec"), {"__name__": "__readme__"})
    out = capsys.readouterr().out
    # the Optuna + ASHA block printed the best trial's average validation loss and its proportions
    line = next(ln for ln in out.splitlines() if "'books'" in ln and "'speeches'" in ln)
    assert float(line.split()[0]) > 0
    assert list((tmp_path / "ray_results").iterdir())


def test_a_group_list_the_data_lacks_fails_before_any_trial():
    from raymix.errors import ConfigError
    from raymix.methods.driver import BackendSpec
    from raymix.tune import DMLSearcher, static_trial

    with pytest.raises(ConfigError, match=r"\['books', 'code', 'speeches'\].*'github', 'c4'.*pass groups="):
        static_trial(("books", "code", "speeches"), steps=10, backend=BackendSpec(kind="sim"))
    with pytest.raises(ConfigError, match="different order"):
        static_trial(("c4", "github"), steps=10)
    base = static_trial(("github", "c4"), steps=10)
    with pytest.raises(ConfigError, match="do not match"):
        DMLSearcher(base, ("github", "c4", "books"))
