"""Three nodes on loopback: listings, sealed messages, withdrawals and erasures cross them."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest

from peerfed.protocol import Erasure, Message, Move, ReachOut, RemoteError, Response, Withdrawal

from .harness import DAY, Clock, Peer, TestNode, federate, standing

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


async def three(tmp: Path, clock: Clock) -> tuple[TestNode, TestNode, TestNode]:
    nodes = [await TestNode(tmp / name, clock).start() for name in "abc"]
    await federate(*nodes)
    return nodes[0], nodes[1], nodes[2]


def run_three(
    tmp: Path, body: Callable[[TestNode, TestNode, TestNode, aiohttp.ClientSession, Clock], Awaitable[None]]
) -> None:
    """Three federated nodes sharing a clock, one HTTP session; every running node is stopped after."""

    async def scenario() -> None:
        clock = Clock()
        nodes = await three(tmp, clock)
        try:
            async with aiohttp.ClientSession() as http:
                await body(*nodes, http, clock)
        finally:
            for node in nodes:
                if node.runner is not None:
                    await node.stop()

    asyncio.run(scenario())


async def drain(*nodes: TestNode) -> None:
    """Deliver until no node has anything due (bounded)."""
    for _ in range(10):
        if sum([await n.deliver() for n in nodes]) == 0:
            return
    raise AssertionError("outboxes did not drain")


def test_a_listing_on_a_is_found_from_b_and_c_and_a_withdrawal_reaches_both(tmp_path: Path) -> None:
    async def scenario(a: TestNode, b: TestNode, c: TestNode, http: aiohttp.ClientSession, clock: Clock) -> None:
        ana = await Peer("ana", a, http, 1).join()
        ben = await Peer("ben", b, http, 2).join()
        cy = await Peer("cy", c, http, 3).join()
        offer = await ana.offer("I can listen on weekday evenings.", topics=("Panic Attacks",))
        await drain(a, b, c)
        for peer in (ben, cy):
            found = await peer.api.directory(topic="panic attacks", lang="es", kind="offer")
            assert [item["id"] for item in found["listings"]] == [offer.id.hex()]
            item = found["listings"][0]
            assert item["origin"] == a.url
            assert item["author"] == ana.id.text
            assert base64.b64decode(item["listing"]) == offer.raw
            assert item["key_bundle"] is not None
            assert item["card"]["summary"] == "I can listen on weekday evenings."
        assert (await ben.api.directory(topic="grief"))["listings"] == []
        assert (await ben.api.directory(kind="request"))["listings"] == []

        withdrawal = ana.signed(Withdrawal(offer.id))
        await ana.api.publish(withdrawal.raw)
        await drain(a, b, c)
        for peer in (ana, ben, cy):
            assert (await peer.api.directory())["listings"] == []
        # A late copy of the withdrawn listing is refused everywhere.
        assert await b.node.store.listing(offer.id) is None
        with pytest.raises(RemoteError) as info:
            await b.node.inbound.ingest(a.url, "listing", offer.raw)
        assert info.value.code == "gone"

    run_three(tmp_path, scenario)


def test_a_sealed_reach_out_from_a_reaches_b_once_and_the_reply_comes_back(tmp_path: Path) -> None:
    async def scenario(a: TestNode, b: TestNode, c: TestNode, http: aiohttp.ClientSession, clock: Clock) -> None:
        ana = await Peer("ana", a, http, 1).join()
        ben = await Peer("ben", b, http, 2).join()
        offer = await ben.offer("Grief circle member, happy to talk.", topics=("grief",))
        await drain(a, b, c)
        connection = b"\x42" * 16
        inner, sealed = ana.seal_to(
            ben, ReachOut(ben.id, connection, offer.id, "Hola Ben, can we talk?", bundle=ana.bundle)
        )
        sent = await ana.api.send(sealed.raw)
        assert sent == {"id": sealed.id.hex(), "status": "queued"}
        # Sending the same sealed bytes again is not a second message.
        assert (await ana.api.send(sealed.raw))["status"] == "duplicate"
        await drain(a, b, c)
        got = await ben.inbox()
        assert got == [inner]
        await drain(a, b, c)
        assert await ben.inbox() == [inner]  # delivered exactly once

        reply_inner, reply = ben.seal_to(ana, Response(ana.id, connection, True, "Yes, gladly."))
        await ben.api.keys(ana.id.text)  # as a client does: ana published nothing, so B asks for her bundle
        await ben.api.send(reply.raw)
        await drain(a, b, c)
        assert await ana.inbox() == [reply_inner]
        # Acknowledging deletes it from the node.
        page = await ana.api.mailbox()
        assert (await ana.api.ack([page["items"][0]["id"]]))["deleted"] == 1
        assert (await ana.api.mailbox())["items"] == []

    run_three(tmp_path, scenario)


def test_a_live_reader_on_b_receives_a_message_sent_from_a(tmp_path: Path) -> None:
    async def scenario(a: TestNode, b: TestNode, c: TestNode, http: aiohttp.ClientSession, clock: Clock) -> None:
        ana = await Peer("ana", a, http, 1).join()
        ben = await Peer("ben", b, http, 2).join()
        await drain(a, b, c)
        inner, sealed = ana.seal_to(ben, Message(ben.id, b"\x07" * 16, 1, "Thinking of you today."))

        async def read_one() -> bytes:
            async for item in ben.api.live():
                if item["type"] == "item":
                    return bytes(item["sealed_bytes"])
            raise AssertionError("the live stream ended")

        reader = asyncio.create_task(read_one())
        for _ in range(50):  # wait until the reader is registered (bounded)
            if b.node.mailbox.readers:
                break
            await asyncio.sleep(0.01)
        await ana.api.keys(ben.id.text)  # ben published no listing: his bundle is had on request
        await ana.api.send(sealed.raw)
        await drain(a, b, c)
        raw = await asyncio.wait_for(reader, 10)
        assert ben.open(raw) == inner

    run_three(tmp_path, scenario)


def test_erasure_reaches_every_node_and_keeps_the_peer_out(tmp_path: Path) -> None:
    async def scenario(a: TestNode, b: TestNode, c: TestNode, http: aiohttp.ClientSession, clock: Clock) -> None:
        ana = await Peer("ana", a, http, 1).join()
        ben = await Peer("ben", b, http, 2).join()
        first = await ana.offer("First offer.")
        await ana.offer("Second offer.", topics=("grief",))
        await drain(a, b, c)
        assert len((await ben.api.directory())["listings"]) == 2
        erasure = ana.signed(Erasure(), life=30 * DAY)
        assert (await ana.api.erase(erasure.raw)) == {"status": "erased", "listings": 2}
        await drain(a, b, c)
        for node in (a, b, c):
            assert await node.node.store.key_bundle(bytes(ana.id), ana.now()) is None
            assert (await node.node.store.counts())["listings"] == 0
            assert await node.node.store.member(bytes(ana.id)) is None
        # The old session is gone, and a replayed listing of hers is refused.
        with pytest.raises(RemoteError) as info:
            await ana.api.directory()
        assert info.value.code == "auth.required"
        with pytest.raises(RemoteError) as info:
            await c.node.inbound.ingest(a.url, "listing", first.raw)
        assert info.value.code == "gone"
        # Nothing of hers is left in any file of any node: not her key, not her listings' words.
        for node in (a, b, c):
            stored = b"".join(p.read_bytes() for p in node.data.rglob("*") if p.is_file())
            assert bytes(ana.id) not in stored, node.url
            assert b"First offer." not in stored and b"Second offer." not in stored, node.url

    run_three(tmp_path, scenario)


def test_b_down_while_a_sends_then_back_gets_everything_once(tmp_path: Path) -> None:
    async def scenario(a: TestNode, b: TestNode, c: TestNode, http: aiohttp.ClientSession, clock: Clock) -> None:
        ana = await Peer("ana", a, http, 1).join()
        ben = await Peer("ben", b, http, 2).join()
        await drain(a, b, c)
        await b.stop()
        sent, sealed_all = [], []
        for n in range(1, 6):
            inner, sealed = ana.seal_to(ben, Message(ben.id, b"\x09" * 16, n, f"message {n}"))
            assert (await ana.api.send(sealed.raw, destination=b.url))["status"] == "queued"
            sent.append(inner)
            sealed_all.append(sealed)
        offer = await ana.offer("Posted while B was down.")
        await a.deliver()  # C gets the listing; B is unreachable, so its items wait
        # Waiting for B: 5 messages, the listing and ana's key bundle with it (she had published
        # nothing before, so her bundle was never pushed on its own).
        assert (await a.node.store.outbox_stats())[b.url] == {"pending": 7}
        state = await a.node.store.node(b.url)
        assert state is not None and state.failures == 1 and state.last_error
        clock.advance(30)
        await a.deliver()
        assert (await a.node.store.outbox_stats())[b.url] == {"pending": 7}
        await b.start()
        clock.advance(3600)
        await drain(a, b, c)
        got = sorted((await ben.inbox()), key=lambda e: e.body.seq)  # type: ignore[union-attr]
        assert got == sent
        assert [i["id"] for i in (await ben.api.directory())["listings"]] == [offer.id.hex()]
        # A batch retried after a lost answer is acknowledged as duplicates, not delivered again.
        from peerfed.protocol import pack

        assert a.node.client is not None
        again = pack([["sealed", s.raw] for s in sealed_all])
        answer = await a.node.client.request("POST", b.url, "/federation/v1/batch", again)
        assert [r["status"] for r in answer["results"]] == ["duplicate"] * 5
        assert len(await ben.inbox()) == 5

    run_three(tmp_path, scenario)


def test_listings_published_before_federating_arrive_by_the_catch_up_pull(tmp_path: Path) -> None:
    async def scenario() -> None:
        clock = Clock()
        a = await TestNode(tmp_path / "a", clock).start()
        b = await TestNode(tmp_path / "b", clock).start()
        async with aiohttp.ClientSession() as http:
            ana = await Peer("ana", a, http, 1).join()
            early = [await ana.offer(f"early offer {n}") for n in range(3)]
            await federate(a, b)  # B follows A, then pulls
            ben = await Peer("ben", b, http, 2).join()
            found = await ben.api.directory()
            assert sorted(x["id"] for x in found["listings"]) == sorted(e.id.hex() for e in early)
            assert all(x["key_bundle"] for x in found["listings"])
            # A second pull takes nothing twice.
            assert await b.node.catchup.pull(a.url) == 0
        await a.stop()
        await b.stop()

    run(scenario())


def test_a_peer_moves_to_another_node_and_keeps_receiving(tmp_path: Path) -> None:
    async def scenario(a: TestNode, b: TestNode, c: TestNode, http: aiohttp.ClientSession, clock: Clock) -> None:
        ana = await Peer("ana", a, http, 1).join()
        cy = await Peer("cy", c, http, 3).join()
        await drain(a, b, c)
        waiting, sealed = cy.seal_to(ana, Message(ana.id, b"\x05" * 16, 1, "sent before the move"))
        await cy.api.keys(ana.id.text)  # her bundle, asked of A: it names A as her home
        await cy.api.send(sealed.raw)
        await drain(a, b, c)
        # Ana joins B with the same identity, then tells A she moved.
        moved = Peer("ana", b, http, 1)
        await moved.join()
        answer = await ana.api.move(b.url, ana.signed(Move(a.url, b.url), life=300).raw)
        assert answer == {"status": "moved", "forwarded": 1}
        await drain(a, b, c)
        later, sealed = cy.seal_to(ana, Message(ana.id, b"\x05" * 16, 2, "sent after the move"))
        await cy.api.send(sealed.raw, destination=a.url)  # C still thinks she lives on A
        await drain(a, b, c)
        got = sorted(await moved.inbox(), key=lambda e: e.body.seq)  # type: ignore[union-attr]
        assert got == [waiting, later]
        with pytest.raises(RemoteError) as info:
            await ana.api.mailbox()  # her old sessions on A ended
        assert info.value.code == "auth.required"
        # Signing in at A again, with a fresh proof of her key, undoes the move (spec §13.5).
        await Peer("ana", a, http, 1).join()
        assert standing(await a.node.store.member(bytes(ana.id))) == ("member", None)

    run_three(tmp_path, scenario)


def test_publishing_wakes_the_sender_only_when_a_federated_node_is_owed_something(tmp_path: Path) -> None:
    """A node with no federated node does no outbox round per listing; with one, each listing
    wakes the sender at once (issue 17: a needless wake-up cost every publish a round)."""

    async def scenario() -> None:
        clock = Clock()
        a = await TestNode(tmp_path / "a", clock).start()
        b = await TestNode(tmp_path / "b", clock).start()
        try:
            async with aiohttp.ClientSession() as http:
                ana = await Peer("ana", a, http, 1).join()
                a.node.wakeup.clear()
                await ana.offer("Alone: nobody to tell")
                assert not a.node.wakeup.is_set()
                await federate(a, b)
                a.node.wakeup.clear()
                await ana.offer("Federated: B is owed this one")
                assert a.node.wakeup.is_set()
                assert (await a.node.store.outbox_stats())[b.url].get("pending", 0) >= 1
        finally:
            await a.stop()
            await b.stop()

    asyncio.run(scenario())
