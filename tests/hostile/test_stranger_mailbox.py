"""A mailbox cannot be filled by one party, nor watched (issue 11, item 4; spec §13.5 Mailbox quotas).

Each attack runs against real nodes on loopback. Before: one follower put 500 junk items into a
member's mailbox in 5 requests, after which every honest sender was refused `rate.limited`, and a
probe item answered `rate.limited` until the member synced and `ok` after: an oracle for when
someone comes online. First contact cost a stranger nothing.
"""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

import aiohttp
import pytest

from peerfed.protocol import Identity, Message, RemoteError, seal, sign
from peerfed.protocol.sealing import parse_sealed
from peerfed.protocol.work import solve_work, work_bits
from tests.backends import query

from ..node.harness import DAY, Clock, Peer, TestNode, federate
from .test_stranger_limits import first_contact_work, push


def junk(ben: Peer, count: int, start: int = 1, seed: int = 77) -> list[bytes]:
    """Sealed items for ben's mailbox from a throwaway key: what a stranger node can make at will."""
    troll = Identity(bytes([seed]) * 32)
    now = ben.now()
    return [
        seal(
            sign(troll, Message(ben.id, bytes(16), n, "junk"), created_at=now, expires_at=now + DAY), ben.secret.public
        ).raw
        for n in range(start, start + count)
    ]


def stranger_items(
    victim: TestNode, raws: list[bytes], pay: bool
) -> list[tuple[str, bytes] | tuple[str, bytes, bytes]]:
    """Batch items for ``raws``; with ``pay``, the first carries the first contact's proof of work."""
    items: list[tuple[str, bytes] | tuple[str, bytes, bytes]] = [("sealed", raw) for raw in raws]
    if pay and raws:
        items[0] = ("sealed", raws[0], first_contact_work(raws[0], victim))
    return items


def test_a_stranger_node_filling_a_mailbox_cannot_shut_out_honest_senders(tmp_path: Path) -> None:
    async def scenario() -> None:
        clock = Clock()
        victim = await TestNode(tmp_path / "victim", clock, mailbox_cap=60, mailbox_items_per_node=50).start()
        stranger = await TestNode(tmp_path / "stranger", clock).start()
        honest = await TestNode(tmp_path / "honest", clock).start()
        await federate(victim, stranger)
        await federate(victim, honest)
        async with aiohttp.ClientSession() as http:
            ben = await Peer("ben", victim, http, 2).join()
            bea = await Peer("bea", victim, http, 3).join()
            ana = await Peer("ana", honest, http, 1).join()
            # The stranger pays one first contact and sends 80: 50 are taken this hour, 30 refused.
            results = await push(stranger, victim, stranger_items(victim, junk(ben, 80), pay=True))
            assert [r["status"] for r in results].count("ok") == 50
            assert {r.get("code") for r in results if r["status"] == "error"} == {"rate.limited"}
            # Honest senders, local and remote, are all taken, and every answer is the usual one.
            honest_ids = []
            for n in range(1, 11):
                inner, sealed = bea.seal_to(ben, Message(ben.id, b"\x02" * 16, n, f"bea {n}"))
                assert (await bea.api.send(sealed.raw))["status"] == "delivered"
                honest_ids.append(inner.id)
            inner, sealed = ana.seal_to(ben, Message(ben.id, b"\x01" * 16, 1, "Are you all right?"))
            assert (await ana.api.send(sealed.raw, destination=victim.url))["status"] == "queued"
            await honest.deliver()
            assert (await honest.node.store.outbox_stats())[victim.url] == {"done": 1}
            honest_ids.append(inner.id)
            # An hour later the stranger goes on; a full mailbox makes room from its largest source.
            clock.advance(3600)
            results = await push(stranger, victim, stranger_items(victim, junk(ben, 50, start=81), pay=False))
            assert {r["status"] for r in results} == {"ok"}
            page = await ben.api.mailbox(limit=500)
            assert len(page["items"]) == 60
            held = [ben.open(base64.b64decode(item["sealed"])).id for item in page["items"]]
            assert set(honest_ids) <= set(held)
        for node in (victim, stranger, honest):
            await node.stop()

    asyncio.run(scenario())


def test_no_answer_tells_a_prober_whether_the_member_has_synced(tmp_path: Path) -> None:
    async def scenario() -> None:
        clock = Clock()
        victim = await TestNode(tmp_path / "victim", clock, mailbox_cap=20).start()
        stranger = await TestNode(tmp_path / "stranger", clock).start()
        await federate(victim, stranger)
        async with aiohttp.ClientSession() as http:
            ben = await Peer("ben", victim, http, 2).join()
            eve = await Peer("eve", victim, http, 9).join()
            raws = junk(ben, 40)
            assert {r["status"] for r in await push(stranger, victim, stranger_items(victim, raws[:20], pay=True))} == {
                "ok"
            }

            async def probe(n: int) -> tuple[str, str]:
                [pushed] = await push(stranger, victim, [("sealed", raws[20 + n])])
                _, sealed = eve.seal_to(ben, Message(ben.id, b"\x09" * 16, n + 1, "probe"))
                return pushed["status"], (await eve.api.send(sealed.raw))["status"]

            before = await probe(0)  # the mailbox is full and ben has not synced
            page = await ben.api.mailbox(limit=500)
            await ben.api.ack([item["id"] for item in page["items"]])
            after = await probe(1)  # ben has synced and emptied it
            assert before == after == ("ok", "delivered")
        for node in (victim, stranger):
            await node.stop()

    asyncio.run(scenario())


def test_first_contact_costs_a_stranger_proof_of_work_and_an_honest_client_pays_it_unseen(tmp_path: Path) -> None:
    async def scenario() -> None:
        clock = Clock()
        victim = await TestNode(tmp_path / "victim", clock).start()
        stranger = await TestNode(tmp_path / "stranger", clock).start()
        await federate(victim, stranger)
        bits = victim.config.first_contact_work_bits
        assert bits >= 16
        async with aiohttp.ClientSession() as http:
            ben = await Peer("ben", victim, http, 2).join()
            eve = await Peer("eve", victim, http, 9).join()
            # A local peer's first item into ben's mailbox, sent raw without work: refused.
            _, first = eve.seal_to(ben, Message(ben.id, b"\x09" * 16, 1, "hi"))
            with pytest.raises(RemoteError) as info:
                await eve.api.call("POST", "/api/v1/send", data=first.raw)
            assert info.value.code == "auth.work"
            # The client library solves it when asked and sends again; later items need none.
            assert (await eve.api.send(first.raw))["status"] == "delivered"
            _, second = eve.seal_to(ben, Message(ben.id, b"\x09" * 16, 2, "again"))
            assert (await eve.api.call("POST", "/api/v1/send", data=second.raw))["status"] == "delivered"
            # A stranger node: refused without work, told how much; a weak nonce is refused too.
            raws = junk(ben, 3)
            [refused] = await push(stranger, victim, [("sealed", raws[0])])
            assert (refused["code"], refused["bits"]) == ("auth.work", bits)
            sealed_id = parse_sealed(raws[0]).id
            weak = next(
                n.to_bytes(2, "big") for n in range(1 << 16) if work_bits(sealed_id, n.to_bytes(2, "big")) < bits
            )
            [refused] = await push(stranger, victim, [("sealed", raws[0], weak)])
            assert refused["code"] == "auth.work"
            good = solve_work(sealed_id, bits)
            results = await push(
                stranger, victim, [("sealed", raws[0], good), ("sealed", raws[1]), ("sealed", raws[2])]
            )
            assert [r["status"] for r in results] == ["ok", "ok", "ok"]
            # After a restart the node has forgotten every first contact: nothing of it was on disk.
            await victim.stop()
            await victim.start()
            _, third = eve.seal_to(ben, Message(ben.id, b"\x09" * 16, 3, "after the restart"))
            with pytest.raises(RemoteError) as info:
                await eve.api.call("POST", "/api/v1/send", data=third.raw)
            assert info.value.code == "auth.work"
            assert (await eve.api.send(third.raw))["status"] == "delivered"
        await victim.stop()
        await stranger.stop()
        # The database never names who handed an item in: only 16-byte digests under a secret
        # that lived in memory, different for the same sender once the node restarted.
        rows = query(victim.config.data, "SELECT source FROM mailbox ORDER BY seq")
        sources = [bytes(r[0]) for r in rows]  # type: ignore[call-overload]
        assert all(len(s) == 16 for s in sources)
        assert len(sources) == 6  # eve twice, the stranger three times, eve after the restart
        assert sources[0] == sources[1] and sources[2] == sources[3] == sources[4] != sources[0]
        assert sources[5] not in sources[:5]

    asyncio.run(scenario())


def test_one_local_sender_is_held_to_its_hourly_count_per_mailbox(tmp_path: Path) -> None:
    async def scenario() -> None:
        clock = Clock()
        node = await TestNode(tmp_path / "n", clock, mailbox_items_per_sender=5).start()
        async with aiohttp.ClientSession() as http:
            ben = await Peer("ben", node, http, 2).join()
            bea = await Peer("bea", node, http, 3).join()
            eve = await Peer("eve", node, http, 9).join()
            for n in range(1, 6):
                _, sealed = eve.seal_to(ben, Message(ben.id, b"\x09" * 16, n, "spam"))
                await eve.api.send(sealed.raw)
            _, sealed = eve.seal_to(ben, Message(ben.id, b"\x09" * 16, 6, "spam"))
            with pytest.raises(RemoteError) as info:
                await eve.api.send(sealed.raw)
            assert info.value.code == "rate.limited"
            # Her count is hers, for his mailbox: others reach him, and she reaches others.
            _, sealed = bea.seal_to(ben, Message(ben.id, b"\x03" * 16, 1, "hello"))
            assert (await bea.api.send(sealed.raw))["status"] == "delivered"
            _, sealed = eve.seal_to(bea, Message(bea.id, b"\x0a" * 16, 1, "hello"))
            assert (await eve.api.send(sealed.raw))["status"] == "delivered"
            clock.advance(3600)
            _, sealed = eve.seal_to(ben, Message(ben.id, b"\x09" * 16, 7, "an hour later"))
            assert (await eve.api.send(sealed.raw))["status"] == "delivered"
        await node.stop()

    asyncio.run(scenario())
