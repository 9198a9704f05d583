"""The inbox: fetch the mailbox, open, apply, acknowledge; live (spec §7.3, §13.5).

Sealed mail is opened (spec §7.3, or §14.5 for scheme 2 with the sessions and pre-key secrets
held) with this peer's encryption secrets, old ones included so late mail still opens, and
applied to its connection. Anything that does not open, comes from a
blocked peer, or is refused by the connection's state machine is dropped, never shown. A
reach-out opens a connection only for a live listing of this peer's, only while fewer than
``pending_cap`` unexpired reach-outs wait for an answer, and fewer than ``per_sender_cap`` from
its sender (spec §13.5: the caps are the recipient client's). The reach-out carries its sender's
key bundle (spec §8.2), kept from there: nothing is looked up, so the home node never learns who
wrote, and no slow node can hold a sync up.

Each item is acknowledged once handled, so the node deletes it. One that cannot be handled yet
because something it needs is out of reach (``NodeUnreachable``, ``node.unavailable``) stays on
the node for a later sync, which still succeeds and counts it in ``SyncReport.later``.
"""

from __future__ import annotations

import base64
import functools
from collections.abc import AsyncIterator
from dataclasses import dataclass

from peerfed.protocol import Envelope, ReachOut, RemoteError, UnavailableError, open_sealed
from peerfed.protocol.sealing import SCHEME_V2, Opened, parse_sealed
from peerfed.protocol.sealing2 import Opened2, open_sealed2

from . import prekeys, receiving, sessions
from .conversations import Conversations
from .device import Device
from .forgetting import forget_due
from .listings import Listings
from .prekeys import replenish

__all__ = [
    "PENDING_PER_SENDER_CAP",
    "PENDING_REACH_OUTS_CAP",
    "RECONNECT_FIRST",
    "RECONNECT_MOST",
    "Inbox",
    "SyncReport",
    "reconnect_delay",
]

PENDING_REACH_OUTS_CAP = 20
PENDING_PER_SENDER_CAP = 3
RECONNECT_FIRST = 0.5  # seconds before the first attempt to reach a home node that went away
RECONNECT_MOST = 30.0  # the longest wait between attempts


def reconnect_delay(failures: int) -> float:
    """Seconds to wait after ``failures`` attempts in a row failed: doubling, up to RECONNECT_MOST."""
    return min(RECONNECT_MOST, RECONNECT_FIRST * float(1 << min(failures, 16)))


@dataclass
class SyncReport:
    """What one pass over the mailbox did."""

    received: int = 0
    new_connections: int = 0
    dropped: int = 0
    later: int = 0  # left on the node: something needed to handle them was out of reach
    expired: int = 0  # unanswered reach-outs forgotten because they expired
    sent: int = 0  # drafts delivered
    drafts: int = 0  # drafts still kept on this device (spec §9.5)
    renewed: bool = False  # a new encryption key was made and its bundle published (spec §12)


class Inbox:
    """This peer's mailbox on its home node, and what arrives in it."""

    def __init__(self, device: Device, listings: Listings, conversations: Conversations) -> None:
        self.device = device
        self.listings = listings
        self.conversations = conversations
        self.pending_cap = PENDING_REACH_OUTS_CAP
        self.per_sender_cap = PENDING_PER_SENDER_CAP

    @property
    def _cursor_key(self) -> str:
        # Mailbox positions are per node: after a move, the new node counts from its own start.
        return "cursor " + self.device.api.url

    async def sync(self) -> SyncReport:
        """Fetch the mailbox, open and apply each item, acknowledging each once handled.

        Raises RemoteError or NodeUnreachable only when the home node itself fails a fetch or an
        acknowledgement; an item waiting on something else out of reach is left for later. Then
        delivers the drafts the outbox keeps (spec §9.5), and notes the time (``synced_at``).
        """
        device = self.device
        report = SyncReport(expired=await self.conversations.drop_pending())
        cursor = int(await device.state.get(self._cursor_key) or 0)
        after, first_later = cursor, None
        for _ in range(100):
            page = await device.call(functools.partial(device.api.mailbox, after=after, limit=200))
            items = page.get("items", [])
            if not items:
                break
            for item in items:
                seq = int(item["seq"])
                after = max(after, seq)
                if not await self._handle(base64.b64decode(item["sealed"]), report):
                    first_later = seq if first_later is None else min(first_later, seq)
                    continue
                await device.call(functools.partial(device.api.ack, [item["id"]]))
            # The cursor never passes an item left for later, so the next sync fetches it again.
            kept = after if first_later is None else max(cursor, first_later - 1)
            await device.state.set(self._cursor_key, kept)
        flushed = await self.conversations.outbox.flush()
        report.sent, report.drafts = flushed.sent, len(flushed.kept)
        await replenish(device)  # the node's stock of one-time pre-keys, topped up when low (spec §13.5)
        await forget_due(self.conversations)  # what came in already past its agreed time goes too (spec §9.7)
        await device.state.set("synced_at", device.now())
        return report

    async def _handle(self, raw: bytes, report: SyncReport) -> bool:
        """Take one item; False if it must wait because something it needs is out of reach."""
        try:
            await self.take(raw, report)
        except UnavailableError:  # NodeUnreachable, or a node's node.unavailable
            report.later += 1
            return False
        return True

    async def take(self, raw: bytes, report: SyncReport | None = None) -> Envelope | None:
        """Open one sealed message and apply it; anything invalid or unwanted is dropped."""
        device = self.device
        report = report or SyncReport()
        try:
            opened = await self._open(raw)
        except RemoteError:
            report.dropped += 1
            return None
        inner = opened.inner
        scheme2 = opened if isinstance(opened, Opened2) else None
        sender = await device.state.peer(bytes(inner.author))
        if sender and sender.blocked:
            report.dropped += 1
            return None
        body = inner.body
        if isinstance(body, ReachOut):
            return await self._take_reach_out(inner, body, report, scheme2)
        if not await receiving.receive(self.conversations, inner, body.connection, scheme2):  # type: ignore[union-attr]
            report.dropped += 1
            return None
        report.received += 1
        return inner

    async def _open(self, raw: bytes) -> Opened | Opened2:
        """Open a sealed message of either scheme (spec §7.3, §14.5). Raises RemoteError."""
        device = self.device
        if parse_sealed(raw).payload[0] != SCHEME_V2:
            return open_sealed(raw, recipient=device.id, secrets=device.keys.secrets(), now=device.now())
        held = await prekeys.load(device)
        return open_sealed2(
            raw,
            recipient=device.id,
            secrets=device.keys.secrets(),
            signed_prekeys=[secret for secret, _, _ in held.signed],
            one_time_prekeys=held.one_time,
            sessions=await sessions.load_all(device),
            now=device.now(),
        )

    async def _take_reach_out(
        self, inner: Envelope, body: ReachOut, report: SyncReport, opened: Opened2 | None = None
    ) -> Envelope | None:
        state = self.device.state
        listing = await state.listing(body.listing)
        pending = self.conversations.pending_reach_outs
        if await pending(bytes(inner.author)) >= self.per_sender_cap or await pending() >= self.pending_cap:
            report.dropped += 1  # a flood of reach-outs cannot bury the peer; they may answer and make room
            return None
        if (
            listing is None
            or not listing.mine
            or listing.withdrawn
            or listing.expires_at <= inner.created_at
            or await state.connection(body.connection) is not None
        ):
            report.dropped += 1
            return None
        # open_sealed verified the bundle the reach-out carries (spec §7.3 step 12): keep it, ask nobody.
        assert body.bundle is not None  # open_sealed refuses a reach-out without one
        await self.listings.remember_bundle(body.bundle, inner.author)
        if not await receiving.open_received(self.conversations, inner, body, opened):
            report.dropped += 1
            return None
        report.received += 1
        report.new_connections += 1
        return inner

    async def follow(self, prefix: str | None = None) -> AsyncIterator[Envelope | None]:
        """Live: apply every new sealed message as it arrives; yield the ones applied.

        Yields None once the live subscription is up (after fetching what came meanwhile), so a
        caller can show everything up to that moment without a gap.
        """
        device = self.device
        connection = await self.conversations.resolve(prefix) if prefix else None
        async with device.lock:  # each unit of work holds the home's lock, never the whole wait
            await self.sync()
            after = int(await device.state.get(self._cursor_key) or 0)
        async for item in device.api.live(after=after):
            if item.get("type") == "ready":
                async with device.lock:
                    await self.sync()
                yield None
                continue
            async with device.lock:
                try:
                    inner = await self.take(item["sealed_bytes"])
                except UnavailableError:
                    continue  # out of reach for now: the next sync fetches it again
                await device.call(functools.partial(device.api.ack, [item["id"]]))
            if inner is not None and (connection is None or getattr(inner.body, "connection", None) == connection):
                yield inner
