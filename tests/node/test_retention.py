"""Retention and delivery bounds, driven by a controllable clock (nothing sleeps)."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path

import aiohttp
import pytest

from peerfed.node.app import purge_once
from peerfed.node.retry import breaker_until, gives_up, next_attempt, schedule
from peerfed.node.store import erasure
from peerfed.protocol import Format, Kind, Listing, Message, Timing
from tests.backends import query

from .harness import DAY, Clock, Peer, TestNode, federate


def test_the_retry_schedule_doubles_to_an_hour_and_stops_at_three_days() -> None:
    times = schedule(10, 3600, 3 * DAY)
    assert [round(t) for t in times[:5]] == [10, 30, 70, 150, 310]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert max(gaps) == 3600
    assert times[-1] < 3 * DAY and len(times) == 79
    assert next_attempt(1, 100.0, base=10, cap=3600, jitter=0.0) == 110.0
    assert next_attempt(1, 100.0, base=10, cap=3600, jitter=0.999) < 112.5
    assert next_attempt(500, 0.0, base=10, cap=3600, jitter=0.0) == 3600.0
    assert not gives_up(0, 3 * DAY - 1, 3 * DAY) and gives_up(0, 3 * DAY, 3 * DAY)
    assert breaker_until(4, 1000.0, threshold=5) == 0.0
    assert breaker_until(5, 1000.0, threshold=5) == 1060.0
    assert breaker_until(40, 1000.0, threshold=5) == 4600.0


def test_an_unreachable_node_is_given_up_visibly_after_the_bound(tmp_path: Path) -> None:
    async def scenario() -> None:
        clock = Clock()
        a = await TestNode(tmp_path / "a", clock).start()
        b = await TestNode(tmp_path / "b", clock).start()
        await federate(a, b)
        async with aiohttp.ClientSession() as http:
            ana = await Peer("ana", a, http, 1).join()
            ben = await Peer("ben", b, http, 2).join()
            await a.deliver()
            await b.stop()
            _, sealed = ana.seal_to(ben, Message(ben.id, bytes(16), 1, "never arrives"))
            await ana.api.send(sealed.raw, destination=b.url)
            attempts = 0
            for _ in range(400):  # bounded: the schedule has 79 attempts in 3 days
                due = await a.node.store.next_due()
                if due is None:
                    break
                clock.now = max(clock.now, due)
                await a.deliver()
                attempts += 1
            assert 5 < attempts < 120
            failures = await a.node.store.gave_up()
            assert [(f.destination, f.kind) for f in failures] == [(b.url, "sealed")]
            assert failures[0].attempts > 5  # attempts recorded
            health = await a.node.store.node(b.url)
            assert health is not None and health.failures >= 5 and health.breaker_until > 0
        await a.stop()

    asyncio.run(scenario())


def test_expired_and_acknowledged_things_are_purged(tmp_path: Path) -> None:
    async def scenario() -> None:
        clock = Clock()
        node = await TestNode(tmp_path / "n", clock, mailbox_ttl=DAY).start()
        async with aiohttp.ClientSession() as http:
            ana = await Peer("ana", node, http, 1).join()
            ben = await Peer("ben", node, http, 2).join()
            listing = ana.signed(
                Listing(
                    kind=Kind.OFFER,
                    topics=("a",),
                    languages=("en",),
                    formats=(Format.TEXT,),
                    timing=Timing.NOW,
                    summary="soon gone",
                ),
                life=3600,
            )
            await ana.api.publish(listing.raw)
            for n in (1, 2):
                _, sealed = ana.seal_to(ben, Message(ben.id, bytes(16), n, f"m{n}"))
                await ana.api.send(sealed.raw)
            items = (await ben.api.mailbox())["items"]
            await ben.api.ack([items[0]["id"]])
            counts = await node.node.store.counts()
            assert counts["listings"] == 1 and counts["mailbox"] == 1
            clock.advance(3601)
            assert (await ben.api.directory())["listings"] == []  # expired listings are never served
            removed = await purge_once(node.node)
            assert removed["listings"] == 1
            clock.advance(DAY)
            ana = await Peer("ana", node, http, 1).join()
            removed = await purge_once(node.node)
            assert removed["mailbox"] == 1  # the unacknowledged one, after mailbox_ttl
            assert (await node.node.store.counts())["mailbox"] == 0
        await node.stop()

    asyncio.run(scenario())


def test_a_purge_of_more_than_a_batch_deletes_every_expired_row_a_batch_per_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A day's expiries at once go in several short writes, not one long one that holds the
    writer (and on PostgreSQL every worker's writes) meanwhile."""
    monkeypatch.setattr(erasure, "PURGE_BATCH", 10)

    async def scenario() -> tuple[dict[str, int], int]:
        clock = Clock()
        node = await TestNode(tmp_path / "n", clock).start()
        try:
            store = node.node.store
            for n in range(28):  # 25 past their time, 3 not
                assert await store.use_nonce(n.to_bytes(16, "big"), int(clock.now) + (3600 if n < 3 else -1))
            _, writes = store.write_stats
            removed = await purge_once(node.node)
            return removed, store.write_stats[1] - writes
        finally:
            await node.stop()

    removed, writes = asyncio.run(scenario())
    assert removed["nonces"] == 25 and removed["listings"] == 0
    assert writes == 3  # 10, 10 and 5
    assert query(tmp_path / "n", "SELECT count(*) FROM nonces") == [(3,)]
