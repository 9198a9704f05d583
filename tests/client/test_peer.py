"""The client library with a controllable clock: expiry, refusals before anything leaves the device."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest

from peerfed.client import keyring as kr
from peerfed.client.account import sign_bundle
from peerfed.client.peer import Peer
from peerfed.protocol import (
    EncryptionSecret,
    Format,
    Identity,
    IllegalSend,
    KeyBundle,
    Kind,
    Listing,
    ReachOut,
    RemoteError,
    Timing,
    seal,
    sign,
)
from tests.node.harness import DAY, Clock, TestNode, federate

OFFER = Listing(
    kind=Kind.OFFER,
    topics=("grief",),
    languages=("en",),
    formats=(Format.TEXT,),
    timing=Timing.SOON,
    summary="Lost my mother last spring; I can listen.",
)


def test_an_expired_listing_cannot_be_reached_and_a_late_reach_out_is_dropped(tmp_path: Path) -> None:
    async def scenario() -> None:
        clock = Clock()
        a = await TestNode(tmp_path / "a", clock).start()
        b = await TestNode(tmp_path / "b", clock).start()
        await federate(a, b)
        async with aiohttp.ClientSession() as http:
            ana = await Peer.create(tmp_path / "ana", http, node=a.url, clock=clock)
            ben = await Peer.create(tmp_path / "ben", http, node=b.url, clock=clock)
            made = await ana.post_listing(OFFER, 3600)
            for node in (a, b):
                await node.deliver()
            assert [x["id"] for x in await ben.browse()] == [made["id"]]
            clock.advance(3601)
            with pytest.raises(RemoteError) as info:
                await ben.reach(made["id"][:8], "hello?")
            assert info.value.code == "time.expired"
            assert await ben.connections() == []
            # A reach-out made some other way, after expiry, is dropped by the author's client.
            bundle = await ben.bundle_for(ana.id)
            inner = sign(
                ben.keys.identity,
                ReachOut(
                    ana.id, bytes(16), bytes.fromhex(made["id"]), "late", bundle=(await sign_bundle(ben.device)).raw
                ),
                created_at=int(clock()),
                expires_at=int(clock()) + DAY,
            )
            await ben.api.send(seal(inner, bundle.encryption_key).raw)
            for node in (a, b):
                await node.deliver()
            report = await ana.sync()
            assert (report.received, report.dropped) == (0, 1)
            assert await ana.connections() == []
            await ana.close()
            await ben.close()
        await a.stop()
        await b.stop()

    asyncio.run(scenario())


def test_nothing_is_sent_when_the_state_machine_refuses(tmp_path: Path) -> None:
    async def scenario() -> None:
        clock = Clock()
        node = await TestNode(tmp_path / "n", clock).start()
        async with aiohttp.ClientSession() as http:
            ana = await Peer.create(tmp_path / "ana", http, node=node.url, clock=clock)
            ben = await Peer.create(tmp_path / "ben", http, node=node.url, clock=clock)
            made = await ana.post_listing(OFFER, DAY)
            await ben.browse()
            connection = (await ben.reach(made["id"], "hello"))["connection"]
            before = (await node.node.store.counts())["mailbox"]
            with pytest.raises(IllegalSend):
                await ben.send(connection, "can I talk already?")
            with pytest.raises(IllegalSend):
                await ben.respond(connection, True)  # only the listing's author answers
            assert (await node.node.store.counts())["mailbox"] == before
            await ana.close()
            await ben.close()
        await node.stop()

    asyncio.run(scenario())


def test_the_newest_key_bundle_is_the_one_created_last_whatever_its_expiry(tmp_path: Path) -> None:
    async def scenario() -> None:
        clock = Clock()
        node = await TestNode(tmp_path / "n", clock).start()
        async with aiohttp.ClientSession() as http:
            ana = await Peer.create(tmp_path / "ana", http, node=node.url, clock=clock)
            ben = Identity(bytes([7]) * 32)
            now = int(clock.now)
            old_key, new_key = EncryptionSecret(bytes([8]) * 32), EncryptionSecret(bytes([9]) * 32)

            def bundle(key: EncryptionSecret, created: int, life: int) -> bytes:
                body = KeyBundle(key.public, home=node.url)
                return sign(ben, body, created_at=created, expires_at=created + life).raw

            remember = ana.listings.remember_bundle
            newer = await remember(bundle(new_key, now - 10, 10 * DAY), ben.peer_id)
            # An older bundle that lives longer does not replace it (spec §4.3) ...
            kept = await remember(bundle(old_key, now - 20, 300 * DAY), ben.peer_id)
            assert newer is not None and kept == newer and kept.encryption_key == new_key.public
            # ... a tie keeps the one held, and only a later created_at replaces it.
            assert await remember(bundle(old_key, now - 10, 20 * DAY), ben.peer_id) == newer
            latest = await remember(bundle(old_key, now, DAY), ben.peer_id)
            assert latest is not None and latest.encryption_key == old_key.public
            assert (await ana.listings.bundle_for(ben.peer_id)).encryption_key == old_key.public
            await ana.close()
        await node.stop()

    asyncio.run(scenario())


def test_keyrings_lock_with_argon2id_and_refuse_a_wrong_passphrase() -> None:
    keys = kr.Keyring(Identity(bytes(range(32))), [(EncryptionSecret(bytes([7]) * 32), 1, 2)])
    locked = kr.lock(keys, "correct horse")
    assert bytes(range(32)) not in locked
    assert kr.is_locked(locked)
    assert kr.unlock(locked, "correct horse").identity.peer_id == keys.identity.peer_id
    with pytest.raises(kr.WrongPassphrase):
        kr.unlock(locked, "wrong horse")
    with pytest.raises(kr.WrongPassphrase):
        kr.unlock(locked, None)
    with pytest.raises(kr.WrongPassphrase):
        kr.unlock(locked[:-5], "correct horse")  # a truncated file fails its tag
    with pytest.raises(kr.KeyringError):
        kr.unlock(b"\x07junk", "x")
    plain = kr.lock(keys, None)
    assert not kr.is_locked(plain) and kr.unlock(plain, None).to_bytes() == keys.to_bytes()


def test_unanswered_reach_outs_are_capped_per_recipient(tmp_path: Path) -> None:
    async def scenario() -> None:
        clock = Clock()
        node = await TestNode(tmp_path / "n", clock).start()
        async with aiohttp.ClientSession() as http:
            ana = await Peer.create(tmp_path / "ana", http, node=node.url, clock=clock)
            ana.pending_cap = 3
            made = await ana.post_listing(OFFER, DAY)
            others = [await Peer.create(tmp_path / f"p{n}", http, node=node.url, clock=clock) for n in range(5)]
            for other in others:
                await other.browse()
                await other.reach(made["id"], f"hello from {other.id.text[:8]}")
            report = await ana.sync()
            assert (report.received, report.dropped) == (3, 2)
            pending = await ana.connections()
            assert len(pending) == 3
            await ana.respond(pending[0]["id"], False)  # answering one makes room for the next
            late = await Peer.create(tmp_path / "late", http, node=node.url, clock=clock)
            await late.browse()
            await late.reach(made["id"], "hello, am I too late?")
            assert (await ana.sync()).received == 1
            for peer in (ana, late, *others):
                await peer.close()
        await node.stop()

    asyncio.run(scenario())
