"""Federation under faults, driven by a controllable clock: every case converges, nothing twice."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest

from peerfed.protocol import Envelope, Message

from ..node.harness import Clock, Peer, TestNode, federate
from .faults import FaultyClient, install


async def settle(clock: Clock, *nodes: TestNode, rounds: int = 400) -> int:
    """Advance the clock to the next due item and deliver, until every outbox is empty. Bounded."""
    for n in range(rounds):
        for node in nodes:
            await node.deliver()
        due = [d for d in [await node.node.store.next_due() for node in nodes] if d is not None]
        if not due:
            return n
        clock.now = max(clock.now, min(due))
    raise AssertionError("outboxes never emptied")


Pair = tuple[TestNode, TestNode, FaultyClient, Peer, Peer, Clock]


def run_pair(tmp: Path, body: Callable[[Pair], Awaitable[None]]) -> None:
    """A and B federated, faults installed on A's client, Ana on A and Ben on B signed in and
    settled; both nodes are stopped after, whatever happens."""

    async def scenario() -> None:
        clock = Clock()
        a = await TestNode(tmp / "a", clock).start()
        b = await TestNode(tmp / "b", clock).start()
        try:
            await federate(a, b)
            faults = install(a)
            async with aiohttp.ClientSession() as http:
                ana = await Peer("ana", a, http, 1).join()
                ben = await Peer("ben", b, http, 2).join()
                await settle(clock, a, b)
                await body((a, b, faults, ana, ben, clock))
        finally:
            for node in (a, b):
                if node.runner is not None:
                    await node.stop()

    asyncio.run(scenario())


async def inbox_ids(peer: Peer) -> list[bytes]:
    return sorted(e.id for e in await peer.inbox())


@pytest.mark.parametrize("fault", ["down", "error", "slow", "cut", "flap"])
def test_each_fault_ends_with_everything_delivered_once(tmp_path: Path, fault: str) -> None:
    async def scenario(pair: Pair) -> None:
        a, b, faults, ana, ben, clock = pair
        faults.set(b.url, fault)
        sent: list[Envelope] = []
        for n in range(1, 8):
            inner, sealed = ana.seal_to(ben, Message(ben.id, b"\x01" * 16, n, f"message {n}"))
            await ana.api.send(sealed.raw, destination=b.url)
            sent.append(inner)
        offer = await ana.offer("Offered during a fault.")
        for _ in range(6):  # the fault lasts a while: several delivery rounds, hours of backoff
            await a.deliver()
            clock.advance(600)
        faults.set(b.url, None)
        rounds = await settle(clock, a, b)
        assert rounds < 50  # bounded: the backlog drains, it does not loop
        assert await inbox_ids(ben) == sorted(e.id for e in sent)
        found = await ben.api.directory()
        assert [x["id"] for x in found["listings"]] == [offer.id.hex()]
        stats = (await a.node.store.outbox_stats())[b.url]
        assert "pending" not in stats and "gave_up" not in stats and "rejected" not in stats
        assert faults.calls[b.url] >= 2

    run_pair(tmp_path, scenario)


def test_a_cut_answer_is_retried_and_acknowledged_as_a_duplicate(tmp_path: Path) -> None:
    async def scenario(pair: Pair) -> None:
        a, b, faults, ana, ben, clock = pair
        # A first message, with no fault, pays the first contact's proof of work into ben's
        # mailbox (spec §13.5), so the next one is taken at its first try; ben reads it.
        _, first = ana.seal_to(ben, Message(ben.id, b"\x02" * 16, 1, "hello"))
        await ana.api.send(first.raw, destination=b.url)
        await settle(clock, a, b)
        await ben.api.ack([i["id"] for i in (await ben.api.mailbox())["items"]])
        faults.set(b.url, "cut")
        inner, sealed = ana.seal_to(ben, Message(ben.id, b"\x02" * 16, 2, "arrives, but A never hears so"))
        await ana.api.send(sealed.raw, destination=b.url)
        await a.deliver()
        assert await inbox_ids(ben) == [inner.id]  # B took it...
        assert (await a.node.store.outbox_stats())[b.url].get("pending") == 1  # ...A will try again
        faults.set(b.url, None)
        await settle(clock, a, b)
        assert await inbox_ids(ben) == [inner.id]  # still exactly once
        assert (await a.node.store.outbox_stats())[b.url].get("pending") is None

    run_pair(tmp_path, scenario)


def test_a_three_node_partition_heals_into_the_same_state_everywhere(tmp_path: Path) -> None:
    async def scenario() -> None:
        clock = Clock()
        nodes = [await TestNode(tmp_path / name, clock).start() for name in "abc"]
        a, b, c = nodes
        await federate(*nodes)
        faults: list[FaultyClient] = [install(n) for n in nodes]
        async with aiohttp.ClientSession() as http:
            peers = [
                await Peer(name, node, http, i + 1).join()
                for i, (name, node) in enumerate(zip("xyz", nodes, strict=True))
            ]
            x, y, z = peers
            await settle(clock, *nodes)
            # C is cut off from A and B, in both directions.
            for f, other in ((faults[0], c), (faults[1], c)):
                f.set(other.url, "down")
            faults[2].set(a.url, "down")
            faults[2].set(b.url, "down")
            offers = [await p.offer(f"offer by {p.name} during the partition") for p in peers]
            mail: dict[str, list[bytes]] = {"x": [], "y": [], "z": []}
            for sender, recipient in ((x, z), (z, x), (y, z), (z, y), (x, y)):
                inner, sealed = sender.seal_to(
                    recipient, Message(recipient.id, bytes(16), 1, f"{sender.name}>{recipient.name}")
                )
                await sender.api.send(sealed.raw, destination=recipient.home.url)
                mail[recipient.name].append(inner.id)
            for _ in range(5):
                for node in nodes:
                    await node.deliver()
                clock.advance(900)
            # During the partition, A and B agree with each other but not with C.
            assert len((await x.api.directory())["listings"]) == 2
            assert len((await z.api.directory())["listings"]) == 1
            for f in faults:
                f.rules.clear()
            await settle(clock, *nodes)
            for node in nodes:
                await node.node.maintain()  # the catch-up pull
            expected = sorted(o.id.hex() for o in offers)
            for p in peers:
                assert sorted(i["id"] for i in (await p.api.directory())["listings"]) == expected, p.name
                assert await inbox_ids(p) == sorted(mail[p.name]), p.name
        for node in nodes:
            await node.stop()

    asyncio.run(scenario())


def test_a_peer_down_for_days_is_given_up_with_a_record_and_bounded_attempts(tmp_path: Path) -> None:
    async def scenario(pair: Pair) -> None:
        a, b, faults, ana, ben, clock = pair
        faults.set(b.url, "down")
        _, sealed = ana.seal_to(ben, Message(ben.id, bytes(16), 1, "never arrives"))
        await ana.api.send(sealed.raw, destination=b.url)
        await settle(clock, a)
        gave_up = await a.node.store.gave_up()
        assert [(g.destination, g.kind) for g in gave_up] == [(b.url, "sealed")]
        assert gave_up[0].attempts <= 80  # attempts: bounded by the schedule, fewer with the breaker
        assert faults.calls[b.url] <= 80
        assert gave_up[0].last_error  # the last error is kept for the operator

    run_pair(tmp_path, scenario)
