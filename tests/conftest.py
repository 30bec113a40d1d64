"""Fixtures shared by every test package."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def ray_runtime():
    """One 2-CPU local Ray runtime for the whole session, shut down at the end (started on first use)."""
    import ray

    from raymix.data import streaming  # noqa: F401  (installs the fsspec import guard before Ray Data runs)

    if not ray.is_initialized():
        # address="local": always a fresh instance, even when another `ray start` cluster runs on this machine
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()


@pytest.fixture(autouse=True)
def _restore_logging():
    """The CLI routes logging (raymix.logs.setup_logging): give every test the process's original set-up back."""
    import logging
    import warnings

    root = logging.getLogger()
    saved = (list(root.handlers), root.level, warnings.showwarning)
    yield
    from raymix import logs

    for h in root.handlers:
        if h not in saved[0]:
            h.close()
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])
    warnings.showwarning = saved[2]
    logs._State.configured = False
    logs._State.file_handler = None
    logs._State.console_handler = None
    logs._State.warn_sink = None
    logs._State.warned = set()


@pytest.fixture
def make_shards(tmp_path):
    """``make_shards(name, groups=..., seq_len=...)`` → a small shard directory under ``tmp_path``."""
    from shard_writer import write_shards

    return lambda name="shards", **kw: write_shards(tmp_path / name, **kw)


#: The tiny real-model setting shared by the model-backed method and Tune tests: 3 embedded groups, a BPE of
#: 384 ids, 32-token windows, a 1-layer d=32 GPT-NeoX, 4 sequences per step, one torch thread.
TINY_MODEL = {"model_options": {"n_layers": 1, "d_model": 32, "n_heads": 2, "context_length": 32},
              "train": {"batch_size": 4, "lr": 3e-3, "min_lr": 3e-4, "warmup_steps": 2, "eval_examples": 4,
                        "eval_batch_size": 12, "threads": 1}}


@pytest.fixture(scope="session")
def tiny_shards(tmp_path_factory, ray_runtime):
    """Shards of the embedded real text (books, code, speeches; 12 documents per group), built once."""
    from raymix.data.embedded import EmbeddedSource
    from raymix.data.shards import build_shards

    out = tmp_path_factory.mktemp("model-shards") / "emb"
    build_shards(EmbeddedSource(groups=["books", "code", "speeches"]), out, vocab_size=384, seq_len=32,
                 heldout_fraction=0.3, seed=0, max_docs_per_group=12)
    return out


@pytest.fixture(scope="session")
def tiny_model_spec(tiny_shards):
    """A ``BackendSpec`` of the tiny real model on :func:`tiny_shards` (local streaming)."""
    from raymix.methods.driver import BackendSpec

    return BackendSpec(kind="model", shards=str(tiny_shards), model="tiny", **TINY_MODEL)


def _baseline_losses(shards, split: str = "test", eval_examples: int | None = None) -> dict[str, tuple[float, float]]:
    """Per group, (uniform, unigram) next-token losses in nats on the cached ``split`` evaluation windows.

    uniform = log V (a model that knows nothing); unigram = cross-entropy of the token frequencies of the
    whole training split (all groups pooled, add-one smoothed): the best prediction that ignores context
    and does not know the group.  A trained model's loss is judged against the gap between the two.
    """
    import numpy as np

    from raymix.data.manifest import load_manifest
    from raymix.data.reader import load_eval_set, read_group_windows

    m = load_manifest(shards)
    V = int(m.vocab_size)
    counts = np.ones(V)
    for g in m.groups:
        counts += np.bincount(read_group_windows(shards, "train", g).ravel(), minlength=V)[:V]
    logp = np.log(counts / counts.sum())
    ev = load_eval_set(shards, split, eval_examples)
    return {g: (float(np.log(V)), float(-logp[ev[g][:, 1:].ravel()].mean())) for g in m.groups}


@pytest.fixture(scope="session")
def baseline_losses():
    """:func:`_baseline_losses` (a function: ``baseline_losses(shards, split, eval_examples)``)."""
    return _baseline_losses


@pytest.fixture(scope="session")
def tiny_baselines(tiny_shards) -> dict[str, tuple[float, float]]:
    """(uniform, unigram) losses per group on the cached test windows of :func:`tiny_shards`."""
    return _baseline_losses(tiny_shards, "test", TINY_MODEL["train"]["eval_examples"])
