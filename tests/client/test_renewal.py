"""Key bundles renewed on sync, over a year on a controllable clock (spec §12, short bundle lifetimes).

Before: `renew_keys_if_due` was never called, so every peer became unreachable 180 days after
joining: publishing failed and nobody could seal to them. Now a sync renews the encryption key once
its bundle nears expiry and publishes the new bundle; old secrets still open late mail.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp

from peerfed.client.account import BUNDLE_LIFETIME, BUNDLE_RENEW
from peerfed.client.peer import Peer
from peerfed.protocol import Format, Kind, Listing, Timing

from ..node.harness import DAY, Clock, TestNode, federate

OFFER = Listing(
    kind=Kind.OFFER,
    topics=("loneliness",),
    languages=("en",),
    formats=(Format.TEXT,),
    timing=Timing.SOON,
    summary="Weekly check-ins by text, for as long as it helps.",
)
WEEK = 7 * DAY


def test_a_year_of_weekly_syncs_keeps_a_peer_reachable_and_rotates_the_key(tmp_path: Path) -> None:
    async def scenario() -> None:
        clock = Clock()
        a = await TestNode(tmp_path / "a", clock).start()
        b = await TestNode(tmp_path / "b", clock).start()
        await federate(a, b)

        async def settle() -> None:
            for _ in range(3):
                for node in (a, b):
                    await node.node.maintain()
                    await node.deliver()

        async with aiohttp.ClientSession() as http:
            ana = await Peer.create(tmp_path / "ana", http, node=a.url, passphrase="long walk home", clock=clock)
            ben = await Peer.create(tmp_path / "ben", http, node=b.url, clock=clock)
            made = await ana.post_listing(OFFER, 7 * DAY)
            await settle()
            await ben.browse()
            connection = (await ben.reach(made["id"][:8], "Could we check in weekly?"))["connection"]
            await settle()
            await ana.sync()
            await ana.respond(connection[:8], True, "Yes, Sundays.")
            await settle()
            await ben.sync()

            keys_seen = {ana.keys.current[0].public.hex}
            renewals = 0
            for week in range(1, 53):
                clock.advance(WEEK)
                await ben.sync()
                await ben.send(connection[:8], f"week {week}")
                await settle()
                report = await ana.sync()
                renewals += report.renewed
                keys_seen.add(ana.keys.current[0].public.hex)
                texts = [m["text"] for m in (await ana.messages(connection[:8]))["messages"]]
                assert texts[-1] == f"week {week}", f"week {week}: {texts[-3:]}"
                # A live bundle is always published: anyone may still seal to her.
                assert ana.keys.current[2] - int(clock()) > BUNDLE_RENEW - WEEK
            # Renewed about every BUNDLE_LIFETIME - BUNDLE_RENEW, and old secrets are let go.
            expected = (52 * WEEK) // (BUNDLE_LIFETIME - BUNDLE_RENEW)
            assert expected - 1 <= renewals <= expected + 1
            assert len(keys_seen) == renewals + 1
            assert len(ana.keys.encryption) <= 3
            await ana.close()
            await ben.close()
            # The keyring stayed under the passphrase through every renewal.
            reopened = await Peer.load(tmp_path / "ana", http, passphrase="long walk home", clock=clock)
            assert reopened.keys.current[0].public.hex == ana.keys.current[0].public.hex
            await reopened.close()
        await a.stop()
        await b.stop()

    asyncio.run(scenario())
