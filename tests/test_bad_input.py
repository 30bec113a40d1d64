"""The bad-input catalogue (docs/RELIABILITY.md): every case fails with one clear RaymixError line (exit 2 on the
command line), before anything trains or Ray starts, and leaves nothing half-written on disk."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from shard_writer import write_shards

from raymix import Mixture
from raymix.cli import main
from raymix.errors import RaymixError

SIM = ["--sim", "two_group_interacting"]
DOC = Path(__file__).resolve().parents[1] / "docs" / "RELIABILITY.md"


@dataclass
class Case:
    id: str
    #: tmp_path -> argv (command line) or a callable that must raise RaymixError
    make: Callable[[Path], list[str] | Callable[[], Any]]
    needle: str
    #: tmp_path -> None; asserts what is (not) left on disk
    left: Callable[[Path], None] | None = None


def _nothing(name: str = "out") -> Callable[[Path], None]:
    def check(tmp: Path) -> None:
        assert not (tmp / name).exists(), f"{tmp / name} was created"
    return check


def _unchanged_file(name: str, text: str) -> Callable[[Path], None]:
    def check(tmp: Path) -> None:
        assert (tmp / name).read_text() == text
    return check


def _file(tmp: Path, name: str = "afile", text: str = "keep me") -> Path:
    (tmp / name).write_text(text)
    return tmp / name


def _readonly(tmp: Path) -> Path:
    d = tmp / "ro"
    d.mkdir(exist_ok=True)
    d.chmod(0o555)
    return d


def _mkdir(d: Path) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    return d


def _shards(tmp: Path, **kw) -> Path:
    return write_shards(tmp / "shards", **kw)


def _edit_manifest(tmp: Path, edit: Callable[[dict], None]) -> Path:
    s = _shards(tmp)
    path = s / "manifest.json"
    d = json.loads(path.read_text())
    edit(d)
    path.write_text(json.dumps(d))
    return s


def _drop_group(d: dict) -> None:
    d["groups"] = ["code"]
    d["stats"] = {s: {"code": per["code"]} for s, per in d["stats"].items()}
    d["files"] = [f for f in d["files"] if f["group"] == "code"]


def _drop_files(d: dict) -> None:
    d["files"] = [f for f in d["files"] if f["group"] == "code"]


def _corrupt(tmp: Path) -> Path:
    s = _shards(tmp)
    part = next((s / "train" / "group=code").glob("*.parquet"))
    data = bytearray(part.read_bytes())
    data[len(data) // 2] ^= 0xFF
    part.write_bytes(bytes(data))
    return s


def _other_experiment(tmp: Path) -> Path:
    out = tmp / "prev"
    (out / "results").mkdir(parents=True)
    (out / "experiment.json").write_text(json.dumps({"methods": ["stratified"], "fingerprint": "0" * 16}))
    (out / "results" / "stratified-seed0.json").write_text("{}")
    return out


def _corpus(tmp: Path, nul: bool = False) -> Path:
    root = tmp / "corpus"
    for g in ("code", "prose"):
        (root / g).mkdir(parents=True, exist_ok=True)
        for i in range(4):
            (root / g / f"{i}.txt").write_text(f"{g} document {i} " * 20)
    if nul:
        (root / "prose" / "blob.txt").write_bytes(b"\x00" * 4096)
    return root


def _run(tmp: Path, *extra: str, out: str | None = None) -> list[str]:
    return ["run", "--method", "stratified", *SIM, "--out", out or str(tmp / "out"), *extra]


def _cmp(tmp: Path, *extra: str, out: str | None = None) -> list[str]:
    return ["compare", "--methods", "stratified", *SIM, "--out", out or str(tmp / "out"), *extra]


def _model(tmp: Path, *extra: str, shards: Path | None = None) -> list[str]:
    return ["run", "--method", "stratified", "--data", str(shards or _shards(tmp)), "--out", str(tmp / "out"), *extra]


def _build(tmp: Path, *extra: str, out: str | None = None, nul: bool = False) -> list[str]:
    return ["data", "build", "--folders", str(_corpus(tmp, nul)), "--out", out or str(tmp / "out"), *extra]


def _api_problem_groups() -> None:
    from raymix.methods import MixingProblem, get_method, run_method
    from raymix.methods.driver import BackendSpec, LocalExecutor

    run_method(get_method("stratified"), MixingProblem(groups=("x", "y"), total_steps=100), LocalExecutor(BackendSpec()))


def _api_simplex_u() -> None:
    from raymix.tune.searchers import mixture_from_space

    mixture_from_space({"simplex_u0": 1.5}, 2)


def _api_aioli_rounds() -> None:
    from raymix.methods.policies import AioliConfig

    AioliConfig(rounds=2.7)


CASES = [
    # --- the late failures of issue #7: now refused before Ray starts ----------------------------------------
    Case("aioli-budget", lambda t: ["compare", "--methods", "stratified,grid_search,aioli", *SIM, "--steps", "100",
                                    "--out", str(t / "out")], "'aioli' (seed 0) cannot run as planned", _nothing()),
    Case("seed-negative-run", lambda t: _run(t, "--seed", "-1"), "seeds must be integers >= 0", _nothing()),
    Case("seeds-negative", lambda t: _cmp(t, "--seeds", "-1"), "seeds must be integers >= 0", _nothing()),
    Case("seeds-duplicate", lambda t: _cmp(t, "--seeds", "0,0"), "repeat [0]", _nothing()),
    Case("seeds-not-int", lambda t: _cmp(t, "--seeds", "0,x"), "'x' is not an integer", _nothing()),
    Case("seeds-empty", lambda t: _cmp(t, "--seeds", ","), "names no seed", _nothing()),
    Case("cpus-too-many", lambda t: _cmp(t, "--cpus-per-trial", "64"), "more CPUs than any node has", _nothing()),
    Case("gpus-too-many", lambda t: _cmp(t, "--gpus-per-trial", "1024"), "more GPUs than any node offers", _nothing()),
    Case("out-is-file-run", lambda t: _run(t, out=str(_file(t))), "is an existing file",
         _unchanged_file("afile", "keep me")),
    Case("out-is-file-compare", lambda t: _cmp(t, out=str(_file(t))), "is an existing file",
         _unchanged_file("afile", "keep me")),
    Case("out-readonly-run", lambda t: _run(t, out=str(_readonly(t) / "x")), "not writable", _nothing("ro/x")),
    Case("out-readonly-compare", lambda t: _cmp(t, out=str(_readonly(t) / "x")), "not writable", _nothing("ro/x")),
    Case("out-other-experiment", lambda t: _cmp(t, out=str(_other_experiment(t))), "holds a different experiment",
         _unchanged_file("prev/results/stratified-seed0.json", "{}")),
    Case("lr-inf", lambda t: _model(t, "--lr", "inf"), "TrainConfig.lr must lie in", _nothing()),
    Case("lr-nan", lambda t: _model(t, "--lr", "nan"), "TrainConfig.lr must lie in", _nothing()),
    Case("window-longer-than-context", lambda t: _model(t, shards=_shards(t, seq_len=257)),
         "context of 128 tokens", _nothing()),
    Case("manifest-group-removed", lambda t: _model(t, shards=_edit_manifest(t, _drop_group)),
         "that the manifest does not list", _nothing()),
    # --- other command-line input ---------------------------------------------------------------------------
    Case("steps-zero", lambda t: _run(t, "--steps", "0"), "total_steps (S) must be an integer >= 1", _nothing()),
    Case("rounds-zero", lambda t: _run(t, "--rounds", "0"), "rounds must be an integer >= 1", _nothing()),
    Case("method-unknown", lambda t: ["run", "--method", "nope", *SIM, "--out", str(t / "out")],
         "unknown method 'nope'", _nothing()),
    Case("handoff-unrestricted", lambda t: ["compare", "--methods", "aioli+dml", *SIM, "--out", str(t / "out")],
         "belong to the restricted setting", _nothing()),
    Case("aioli-unknown-field", lambda t: _run(t, "--aioli", '{"bogus": 1}'), "AioliConfig has no field(s) ['bogus']",
         _nothing()),
    Case("aioli-rounds-fraction", lambda t: ["run", "--method", "aioli", *SIM, "--aioli", '{"rounds": 2.7}',
                                             "--out", str(t / "out")], "rounds (T) must be an integer", _nothing()),
    Case("sim-unknown", lambda t: ["run", "--method", "stratified", "--sim", "nope", "--out", str(t / "out")],
         "unknown simulator preset 'nope'", _nothing()),
    Case("data-missing", lambda t: _model(t, shards=t / "nowhere"), "does not exist", _nothing()),
    Case("data-no-manifest", lambda t: _model(t, shards=_mkdir(t / "empty")), "is missing", _nothing()),
    Case("preset-unknown", lambda t: _model(t, "--preset", "huge"), "huge", _nothing()),
    Case("batch-size-zero", lambda t: _model(t, "--batch-size", "0"), "batch_size must be a positive integer",
         _nothing()),
    Case("train-unknown-field", lambda t: _model(t, "--train", '{"bogus": 1}'), "TrainConfig has no field(s)",
         _nothing()),
    Case("max-failures-negative", lambda t: _cmp(t, "--max-failures", "-2"), "max_failures (--max-failures)",
         _nothing()),
    Case("checkpoint-every-negative", lambda t: _cmp(t, "--checkpoint-every", "-1"),
         "checkpoint_frequency (--checkpoint-every)", _nothing()),
    # --- data build / info -------------------------------------------------------------------------------------
    Case("build-out-is-file", lambda t: _build(t, out=str(_file(t))), "is an existing file",
         _unchanged_file("afile", "keep me")),
    Case("build-out-readonly", lambda t: _build(t, out=str(_readonly(t) / "s")), "not writable", _nothing("ro/s")),
    Case("build-out-exists", lambda t: _build(t, out=str(_shards(t))), "already exists", None),
    Case("build-binary-document", lambda t: _build(t, nul=True), "NUL bytes", _nothing()),
    Case("build-folders-missing", lambda t: ["data", "build", "--folders", str(t / "nope"), "--out", str(t / "out")],
         "does not exist", _nothing()),
    Case("build-seq-len-one", lambda t: _build(t, "--seq-len", "1"), "seq_len=1 must be an integer >= 2", _nothing()),
    Case("info-group-without-files", lambda t: ["data", "info", str(_edit_manifest(t, _drop_files))],
         "group(s) with no files: ['train/prose'", None),
    Case("info-group-removed", lambda t: ["data", "info", str(_edit_manifest(t, _drop_group))],
         "that the manifest does not list", None),
    Case("info-verify-corrupt", lambda t: ["data", "info", "--verify", str(_corrupt(t))], "is corrupt or was replaced",
         None),
    Case("info-file-missing", lambda t: ["data", "info", str(_edit_manifest(t, lambda d: d["files"].append(
        {**d["files"][0], "path": "train/group=code/part-00009.parquet"})))], "listed in the manifest is missing", None),
    # --- Python API ---------------------------------------------------------------------------------------------
    Case("mixture-strings", lambda t: lambda: Mixture({"a": "0.5", "b": "0.5"}), "must be numbers"),
    Case("mixture-bools", lambda t: lambda: Mixture({"a": True, "b": False}), "must be numbers"),
    Case("aioli-config-fraction", lambda t: _api_aioli_rounds, "rounds (T) must be an integer"),
    Case("problem-groups-not-in-backend", lambda t: _api_problem_groups, "the backend has groups ['github', 'c4']"),
    Case("searched-simplex-u-out-of-range", lambda t: _api_simplex_u, "simplex_u0 must lie in [0.0, 1.0]"),
]


@pytest.fixture
def nothing_trains(monkeypatch):
    """Every case must fail before Ray starts or anything trains."""
    import raymix.data.streaming as streaming
    import raymix.tune.executor as executor

    def boom(*a, **k):
        raise AssertionError("Ray started / training began before the bad input was refused")

    monkeypatch.setattr(executor, "ensure_ray", boom)
    monkeypatch.setattr(executor.TuneExecutor, "run_phase", boom)
    monkeypatch.setattr(streaming, "ensure_ray", boom)


@pytest.fixture
def as_unprivileged(monkeypatch):
    """root ignores permission bits: make os.access answer for read-only folders as it would for a user."""
    if os.geteuid() != 0:
        return
    real = os.access

    def access(path, mode, *a, **k):
        p = Path(path)
        if mode & os.W_OK and p.exists() and not (p.stat().st_mode & 0o222):
            return False
        return real(path, mode, *a, **k)

    monkeypatch.setattr(os, "access", access)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_refused(case: Case, tmp_path, capsys, nothing_trains, as_unprivileged):
    made = case.make(tmp_path)
    if callable(made):
        with pytest.raises(RaymixError) as e:
            made()
        assert case.needle in str(e.value)
    else:
        rc = main(made)
        err = capsys.readouterr().err
        lines = [x for x in err.splitlines() if x.startswith("raymix: error:")]
        assert rc == 2, err
        assert len(lines) == 1 and case.needle in lines[0], err
        assert "Traceback" not in err
    if case.left is not None:
        case.left(tmp_path)
    assert not [p for p in tmp_path.rglob(".*.tmp-*")], "a hidden temp folder was left behind"


def test_the_catalogue_is_documented():
    text = DOC.read_text()
    rows = set(re.findall(r"^\| `([a-z0-9-]+)` \|", text, flags=re.M))
    assert len(CASES) >= 30 and rows == {c.id for c in CASES}
