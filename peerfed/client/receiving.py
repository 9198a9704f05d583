"""Steps the other peer took, applied to this device's connections (spec §9.2, §14.5 steps 8-9).

The inbox opens a sealed message; these apply what it carries through the same state machine
the sending side uses, keep a scheme-2 session only once the rules took its message, and let a
session go when the other side went back to scheme 1 (R-14.5-2).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from peerfed.protocol import Connection, End, Envelope, ReachOut, RemoteError, Side, State
from peerfed.protocol.sealing2 import Opened2, Session
from peerfed.protocol.sealing2 import accept as accept2

from . import sessions
from .prekeys import forget_one_time
from .wipe import erase_conversation

if TYPE_CHECKING:
    from .conversations import Conversations

__all__ = ["open_received", "receive"]


async def open_received(convs: Conversations, inner: Envelope, body: ReachOut, opened: Opened2 | None = None) -> bool:
    """Start the connection a received, wanted reach-out opens, as its listing's author.

    ``opened``: the reach-out came with scheme 2, whose session is kept only if the rules take
    it (spec §14.5 steps 8-9). False if they do not.
    """
    device = convs.device
    try:
        started, session = (Connection.start(inner), None) if opened is None else accept2(opened, None)
    except RemoteError:
        return False
    await device.state.add_connection(body.connection, body.listing, bytes(inner.author), Side.AUTHOR, device.now())
    await convs.record(body.connection, inner, started, since=0)
    await _keep(convs, session, opened)
    return True


async def receive(convs: Conversations, inner: Envelope, connection: bytes, opened: Opened2 | None = None) -> bool:
    """Apply a received message to its connection; False if the state machine refuses it.

    ``opened``: the message came with scheme 2 (spec §14.5); else it came with scheme 1, which
    ends a session held for the connection once the rules take it (spec §14.5, R-14.5-2).
    """
    device = convs.device
    row = await device.state.connection(connection)
    if row is None or row.peer != bytes(inner.author):
        return False
    conn, through = await convs.load(connection)
    try:
        after, session = (conn.receive(inner), None) if opened is None else accept2(opened, conn)
    except RemoteError:
        return False
    await convs.record(connection, inner, after, since=through)
    if opened is None:
        await sessions.drop(device, connection)
    elif after.state not in (State.ENDED, State.DECLINED):
        await _keep(convs, session, opened)
    body = inner.body
    if isinstance(body, End) and body.erase:
        await erase_conversation(device.state, after)
    return True


async def _keep(convs: Conversations, session: Session | None, opened: Opened2 | None) -> None:
    """Step 9 of spec §14.5, once the rules took the message: the new state, and the used
    one-time pre-key's secret deleted."""
    if session is None or opened is None:
        return
    await sessions.save(convs.device, session)
    if opened.one_time_used is not None:
        await forget_one_time(convs.device, opened.one_time_used)
