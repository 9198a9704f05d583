"""Hypothesis profiles: 'ci' (the default) and 'long' for runs outside CI; the node-process fixture.

HYPOTHESIS_PROFILE=long python -m pytest tests/protocol
"""

import gc
import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

from tests.backends import drop_databases
from tests.processes import NodeProcesses

settings.register_profile("ci", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("long", deadline=None, max_examples=100_000, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(autouse=True)
def _leaks_named_where_made() -> Iterator[None]:
    """Collect after each test, so an unclosed socket or file it left fails that test.

    With ``filterwarnings = error`` a ResourceWarning fails whichever test the garbage collector
    happens to run in; collecting here pins it on the test that made the garbage.
    """
    yield
    gc.collect()


@pytest.fixture
def node_processes() -> Iterator[NodeProcesses]:
    """Make `peerfed serve` processes (tests/processes.py); a failing test leaves none behind."""
    made = NodeProcesses()
    try:
        yield made
    finally:
        made.close()


# The node's tests and the clients' run on both storage back-ends (spec §13.9, Storage
# back-ends): every test under these folders runs once on SQLite and once on PostgreSQL
# (tests/backends.py), except a test marked ``one_backend`` (it is about one back-end: SQLite's
# files, pragmas or schema history, or PostgreSQL itself; or it starts no node of its own).
BOTH_BACKENDS = ("node", "hostile", "client")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "one_backend(why): a node test that runs once, not on each back-end (it is about one of them)"
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" not in metafunc.fixturenames:
        return
    folder = metafunc.definition.path.parent.name
    if folder in BOTH_BACKENDS and metafunc.definition.get_closest_marker("one_backend") is None:
        metafunc.parametrize("backend", ["sqlite", "postgresql"], indirect=True)


@pytest.fixture(autouse=True)
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The storage back-end this test's nodes use: its in-process and child-process nodes alike."""
    name = str(getattr(request, "param", "sqlite"))
    monkeypatch.setenv("PEERFED_TEST_BACKEND", name)
    yield name
    if name == "postgresql":
        drop_databases()
