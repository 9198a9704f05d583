"""Reach-outs waiting for this peer's answer: counted for the caps, forgotten when they expire (spec §13.5).

The caps themselves (how many may wait, from one sender and in all) are the inbox's; this module
only finds the waiting ones on the device.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from peerfed.protocol import Side, State

from . import sessions
from .stored import stored_envelope

if TYPE_CHECKING:
    from .conversations import Conversations

__all__ = ["count", "drop"]


async def _waiting(convs: Conversations) -> list[tuple[bytes, bytes, int]]:
    """Unanswered reach-outs to this peer: (connection, sender, when the reach-out expires)."""
    state = convs.device.state
    out = []
    for row in await state.connections():
        if row.side is not Side.AUTHOR or (await convs.state_of(row.id)).state is not State.REACHED_OUT:
            continue
        events = await state.events(row.id)
        expires = stored_envelope(events[0].raw, events[0].inner_id).expires_at if events else 0
        out.append((row.id, row.peer, expires))
    return out


async def count(convs: Conversations, sender: bytes | None = None) -> int:
    """Reach-outs to this peer still unanswered and unexpired; from ``sender`` only, if given."""
    now = convs.device.now()
    return sum(1 for _, peer, expires in await _waiting(convs) if expires > now and sender in (None, peer))


async def drop(convs: Conversations, sender: bytes | None = None) -> int:
    """Forget unanswered reach-outs that expired, or every one from ``sender``, with any session
    one began (spec §9.4). Needs nothing from the sender: no key bundle, no message sent.
    Returns how many went."""
    device = convs.device
    now = device.now()
    dropped = 0
    for connection, peer, expires in await _waiting(convs):
        if (sender is None and expires <= now) or (sender is not None and peer == sender):
            await device.state.drop_connection(connection)
            await sessions.drop(device, connection)
            dropped += 1
    return dropped
