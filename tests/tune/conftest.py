from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def ray_local():
    """One local 2-CPU Ray for the Tune tests, shut down at the end."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()
