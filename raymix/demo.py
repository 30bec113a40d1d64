"""``raymix demo``: the main job on the embedded default data, a few minutes on a 2-core CPU.

1. builds group-tagged token shards from the real text shipped inside the package (code, books,
   speeches; a byte-level BPE trained on the training split) — once, cached under ``<out>/shards``;
2. runs, as Ray Tune trials of a tiny GPT-NeoX model, in the paper's restricted setting (§6.2):
   stratified sampling, Aioli, grid search on short runs, and Aioli+GS — Aioli resuming the winning
   truncated grid-search trial;
3. prints the paper-style table (per-group test perplexity, average, Δ vs stratified, extra runs) and
   writes ``report.md`` and a plot of the proportions over training.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

from raymix.errors import DataError
from raymix.progress import ExperimentProgress

DEMO_GROUPS = ("books", "code", "speeches")


def _print(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


#: ``raymix demo --quick``: a smoke run of every stage (shards, Tune trials, hand-off, report) in well under a
#: minute on 2 cores, small enough to be part of the test suite.  Its numbers mean nothing.
QUICK = {"docs_per_group": 40, "seq_len": 64, "vocab_size": 512, "steps": 40, "gs_runs": 3,
         "aioli": {"rounds": 2, "sweeps": 1}, "eval_examples": 16}


def demo_shards(out: Path, *, seq_len: int = 128, vocab_size: int = 4096, max_docs_per_group: int | None = None,
                name: str = "shards", say: Callable[[str], None] = _print, show_progress: bool = False) -> Path:
    """Build (or reuse) the demo's shard directory under ``out/<name>``."""
    from raymix.data.embedded import EmbeddedSource
    from raymix.data.manifest import load_manifest
    from raymix.data.shards import build_shards

    path = out / name
    if (path / "manifest.json").is_file():
        try:
            m = load_manifest(path)
            if tuple(m.groups) == DEMO_GROUPS and m.seq_len == seq_len and m.vocab_size == vocab_size:
                say(f"[demo] reusing shards in {path}")
                return path
        except DataError as e:
            say(f"[demo] rebuilding shards ({e})")
    say(f"[demo] building shards from the embedded text into {path} (groups {', '.join(DEMO_GROUPS)})")
    t0 = time.perf_counter()
    build_shards(EmbeddedSource(groups=list(DEMO_GROUPS)), path, vocab_size=vocab_size, seq_len=seq_len, seed=0,
                 heldout_fraction=0.2, max_docs_per_group=max_docs_per_group,
                 overwrite=True, progress=lambda s: say(f"[data] {s}"), show_progress=show_progress)
    say(f"[demo] shards ready in {time.perf_counter() - t0:.1f}s")
    return path


def run_demo(out: str | Path = "raymix_demo", steps: int | None = None, executor: str = "tune",
             quick: bool = False, progress: ExperimentProgress | None = None) -> str:
    """Run the demo; returns the markdown table (also printed).  ``progress``: live progress display (the CLI's);
    without one, plain lines on stderr."""
    from raymix.experiment import ExperimentConfig, run_experiment
    from raymix.methods.driver import BackendSpec
    from raymix.report import comparison_markdown, write_report

    _say = progress.write if progress is not None else _print
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if quick:
        shards = demo_shards(out, seq_len=QUICK["seq_len"], vocab_size=QUICK["vocab_size"],
                             max_docs_per_group=QUICK["docs_per_group"], name="shards-quick", say=_say,
                             show_progress=progress is not None)
    else:
        shards = demo_shards(out, say=_say, show_progress=progress is not None)
    S = int(steps or (QUICK["steps"] if quick else 600))
    # Paper values scaled to a short CPU run: T=10 rounds, k=2 sweeps (K = 6 LearnParams segments of a few
    # steps each), δ=0.288 (m=3), and 3 cached sequences per group per LearnParams evaluation: with 60-step
    # rounds the default 8 spends ~11 % of the training time in evaluations, 3 keeps it under 5 % at no
    # measured cost in quality (docs/DECISIONS.md, "LearnParams evaluates on a fixed cached subset").
    aioli = dict(QUICK["aioli"]) if quick else {"rounds": 10, "sweeps": 2, "eval_examples": 3}
    cfg = ExperimentConfig(
        methods=("stratified", "aioli", "grid_search", "aioli+grid_search"),
        seeds=(0,), total_steps=S, setting="restricted", rounds=2 if quick else 5, aioli=aioli,
        method_configs={"grid_search": {"runs": QUICK["gs_runs"] if quick else 10}},
        backend=BackendSpec(kind="model", shards=str(shards), model="tiny",
                            train={"batch_size": 8, "lr": 2e-3, "min_lr": 2e-4, "warmup_steps": max(1, S // 20),
                                   "eval_examples": QUICK["eval_examples"] if quick else 64}),
        # CPUs per trial are automatic: a single-trial phase trains on every core, a sweep's trials share them.
        tune={"storage_path": str((out / "tune").resolve())},
        executor=executor, out=str(out), name="demo",
    )
    _say(f"[demo] S={S} steps per final run; methods: {', '.join(cfg.methods)} (restricted setting, tiny model)")
    t0 = time.perf_counter()
    results = run_experiment(cfg, progress=progress or _say, overwrite=True)  # a demo trains afresh; its shards are kept
    table = comparison_markdown(results)
    print(table)
    text, plots = write_report(out)
    _say(f"[demo] done in {time.perf_counter() - t0:.0f}s; report: {out / 'report.md'}"
         + (f", plot: {plots[0]}" if plots else ""))
    return table
