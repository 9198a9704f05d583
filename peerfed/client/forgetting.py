"""Forgetting a conversation's messages at the time its terms in force name (spec §9.7).

Terms with ``forget`` are a promise both peers make; this is this device keeping its side. Only
``message`` events go: the reach-out, the response, the agreements and the end stay, because
they say what the connection is and what was agreed (the reach-out also carries the other peer's
key bundle, which answers are sealed to). The connection's stored state keeps the ids and
sequence numbers already seen, so a forgotten message that arrives again is not taken again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .stored import stored_envelope

if TYPE_CHECKING:
    from .conversations import Conversations

__all__ = ["forget_due"]


async def forget_due(conversations: Conversations) -> int:
    """Delete every message whose terms in force say it is to be forgotten by now; how many went.

    A message goes when its ``created_at`` + ``forget`` is at or before this device's clock, with
    its draft if it was never delivered. Deleted rows are zeroed (``secure_delete``) and the
    write-ahead log is checkpointed and truncated, as an erasure does (spec §9.4), so the text is
    not left in the device's files. Raises ClientError (``local.damaged``, ``local.storage``).
    """
    device = conversations.device
    state = device.state
    now = device.now()
    due: list[bytes] = []
    for row in await state.connections():
        # Brings the stored state up to date (and stores it) before any event under it goes, so
        # it already counts every message that is about to be deleted.
        conn = await conversations.state_of(row.id)
        forget = None if conn.in_force is None else conn.in_force[1].forget
        if forget is None:
            continue
        for event in await state.events(row.id):
            if event.type == "message" and stored_envelope(event.raw, event.inner_id).created_at + forget <= now:
                due.append(event.inner_id)
    if not due:
        return 0
    await state.write("BEGIN IMMEDIATE")
    try:
        for inner_id in due:
            await state.write("DELETE FROM outbox WHERE inner_id=?", (inner_id,))
            await state.write("DELETE FROM events WHERE inner_id=?", (inner_id,))
        await state.write("COMMIT")
    except BaseException:
        await state.write("ROLLBACK")
        raise
    # As after an erasure (client/wipe.py): the log still holds the older pages until then.
    await state.write("PRAGMA wal_checkpoint(TRUNCATE)")
    return len(due)
