"""`raymix data build` with its defaults feeds `raymix run` / `raymix compare` with theirs."""

from __future__ import annotations

import pytest

from raymix.cli import _experiment, build_parser, main
from raymix.preflight import check_experiment

pytestmark = pytest.mark.ray


def test_default_shards_pass_the_default_plan_check(tmp_path, ray_runtime, capsys):
    corpus = tmp_path / "corpus"
    words = {"code": "def return import class lambda yield while".split(),
             "prose": "the king spoke unto his people and they were glad".split()}
    for g, vocab in words.items():
        (corpus / g).mkdir(parents=True)
        for i in range(30):
            (corpus / g / f"{i:02d}.txt").write_text(" ".join(vocab[(i + j) % len(vocab)] for j in range(400)))
    shards = tmp_path / "S"
    assert main(["data", "build", "--folders", str(corpus), "--out", str(shards)]) == 0
    capsys.readouterr()
    for argv in (["compare", "--data", str(shards), "--methods", "stratified,aioli"],
                 ["run", "--data", str(shards), "--method", "aioli"]):
        args = build_parser().parse_args([*argv, "--out", str(tmp_path / "out")])
        methods = [args.method] if argv[0] == "run" else args.methods.split(",")
        report = check_experiment(_experiment(args, methods, [0], argv[0]))
        assert report.groups == ("code", "prose")
