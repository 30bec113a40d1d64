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
