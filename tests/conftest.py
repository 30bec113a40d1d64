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
