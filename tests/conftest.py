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


@pytest.fixture
def make_shards(tmp_path):
    """``make_shards(name, groups=..., seq_len=...)`` → a small shard directory under ``tmp_path``."""
    from shard_writer import write_shards

    return lambda name="shards", **kw: write_shards(tmp_path / name, **kw)
