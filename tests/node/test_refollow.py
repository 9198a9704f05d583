"""Federation that heals itself (spec §13.7, Following): a node replaced at the same URL is followed again.

The replaced node has a new key and no follow state: it refuses the old node's pulls with
federation.refused, and the old node follows it again, without an operator's command.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp

from peerfed.node.store import NodeStatus
from tests.processes import NodeProcesses

from .harness import Clock, Peer, TestNode, federate, free_socket_at
from .test_process import Home


async def replace(old: TestNode, data: Path, **settings: object) -> TestNode:
    """Stop ``old`` and start a node with a new data folder (a new key, nothing known) at its URL."""
    await old.stop()
    new = TestNode(data, old.clock, **settings)
    new.sock.close()
    new.sock, new.port, new.url = free_socket_at(old.port), old.port, old.url
    return await new.start()


async def status(node: TestNode, url: str) -> NodeStatus | None:
    known = await node.node.store.node(url)
    return None if known is None else known.status


async def listed(peer: Peer) -> list[str]:
    return [item["id"] for item in (await peer.api.directory())["listings"]]


def test_a_node_replaced_at_the_same_url_is_followed_again_and_catches_up(tmp_path: Path) -> None:
    async def scenario() -> None:
        clock = Clock()
        a = await TestNode(tmp_path / "a", clock).start()
        b = await TestNode(tmp_path / "b", clock).start()
        try:
            await federate(a, b)
            async with aiohttp.ClientSession() as http:
                ana = await Peer("ana", a, http, 1).join()
                b = await replace(b, tmp_path / "b-new")
                assert await status(b, a.url) is None  # the new B knows nothing of A
                ben = await Peer("ben", b, http, 2).join()
                offer = await ben.offer("Published on the new node.")
                # The pull is refused; A follows B again at once, and catches up from the start
                # of the new B's listings.
                await a.node.maintain()
                assert await status(a, b.url) == NodeStatus.ACTIVE
                assert await status(b, a.url) == NodeStatus.ACTIVE
                assert offer.id.hex() in await listed(ana)
                mine = await ana.offer("Pushed to the new node.")
                await a.deliver()
                assert mine.id.hex() in await listed(ben)
        finally:
            await a.stop()
            await b.stop()

    asyncio.run(scenario())


def test_a_replaced_node_that_does_not_take_the_follow_yet_is_asked_again_with_backoff(tmp_path: Path) -> None:
    async def scenario() -> None:
        clock = Clock()
        a = await TestNode(tmp_path / "a", clock).start()
        b = await TestNode(tmp_path / "b", clock).start()
        try:
            await federate(a, b)
            b = await replace(b, tmp_path / "b-new", federation="allow-list")
            await a.node.maintain()  # refused, followed again: the new B holds the follow for its operator
            assert await status(a, b.url) == NodeStatus.REQUESTED
            assert await status(b, a.url) == NodeStatus.PENDING
            await b.node.store.set_node_status(a.url, "active", int(clock()))  # B's operator allows A
            await a.node.maintain()  # too soon: A waits out its backoff (retry_base, 10 s)
            assert await status(a, b.url) == NodeStatus.REQUESTED
            clock.advance(10)
            await a.node.maintain()
            assert await status(a, b.url) == NodeStatus.ACTIVE
        finally:
            await a.stop()
            await b.stop()

    asyncio.run(scenario())


async def until_listed(peer: Peer, listing: str, polls: int = 1800) -> None:
    """Wait (bounded: 50 ms apart, 90 s in all, three maintenance rounds) until ``peer`` sees ``listing``."""
    for _ in range(polls):
        if listing in await listed(peer):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{listing} never reached {peer.home.url}")


def test_serving_nodes_heal_when_one_is_replaced_at_the_same_url(tmp_path: Path, node_processes: NodeProcesses) -> None:
    async def scenario() -> None:
        b = node_processes(tmp_path / "b", name="b")
        await b.start()
        a = node_processes(tmp_path / "a", "--federate", b.url, name="a")
        await a.start()
        async with aiohttp.ClientSession() as http:
            ana = await Peer("ana", Home(a.url), http, 1).join()  # type: ignore[arg-type]
            ben = await Peer("ben", Home(b.url), http, 2).join()  # type: ignore[arg-type]
            await until_listed(ben, (await ana.offer("Before the replacement.")).id.hex())
            b.kill()
            b.args[b.args.index("--data") + 1] = str(tmp_path / "b-new")  # same URL, new key, no state
            await b.start()
            ben = await Peer("ben", Home(b.url), http, 2).join()  # type: ignore[arg-type]
            await until_listed(ana, (await ben.offer("On the new node.")).id.hex())
            await until_listed(ben, (await ana.offer("After the replacement.")).id.hex())
        assert "no longer federates with this node" in a.output()
        assert a.stop() == 0 and b.stop() == 0

    asyncio.run(scenario())
