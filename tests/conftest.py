"""Hypothesis profiles: 'ci' (the default) and 'long' for runs outside CI; the node-process fixture.

HYPOTHESIS_PROFILE=long python -m pytest tests/protocol
"""

import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

from tests.processes import NodeProcesses

settings.register_profile("ci", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("long", deadline=None, max_examples=100_000, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture
def node_processes() -> Iterator[NodeProcesses]:
    """Make `peerfed serve` processes (tests/processes.py); a failing test leaves none behind."""
    made = NodeProcesses()
    try:
        yield made
    finally:
        made.close()
