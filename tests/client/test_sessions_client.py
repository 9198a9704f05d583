"""The client seals with scheme 2 where §14.7 says so, keeps its sessions as §14.4 and §14.5 ask,
and a conversation survives what the network and the devices do to it (spec §14)."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from peerfed.client import keyring as kr
from peerfed.client import prekeys, sessions
from peerfed.client.errors import Undelivered
from peerfed.client.peer import Peer
from peerfed.client.state import Backup
from peerfed.client.transport import NodeUnreachable
from peerfed.protocol import RemoteError, open_sealed
from peerfed.protocol.sealing import parse_sealed
from peerfed.protocol.sealing2 import open_sealed2
from tests.client.test_peer import OFFER
from tests.node.harness import DAY, Clock, TestNode, federate


@asynccontextmanager
async def two_nodes(tmp_path: Path) -> AsyncIterator[tuple[Clock, TestNode, TestNode, Peer, Peer]]:
    """Ana on node a offers, Ben on node b (federated with a): their peers, not yet connected."""
    clock = Clock()
    a = await TestNode(tmp_path / "a", clock).start()
    b = await TestNode(tmp_path / "b", clock).start()
    await federate(a, b)
    try:
        async with aiohttp.ClientSession() as http:
            ana = await Peer.create(tmp_path / "ana", http, node=a.url, clock=clock)
            ben = await Peer.create(tmp_path / "ben", http, node=b.url, clock=clock)
            try:
                yield clock, a, b, ana, ben
            finally:
                await ana.close()
                await ben.close()
    finally:
        await a.stop()
        await b.stop()


async def mail(peer: Peer, *nodes: TestNode) -> list[bytes]:
    """What waits in ``peer``'s mailbox once the nodes delivered, as sealed bytes (a node's view)."""
    for node in nodes:
        await node.deliver()
    page = await peer.device.api.mailbox(after=0, limit=100)
    return [base64.b64decode(item["sealed"]) for item in page["items"]]


async def opens(peer: Peer, raw: bytes) -> bool:
    """Whether ``peer``'s device, with everything it holds now, can open ``raw``."""
    held = await prekeys.load(peer.device)
    try:
        open_sealed2(
            raw,
            recipient=peer.id,
            secrets=peer.device.keys.secrets(),
            signed_prekeys=[s for s, _, _ in held.signed],
            one_time_prekeys=held.one_time,
            sessions=await sessions.load_all(peer.device),
            now=peer.device.now(),
        )
    except RemoteError:
        return False
    return True


def test_a_conversation_runs_on_scheme_2_and_a_read_message_cannot_be_opened_again(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with two_nodes(tmp_path) as (clock, a, b, ana, ben):
            await ana.sync()  # uploads one-time pre-keys
            stock = await a.node.store.prekey_stock(bytes(ana.id))
            one_time = {bytes(s.public) for s in (await prekeys.load(ana.device)).one_time}
            offer = await ana.post_listing(OFFER, DAY)
            await a.deliver()
            assert [x["id"] for x in await ben.browse()] == [offer["id"]]
            reached = await ben.reach(offer["id"][:8], "Could we talk tonight?")
            connection = bytes.fromhex(reached["connection"])
            # Ben claimed one of Ana's one-time pre-keys through his own node, and began the session.
            assert await a.node.store.prekey_stock(bytes(ana.id)) == stock - 1
            assert (await sessions.load(ben.device, connection)) is not None
            [hello] = await mail(ana, b, a)
            assert parse_sealed(hello).payload[0] == 2  # a node sees scheme 2, nothing more
            assert (await ana.sync()).new_connections == 1
            # Ana kept the session and deleted the one-time secret it used (spec §14.5 step 9).
            assert (await sessions.load(ana.device, connection)) is not None
            left = {bytes(s.public) for s in (await prekeys.load(ana.device)).one_time}
            assert len(one_time - left) == 1 and left < one_time
            assert not await opens(ana, hello)  # read once: its key and its one-time secret are gone

            await ana.respond(reached["connection"][:8], True, "Yes, after nine.")
            captured: list[bytes] = []
            for n in range(3):
                await mail(ben, a, b)
                await ben.sync()
                await ben.send(reached["connection"][:8], f"Ben's message {n}")
                clock.advance(1)  # shown in time order; a tie would go by peer id (spec §9.5)
                captured += await mail(ana, b, a)
                await ana.sync()
                await ana.send(reached["connection"][:8], f"Ana's answer {n}")
                clock.advance(1)
            await mail(ben, a, b)
            await ben.sync()
            assert all(parse_sealed(raw).payload[0] == 2 for raw in captured)
            read = await ben.messages(reached["connection"][:8])
            assert read["forward_secret"] is True
            texts = [m["text"] for m in read["messages"]]
            assert texts == [t for n in range(3) for t in (f"Ben's message {n}", f"Ana's answer {n}")]
            # Forward secrecy at the device: neither the current states nor the long-term keys open
            # what was read (the identity seed and bundle key are still on the device).
            for raw in captured:
                assert not await opens(ana, raw)
                with pytest.raises(RemoteError):
                    open_sealed(raw, recipient=ana.id, secrets=ana.device.keys.secrets(), now=ana.device.now())
            # Every session ends with its connection (R-9.4-3).
            await ben.end(reached["connection"][:8])
            await mail(ana, b, a)
            await ana.sync()
            assert await sessions.load(ben.device, connection) is None
            assert await sessions.load(ana.device, connection) is None

    asyncio.run(scenario())


def test_an_undelivered_message_keeps_its_sealed_bytes_and_its_retry_sends_them_again(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with two_nodes(tmp_path) as (_, a, b, ana, ben):
            connection = await connected_pair(a, b, ana, ben)
            sent: list[bytes] = []
            real = ben.device.api.send

            async def down(raw: bytes, destination: str | None = None) -> Any:
                sent.append(raw)
                raise NodeUnreachable("the node is away")

            ben.device.api.send = down  # type: ignore[method-assign, assignment]
            with pytest.raises(Undelivered):
                await ben.send(connection[:8], "Said while the node was away.")
            [first] = sent
            # The state that sealed it was stored before the attempt (R-14.4-1), and so were its bytes.
            keys = await ben.device.state.select("SELECT key FROM meta WHERE key LIKE 'sealed %'")
            assert len(keys) == 1

            async def up(raw: bytes, destination: str | None = None) -> Any:
                sent.append(raw)
                return await real(raw, destination)

            ben.device.api.send = up  # type: ignore[method-assign, assignment]
            assert (await ben.retry_drafts()).sent == 1
            assert sent == [first, first]  # the same bytes: no second message key spent
            assert await ben.device.state.select("SELECT key FROM meta WHERE key LIKE 'sealed %'") == []
            await ben.send(connection[:8], "And this one after it.")
            await mail(ana, b, a)
            await ana.sync()
            texts = [m["text"] for m in (await ana.messages(connection[:8]))["messages"]]
            assert texts == ["Said while the node was away.", "And this one after it."]

    asyncio.run(scenario())


async def listed(a: TestNode, ana: Peer, ben: Peer) -> str:
    """Ana's offer, published on node a and seen by Ben: its id in hex."""
    offer = await ana.post_listing(OFFER, DAY)
    await a.deliver()
    await ben.browse()
    return str(offer["id"])


async def connected_pair(a: TestNode, b: TestNode, ana: Peer, ben: Peer) -> str:
    """Ben reached out to Ana's offer and Ana accepted, both on scheme 2: the connection's id in hex."""
    offer = await listed(a, ana, ben)
    connection: str = (await ben.reach(offer[:8], "Hello"))["connection"]
    await mail(ana, b, a)
    await ana.sync()
    await ana.respond(connection[:8], True)
    await mail(ben, a, b)
    await ben.sync()
    return connection


def test_a_device_moved_with_a_backup_opens_what_was_sent_before_it_took_over(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with two_nodes(tmp_path) as (clock, a, b, ana, ben):
            await ben.sync()  # one-time pre-keys on node b, their secrets on Ben's device
            connection = await connected_pair(a, b, ana, ben)
            cid = bytes.fromhex(connection)
            # The backup carries the sessions and pre-key secrets, still sealed under the seed's key (spec §9.6).
            await ben.export_backup(tmp_path / "ben.backup", "a long phrase")
            blob = (tmp_path / "ben.backup").read_bytes()
            meta = dict(Backup.from_bytes(kr.open_blob(blob, "a long phrase")).meta)
            assert meta["ratchet " + connection] == await ben.device.state.get("ratchet " + connection)
            assert meta["prekeys"] == await ben.device.state.get("prekeys")
            assert "token" not in meta
            # Ana writes while Ben moves: sealed to the state Ben had, which the backup holds.
            await ana.send(connection[:8], "Are you there?")
            clock.advance(1)
            again = await Peer.restore(
                tmp_path / "ben-again", ana.device.api.session, blob, "a long phrase", clock=clock
            )
            try:
                await ana.send(connection[:8], "Take your time.")
                clock.advance(1)
                assert {parse_sealed(raw).payload[0] for raw in await mail(again, a, b)} == {2}
                await again.sync()
                await again.send(connection[:8], "On my new phone now.")
                await mail(ana, b, a)
                await ana.sync()
                read = await ana.messages(connection[:8])
                assert [m["text"] for m in read["messages"]] == [
                    "Are you there?",
                    "Take your time.",
                    "On my new phone now.",
                ]
                assert read["forward_secret"] is True
                assert (await again.messages(connection[:8]))["forward_secret"] is True
                assert await sessions.load(ana.device, cid) is not None
            finally:
                await again.close()

    asyncio.run(scenario())


def test_a_device_that_lost_its_sessions_goes_on_with_scheme_1_and_the_other_side_follows(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with two_nodes(tmp_path) as (clock, a, b, ana, ben):
            connection = await connected_pair(a, b, ana, ben)
            cid = bytes.fromhex(connection)
            assert await sessions.load(ana.device, cid) is not None
            # Ben's state is gone (as on a client without scheme 2, or an old backup's device).
            await sessions.drop(ben.device, cid)
            await ben.send(connection[:8], "From my new phone.")
            clock.advance(1)
            [raw] = await mail(ana, b, a)
            assert parse_sealed(raw).payload[0] == 1  # no session here: scheme 1 (spec §14.7)
            await ana.sync()
            # Ana took it and let the session go (R-14.5-2): both sides now use scheme 1.
            assert await sessions.load(ana.device, cid) is None
            await ana.send(connection[:8], "Welcome back.")
            [raw] = await mail(ben, a, b)
            assert parse_sealed(raw).payload[0] == 1
            await ben.sync()
            read = await ben.messages(connection[:8])
            assert [m["text"] for m in read["messages"]] == ["From my new phone.", "Welcome back."]
            # Each side says what it reads is no longer forward secret (spec §14.5).
            assert read["forward_secret"] is False
            assert (await ana.messages(connection[:8]))["forward_secret"] is False

    asyncio.run(scenario())


def test_a_session_is_kept_only_once_the_rules_take_its_first_message(tmp_path: Path) -> None:
    """A scheme-2 reach-out for a listing that is not the recipient's is dropped, and leaves no session."""

    async def scenario() -> None:
        async with two_nodes(tmp_path) as (_, a, b, ana, ben):
            offer = await listed(a, ana, ben)
            connection = (await ben.reach(offer[:8], "Hello"))["connection"]
            await mail(ana, b, a)
            await _forget_listing(ana, offer)
            report = await ana.sync()
            assert (report.received, report.dropped) == (0, 1)
            assert await sessions.load(ana.device, bytes.fromhex(connection)) is None

    asyncio.run(scenario())


async def _forget_listing(peer: Peer, listing: str) -> None:
    await peer.device.state.write("DELETE FROM listings WHERE id=?", (bytes.fromhex(listing),))


def test_read_says_plainly_when_a_live_conversation_is_not_forward_secret() -> None:
    from peerfed.client.cli.verbs_connections import _render_read

    base = {"connection": "00" * 16, "opening": [], "messages": []}
    plain = _render_read(None, {**base, "state": "agreed", "forward_secret": False})  # type: ignore[arg-type]
    assert "not forward secret" in plain and plain.endswith("-- agreed")
    assert "forward secret" not in _render_read(None, {**base, "state": "agreed", "forward_secret": True})  # type: ignore[arg-type]
    # Nothing more is sent on an ended connection, so nothing is said there.
    assert "forward secret" not in _render_read(None, {**base, "state": "ended", "forward_secret": False})  # type: ignore[arg-type]


def test_opening_a_message_unseals_only_its_own_connections_session(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def scenario() -> None:
        async with two_nodes(tmp_path) as (_, a, b, ana, ben):
            connection = await connected_pair(a, b, ana, ben)
            held = await sessions.load(ana.device, bytes.fromhex(connection))
            assert held is not None
            for _ in range(30):  # thirty other conversations' sessions on Ana's device
                await sessions.save(ana.device, dataclasses.replace(held, connection=os.urandom(16)))
            unsealed: list[object] = []
            real = sessions._session

            def counting(device: Any, stored: object) -> Any:
                unsealed.append(stored)
                return real(device, stored)

            monkeypatch.setattr(sessions, "_session", counting)
            await ben.send(connection[:8], "Only one state is needed for this.")
            await mail(ana, b, a)
            unsealed.clear()  # Ben's device unsealed his to send it
            await ana.sync()
            # The one of its connection (before, all thirty-one were unsealed for every message).
            assert len(unsealed) == 1
            assert [m["text"] for m in (await ana.messages(connection[:8]))["messages"]] == [
                "Only one state is needed for this."
            ]

    asyncio.run(scenario())
