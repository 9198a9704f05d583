"""Issue 11, "Federation can be cut, silently": keys belong to their origin (spec §13.3 step 5, §13.7).

Before: B mapped a request's key to a node by looking the key up among every document it held,
so a stranger listing A's key and following B made B refuse everything A sent (auth.invalid),
and A marked the items rejected; a moment when B could not fetch A's document did the same.
Now: B checks the key against A's own document only, answers node.unavailable when it cannot
check, and A never drops items on a refusal a receiver's passing trouble can produce.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from peerfed.node.federation import sign_request
from peerfed.node.keys import rotate_key
from peerfed.protocol import Identity, Message

from ..node.harness import Clock, Peer, TestNode, federate
from .faults import install
from .stranger import Stranger, post_signed
from .test_federation_faults import inbox_ids, settle

FOLLOW = "/federation/v1/follow"
BATCH = "/federation/v1/batch"


def admin(data: Path, *args: str) -> Any:
    """What the operator's 'peerfed admin --json' prints, parsed."""
    done = subprocess.run(
        [sys.executable, "-m", "peerfed", "admin", "--data", str(data), "--json", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(done.stdout)


async def mail(sender: Peer, recipient: Peer, text: str, n: int) -> bytes:
    """Send one sealed message through the sender's node; its inner id."""
    inner, sealed = sender.seal_to(recipient, Message(recipient.id, bytes([n]) * 16, n, text))
    await sender.api.send(sealed.raw, destination=recipient.home.url)
    return inner.id


@pytest.mark.parametrize("policy", ["open", "allow-list"])
def test_a_stranger_listing_a_nodes_key_cuts_nothing(tmp_path: Path, policy: str) -> None:
    async def scenario() -> None:
        clock = Clock()
        a = await TestNode(tmp_path / "a", clock).start()
        b = await TestNode(tmp_path / "b", clock, federation=policy).start()
        try:
            await federate(a, b)
            a_key = bytes(a.node.identity.peer_id)
            async with aiohttp.ClientSession() as http, Stranger(clock, 77, extra_keys=[a_key]) as stranger:
                ana = await Peer("ana", a, http, 1).join()
                ben = await Peer("ben", b, http, 2).join()
                await settle(clock, a, b)
                # The attack: the stranger's own document lists A's key, and it follows B.
                status, answer = await post_signed(
                    http, b.url, FOLLOW, b"{}", stranger.sign("POST", FOLLOW, b.url, b"{}")
                )
                assert status == 200
                assert answer["status"] == ("active" if policy == "open" else "pending")
                if policy == "open":  # B stored the stranger's keys, A's among them
                    assert a_key in await b.node.store.node_keys(stranger.url)
                sent = [await mail(ana, ben, f"after the stranger came, {n}", n) for n in range(1, 4)]
                offer = await ana.offer("Still reaching B.")
                await settle(clock, a, b)
                assert await inbox_ids(ben) == sorted(sent)  # every message, exactly once
                assert [x["id"] for x in (await ben.api.directory())["listings"]] == [offer.id.hex()]
                stats = (await a.node.store.outbox_stats())[b.url]
                assert set(stats) == {"done"}  # nothing rejected, nothing given up

                # The operator blocks the stranger: its keys go, and A is still served.
                message = await asyncio.to_thread(admin, b.data, "federation", "block", stranger.url)
                assert "blocked" in message["message"]
                assert await b.node.store.node_keys(stranger.url) == []
                assert (await b.node.store.node(stranger.url)).status == "blocked"  # type: ignore[union-attr]
                clock.advance(60)
                later = await mail(ana, ben, "after the block", 9)
                await settle(clock, a, b)
                assert await inbox_ids(ben) == sorted([*sent, later])
                assert set((await a.node.store.outbox_stats())[b.url]) == {"done"}
        finally:
            await a.stop()
            await b.stop()

    asyncio.run(scenario())


def test_b_failing_to_fetch_a_document_delays_a_and_loses_nothing(tmp_path: Path) -> None:
    """A rotates its key; B must fetch A's document to check it, and cannot for a while: first
    the network to A is down, then B is inside its 10-second throttle after a failed fetch.
    A is told node.unavailable, retries, shows the items as failing, and nothing is rejected;
    once B can fetch, every item arrives exactly once."""

    async def scenario() -> None:
        clock = Clock()
        a = await TestNode(tmp_path / "a", clock).start()
        b = await TestNode(tmp_path / "b", clock).start()
        try:
            await federate(a, b)
            async with aiohttp.ClientSession() as http:
                ana = await Peer("ana", a, http, 1).join()
                ben = await Peer("ben", b, http, 2).join()
                await settle(clock, a, b)
                faults = install(b)
                faults.set(a.url, "down")  # B cannot reach A, so cannot fetch its document
                await a.stop()
                rotate_key(a.data)  # A restarts signing with a key B's cached document lacks
                await a.start()
                sent = [await mail(ana, ben, f"while B cannot check A, {n}", n) for n in range(1, 4)]
                for _ in range(4):  # several rounds, minutes of backoff
                    await a.deliver()
                    clock.advance(300)
                stats = (await a.node.store.outbox_stats())[b.url]
                assert set(stats) <= {"done", "pending"} and stats["pending"] == 3  # kept, never rejected
                assert await inbox_ids(ben) == []
                failing = await asyncio.to_thread(admin, a.data, "federation", "failures")
                assert [(f["state"], f["destination"]) for f in failing] == [("retrying", b.url)] * 3
                assert all("node.unavailable" in f["error"] or "503" in f["error"] for f in failing)

                # A stranger claiming to be A, with a throwaway key, while B cannot fetch: B
                # cannot check it either, and says so; it calls nobody an impostor.
                forged = _as_origin(a.url, b.url, Identity(bytes([55]) * 32), clock, BATCH, b"\x90")
                status, answer = await post_signed(http, b.url, BATCH, b"\x90", forged)
                assert (status, answer["error"]["code"]) == (503, "node.unavailable")

                # The network is back, but B tried A's document under 10 s ago: A's next
                # attempt falls inside the throttle. B does not fetch, A keeps the items.
                due = await a.node.store.next_due()
                assert due is not None
                clock.now = max(clock.now, due)
                faults.set(a.url, "down")
                forged = _as_origin(a.url, b.url, Identity(bytes([56]) * 32), clock, BATCH, b"\x90")
                assert (await post_signed(http, b.url, BATCH, b"\x90", forged))[0] == 503
                faults.set(a.url, None)
                before = b.node.discovery.fetches
                await a.deliver()
                assert b.node.discovery.fetches == before
                assert (await a.node.store.outbox_stats())[b.url]["pending"] == 3
                await settle(clock, a, b)
                assert await inbox_ids(ben) == sorted(sent)
                assert set((await a.node.store.outbox_stats())[b.url]) == {"done"}
                assert await a.node.store.gave_up() == []
        finally:
            await a.stop()
            await b.stop()

    asyncio.run(scenario())


def _as_origin(origin: str, destination: str, identity: Identity, clock: Clock, path: str, body: bytes) -> str:
    """A header claiming ``origin`` signed by ``identity``: what a stranger forging a node sends."""
    return sign_request(
        identity, method="POST", path=path, origin=origin, destination=destination, body=body, now=int(clock())
    )


def test_a_throwaway_key_claiming_an_active_node_is_refused_and_the_node_is_unharmed(tmp_path: Path) -> None:
    async def scenario() -> None:
        clock = Clock()
        a = await TestNode(tmp_path / "a", clock).start()
        b = await TestNode(tmp_path / "b", clock).start()
        try:
            await federate(a, b)
            clock.advance(11)  # past the fetch made while following
            async with aiohttp.ClientSession() as http:
                ana = await Peer("ana", a, http, 1).join()
                ben = await Peer("ben", b, http, 2).join()
                header = _as_origin(a.url, b.url, Identity(bytes([66]) * 32), clock, BATCH, b"\x90")
                status, answer = await post_signed(http, b.url, BATCH, b"\x90", header)
                assert (status, answer["error"]["code"]) == (401, "auth.invalid")
                assert (await b.node.store.node(a.url)).status == "active"  # type: ignore[union-attr]
                assert bytes(a.node.identity.peer_id) in await b.node.store.node_keys(a.url)
                sent = await mail(ana, ben, "unharmed", 1)
                await settle(clock, a, b)
                assert await inbox_ids(ben) == [sent]
        finally:
            await a.stop()
            await b.stop()

    asyncio.run(scenario())
