"""The client's pre-keys: a signed pre-key in its bundle, one-time pre-keys topped up on sync (spec §14.1, §13.5)."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

import aiohttp

from peerfed.client import keyring as kr
from peerfed.client import prekeys
from peerfed.client.account import sign_bundle
from peerfed.client.peer import Peer
from peerfed.client.state import Backup
from peerfed.node.prekeys import LOW_STOCK, STOCK_CAP
from peerfed.protocol import Envelope, KeyBundle, open_signed
from peerfed.protocol.envelope import Context
from tests.node.harness import DAY, Clock, TestNode


def test_sync_tops_up_the_one_time_pre_keys_and_the_bundle_names_a_signed_pre_key(tmp_path: Path) -> None:
    async def scenario() -> None:
        clock = Clock()
        node = await TestNode(tmp_path / "n", clock).start()
        try:
            async with aiohttp.ClientSession() as http:
                ana = await Peer.create(tmp_path / "ana", http, node=node.url, clock=clock)
                try:
                    await check(ana, node, clock)
                finally:
                    await ana.close()
        finally:
            await node.stop()

    async def check(ana: Peer, node: TestNode, clock: Clock) -> None:
        store, owner = node.node.store, bytes(ana.id)
        # The published bundle names the signed pre-key whose secret the device keeps, for 60 days at most.
        answer = await ana.device.api.keys(ana.id.text)
        bundle = open_signed(base64.b64decode(answer["key_bundle"]), context=Context.KEY_BUNDLE, now=int(clock()))
        assert isinstance(bundle.body, KeyBundle) and bundle.body.prekey is not None
        assert bundle.expires_at - bundle.created_at <= 60 * DAY
        held = await prekeys.load(ana.device)
        assert [s.public for s, _, _ in held.signed] == [bundle.body.prekey]
        # The first sync fills the stock to the cap; every key handed out is one the device holds.
        assert await store.prekey_stock(owner) == 0
        await ana.sync()
        assert await store.prekey_stock(owner) == STOCK_CAP
        publics = {bytes(s.public) for s in (await prekeys.load(ana.device)).one_time}
        assert len(publics) == STOCK_CAP
        for _ in range(STOCK_CAP - LOW_STOCK + 1):  # claimed down to just below the low mark
            key = await store.claim_prekey(owner)
            assert key in publics
        await ana.sync()
        assert await store.prekey_stock(owner) == STOCK_CAP
        assert len((await prekeys.load(ana.device)).one_time) == STOCK_CAP + STOCK_CAP - LOW_STOCK + 1
        await ana.sync()  # above the mark: nothing is uploaded
        assert await store.prekey_stock(owner) == STOCK_CAP
        # The pre-key secrets travel in a backup still sealed under the seed's key (spec §9.6), never in plain.
        await ana.export_backup(tmp_path / "ana.backup", "backup phrase")
        backup = Backup.from_bytes(kr.open_blob((tmp_path / "ana.backup").read_bytes(), "backup phrase"))
        stored = await ana.device.state.get("prekeys")
        assert dict(backup.meta)["prekeys"] == stored
        assert isinstance(stored, bytes) and (await prekeys.load(ana.device)).to_bytes() not in stored

    asyncio.run(scenario())


def test_a_signed_pre_key_is_renewed_every_30_days_and_its_secret_deleted_a_week_after_its_last_bundle(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        clock = Clock()
        node = await TestNode(tmp_path / "n", clock).start()
        try:
            async with aiohttp.ClientSession() as http:
                ana = await Peer.create(tmp_path / "ana", http, node=node.url, clock=clock)
                try:
                    await check(ana, clock)
                finally:
                    await ana.close()
        finally:
            await node.stop()

    async def check(ana: Peer, clock: Clock) -> None:
        def named(env: object) -> object:
            assert isinstance(env, Envelope) and isinstance(env.body, KeyBundle)
            return env.body.prekey

        async def held() -> list[object]:
            return [s.public for s, _, _ in (await prekeys.load(ana.device)).signed]

        first = await sign_bundle(ana.device)
        assert named(await sign_bundle(ana.device)) == named(first)  # the same key within 30 days
        clock.advance(30 * DAY)
        second = await sign_bundle(ana.device)
        assert named(second) != named(first) and await held() == [named(first), named(second)]
        # The first secret is kept until the last bundle naming it expired and 7 days more, then deleted.
        clock.advance(15 * DAY)
        assert await ana.renew_keys_if_due(None)  # a new encryption key, so bundles can still be signed
        clock.advance(first.expires_at + 7 * DAY - int(clock()) - 1)
        await sign_bundle(ana.device)
        assert named(first) in await held()
        clock.advance(1)
        third = await sign_bundle(ana.device)
        assert await held() == [named(second), named(third)]

    asyncio.run(scenario())
