"""Open live connections counted in PostgreSQL by every process of a node (spec §13.5, Live
mailbox; §13.9, Storage back-ends). That workers hold the caps together is in
test_workers_live.py; here, the counts themselves: shared, given back, forgotten with their
holder, kept as digests, and never refusing everything while the server is away.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from types import SimpleNamespace

import psycopg
import pytest

from peerfed.node import limits
from peerfed.node.limits import LiveSockets
from peerfed.node.store import StorageError
from peerfed.node.store import gauges as gauges_module
from peerfed.node.store.gauges import SharedSockets
from tests.backends import postgres_server

pytestmark = pytest.mark.one_backend("it is about PostgreSQL's shared counts, started here")

SEED = b"\x05" * 32
TAKE = "SELECT peerfed_live_take(%s, %s)"
POLLS = 1000  # 10 ms apart: the bound on waiting for the server to see a connection end
ADDRESS = "198.51.100.23"


async def _process(address: str, name: str) -> tuple[SharedSockets, LiveSockets]:
    """What one node process opens: the gauges, and its live sockets counted in them."""
    gauges = await SharedSockets.open(address, SEED, name)
    sockets = LiveSockets()
    sockets.REFUSED_FOR = 0.0  # every take asks the gauges (that an address is left alone a while is tested below)
    sockets.share(gauges)
    return gauges, sockets


def _gone(address: str, pid: int) -> None:
    """Wait (bounded) until the backend ``pid`` has left pg_stat_activity, as a closed connection's does."""
    with psycopg.connect(address, autocommit=True) as db:
        for _ in range(POLLS):
            if not db.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchall():
                return
            time.sleep(0.01)
    raise AssertionError(f"backend {pid} is still there")


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
            gone = one._holder
            assert gone is not None
            await one.close()  # as a process that died: its connection ends with it
            _gone(address, gone[0])
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
        await asyncio.sleep(0)  # as a reconnection attempt would, before it fails
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
        # Asked at once, while the gauges are being tried: still two, not one each.
        taken = await asyncio.gather(*(sockets.take(ADDRESS, per_address=2, total=100) for _ in range(10)))
        assert sorted(t is not None for t in taken) == [False] * 8 + [True] * 2
        assert sockets.held(ADDRESS) == 2 and sockets.total == 2
        assert all(t is None or not t.shared for t in taken)
        first = next(t for t in taken if t is not None)
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


def test_what_a_process_holds_is_counted_again_once_its_connection_is_made_again() -> None:
    address = postgres_server().fresh_database()

    async def scenario() -> None:
        one = await SharedSockets.open(address, SEED, "peerfed-1")
        two = await SharedSockets.open(address, SEED, "peerfed-2")
        capped = [("address", ADDRESS, 3), ("all", "", 100)]
        try:
            assert [await one.take(capped), await one.take(capped)] == [0, 0]
            dropped = one._holder
            assert dropped is not None
            with psycopg.connect(address, autocommit=True) as db:  # the server drops its connection
                db.execute("SELECT pg_terminate_backend(%s)", (dropped[0],))
            _gone(address, dropped[0])
            assert await two.take(capped) == 0  # what a gone holder held counts for nothing
            with pytest.raises(StorageError):
                await one.take(capped)  # this is how it learns the connection is gone
            # Made again: its two sockets count again, under its new connection, with two's one.
            assert await one.take(capped) == 1
            assert await two.take(capped) == 1
            with psycopg.connect(address) as db:
                holders = db.execute("SELECT DISTINCT pid FROM peerfed_live ORDER BY pid").fetchall()
            assert one._holder is not None and two._holder is not None
            assert holders == sorted([(one._holder[0],), (two._holder[0],)])
            await one.give([("address", ADDRESS), ("all", "")])
            assert await two.take(capped) == 0
        finally:
            await one.close()
            await two.close()

    asyncio.run(scenario())


def test_a_holder_that_connects_while_a_take_waits_for_its_locks_is_counted_by_that_take() -> None:
    """A take sees the holders connected once it holds its locks, not those of before."""
    address = postgres_server().fresh_database()
    asyncio.run(_opened_once(address))
    with psycopg.connect(address, autocommit=True) as db:
        # Two digests whose locks are taken in this order, and a third.
        candidates = [bytes([n]) * 16 for n in range(1, 9)]
        keys = {t: db.execute("SELECT hashtext(encode(%s::bytea, 'hex'))", (t,)).fetchall()[0][0] for t in candidates}
    x, every, other = sorted(candidates, key=keys.__getitem__)[:3]
    lock = "SELECT pg_advisory_xact_lock(%s, hashtext(encode(%s::bytea, 'hex')))"
    with psycopg.connect(address) as blocker, psycopg.connect(address, autocommit=True) as first:
        blocker.execute(lock, (gauges_module._LOCK_CLASS, x))  # held until it commits
        answers: dict[str, int] = {}

        def taking() -> None:
            answers["first"] = first.execute(TAKE, ([x, every], [5, 1])).fetchall()[0][0]

        thread = threading.Thread(target=taking)
        thread.start()
        with psycopg.connect(address, autocommit=True) as look:
            for _ in range(POLLS):  # until the first take waits for x's lock
                if look.execute("SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted").fetchall():
                    break
                time.sleep(0.01)
        with psycopg.connect(address, autocommit=True) as second:  # a process that starts meanwhile
            answers["second"] = second.execute(TAKE, ([other, every], [5, 1])).fetchall()[0][0]
            blocker.commit()
            thread.join(timeout=60)
    # The second took the one place in all; the first, which waited, saw it and was refused there.
    assert answers == {"second": 0, "first": 2}


async def _opened_once(address: str) -> None:
    gauges = await SharedSockets.open(address, SEED)
    await gauges.close()


class _Refusing:
    """Gauges that refuse every socket at its first cap, counting how often they were asked."""

    def __init__(self) -> None:
        self.asked = 0

    async def take(self, capped: Sequence[tuple[str, str, int]]) -> int:
        self.asked += 1
        return 1

    async def give(self, subjects: Sequence[tuple[str, str]]) -> None:
        raise AssertionError("nothing was taken")


def test_an_address_the_gauges_refused_is_refused_for_a_second_without_asking_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [100.0]
    monkeypatch.setattr(limits, "time", SimpleNamespace(monotonic=lambda: now[0]))  # the sockets' clock alone

    async def scenario() -> int:
        gauges = _Refusing()
        sockets = LiveSockets()
        sockets.share(gauges)
        for _ in range(50):  # a caller at its cap who keeps knocking
            assert await sockets.take(ADDRESS, per_address=20, total=100) is None
        assert gauges.asked == 1
        assert await sockets.take("203.0.113.9", per_address=20, total=100) is None  # another is asked
        now[0] += LiveSockets.REFUSED_FOR
        assert await sockets.take(ADDRESS, per_address=20, total=100) is None
        assert sockets.held(ADDRESS) == 0 and sockets.total == 0
        return gauges.asked

    assert asyncio.run(scenario()) == 3
