"""Abuse controls and resource limits: floods, full disks, slow clients. Bounded, no timing asserts."""

from __future__ import annotations

import asyncio
import base64
import json
import sqlite3
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from peerfed.client.transport import NodeAPI
from peerfed.node.limits import RateLimiter, Use
from peerfed.protocol import ClientAuth, Message, RemoteError, sign

from ..node.harness import Clock, Peer, TestNode, federate, run_node


async def refused(code: str, action: Any) -> None:
    with pytest.raises(RemoteError) as info:
        await action
    assert info.value.code == code, str(info.value)


def test_joining_can_require_proof_of_work(tmp_path: Path) -> None:
    async def body(node: TestNode, http: aiohttp.ClientSession) -> None:
        api = NodeAPI(node.url, http)
        challenge = await api.call("POST", "/api/v1/challenge")
        assert challenge["work"] == 12
        peer = Peer("ana", node, http, 1)
        proof = sign(
            peer.identity,
            ClientAuth(node.url, bytes.fromhex(challenge["challenge"])),
            created_at=peer.now(),
            expires_at=peer.now() + 300,
        )
        await refused("auth.work", api.call("POST", "/api/v1/session", data=proof.raw))
        await refused(
            "auth.work", api.call("POST", "/api/v1/session", data=proof.raw, headers={"X-Peerfed-Work": "00"})
        )
        await peer.join()  # the client solves the puzzle itself
        doc = (await api.document())["document"]
        assert doc  # and the node announces the requirement in its limits
        from peerfed.node.federation import parse_document

        parsed, _ = parse_document(await api.document(), node.url, int(node.clock()))
        assert parsed.limit("join-work-bits") == 12

    run_node(tmp_path, body, join_work_bits=12)


def test_a_full_mailbox_makes_room_from_its_largest_source(tmp_path: Path) -> None:
    """At its cap a mailbox drops the oldest item of whoever holds the most, and every sender is
    answered as before: nobody is pushed back, so no answer tells whether the recipient has read."""

    async def scenario() -> None:
        clock = Clock()
        a = await TestNode(tmp_path / "a", clock).start()
        b = await TestNode(tmp_path / "b", clock, mailbox_cap=3).start()
        await federate(a, b)
        async with aiohttp.ClientSession() as http:
            ana = await Peer("ana", a, http, 1).join()
            ben = await Peer("ben", b, http, 2).join()
            bea = await Peer("bea", b, http, 3).join()
            sent = []
            for n in range(1, 5):
                inner, sealed = bea.seal_to(ben, Message(ben.id, bytes(16), n, f"local {n}"))
                assert (await bea.api.send(sealed.raw))["status"] == "delivered"
                sent.append(inner.id)
            assert [e.id for e in await ben.inbox()] == sent[1:]  # bea's oldest made room
            # A resend of something already delivered is a duplicate, full mailbox or not.
            page = await ben.api.mailbox()
            resent = base64.b64decode(page["items"][0]["sealed"])
            assert (await bea.api.send(resent))["status"] == "duplicate"
            inner, remote = ana.seal_to(ben, Message(ben.id, b"\x01" * 16, 1, "from another node"))
            await ana.api.send(remote.raw, destination=b.url)
            await a.deliver()
            assert (await a.node.store.outbox_stats())[b.url] == {"done": 1}
            assert [e.id for e in await ben.inbox()] == [*sent[2:], inner.id]  # bea's oldest again
        await a.stop()
        await b.stop()

    asyncio.run(scenario())


def test_live_readers_are_capped_per_peer(tmp_path: Path) -> None:
    async def body(node: TestNode, http: aiohttp.ClientSession) -> None:
        ana = await Peer("ana", node, http, 1).join()
        async with http.ws_connect(node.url + "/api/v1/live") as first:
            await first.send_json({"type": "auth", "token": ana.api.token})
            assert (await first.receive_json())["type"] == "ready"
            async with http.ws_connect(node.url + "/api/v1/live") as second:
                await second.send_json({"type": "auth", "token": ana.api.token})
                answer = await second.receive_json()
                assert answer["type"] == "error" and answer["code"] == "rate.limited"
            # The first reader is unaffected.
            await first.send_json({"type": "ack", "ids": []})
            assert (await first.receive_json())["type"] == "acked"

    run_node(tmp_path, body, max_live_per_peer=1)


@pytest.mark.one_backend("it fills SQLite's file to its page limit and sets its query_only pragma")
def test_a_full_disk_or_read_only_database_gives_503_and_the_node_recovers(tmp_path: Path) -> None:
    async def body(node: TestNode, http: aiohttp.ClientSession) -> None:
        ana = await Peer("ana", node, http, 1).join()
        await ana.offer("Before the disk filled.")
        store = node.node.store
        pages = (await store.pragma("PRAGMA page_count"))[0][0]
        await store.pragma(f"PRAGMA max_page_count={pages}")  # no room for one more page
        for n in range(30):  # enough writes to need a new page
            try:
                await ana.offer(f"While the disk is full {n} " + "x" * 500)
            except RemoteError as exc:
                assert exc.code == "node.unavailable"
                break
        else:
            raise AssertionError("the full database never refused a write")
        assert len((await ana.api.directory())["listings"]) >= 1  # reads still work
        await store.pragma("PRAGMA max_page_count=1073741823")  # space returns
        await ana.offer("After the disk was freed.")

        await store.pragma("PRAGMA query_only=ON")  # the database becomes read-only
        await refused("node.unavailable", ana.offer("While read-only."))
        await store.pragma("PRAGMA query_only=OFF")
        await ana.offer("Writable again.")
        summaries = [x["card"]["summary"] for x in (await ana.api.directory(limit=100))["listings"]]
        assert "After the disk was freed." in summaries and "Writable again." in summaries
        assert "While read-only." not in summaries
        await node.node.store.checkpoint()
        with sqlite3.connect(node.data / "node.sqlite3") as db:
            assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)

    run_node(tmp_path, body)


def test_slow_loris_and_idle_connections_are_cut_off_while_honest_clients_are_served(tmp_path: Path) -> None:
    async def body(node: TestNode, http: aiohttp.ClientSession) -> None:
        idle = [await asyncio.open_connection("127.0.0.1", node.port) for _ in range(200)]  # never send a request
        slow = []
        for _ in range(20):  # slow-loris: headers trickle in and never end
            reader, writer = await asyncio.open_connection("127.0.0.1", node.port)
            writer.write(b"POST /api/v1/challenge HTTP/1.1\r\nHost: x\r\n")
            slow.append((reader, writer))
        ana = await Peer("ana", node, http, 1).join()  # honest traffic goes through meanwhile
        await ana.offer("Served during a flood.")

        async def closed(reader: asyncio.StreamReader) -> bool:
            try:
                return await asyncio.wait_for(reader.read(1024), 0.05) == b""
            except TimeoutError:
                return False
            except ConnectionResetError:
                return True

        remaining = [r for r, _ in idle + slow]
        for _ in range(200):  # bounded: the node closes them after its idle timeout (1 s here)
            for _, writer in slow:
                if not writer.is_closing():
                    writer.write(b"X-Trickle: 1\r\n")
            remaining = [r for r in remaining if not await closed(r)]
            if not remaining:
                break
        assert remaining == [], f"{len(remaining)} connections were never cut off"
        for _, writer in idle + slow:
            writer.close()
        assert len((await ana.api.directory())["listings"]) == 1

    run_node(tmp_path, body, idle_timeout=1.0)


def test_a_body_that_never_finishes_is_timed_out(tmp_path: Path) -> None:
    async def body(node: TestNode, http: aiohttp.ClientSession) -> None:
        ana = await Peer("ana", node, http, 1).join()
        assert ana.api.token is not None  # join signed in
        reader, writer = await asyncio.open_connection("127.0.0.1", node.port)
        writer.write(
            b"POST /api/v1/listings HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
            + ana.api.token.encode()
            + b"\r\nContent-Length: 1000\r\n\r\n"
            + b"\x01" * 10
        )
        await writer.drain()
        head = await asyncio.wait_for(reader.read(4096), 30)
        assert b" 408 " in head.split(b"\r\n")[0] and b"request.timeout" in head
        writer.close()
        assert (await node.node.store.counts())["listings"] == 0

    run_node(tmp_path, body, body_timeout=0.5)


def test_the_rate_limiter_stays_bounded_under_a_flood_of_addresses() -> None:
    limiter = RateLimiter(max_entries=1000)
    for n in range(50_000):
        limiter.hit_here([Use("join", f"10.0.{n // 256}.{n % 256}", 5, 3600)], float(n))
    assert len(limiter) == 1000
    with pytest.raises(RemoteError) as info:
        for _ in range(6):
            limiter.hit_here([Use("join", "203.0.113.9", 5, 3600)], 1.0)
    assert info.value.code == "rate.limited"


def test_a_request_that_is_not_valid_http_still_gets_a_coded_json_answer(tmp_path: Path) -> None:
    async def body(node: TestNode, http: aiohttp.ClientSession) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", node.port)
        writer.write(b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")  # a request line past 8,190 bytes
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 30)
        writer.close()
        head, _, text = answer.partition(b"\r\n\r\n")
        assert head.split(b"\r\n")[0].split(b" ")[1] == b"400"
        assert b"application/json" in head
        assert json.loads(text)["error"]["code"] == "request.invalid"
        await Peer("ana", node, http, 1).join()  # and the node goes on serving

    run_node(tmp_path, body)
