"""Hypothesis profiles: 'ci' (the default) and 'long' for runs outside CI.

HYPOTHESIS_PROFILE=long python -m pytest tests/protocol
"""

import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("ci", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("long", deadline=None, max_examples=100_000, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(autouse=True)
def no_stray_nodes() -> Iterator[None]:
    """A failing test must not leave node processes behind."""
    yield
    from tests.node.harness import kill_strays

    kill_strays()
