"""Reading what the device holds of a conversation: its messages and the list of connections (spec §9.5).

Reading needs no node: everything shown here comes from the device's own database, verified
when it was stored.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from peerfed.protocol import Message, ReachOut

from . import sessions
from .stored import accept_reply, stored_envelope
from .views import connection_json, display_order, message_json, opening_json

if TYPE_CHECKING:
    from .conversations import Conversations

__all__ = ["connections", "messages"]


async def messages(convs: Conversations, prefix: str) -> dict[str, Any]:
    """The conversation in display order (spec §9.5), marked read; verified when stored."""
    device = convs.device
    connection = await convs.resolve(prefix)
    drafts = await convs.outbox.ids(connection)
    row = await device.state.connection(connection)
    assert row is not None
    other = await device.state.peer(row.peer)
    names = {bytes(device.id): await device.state.get("name"), row.peer: other.name if other else None}
    found = []
    opening = []  # the hello and the answer to it, before any message (spec §8.2)
    last = 0
    for event in await device.state.events(connection):
        last = max(last, event.n)
        if event.type in ("reach-out", "response"):
            env = stored_envelope(event.raw, event.inner_id)
            opening.append(opening_json(env, device.id, names.get(bytes(env.author))))
        if event.type != "message":
            continue
        env = stored_envelope(event.raw, event.inner_id)
        assert isinstance(env.body, Message)
        found.append((env, env.body))
    out = [
        {**message_json(env, body, device.id, names.get(bytes(env.author))), "draft": env.id in drafts}
        for env, body in display_order(found)
    ]
    await device.state.mark_read(connection, last)
    conn = await convs.state_of(connection)
    # Whether what is said next is sealed with forward secrecy: a scheme-2 session is held (spec §14.7).
    secret = await sessions.load(device, connection) is not None
    return {
        "connection": connection.hex(),
        "state": conn.state.value,
        "opening": opening,
        "messages": out,
        "forward_secret": secret,
    }


async def connections(convs: Conversations) -> list[dict[str, Any]]:
    """Every connection, the most recently active first."""
    device = convs.device
    me = bytes(device.id)
    out = []
    for row in await device.state.connections():
        conn = await convs.state_of(row.id)
        peer = await device.state.peer(row.peer)
        events = await device.state.events(row.id)
        unread = sum(1 for e in events if e.type == "message" and e.n > row.read_seq and e.author != me)
        # An erased conversation has no events left, so no hello either (spec §9.4).
        first = stored_envelope(events[0].raw, events[0].inner_id).body if events else None
        hello = first.hello if isinstance(first, ReachOut) else None
        name = peer.name if peer else None
        out.append(connection_json(row, conn, name=name, hello=hello, reply=accept_reply(events), unread=unread))
    return out
