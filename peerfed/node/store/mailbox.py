"""Mailboxes: delivery, forwarding, acknowledgement, moving (spec §7.3, §13.5, §13.9).

The node holds sealed bytes it cannot read, by mailbox. A sealed message is taken once: its id
is remembered in ``seen_sealed`` in the same write that delivers or queues it.
"""

from __future__ import annotations

from collections.abc import Sequence

from .db import Conn
from .deliver import Forward, NewMail, deliver_mail, deliver_one, forward_mail
from .members import MembersMixin
from .outbox import enqueue
from .rows import DeliveryResult, MailboxItem, OutboxItem

__all__ = ["MailboxMixin"]


class MailboxMixin(MembersMixin):
    """Every call raises StorageError if the database fails."""

    async def deliver(
        self,
        *,
        sealed_id: bytes,
        mailbox: bytes,
        raw: bytes,
        now: int,
        expires_at: int,
        seen_until: int,
        cap: int,
        source: bytes,
    ) -> DeliveryResult:
        """Put a sealed message in a local member's mailbox once.

        The result is DELIVERED with its mailbox seq, DUPLICATE, ABSENT (no such member here),
        or MOVED with the member's new node. ``source`` is the blinded digest of who handed it
        in (spec §13.5, Mailbox quotas): at ``cap`` waiting items, the oldest item of the source
        holding the most is dropped to make room, so no one source can push others out and the
        answer never depends on whether the recipient has read. The membership check is in the
        same transaction.
        """

        item = NewMail(sealed_id, mailbox, raw, now, expires_at, seen_until, cap, source)

        def alone(db: Conn) -> DeliveryResult:
            return deliver_one(db, item)

        return await self._writer.run(alone, batch=(deliver_mail, item))

    async def absorb(self, *, sealed_id: bytes, seen_until: int) -> bool:
        """Take a sealed message for no member here: remember its id only, keep nothing else, so it
        is answered as one for a member would be (spec §13.7, Keys on demand). False if seen."""

        def job(db: Conn) -> bool:
            cursor = db.execute(
                "INSERT INTO seen_sealed VALUES (?, ?) ON CONFLICT(id) DO NOTHING", (sealed_id, seen_until)
            )
            return cursor.rowcount == 1

        return await self._writer.run(job)

    async def forward_sealed(
        self, *, sealed_id: bytes, seen_until: int, destination: str, raw: bytes, now: float
    ) -> bool:
        """Queue a sealed message for an active federated node, once. False if already seen.

        Raises RequestError (``federation.refused``) if ``destination`` is not an active node.
        """

        item = Forward(sealed_id, seen_until, destination, raw, now)

        queued: bool = await self._writer.run_batch(forward_mail, item)
        return queued

    async def mailbox_items(self, mailbox: bytes, after: int, limit: int, now: int) -> list[MailboxItem]:
        """Live items after ``after``, oldest first."""
        rows = await self._all(
            "SELECT seq, id, raw, received_at FROM mailbox WHERE mailbox=? AND seq > ? AND expires_at > ?"
            " ORDER BY seq LIMIT ?",
            (mailbox, after, now, limit),
        )
        return [MailboxItem(r[0], bytes(r[1]), bytes(r[2]), r[3]) for r in rows]

    async def ack(self, mailbox: bytes, ids: Sequence[bytes]) -> int:
        """Delete acknowledged items; returns how many were deleted."""

        def job(db: Conn) -> int:
            return sum(
                db.execute("DELETE FROM mailbox WHERE mailbox=? AND id=?", (mailbox, sealed_id)).rowcount
                for sealed_id in ids
            )

        return await self._writer.run(job)

    async def move_mailbox(self, peer: bytes, to: str, outbox_kind: str, now: int) -> int:
        """Mark ``peer`` moved, end its sessions and queue every waiting item for its new node."""

        def job(db: Conn) -> int:
            db.execute("UPDATE members SET status='moved', moved_to=? WHERE peer=?", (to, peer))
            db.execute("DELETE FROM sessions WHERE peer=?", (peer,))
            db.execute("DELETE FROM prekeys WHERE owner=?", (peer,))  # its new node hands out its keys now
            rows = db.execute("SELECT id, raw FROM mailbox WHERE mailbox=?", (peer,)).fetchall()
            enqueue(db, [OutboxItem(to, outbox_kind, bytes(r[0]), bytes(r[1])) for r in rows], now)
            db.execute("DELETE FROM mailbox WHERE mailbox=?", (peer,))
            return len(rows)

        self._forget_sessions(peer)  # before the write, and again once it is committed
        try:
            return await self._writer.run(job)
        finally:
            self._forget_sessions(peer)
