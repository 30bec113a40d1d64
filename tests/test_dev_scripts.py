"""Developer scripts under scripts/ that the docs tell people to run."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_mutmut_survivors_lists_the_survivors_to_rerun_and_counts_verdicts(tmp_path, capsys):
    survivors = _load("mutmut_survivors")
    meta = tmp_path / "mutants" / "pkg" / "mod.py.meta"
    meta.parent.mkdir(parents=True)
    codes = {"pkg.mod.x_f__mutmut_1": 0, "pkg.mod.x_f__mutmut_2": 1, "pkg.mod.x_g__mutmut_1": -24,
             "pkg.mod.x_g__mutmut_2": None, "pkg.mod.x_g__mutmut_3": 0}
    meta.write_text(json.dumps({"exit_code_by_key": codes}))
    assert survivors.main(["--root", str(tmp_path), "pkg/mod.py"]) == 0
    assert capsys.readouterr().out.split() == ["pkg.mod.x_f__mutmut_1", "pkg.mod.x_g__mutmut_3"]
    assert survivors.main(["--root", str(tmp_path), "--counts"]) == 0
    assert capsys.readouterr().out.strip() == (
        "pkg/mod.py: {'killed': 1, 'not checked': 1, 'survived': 2, 'timeout': 1}")
    # a file mutmut has not run: exit 2 and say what to do
    assert survivors.main(["--root", str(tmp_path), "pkg/other.py"]) == 2
    assert "run `mutmut run` first" in capsys.readouterr().err


def test_mutmut_survivors_runs_new_tests_under_each_survivor(tmp_path, capsys, monkeypatch):
    survivors = _load("mutmut_survivors")
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")  # the child pytests need no plugins: start fast
    mutants = tmp_path / "mutants"
    (mutants / "tests").mkdir(parents=True)
    # a trampolined function as mutmut writes it: the environment variable picks the mutant
    (mutants / "mod.py").write_text(
        "import os\n\n"
        "def f():\n"
        "    return 2 if os.environ.get('MUTANT_UNDER_TEST') == 'mod.x_f__mutmut_1' else 1\n")
    (mutants / "tests" / "test_mod.py").write_text("from mod import f\n\n\ndef test_f():\n    assert f() == 1\n")
    (mutants / "mod.py.meta").write_text(json.dumps(
        {"exit_code_by_key": {"mod.x_f__mutmut_1": 0, "mod.x_f__mutmut_2": 0, "mod.x_f__mutmut_3": 1}}))
    assert survivors.main(["--root", str(tmp_path), "mod.py", "--against", "tests/test_mod.py"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out == ["killed mod.x_f__mutmut_1", "survived mod.x_f__mutmut_2", "1 of 2 killed by tests/test_mod.py"]
    # arguments that select no test are an error, not a kill
    assert survivors.main(["--root", str(tmp_path), "mod.py", "--against", "tests/test_mod.py", "-k", "nope"]) == 2
    assert "exited 5" in capsys.readouterr().err
