"""The durable outbox: what this node must send, queued with the change that caused it (spec §13.7, §13.9).

``enqueue`` and ``fan_out`` run inside another table group's write, so an item is queued in
the same transaction as the change it announces, before the client is told ``accepted``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from .db import Conn, Database
from .many import pieces, values
from .rows import GaveUp, OutboxDepth, OutboxItem, OutboxRow, OutboxState

__all__ = ["OutboxMixin", "active_nodes", "enqueue", "fan_out"]


def fan_out(db: Conn, items: Sequence[tuple[str, bytes, bytes]]) -> list[OutboxItem]:
    """Outbox items for every active federated node, read in the transaction that queues them.

    ``items`` are (kind, item, raw).
    """
    urls = active_nodes(db)
    return [OutboxItem(url, kind, item, raw) for url in urls for kind, item, raw in items]


def active_nodes(db: Conn) -> list[str]:
    """The address of every active federated node, read in the transaction that queues for them."""
    return [r[0] for r in db.execute("SELECT url FROM nodes WHERE status='active'")]


def enqueue(db: Conn, rows: Iterable[OutboxItem], now: float) -> None:
    """Queue each item once per (destination, kind, item); a repeat is ignored, even of an item
    sent long ago (its payload is not stored again)."""
    # The bytes live in their own table so that finishing an item deletes them outright
    # (secure_delete zeroes deleted rows; an UPDATE that shrinks a row may not).
    firsts: dict[tuple[str, str, bytes], OutboxItem] = {}
    for row in rows:  # each item once, where it first came: a key bundle before the listing it goes with
        firsts.setdefault((row.destination, row.kind, row.item), row)
    items = list(firsts.values())
    if len(items) == 1:
        row = items[0]
        cursor = db.execute(
            "INSERT INTO outbox (destination, kind, item, created_at, next_at) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT(destination, kind, item) DO NOTHING",
            (row.destination, row.kind, row.item, int(now), now),
        )
        if cursor.rowcount == 1:
            db.execute("INSERT INTO outbox_payload VALUES (?, ?)", (cursor.lastrowid, row.raw))
        return
    # Many (a listing and its author's bundle for each federated node): which are queued
    # already is read in one statement per piece, then the rest go in two (``many``).
    held = [
        db.execute(
            "SELECT o.destination, o.kind, o.item FROM (VALUES "
            + values(3, len(piece))
            + ") v JOIN outbox o ON o.destination = v.column1 AND o.kind = v.column2 AND o.item = v.column3",
            [x for row in piece for x in (row.destination, row.kind, row.item)],
        )
        for piece in pieces(items)
    ]
    queued = {(r[0], r[1], bytes(r[2])) for cursor in held for r in cursor}
    fresh = [row for row in items if (row.destination, row.kind, row.item) not in queued]
    for piece in pieces(fresh):
        db.execute(
            f"INSERT INTO outbox (destination, kind, item, created_at, next_at) VALUES {values(5, len(piece))}",
            [x for row in piece for x in (row.destination, row.kind, row.item, int(now), now)],
        )
        db.execute(
            "INSERT INTO outbox_payload (seq, raw) SELECT o.seq, v.column4 FROM (VALUES "
            + values(4, len(piece))
            + ") v JOIN outbox o ON o.destination = v.column1 AND o.kind = v.column2 AND o.item = v.column3",
            [x for row in piece for x in (row.destination, row.kind, row.item, row.raw)],
        )


class OutboxMixin(Database):
    """Due items, their outcomes, and the operator's view of what failed. Every call raises StorageError."""

    async def due(self, now: float, limit: int) -> list[OutboxRow]:
        """Pending items whose time has come, oldest first, skipping open breakers and blocked nodes."""
        rows = await self._all(
            "SELECT o.seq, o.destination, o.kind, o.item, p.raw, o.created_at, o.attempts FROM outbox o"
            " JOIN outbox_payload p ON p.seq = o.seq"
            " LEFT JOIN nodes n ON n.url = o.destination"
            " WHERE o.state='pending' AND o.next_at <= ? AND COALESCE(n.breaker_until, 0) <= ?"
            " AND COALESCE(n.status, '') != 'blocked'"
            " ORDER BY o.seq LIMIT ?",
            (now, now, limit),
        )
        return [OutboxRow(r[0], r[1], r[2], bytes(r[3]), bytes(r[4]), r[5], r[6]) for r in rows]

    async def next_due(self) -> float | None:
        """When the next pending item may be sent (its breaker included), or None if none is pending."""
        row = await self._one(
            "SELECT MIN(MAX(o.next_at, COALESCE(n.breaker_until, 0))) FROM outbox o"
            " LEFT JOIN nodes n ON n.url = o.destination WHERE o.state='pending'"
        )
        return None if row is None or row[0] is None else float(row[0])

    async def outbox_finish(self, seqs: Sequence[int], state: str, now: int, error: str | None = None) -> None:
        """Mark items finished in ``state`` (an OutboxState) and drop their payloads.

        Raises ValueError for a state that is not an OutboxState.
        """
        finished = OutboxState(state).value

        def job(db: Conn) -> None:
            db.executemany(
                "UPDATE outbox SET state=?, finished_at=?, last_error=? WHERE seq=?",
                [(finished, now, error, s) for s in seqs],
            )
            # The payload goes once an item is finished: only its routing stays, for the record.
            db.executemany("DELETE FROM outbox_payload WHERE seq=?", [(s,) for s in seqs])

        await self._writer.run(job)

    async def outbox_retry(self, retries: Sequence[tuple[int, float]], error: str) -> None:
        """Count one more attempt for each (seq, next attempt time)."""
        await self._writer.run(
            lambda db: db.executemany(
                "UPDATE outbox SET attempts=attempts+1, next_at=?, last_error=? WHERE seq=?",
                [(next_at, error, s) for s, next_at in retries],
            )
        )

    async def reject_outbox_for(self, destination: str, reason: str, now: int) -> int:
        """Reject everything pending for ``destination`` (it was blocked); returns how many."""

        def job(db: Conn) -> int:
            db.execute(
                "DELETE FROM outbox_payload WHERE seq IN"
                " (SELECT seq FROM outbox WHERE destination=? AND state='pending')",
                (destination,),
            )
            return db.execute(
                "UPDATE outbox SET state='rejected', last_error=?, finished_at=?"
                " WHERE destination=? AND state='pending'",
                (reason, now, destination),
            ).rowcount

        return await self._writer.run(job)

    async def outbox_stats(self) -> dict[str, dict[str, int]]:
        """Items per destination and state (the keys are OutboxState members; any str finds them)."""
        rows = await self._all("SELECT destination, state, COUNT(*) FROM outbox GROUP BY destination, state")
        stats: dict[str, dict[str, int]] = {}
        for destination, state, count in rows:
            stats.setdefault(destination, {})[OutboxState(state)] = count
        return stats

    async def outbox_depths(self) -> list[OutboxDepth]:
        """Pending items per destination and the oldest one's queue time (the operator's metrics)."""
        rows = await self._all(
            "SELECT destination, COUNT(*), MIN(created_at) FROM outbox WHERE state='pending'"
            " GROUP BY destination ORDER BY destination"
        )
        return [OutboxDepth(r[0], int(r[1]), int(r[2])) for r in rows]

    async def gave_up(self, limit: int = 100) -> list[GaveUp]:
        """The newest items given up or rejected, for the operator."""
        rows = await self._all(
            "SELECT destination, kind, item, created_at, attempts, last_error, state FROM outbox"
            " WHERE state IN ('gave_up', 'rejected') ORDER BY seq DESC LIMIT ?",
            (limit,),
        )
        return [GaveUp(r[0], r[1], bytes(r[2]), r[3], r[4], r[5], OutboxState(r[6])) for r in rows]

    async def failing(self, min_attempts: int, limit: int = 100) -> list[GaveUp]:
        """Items still being retried that failed at least ``min_attempts`` times, oldest first."""
        rows = await self._all(
            "SELECT destination, kind, item, created_at, attempts, last_error FROM outbox"
            " WHERE state='pending' AND attempts >= ? ORDER BY seq LIMIT ?",
            (min_attempts, limit),
        )
        return [GaveUp(r[0], r[1], bytes(r[2]), r[3], r[4], r[5], OutboxState.PENDING) for r in rows]
