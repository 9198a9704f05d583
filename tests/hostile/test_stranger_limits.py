"""Limits on what strangers send (spec §13.8, §13.7, §13.2, §12): floods of listings and sealed bytes,
fake followers, node URLs with paths, idle WebSockets, proxies, key bundle churn. Real nodes on loopback."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from peerfed.client.transport import NodeAPI
from peerfed.node.federation import sign_request
from peerfed.node.federation.transport import AUTH_SCHEME
from peerfed.protocol import (
    EncryptionSecret,
    Format,
    Identity,
    InvalidValue,
    KeyBundle,
    Kind,
    Listing,
    Message,
    RemoteError,
    Timing,
    pack,
    parse_sealed,
    seal,
    sign,
)
from peerfed.protocol.encoding import Value
from peerfed.protocol.node_bodies import NodeRequest, body_hash, check_url, url_host
from peerfed.protocol.work import solve_work

from ..node.harness import DAY, Clock, Peer, TestNode, federate, free_socket, run_node

BATCH_BYTES = 60_000  # what one batch body may carry, under the node's 70,000-byte request cap


async def refused(code: str, action: Any) -> None:
    with pytest.raises(RemoteError) as info:
        await action
    assert info.value.code == code, str(info.value)


async def push(
    sender: TestNode, receiver: TestNode, items: Sequence[tuple[str, bytes] | tuple[str, bytes, bytes]]
) -> list[dict[str, Any]]:
    """Push ``items`` from ``sender`` as signed batches, as large as the receiver takes; every result.
    A sealed item may carry its proof of work as a third element (spec §13.7, Batches)."""
    assert sender.node.client is not None
    results: list[dict[str, Any]] = []
    batch: list[Value] = []
    size = 0
    for item in [*items, ("", b"")]:
        kind, raw = item[0], item[1]
        if batch and (not kind or size + len(raw) > BATCH_BYTES or len(batch) == 100):
            answer = await sender.node.client.send(receiver.url, "/federation/v1/batch", pack(batch))
            results += answer["results"]
            batch, size = [], 0
        if kind:
            batch.append(list(item))
            size += len(raw) + 8 + 40
    return results


def first_contact_work(raw: bytes, receiver: TestNode) -> bytes:
    """The proof of work ``receiver`` asks of a first sealed item into a mailbox (spec §13.5)."""
    return solve_work(parse_sealed(raw).id, receiver.config.first_contact_work_bits)


def spam_listings(home: TestNode, authors: int, each: int) -> list[tuple[str, bytes]]:
    """Key bundles and listings from throwaway authors whose home is ``home``."""
    now = int(home.clock())
    items: list[tuple[str, bytes]] = []
    for a in range(authors):
        author = Identity(bytes([201, a % 256, a // 256]) + bytes(29))
        secret = EncryptionSecret(bytes([202, a % 256, a // 256]) + bytes(29))
        bundle = KeyBundle(secret.public, home=home.url, pseudonym=f"spam {a}")
        items.append(("key-bundle", sign(author, bundle, created_at=now, expires_at=now + 30 * DAY).raw))
        for n in range(each):
            listing = Listing(Kind.OFFER, ("buy now",), ("en",), (Format.TEXT,), Timing.NOW, f"spam {a}/{n}")
            items.append(("listing", sign(author, listing, created_at=now, expires_at=now + DAY).raw))
    return items


def test_a_follower_sending_twenty_thousand_listings_is_cut_to_its_per_origin_rate(tmp_path: Path) -> None:
    async def scenario() -> None:
        clock = Clock()
        victim = await TestNode(tmp_path / "victim", clock, node_listings_per_hour=300).start()
        spammer = await TestNode(tmp_path / "spammer", clock).start()
        honest = await TestNode(tmp_path / "honest", clock).start()
        await federate(victim, spammer)
        await federate(victim, honest)
        results = await push(spammer, victim, spam_listings(spammer, 100, 200))
        listings = [r for r in results[1::201]]  # one listing result per author, for the codes
        assert len(results) == 100 * 201
        taken = sum(1 for r in results if r["status"] == "ok")
        limited = sum(1 for r in results if r.get("code") == "rate.limited")
        assert taken <= 300 + 100  # its listings per hour, plus the authors' key bundles
        assert limited >= 20_000 - 300 and listings[-1]["code"] == "rate.limited"
        counts = await victim.node.store.counts()
        assert counts["listings"] <= 300
        # The honest node's member is not refused: her listing arrives and can be read.
        async with aiohttp.ClientSession() as http:
            ana = await Peer("ana", honest, http, 1).join()
            offer = await ana.offer("Someone to talk to after a loss.")
            await honest.deliver()
            held = await victim.node.directory.listing(offer.id)
            assert held.raw == offer.raw and held.origin == honest.url
        # An hour later the spammer gets one more hour's worth, no more.
        clock.advance(3600)
        again = await push(spammer, victim, spam_listings(spammer, 1, 400)[1:])
        assert sum(1 for r in again if r["status"] == "ok") == 300
        for node in (victim, spammer, honest):
            await node.stop()

    asyncio.run(scenario())


def test_a_mailbox_takes_at_most_the_per_origin_byte_quota_from_one_node(tmp_path: Path) -> None:
    async def scenario() -> None:
        clock = Clock()
        victim = await TestNode(tmp_path / "victim", clock).start()
        spammer = await TestNode(tmp_path / "spammer", clock).start()
        honest = await TestNode(tmp_path / "honest", clock).start()
        await federate(victim, spammer)
        await federate(victim, honest)
        quota = victim.config.mailbox_bytes_per_node
        async with aiohttp.ClientSession() as http:
            ben = await Peer("ben", victim, http, 2).join()
            troll = Identity(bytes([77]) * 32)
            now = int(clock())
            flood = [
                seal(
                    sign(troll, Message(ben.id, bytes(16), n, "x" * 15_000), created_at=now, expires_at=now + DAY),
                    ben.secret.public,
                ).raw
                for n in range(1, 4 * quota // 15_000)
            ]
            # The stranger pays the first contact's proof of work once; the byte quota still holds.
            first = ("sealed", flood[0], first_contact_work(flood[0], victim))
            results = await push(spammer, victim, [first, *(("sealed", raw) for raw in flood[1:])])
            assert {r["status"] for r in results} == {"ok", "error"}
            assert {r.get("code") for r in results if r["status"] == "error"} == {"rate.limited"}
            page = await ben.api.mailbox(limit=500)
            held = sum(len(base64.b64decode(item["sealed"])) for item in page["items"])
            assert 0 < held <= quota
            # A member of an honest node still reaches him.
            ana = await Peer("ana", honest, http, 1).join()
            inner, sealed = ana.seal_to(ben, Message(ben.id, b"\x01" * 16, 1, "Are you all right?"))
            await ana.api.send(sealed.raw, destination=victim.url)
            await honest.deliver()
            assert inner.id in [e.id for e in await ben.inbox()]
        for node in (victim, spammer, honest):
            await node.stop()

    asyncio.run(scenario())


async def follow(stranger: TestNode, victim: TestNode) -> Any:
    assert stranger.node.client is not None
    return await stranger.node.client.request("POST", victim.url, "/federation/v1/follow", b"{}")


async def refused_because(words: str, action: Any) -> None:
    with pytest.raises(RemoteError) as info:
        await action
    assert info.value.code == "federation.refused" and words in str(info.value), str(info.value)


def test_the_151st_node_is_refused_as_a_follower_under_the_open_policy(tmp_path: Path) -> None:
    async def scenario() -> None:
        clock = Clock()
        victim = await TestNode(tmp_path / "victim", clock).start()
        strangers = [await TestNode(tmp_path / f"s{n}", clock).start() for n in range(2)]
        for n in range(149):  # 149 followers on as many hosts, as fast as they can ask
            await victim.node.store.set_node_status(f"https://n{n}.example", "active", int(clock()))
        assert (await follow(strangers[0], victim))["status"] == "active"  # the 150th
        await refused_because("as many nodes", follow(strangers[1], victim))  # the 151st
        assert await victim.node.store.node(strangers[1].url) is None
        # A node already federated is not refused again: its follow still answers active.
        assert (await follow(strangers[0], victim))["status"] == "active"
        # Blocked nodes do not fill the cap: blocking one makes room.
        await victim.node.store.set_node_status("https://n0.example", "blocked", int(clock()))
        assert (await follow(strangers[1], victim))["status"] == "active"
        for node in (victim, *strangers):
            await node.stop()

    asyncio.run(scenario())


def test_many_urls_on_one_host_count_as_one_host(tmp_path: Path) -> None:
    async def scenario() -> None:
        clock = Clock()
        victim = await TestNode(tmp_path / "victim", clock).start()
        strangers = [await TestNode(tmp_path / f"s{n}", clock).start() for n in range(3)]
        # Two nodes on 127.0.0.1 are taken; a third port on the same host is the same host.
        assert (await follow(strangers[0], victim))["status"] == "active"
        assert (await follow(strangers[1], victim))["status"] == "active"
        await refused_because("on your host", follow(strangers[2], victim))
        assert await victim.node.store.node(strangers[2].url) is None
        # Blocking one of them does not free its place: a blocked host cannot come back on a new port.
        await victim.node.store.set_node_status(strangers[1].url, "blocked", int(clock()))
        await refused_because("on your host", follow(strangers[2], victim))
        for node in (victim, *strangers):
            await node.stop()

    asyncio.run(scenario())


class PathRequest(NodeRequest):
    """A node request as an attacker would write one: its URL checks skipped."""

    def __post_init__(self) -> None:
        pass


def test_a_node_url_with_a_path_is_refused_and_nothing_is_fetched(tmp_path: Path) -> None:
    for bad in ("http://127.0.0.1:9/fake1", "https://x.example/", "https://x.example?n=2", "https://u@x.example"):
        with pytest.raises(InvalidValue):
            check_url(bad, "url")
    assert url_host("http://LOCALHOST:8740") == "localhost"
    fetched: list[str] = []

    async def document(request: web.Request) -> web.Response:
        fetched.append(request.path)
        return web.json_response({})

    async def body(node: TestNode, http: aiohttp.ClientSession) -> None:
        app = web.Application()
        app.router.add_get("/{name}/.well-known/peerfed", document)
        runner = web.AppRunner(app)
        await runner.setup()
        sock = free_socket()
        await web.SockSite(runner, sock).start()
        host = f"http://127.0.0.1:{sock.getsockname()[1]}"
        now = int(node.clock())
        try:
            for n in range(3):
                origin = f"{host}/fake{n}"
                request = PathRequest("POST", "/federation/v1/follow", origin, node.url, bytes(16), body_hash(b"{}"))
                raw = sign(Identity(bytes([50 + n]) * 32), request, created_at=now, expires_at=now + 300).raw
                headers = {"Authorization": f"{AUTH_SCHEME} {base64.b64encode(raw).decode()}"}
                async with http.post(node.url + "/federation/v1/follow", data=b"{}", headers=headers) as answer:
                    assert answer.status == 400
                    assert (await answer.json())["error"]["code"] == "schema.invalid"
                assert await node.node.store.node(origin) is None
            assert fetched == []
        finally:
            await runner.cleanup()

    run_node(tmp_path, body)


def test_an_unauthenticated_websocket_is_closed_after_the_grace_period(tmp_path: Path) -> None:
    async def body(node: TestNode, http: aiohttp.ClientSession) -> None:
        async with http.ws_connect(node.url + "/api/v1/live") as idle:
            message = await idle.receive(timeout=10)  # a bounded wait; the node closes at 0.2 s
            assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
            assert idle.close_code == aiohttp.WSCloseCode.POLICY_VIOLATION
        # Talking without signing in does not extend the grace.
        async with http.ws_connect(node.url + "/api/v1/live") as chatty:
            for _ in range(100_000):
                await chatty.send_json({"type": "ack", "ids": []})
                message = await chatty.receive(timeout=10)
                if message.type != aiohttp.WSMsgType.TEXT:
                    break
                assert message.json()["code"] == "auth.required"
            assert chatty.close_code == aiohttp.WSCloseCode.POLICY_VIOLATION
        # A peer who signs in within the grace keeps the socket.
        ana = await Peer("ana", node, http, 1).join()
        async with http.ws_connect(node.url + "/api/v1/live") as live:
            await live.send_json({"type": "auth", "token": ana.api.token})
            assert (await live.receive_json(timeout=10))["type"] == "ready"
            loop = asyncio.get_running_loop()
            until = loop.time() + 0.4  # well past the grace, spent talking rather than sleeping
            for _ in range(100_000):
                await live.send_json({"type": "ack", "ids": []})
                assert (await live.receive_json(timeout=10))["type"] == "acked"
                if loop.time() > until:
                    break

    run_node(tmp_path, body, live_auth_grace=0.2)


def test_sockets_per_address_are_capped(tmp_path: Path) -> None:
    async def body(node: TestNode, http: aiohttp.ClientSession) -> None:
        url = node.url + "/api/v1/live"
        held = [await http.ws_connect(url) for _ in range(3)]
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await http.ws_connect(url)
        assert info.value.status == 429
        await held.pop().close()
        for _ in range(1000):  # the node counts the closed socket out once its handler ends
            try:
                held.append(await http.ws_connect(url))
                break
            except aiohttp.WSServerHandshakeError:
                await asyncio.sleep(0)
        assert len(held) == 3
        for ws in held:
            await ws.close()

    run_node(tmp_path, body, max_live_per_address=3, live_auth_grace=60.0)


async def challenges(http: aiohttp.ClientSession, url: str, count: int, forwarded: str | None) -> list[int]:
    statuses = []
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    for _ in range(count):
        async with http.post(url + "/api/v1/challenge", headers=headers) as answer:
            statuses.append(answer.status)
    return statuses


def test_behind_a_trusted_proxy_limits_apply_to_the_forwarded_address(tmp_path: Path) -> None:
    async def body(node: TestNode, http: aiohttp.ClientSession) -> None:
        # 60 anonymous challenges (the hour's allowance) and more from one client behind the proxy...
        assert set(await challenges(http, node.url, 60, "203.0.113.5")) == {200}
        assert await challenges(http, node.url, 1, "203.0.113.5") == [429]
        # ...leave every other client of the same proxy free to sign in.
        async with aiohttp.ClientSession(headers={"X-Forwarded-For": "198.51.100.7"}) as other:
            ana = await Peer("ana", node, other, 1).join()
            assert (await ana.api.mailbox())["items"] == []
        # A client cannot choose its address by writing the header itself: the proxy appends the real one.
        assert await challenges(http, node.url, 1, "198.51.100.7, 203.0.113.5") == [429]

    run_node(tmp_path, body, trusted_proxies=("127.0.0.1",))


def test_a_forwarding_header_from_an_untrusted_peer_is_ignored(tmp_path: Path) -> None:
    async def body(node: TestNode, http: aiohttp.ClientSession) -> None:
        statuses = [(await challenges(http, node.url, 1, f"203.0.113.{n}"))[0] for n in range(61)]
        assert statuses == [200] * 60 + [429]  # one address, whatever the header says

    run_node(tmp_path, body, trusted_proxies=("10.0.0.0/8",))


def test_publishing_key_bundles_is_rate_limited(tmp_path: Path) -> None:
    async def body(node: TestNode, http: aiohttp.ClientSession) -> None:
        ana = await Peer("ana", node, http, 1).join()  # one bundle published on joining
        now = int(node.clock())
        for n in range(1, 21):
            bundle = sign(
                ana.identity,
                KeyBundle(ana.secret.public, home=node.url, pseudonym=f"ana {n}"),
                created_at=now,
                expires_at=now + 30 * DAY,
            )
            if n < 20:
                await ana.api.put_keys(bundle.raw)
            else:
                await refused("rate.limited", ana.api.put_keys(bundle.raw))
        node.clock.advance(3600)
        await ana.api.put_keys(bundle.raw)  # the next hour, the peer may publish again

    run_node(tmp_path, body)


def test_the_new_limits_are_published_in_the_node_document(tmp_path: Path) -> None:
    async def body(node: TestNode, http: aiohttp.ClientSession) -> None:
        from peerfed.node.federation import parse_document

        api = NodeAPI(node.url, http)
        parsed, _ = parse_document(await api.document(), node.url, int(node.clock()))
        for name, value in [
            ("keys-per-hour", 20),
            ("node-listings-per-hour", 600),
            ("node-bundles-per-hour", 600),
            ("node-bytes-per-minute", 8_000_000),
            ("mailbox-bytes-per-node", 1_000_000),
            ("max-followers", 150),
            ("follows-per-host", 2),
            ("live-per-address", 20),
            ("live-auth-grace", 10),
        ]:
            assert parsed.limit(name) == value, name

    run_node(tmp_path, body)


def test_sign_request_refuses_to_write_a_url_with_a_path() -> None:
    with pytest.raises(InvalidValue):
        sign_request(
            Identity(bytes(32)),
            method="POST",
            path="/federation/v1/follow",
            origin="https://x.example/n1",
            destination="https://y.example",
            body=b"{}",
            now=0,
        )
