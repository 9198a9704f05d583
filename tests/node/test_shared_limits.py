"""Rate limits counted in PostgreSQL by every process of a node (spec §13.8; §13.9, Storage back-ends).

The windows must decide exactly as one process's memory does, hold no subject in the clear,
give the last use to one of two processes asking at once, end, and never refuse everything
while the server is away. (That two workers share one limit is in test_workers.py.)
"""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from peerfed.node.limits import RateLimiter, Use
from peerfed.node.store import windows as windows_module
from peerfed.node.store.windows import PURGE_EVERY, SharedWindows
from peerfed.protocol import RemoteError
from tests.backends import postgres_server

pytestmark = pytest.mark.one_backend("it is about PostgreSQL's shared windows, started here")

SEED = b"\x05" * 32
LIMITS = {"sends": (5, 60.0), "node-bytes": (1000, 60.0)}  # scope: (limit, window)

# One request's uses: one to three distinct windows, and the seconds since the request before.
requests = st.lists(
    st.tuples(
        st.lists(
            st.tuples(
                st.sampled_from(sorted(LIMITS)),
                st.sampled_from(["203.0.113.9", "ab" * 32]),
                st.integers(1, 400),  # cost (for "sends" a cost above 5 is refused whatever was used)
            ),
            min_size=1,
            max_size=3,
            unique_by=lambda use: (use[0], use[1]),
        ),
        st.floats(0, 25, allow_nan=False),
    ),
    max_size=30,
)


async def _decisions(limiter: RateLimiter, steps: list[tuple[list[tuple[str, str, int]], float]]) -> list[bool]:
    now, out = 1_000.0, []
    for uses, later in steps:
        now += later
        try:
            await limiter.hit_all([Use(scope, subject, *LIMITS[scope], cost) for scope, subject, cost in uses], now)
            out.append(True)
        except RemoteError as exc:
            assert exc.code == "rate.limited"
            out.append(False)
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=requests)
def test_shared_windows_decide_every_request_as_one_process_memory_does(
    steps: list[tuple[list[tuple[str, str, int]], float]],
) -> None:
    address = _database()

    async def shared() -> list[bool]:
        windows = await SharedWindows.open(address, SEED)
        try:
            await windows._conn.execute("TRUNCATE peerfed_windows")
            limiter = RateLimiter()
            limiter.share(windows)
            limiter.joined()  # as when another process serves the node too
            return await _decisions(limiter, steps)
        finally:
            await windows.close()

    assert asyncio.run(shared()) == asyncio.run(_decisions(RateLimiter(), steps))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=requests)
# A window first used in a batch starts at its first request's time, not a later one's.
@example(steps=[([("node-bytes", "203.0.113.9", 400)], later) for later in (0.0, 50.0, 10.0)])
def test_requests_asked_at_once_are_counted_in_one_call_in_the_order_they_asked(
    steps: list[tuple[list[tuple[str, str, int]], float]],
) -> None:
    """A batch decides each request as memory does, one after another, and costs one round trip."""
    address = _database()

    async def at_once() -> tuple[list[bool], int]:
        windows = await SharedWindows.open(address, SEED)
        calls = 0
        call = windows._call

        async def counted(batch: Any) -> Any:
            nonlocal calls
            calls += 1
            return await call(batch)

        windows._call = counted  # type: ignore[method-assign]
        try:
            await windows._conn.execute("TRUNCATE peerfed_windows")
            now, asks = 1_000.0, []
            for uses, later in steps:
                now += later
                asks.append(
                    windows.count([Use(scope, subject, *LIMITS[scope], cost) for scope, subject, cost in uses], now)
                )
            return [refused is None for refused in await asyncio.gather(*asks)], calls
        finally:
            await windows.close()

    decided, calls = asyncio.run(at_once())
    assert decided == asyncio.run(_decisions(RateLimiter(), steps))
    assert calls == (1 if steps else 0)


def test_more_requests_at_once_than_one_call_takes_are_counted_in_order_over_several() -> None:
    address = _database()
    asks = windows_module.MAX_BATCH * 2 + 10

    async def scenario() -> list[tuple[int, float] | None]:
        windows = await SharedWindows.open(address, SEED)
        try:
            use = Use("sends", "ab" * 32, windows_module.MAX_BATCH + 5, 60)
            return await asyncio.gather(*(windows.count([use], 5.0) for _ in range(asks)))
        finally:
            await windows.close()

    decided = asyncio.run(scenario())
    fits = windows_module.MAX_BATCH + 5
    assert decided[:fits] == [None] * fits  # the first that asked, over two calls
    assert decided[fits:] == [(0, 65.0)] * (asks - fits)  # refused, with when the window ends


def test_a_window_that_ends_within_a_batch_still_counts_the_requests_asked_before_its_end() -> None:
    """The purge before a call deletes only windows ended by the batch's earliest request."""
    address = _database()

    async def scenario() -> list[tuple[int, float] | None]:
        windows = await SharedWindows.open(address, SEED)
        try:
            use = Use("sends", "ab" * 32, 1, 60)
            assert await windows.count([use], 0.0) is None  # the window runs from 0 to 60, full
            windows._purge_at = 0.0  # the next call purges
            return list(await asyncio.gather(windows.count([use], 50.0), windows.count([use], 70.0)))
        finally:
            await windows.close()

    # As memory decides: at 50 the window is still full; at 70 a new one starts.
    assert asyncio.run(scenario()) == [(0, 60.0), None]


def test_a_caller_that_gives_up_does_not_stop_the_others_being_answered() -> None:
    address = _database()

    async def scenario() -> list[Any]:
        windows = await SharedWindows.open(address, SEED)
        try:
            use = Use("sends", "ab" * 32, 2, 60)
            first, gone, last = (asyncio.ensure_future(windows.count([use], 5.0)) for _ in range(3))
            await asyncio.sleep(0)  # all three have asked
            gone.cancel()
            return [await first, await last, await windows.count([use], 5.0)]
        finally:
            await windows.close()

    # The one that gave up before the call was not counted, as in memory: the other two fit.
    assert asyncio.run(scenario()) == [None, None, (0, 65.0)]


def test_a_request_waiting_when_the_windows_close_is_cancelled_not_left_waiting() -> None:
    address = _database()

    async def scenario() -> None:
        windows = await SharedWindows.open(address, SEED)
        asking = asyncio.ensure_future(windows.count([Use("sends", "ab" * 32, 2, 60)], 5.0))
        await asyncio.sleep(0)  # it has asked; the task that makes the call has not run yet
        await windows.close()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(asking, 10)

    asyncio.run(scenario())


@pytest.mark.parametrize("where", ["memory", "shared"])
def test_a_request_refused_by_one_of_its_windows_counts_in_none(where: str) -> None:
    """A peer over its own limit cannot use up the allowance of its address, which others share."""
    address = _database()

    async def scenario() -> None:
        limiter = RateLimiter()
        windows = await SharedWindows.open(address, SEED)
        if where == "shared":
            limiter.share(windows)
            limiter.joined()
        try:
            ana, ben, shared_address = "ab" * 32, "cd" * 32, "203.0.113.9"
            for _ in range(3):
                await limiter.hit_all([Use("sends", ana, 3, 60), Use("sends-addr", shared_address, 12, 60)], 1.0)
            for _ in range(20):  # refused by Ana's window: the address's is not touched
                with pytest.raises(RemoteError):
                    await limiter.hit_all([Use("sends", ana, 3, 60), Use("sends-addr", shared_address, 12, 60)], 2.0)
            for _ in range(9):  # Ben, behind the same address, still has the rest of it
                await limiter.hit_all([Use("sends", ben, 30, 60), Use("sends-addr", shared_address, 12, 60)], 3.0)
            with pytest.raises(RemoteError) as refused:
                await limiter.hit_all([Use("sends", ben, 30, 60), Use("sends-addr", shared_address, 12, 60)], 3.0)
            assert "sends-addr" in str(refused.value)
        finally:
            await windows.close()

    asyncio.run(scenario())


def test_two_processes_asking_at_once_share_the_last_uses_and_never_both_take_one() -> None:
    address = _database()

    async def scenario() -> list[bool]:
        one, two = await SharedWindows.open(address, SEED), await SharedWindows.open(address, SEED)
        try:
            asks = [w.count([Use("sends", "ab" * 32, 10, 60)], 5.0) for w in (one, two) * 15]
            return [ends is None for ends in await asyncio.gather(*asks)]
        finally:
            await one.close()
            await two.close()

    assert sorted(asyncio.run(scenario())) == [False] * 20 + [True] * 10


def test_the_windows_hold_digests_not_subjects_and_go_when_they_end() -> None:
    address = _database()
    peer, addr = "cd" * 32, "198.51.100.23"

    async def scenario() -> tuple[list[Any], list[Any]]:
        windows = await SharedWindows.open(address, SEED)
        try:
            await windows.count([Use("sends", peer, 5, 60), Use("sends-addr", addr, 20, 3600)], 10.0)
            rows = await windows._conn.execute("SELECT tag, used FROM peerfed_windows ORDER BY ends_at")
            held = await rows.fetchall()
            # Past the first window's end and a purge's turn: that row goes, the hour's stays.
            await windows.count([Use("sends", "ef" * 32, 5, 60, 2)], 10.0 + 60 + PURGE_EVERY)
            left = await (await windows._conn.execute("SELECT tag FROM peerfed_windows ORDER BY ends_at")).fetchall()
            return held, left
        finally:
            await windows.close()

    held, left = asyncio.run(scenario())
    other = SharedWindows(address, None, _key_of(SEED))
    assert sorted(bytes(tag) for tag, _ in held) == sorted([other.tag("sends", peer), other.tag("sends-addr", addr)])
    assert all(len(bytes(tag)) == 16 for tag, _ in held)
    with psycopg.connect(address) as db:
        text = repr(db.execute("SELECT * FROM peerfed_windows").fetchall())
    assert peer not in text and addr not in text
    assert [bytes(t) for (t,) in left] == [other.tag("sends", "ef" * 32), other.tag("sends-addr", addr)]
    # Another node's key names the same subject differently.
    assert SharedWindows(address, None, _key_of(b"\x06" * 32)).tag("sends", peer) != other.tag("sends", peer)


def test_with_the_server_away_a_process_counts_alone_and_then_shares_again(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(windows_module, "RECONNECT_EVERY", 0.0)  # it may try again at once
    server = postgres_server()
    address = server.fresh_database()

    async def scenario() -> None:
        windows = await SharedWindows.open(address, SEED)
        limiter = RateLimiter()
        limiter.share(windows)
        limiter.joined()
        try:
            for _ in range(3):
                await limiter.hit("sends", "ab" * 32, limit=3, window=60, now=1.0)
            with pytest.raises(RemoteError):  # the shared window is full
                await limiter.hit("sends", "ab" * 32, limit=3, window=60, now=2.0)
            server.kill()
            for _ in range(3):  # counted in memory meanwhile: neither refused all nor let through all
                await limiter.hit("sends", "ab" * 32, limit=3, window=60, now=3.0)
            with pytest.raises(RemoteError):
                await limiter.hit("sends", "ab" * 32, limit=3, window=60, now=3.0)
            server.start()
            # Shared again: memory's window is full, but the server's crash recovery emptied the
            # unlogged table, so the shared window starts again.
            for _ in range(3):
                await limiter.hit("sends", "ab" * 32, limit=3, window=60, now=4.0)
            with pytest.raises(RemoteError):
                await limiter.hit("sends", "ab" * 32, limit=3, window=60, now=4.0)
        finally:
            await windows.close()

    asyncio.run(scenario())


def test_a_process_alone_counts_in_memory_and_shares_once_another_serves_the_database() -> None:
    """Counting in the database costs a statement per use: a process serving it alone does not."""
    address = _database()

    async def scenario() -> None:
        first = await SharedWindows.open(address, SEED)
        limiter = RateLimiter()
        limiter.share(first)
        try:
            assert not first.together
            await limiter.hit("sends", "ab" * 32, limit=3, window=60, now=1.0)
            assert await _rows(first) == 0 and len(limiter) == 1  # in memory
            other = await SharedWindows.open(address, SEED, "peerfed-0")  # as another process's
            try:
                assert other.together  # it sees the first at once
                assert not first.together  # the first sees it at its next look, or on its hello
                assert await first.look()
                await limiter.hit("sends", "ab" * 32, limit=3, window=60, now=2.0)
                assert await _rows(first) == 1
            finally:
                await other.close()
            assert not await first.look()  # alone again
        finally:
            await first.close()

    asyncio.run(scenario())


async def _rows(windows: SharedWindows) -> int:
    row = await (await windows._conn.execute("SELECT count(*) FROM peerfed_windows")).fetchone()
    return int(row[0])


def _database() -> str:
    return postgres_server().fresh_database()


def _key_of(seed: bytes) -> bytes:
    from peerfed.node.store.windows import windows_key

    return windows_key(seed)
