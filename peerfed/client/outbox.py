"""Drafts: this peer's messages signed and kept on the device until delivered (spec §9.5).

A message is signed, applied and stored before it is delivered, and listed here until the home
node takes it. A command that cannot deliver it says so and leaves it listed; the next sync, or
``peerfed outbox retry``, delivers it, the same signed bytes sealed again, so the recipient sees
one message whichever attempt reaches it (a repeat is refused there as ``connection.duplicate``).
Drafts leave in the order they were written, and one that fails stops the ones after it on the
same connection, so the other peer never receives a later message before an earlier one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from peerfed.protocol import Envelope, PeerfedError, PeerId

from .device import Device
from .stored import stored_envelope

__all__ = ["Draft", "Flushed", "Outbox"]


@dataclass(frozen=True)
class Draft:
    """One undelivered message: its connection, the signed envelope, and how the attempts went."""

    connection: bytes
    peer: bytes
    envelope: Envelope
    queued_at: int
    attempts: int
    last_error: str | None


@dataclass
class Flushed:
    """What one pass over the outbox did: how many left the device, and the drafts still kept."""

    sent: int = 0
    kept: list[Draft] = field(default_factory=list)
    error: str | None = None  # why the first kept draft did not leave


class Outbox:
    """The device's undelivered messages, and their delivery through ``deliver``."""

    def __init__(self, device: Device, deliver: Callable[[PeerId, Envelope], Awaitable[None]]) -> None:
        self.device = device
        self.deliver = deliver

    async def queue(self, connection: bytes, inner: Envelope) -> None:
        """Keep ``inner`` (already stored as an event of ``connection``) until it is delivered."""
        await self.device.state.write(
            "INSERT INTO outbox (inner_id, connection, queued_at) VALUES (?, ?, ?) ON CONFLICT(inner_id) DO NOTHING",
            (inner.id, connection, self.device.now()),
        )

    async def drafts(self, connection: bytes | None = None) -> list[Draft]:
        """The undelivered messages, oldest first; of ``connection`` only, if given."""
        rows = await self.device.state.select(
            "SELECT o.connection, c.peer, e.raw, e.inner_id, o.queued_at, o.attempts, o.last_error"
            " FROM outbox o JOIN events e ON e.inner_id = o.inner_id JOIN connections c ON c.id = o.connection"
            " WHERE ? IS NULL OR o.connection = ? ORDER BY o.n",
            (connection, connection),
        )
        return [
            Draft(
                bytes(r[0]),
                bytes(r[1]),
                stored_envelope(self.device.state.open_sealed(bytes(r[2])), bytes(r[3])),
                int(r[4]),
                int(r[5]),
                r[6],
            )
            for r in rows
        ]

    async def ids(self, connection: bytes) -> set[bytes]:
        """The inner ids of ``connection``'s undelivered messages."""
        rows = await self.device.state.select("SELECT inner_id FROM outbox WHERE connection=?", (connection,))
        return {bytes(r[0]) for r in rows}

    async def flush(self, connection: bytes | None = None) -> Flushed:
        """Deliver the drafts in order; a draft that fails is kept, with every later one of its connection.

        Raises nothing from delivery: a failure is recorded on the draft and returned in ``Flushed``.
        Raises ClientError (``local.storage``) if the database fails.
        """
        done = Flushed()
        stopped: set[bytes] = set()
        for draft in await self.drafts(connection):
            if draft.connection in stopped:
                done.kept.append(draft)
                continue
            try:
                await self.deliver(PeerId(draft.peer), draft.envelope)
            except PeerfedError as exc:  # the node, the recipient's bundle or the network: try again later
                reason = f"{getattr(exc, 'code', 'local.error')}: {exc}"
                await self.device.state.write(
                    "UPDATE outbox SET attempts=attempts+1, last_error=? WHERE inner_id=?", (reason, draft.envelope.id)
                )
                stopped.add(draft.connection)
                done.kept.append(draft)
                done.error = done.error or reason
                continue
            await self.device.state.write("DELETE FROM outbox WHERE inner_id=?", (draft.envelope.id,))
            done.sent += 1
        return done
