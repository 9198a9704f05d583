"""Open live connections counted in PostgreSQL by every process of a node (spec §13.5, Live
mailbox; §13.9, Storage back-ends). That workers hold the caps together is in
test_workers_live.py; here, the counts themselves: shared, given back, forgotten with their
holder, kept as digests, and never refusing everything while the server is away.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import psycopg
import pytest

from peerfed.node.limits import LiveSockets
from peerfed.node.store import StorageError
from peerfed.node.store.gauges import SharedSockets
from peerfed.node.store.windows import SharedWindows
from tests.backends import postgres_server

pytestmark = pytest.mark.one_backend("it is about PostgreSQL's shared counts, started here")

SEED = b"\x05" * 32
ADDRESS = "198.51.100.23"


async def _process(address: str, name: str) -> tuple[SharedWindows, LiveSockets]:
    """What one node process opens: the windows' connection, and its live sockets sharing it."""
    windows = await SharedWindows.open(address, SEED, name)
    sockets = LiveSockets()
    sockets.share(await SharedSockets.open(windows))
    return windows, sockets


def test_two_processes_hold_one_cap_and_a_socket_given_back_is_free_to_either() -> None:
    address = postgres_server().fresh_database()

    async def scenario() -> None:
        (one, here), (two, there) = await _process(address, "peerfed-1"), await _process(address, "peerfed-2")
        try:
            taken = [await here.take(ADDRESS, per_address=3, total=100) for _ in range(2)]
            taken.append(await there.take(ADDRESS, per_address=3, total=100))
            assert None not in taken
            # Each holds fewer than 3 itself; the node holds 3 from this address.
            assert await here.take(ADDRESS, per_address=3, total=100) is None
            assert await there.take(ADDRESS, per_address=3, total=100) is None
            # Another address is not held back, but the node's total is shared too.
            assert await there.take("203.0.113.9", per_address=3, total=4) is not None
            assert await here.take("203.0.113.10", per_address=3, total=4) is None
            first = taken[0]
            assert first is not None
            here.give_back(first)
            await here.settle()
            assert await there.take(ADDRESS, per_address=3, total=100) is not None
            assert here.held(ADDRESS) == 1 and there.held(ADDRESS) == 2
        finally:
            await one.close()
            await two.close()

    asyncio.run(scenario())


def test_two_processes_asking_at_once_never_both_take_the_last_socket() -> None:
    address = postgres_server().fresh_database()

    async def scenario() -> list[bool]:
        (one, here), (two, there) = await _process(address, "peerfed-1"), await _process(address, "peerfed-2")
        try:
            asks = [s.take(ADDRESS, per_address=5, total=100) for _ in range(10) for s in (here, there)]
            return [t is not None for t in await asyncio.gather(*asks)]
        finally:
            await one.close()
            await two.close()

    assert sorted(asyncio.run(scenario())) == [False] * 15 + [True] * 5


def test_a_process_that_is_gone_holds_nothing_and_the_table_holds_no_address() -> None:
    address = postgres_server().fresh_database()

    async def scenario() -> None:
        one, here = await _process(address, "peerfed-1")
        two, there = await _process(address, "peerfed-2")
        try:
            for _ in range(3):
                assert await here.take(ADDRESS, per_address=3, total=100) is not None
            assert await there.take(ADDRESS, per_address=3, total=100) is None
            with psycopg.connect(address) as db:
                rows = db.execute("SELECT tag, held FROM peerfed_live").fetchall()
            assert sorted(held for _, held in rows) == [3, 3]  # this address's and the total's
            assert all(len(bytes(tag)) == 16 for tag, _ in rows)
            assert ADDRESS.encode() not in b"".join(bytes(tag) for tag, _ in rows)
            await one.close()  # as a process that died: its connection ends with it
            assert await there.take(ADDRESS, per_address=3, total=100) is not None
            # A process that starts deletes the rows of holders that are gone.
            three, _ = await _process(address, "peerfed-3")
            await three.close()
            with psycopg.connect(address) as db:
                assert sorted(held for (held,) in db.execute("SELECT held FROM peerfed_live")) == [1, 1]
        finally:
            await two.close()

    asyncio.run(scenario())


class _Away:
    """Gauges whose server is away."""

    async def take(self, capped: Sequence[tuple[str, str, int]]) -> int:
        raise StorageError("the server is away")

    async def give(self, subjects: Sequence[tuple[str, str]]) -> None:
        raise StorageError("the server is away")


class _Slow:
    """Gauges that answer after the caller may have gone, and record what was given back."""

    def __init__(self) -> None:
        self.answer = asyncio.Event()
        self.given: list[Sequence[tuple[str, str]]] = []

    async def take(self, capped: Sequence[tuple[str, str, int]]) -> int:
        await self.answer.wait()
        return 0

    async def give(self, subjects: Sequence[tuple[str, str]]) -> None:
        self.given.append(subjects)


def test_with_the_gauges_away_a_process_holds_the_caps_alone_never_refusing_all() -> None:
    async def scenario() -> None:
        sockets = LiveSockets()
        sockets.share(_Away())
        taken = [await sockets.take(ADDRESS, per_address=2, total=100) for _ in range(3)]
        assert [t is not None for t in taken] == [True, True, False]
        assert all(t is None or not t.shared for t in taken)
        first = taken[0]
        assert first is not None
        sockets.give_back(first)
        await sockets.settle()
        assert sockets.held(ADDRESS) == 1

    asyncio.run(scenario())


def test_a_socket_whose_caller_went_away_while_it_was_counted_is_given_back() -> None:
    async def scenario() -> list[Sequence[tuple[str, str]]]:
        gauges = _Slow()
        sockets = LiveSockets()
        sockets.share(gauges)
        asking = asyncio.ensure_future(sockets.take(ADDRESS, per_address=2, total=100))
        await asyncio.sleep(0)
        asking.cancel()  # the client hung up before the upgrade
        with pytest.raises(asyncio.CancelledError):
            await asking
        gauges.answer.set()  # the count lands after all
        for _ in range(10):
            await asyncio.sleep(0)
        await sockets.settle()
        assert sockets.held(ADDRESS) == 0 and sockets.total == 0
        return gauges.given

    assert asyncio.run(scenario()) == [(("address", ADDRESS), ("all", ""))]
