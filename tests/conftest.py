"""Fixtures shared by every test package."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def ray_runtime():
    """One 2-CPU local Ray runtime for the whole session, shut down at the end (started on first use)."""
    import ray

    from raymix.data import streaming  # noqa: F401  (installs the fsspec import guard before Ray Data runs)

    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
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


def write_shards(root, groups=("code", "prose"), *, seq_len: int = 17, rows: int = 24, vocab_size: int = 64):
    """A small valid shard directory written directly (manifest, checksums, parquet; no Ray, no tokenizer
    training): random token windows per (split, group).  Returns the directory."""
    from pathlib import Path

    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from raymix.data.manifest import FileEntry, GroupSplitStats, Manifest, file_sha256
    from raymix.data.tokenizer import TokenizerInfo

    root = Path(root)
    rng = np.random.default_rng(0)
    stats, files = {}, []
    for split in ("train", "val", "test"):
        stats[split] = {}
        for g in groups:
            d = root / split / f"group={g}"
            d.mkdir(parents=True, exist_ok=True)
            flat = rng.integers(0, vocab_size - 1, size=rows * seq_len).astype(np.int32)
            table = pa.table({"input_ids": pa.FixedSizeListArray.from_arrays(pa.array(flat), seq_len),
                              "group": pa.array([g] * rows)})
            path = d / "part-00000.parquet"
            pq.write_table(table, path)
            files.append(FileEntry(path=str(path.relative_to(root)), split=split, group=g, rows=rows,
                                   sha256=file_sha256(path)))
            stats[split][g] = GroupSplitStats(documents=rows, tokens=rows * seq_len, sequences=rows)
    Manifest(groups=sorted(groups), seq_len=seq_len, tokenizer=TokenizerInfo(vocab_size, vocab_size - 1, "<eos>", "0" * 64),
             stats=stats, files=files, sources={"kind": "test"}).save(root)
    return root


@pytest.fixture
def make_shards(tmp_path):
    """``make_shards(name, groups=..., seq_len=...)`` → a small shard directory under ``tmp_path``."""
    return lambda name="shards", **kw: write_shards(tmp_path / name, **kw)
