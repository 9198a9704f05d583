"""A device that takes the identity back keeps its conversations going (spec §9.5, §14.6, R-9.5-5, R-9.5-6).

Ben moves to a second device with a backup, talks there (two round trips, so both ratchets move
on and the second device numbers messages the first also holds), then takes the identity back on
the first device without a backup. Without the floor his next message would reuse a ``seq`` and
be refused, and sealed from the stale session it could not be opened (nor could he open Ana's).
``test_cli_devices`` shows the other half: a stale session still opens what it can.
"""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

from peerfed.client import sessions
from peerfed.client.peer import Peer
from peerfed.client.taking_over import FLOOR_EPOCH, floor
from peerfed.protocol import Context, open_signed
from peerfed.protocol.sealing import parse_sealed
from tests.client.test_sessions_client import connected_pair, mail, two_nodes
from tests.node.harness import Clock


async def laptop_of(ben: Peer, tmp_path: Path, clock: Clock) -> Peer:
    """Ben's backup, made now, opened on a second device: the identity moves there (spec §13.4)."""
    await ben.export_backup(tmp_path / "ben.backup", "a long phrase")
    blob = (tmp_path / "ben.backup").read_bytes()
    return await Peer.restore(tmp_path / "ben-laptop", ben.device.http, blob, "a long phrase", clock=clock)


def test_a_device_that_takes_the_identity_back_without_a_backup_keeps_the_conversation(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with two_nodes(tmp_path) as (clock, a, b, ana, ben):
            await ben.sync()
            connection = await connected_pair(a, b, ana, ben)
            cid = bytes.fromhex(connection)
            # A take-over asked for where the identity already is changes nothing (no floor, no mark).
            assert await ben.account.take_over() is None
            assert await ben.device.state.get(sessions.STALE + connection) is None
            assert await floor(ben.device) == 0
            clock.advance(60)
            moved_at = int(clock())
            laptop = await laptop_of(ben, tmp_path, clock)
            try:
                for theirs, mine in [("On the laptop now.", "Noted."), ("Still on the laptop.", "Got it.")]:
                    await laptop.send(connection[:8], theirs)
                    clock.advance(1)  # a second apart, so the display order is the order written
                    await mail(ana, b, a)
                    await ana.sync()
                    await ana.send(connection[:8], mine)
                    await mail(laptop, a, b)
                    await laptop.sync()
                    clock.advance(1)
                on_laptop = await laptop.messages(connection[:8])
            finally:
                await laptop.close()
            assert on_laptop["forward_secret"] is True
            # The laptop numbered from its own take-over's floor (R-9.5-5).
            laptop_seqs = [m["seq"] for m in on_laptop["messages"] if "laptop" in m["text"]]
            assert laptop_seqs == [moved_at - FLOOR_EPOCH, moved_at - FLOOR_EPOCH + 1]
            assert await sessions.load(ben.device, cid) is not None  # the phone's state, now behind

            clock.advance(60)
            await ben.account.take_over()
            # No backup came with it: the phone's session is kept to open what it still can, but
            # marked as possibly behind (R-9.5-6); its bundle is published again, and the node's
            # one-time pre-keys are the phone's own (R-13.5-29).
            assert await sessions.load(ben.device, cid) is not None
            assert await ben.device.state.get(sessions.STALE + connection) == 1
            assert (await ben.device.api.call("GET", "/api/v1/prekeys"))["stock"] == 100
            held = await ben.device.api.keys(ben.id.text)
            bundle = open_signed(base64.b64decode(held["key_bundle"]), context=Context.KEY_BUNDLE, now=int(clock()))
            assert bundle.created_at == int(clock())  # published at the take-over (R-9.5-7)
            sent = await ben.send(connection[:8], "Back on my phone.")
            assert sent["seq"] > max(laptop_seqs)
            # Its next message went with scheme 1, and the session with it.
            assert await sessions.load(ben.device, cid) is None
            assert await ben.device.state.get(sessions.STALE + connection) is None
            clock.advance(1)
            [raw] = await mail(ana, b, a)
            assert parse_sealed(raw).payload[0] == 1  # no session: scheme 1, which tells Ana (§14.6)
            await ana.sync()
            read = await ana.messages(connection[:8])
            assert [m["text"] for m in read["messages"]] == [
                "On the laptop now.",
                "Noted.",
                "Still on the laptop.",
                "Got it.",
                "Back on my phone.",
            ]
            # Ana let her session go (R-14.5-2) and says the conversation is no longer forward secret.
            assert read["forward_secret"] is False
            assert await sessions.load(ana.device, cid) is None
            await ana.send(connection[:8], "Welcome back.")
            [raw] = await mail(ben, a, b)
            assert parse_sealed(raw).payload[0] == 1
            await ben.sync()
            texts = [m["text"] for m in (await ben.messages(connection[:8]))["messages"]]
            # What reached the laptop stays there; the phone has its own and what came after.
            assert texts == ["Back on my phone.", "Welcome back."]

    asyncio.run(scenario())


def test_a_take_over_with_a_backup_keeps_its_sessions_and_numbers_past_the_floor(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with two_nodes(tmp_path) as (clock, a, b, ana, ben):
            connection = await connected_pair(a, b, ana, ben)
            cid = bytes.fromhex(connection)
            await ben.send(connection[:8], "One.")
            clock.advance(5)
            laptop = await laptop_of(ben, tmp_path, clock)
            try:
                assert await sessions.load(laptop.device, cid) is not None
                sent = await laptop.send(connection[:8], "Two.")
                assert sent["seq"] == int(clock()) - FLOOR_EPOCH
                await mail(ana, b, a)
                await ana.sync()
                read = await ana.messages(connection[:8])
                assert [m["text"] for m in read["messages"]] == ["One.", "Two."]
                assert read["forward_secret"] is True
            finally:
                await laptop.close()

    asyncio.run(scenario())
