"""Strangers' reach-outs against real nodes on loopback (issue 11 items 3 and 4, spec §8.2, §13.5, §13.7).

Before: on a reach-out the recipient's client asked its node for the sender's key bundle, and
the node asked every follower in turn with 15-second timeouts: three silent followers made every
sync fail, and the node learnt who wrote. Twenty reach-outs from a key with no bundle filled the
pending cap for good. Now the bundle travels inside the seal; the pending cap holds per sender;
pending reach-outs expire; decline and block work without the sender's bundle.
"""

from __future__ import annotations

import asyncio
import base64
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from peerfed.client.peer import Peer
from peerfed.client.transport import NodeAPI, NodeUnreachable
from peerfed.protocol import (
    EncryptionSecret,
    Format,
    Identity,
    KeyBundle,
    Kind,
    Listing,
    PeerId,
    ReachOut,
    RemoteError,
    SealError,
    Timing,
    open_sealed,
    seal,
    sign,
)

from ..node.harness import DAY, Clock, TestNode, federate, free_socket

OFFER = Listing(
    kind=Kind.OFFER,
    topics=("grief",),
    languages=("en",),
    formats=(Format.TEXT,),
    timing=Timing.SOON,
    summary="Lost my mother last spring; I can listen.",
)


@dataclass
class SlowFollower:
    """A fake federated node on 127.0.0.1: counts what it is asked, never answers a key look-up."""

    asked: Counter[str] = field(default_factory=Counter)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    url: str = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.asked[request.path] += 1
        if request.path.startswith("/federation/v1/keys/"):
            await self.release.wait()  # slower than any deadline the node is given
        return web.json_response({"error": {"code": "node.unavailable", "message": "busy"}}, status=503)

    @property
    def key_lookups(self) -> int:
        return sum(n for path, n in self.asked.items() if path.startswith("/federation/v1/keys/"))


@asynccontextmanager
async def slow_followers(of: TestNode, count: int) -> AsyncIterator[list[SlowFollower]]:
    """``count`` slow nodes, made active followers of ``of`` (as if they had followed it)."""
    followers, runners = [], []
    for _ in range(count):
        follower = SlowFollower()
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", follower.handle)
        runner = web.AppRunner(app, shutdown_timeout=0.1)
        await runner.setup()
        sock = free_socket()
        await web.SockSite(runner, sock).start()
        follower.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        await of.node.store.set_node_status(follower.url, "active", int(of.clock()))
        followers.append(follower)
        runners.append(runner)
    try:
        yield followers
    finally:
        for follower in followers:
            follower.release.set()
        for runner in runners:
            await runner.cleanup()


@dataclass
class Stranger:
    """A key that reaches out by hand through node b: signed in there, its bundle never published."""

    identity: Identity
    api: NodeAPI
    clock: Clock

    def bundle(self, life: int = 30 * DAY, *, signer: Identity | None = None) -> bytes:
        now = int(self.clock())
        body = KeyBundle(EncryptionSecret(b"\x98" * 32).public)
        return sign(signer or self.identity, body, created_at=now, expires_at=now + life).raw

    async def reach(self, to: Peer, listing: bytes, n: int, *, bundle: bytes | None = None, life: int = DAY) -> bytes:
        """Seal a reach-out to ``to`` and hand it to node b for ``to``'s node; the sealed bytes."""
        now = int(self.clock())
        body = ReachOut(to.id, bytes([n]) * 16, listing, f"hello {n}", bundle=bundle or self.bundle())
        inner = sign(self.identity, body, created_at=now, expires_at=now + life)
        sealed = seal(inner, to.keys.current[0].public)
        await self.api.send(sealed.raw, destination=to.api.url)
        return sealed.raw


Scenario = Callable[[TestNode, TestNode, Peer, Peer, Stranger, bytes, Clock], Awaitable[None]]


def run(tmp: Path, body: Scenario, **settings: float) -> None:
    """Node a holds ana's mailbox and listing; ben is a genuine peer on node b; mal a stranger on b."""

    async def scenario() -> None:
        clock = Clock()
        a = await TestNode(tmp / "a", clock, **settings).start()
        b = await TestNode(tmp / "b", clock).start()
        try:
            await federate(a, b)
            async with aiohttp.ClientSession() as http:
                ana = await Peer.create(tmp / "ana", http, node=a.url, clock=clock)
                ben = await Peer.create(tmp / "ben", http, node=b.url, clock=clock)
                made = await ana.post_listing(OFFER, 10 * DAY)
                for node in (a, b):
                    await node.deliver()
                mal_identity = Identity(b"\x66" * 32)
                mal_api = NodeAPI(b.url, http)
                await mal_api.sign_in(mal_identity, now=int(clock()))
                mal = Stranger(mal_identity, mal_api, clock)
                await body(a, b, ana, ben, mal, bytes.fromhex(made["id"]), clock)
                await ana.close()
                await ben.close()
        finally:
            await a.stop()
            await b.stop()

    asyncio.run(scenario())


async def deliver(*nodes: TestNode) -> None:
    for _ in range(2):
        for node in nodes:
            await node.deliver()


def key_asks(node: TestNode) -> Counter[str]:
    """Count the key look-ups ``node`` serves its own peers (GET /api/v1/keys/...)."""
    asked: Counter[str] = Counter()
    catchup = node.node.catchup
    original = catchup.key_bundle

    async def counting(peer: PeerId) -> object:
        asked[peer.text] += 1
        return await original(peer)

    catchup.key_bundle = counting  # type: ignore[method-assign,assignment]
    return asked


def test_three_silent_followers_cannot_brick_a_sync_and_the_node_never_learns_who_wrote(tmp_path: Path) -> None:
    async def body(a: TestNode, b: TestNode, ana: Peer, ben: Peer, mal: Stranger, listing: bytes, c: Clock) -> None:
        asked = key_asks(a)
        async with slow_followers(a, 3) as followers:
            made = await ben.browse()
            assert [x["id"] for x in made] == [listing.hex()]
            reach = await ben.reach(listing.hex()[:8], "Hello, could we talk this week?")
            await deliver(a, b)
            report = await ana.sync()
            assert (report.new_connections, report.dropped, report.later) == (1, 0, 0)
            shown = await ana.connections()
            assert [x["id"] for x in shown] == [reach["connection"]]
            assert shown[0]["hello"] == "Hello, could we talk this week?"
            # Nobody was asked who ben is: not ana's node, not one follower.
            assert ben.id.text not in asked
            assert [f.key_lookups for f in followers] == [0, 0, 0]
            # Ana answers with the bundle the reach-out carried: still no look-up.
            await ana.respond(reach["connection"][:8], True, "Yes, gladly.")
            assert ben.id.text not in asked
            assert [f.key_lookups for f in followers] == [0, 0, 0]
            # A look-up that is still needed (a peer ana's node has no bundle for) asks all three at
            # once and gives up after one deadline; a second ask is answered from the negative cache.
            for _ in range(2):
                with pytest.raises(RemoteError) as info:
                    await ana.bundle_for(mal.identity.peer_id)
                assert info.value.code == "not_found"
            assert [f.key_lookups for f in followers] == [1, 1, 1]
            assert asked[mal.identity.peer_id.text] == 2  # the count above does see look-ups

    run(tmp_path, body, key_lookup_deadline=0.3)


def test_twenty_reach_outs_from_one_key_do_not_fill_the_cap(tmp_path: Path) -> None:
    async def body(a: TestNode, b: TestNode, ana: Peer, ben: Peer, mal: Stranger, listing: bytes, c: Clock) -> None:
        for n in range(20):
            await mal.reach(ana, listing, n)
        await deliver(a, b)
        report = await ana.sync()
        assert (report.new_connections, report.dropped) == (3, 17)
        await ben.browse()
        genuine = await ben.reach(listing.hex()[:8], "Hello, I saw your card.")
        await deliver(a, b)
        report = await ana.sync()
        assert report.new_connections == 1
        assert genuine["connection"] in [x["id"] for x in await ana.connections()]
        assert await ana.pending_reach_outs() == 4

    run(tmp_path, body)


def test_pending_reach_outs_expire_with_the_reach_out(tmp_path: Path) -> None:
    async def body(a: TestNode, b: TestNode, ana: Peer, ben: Peer, mal: Stranger, listing: bytes, c: Clock) -> None:
        ana.pending_cap = 3
        keys = [Identity(bytes([0x70 + i]) * 32) for i in range(3)]
        for i, key in enumerate(keys):
            await mal.api.sign_in(key, now=int(c()))
            one = Stranger(key, mal.api, c)
            await one.reach(ana, listing, i, life=DAY)
        await deliver(a, b)
        assert (await ana.sync()).new_connections == 3
        assert await ana.pending_reach_outs() == 3
        await ben.browse()
        await ben.reach(listing.hex()[:8], "Hello?")
        await deliver(a, b)
        assert (await ana.sync()).dropped == 1  # the cap is full, for now
        c.advance(DAY)  # the strangers' reach-outs lapse unanswered
        report = await ana.sync()
        assert report.expired == 3
        assert await ana.pending_reach_outs() == 0
        assert await ana.connections() == []
        genuine = await ben.reach(listing.hex()[:8], "Hello again?")
        await deliver(a, b)
        assert (await ana.sync()).new_connections == 1
        assert [x["id"] for x in await ana.connections()] == [genuine["connection"]]

    run(tmp_path, body)


def test_decline_and_block_work_without_the_senders_bundle(tmp_path: Path) -> None:
    async def body(a: TestNode, b: TestNode, ana: Peer, ben: Peer, mal: Stranger, listing: bytes, c: Clock) -> None:
        # The bundle each reach-out carries was valid when written and has lapsed since: ana's
        # client holds no bundle for mal, and no node has one.
        for n in range(3):
            await mal.reach(ana, listing, n, bundle=mal.bundle(life=60))
        c.advance(120)
        await deliver(a, b)
        assert (await ana.sync()).new_connections == 3
        first = (await ana.connections())[0]["id"]
        declined = await ana.respond(first[:8], False)
        assert declined == {"connection": first, "state": "declined", "delivered": False}
        assert await ana.pending_reach_outs() == 2
        blocked = await ana.block(mal.identity.peer_id.text)
        assert blocked["dropped"] == 2
        assert await ana.pending_reach_outs() == 0
        assert [x["id"] for x in await ana.connections()] == [first]

    run(tmp_path, body)


def test_a_reach_out_carrying_another_authors_bundle_is_refused(tmp_path: Path) -> None:
    async def body(a: TestNode, b: TestNode, ana: Peer, ben: Peer, mal: Stranger, listing: bytes, c: Clock) -> None:
        bens = mal.bundle(signer=Identity(b"\x67" * 32))
        raw = await mal.reach(ana, listing, 1, bundle=bens)
        with pytest.raises(SealError) as info:
            open_sealed(raw, recipient=ana.id, secrets=ana.keys.secrets(), now=int(c()))
        assert info.value.code == "seal.wrong_sender"
        await deliver(a, b)
        report = await ana.sync()
        assert (report.received, report.dropped) == (0, 1)
        assert await ana.connections() == []
        assert (await ana.api.mailbox())["items"] == []  # dropped and acknowledged

    run(tmp_path, body)


def test_an_item_that_must_wait_is_left_for_later_and_the_rest_is_acknowledged(tmp_path: Path) -> None:
    async def body(a: TestNode, b: TestNode, ana: Peer, ben: Peer, mal: Stranger, listing: bytes, c: Clock) -> None:
        waiting = await mal.reach(ana, listing, 1)
        await mal.reach(ana, listing, 2)
        await deliver(a, b)
        take = ana.inbox.take

        async def unreachable_once(raw: bytes, report: object = None) -> object:
            if raw == waiting:
                raise NodeUnreachable("a look-up it needs is out of reach")
            return await take(raw, report)  # type: ignore[arg-type]

        ana.inbox.take = unreachable_once  # type: ignore[method-assign,assignment]
        report = await ana.sync()
        assert (report.new_connections, report.later) == (1, 1)
        left = (await ana.api.mailbox())["items"]
        assert [base64.b64decode(i["sealed"]) for i in left] == [waiting]
        ana.inbox.take = take  # type: ignore[method-assign]
        report = await ana.sync()
        assert (report.new_connections, report.later) == (1, 0)
        assert (await ana.api.mailbox())["items"] == []

    run(tmp_path, body)
