"""Erasure and retention: "erase me", the purge of what expired, and the tables' sizes (spec §13.6, §13.9).

Erasing a peer deletes everything held for it in one write, keeping only a hashed tombstone;
the purge deletes every row past its time. Every call raises StorageError if the database fails.
"""

from __future__ import annotations

from collections.abc import Callable

from .db import Conn
from .members import MembersMixin
from .outbox import enqueue
from .rows import ErasedTombstone, Outbox

__all__ = ["PURGE_BATCH", "ErasureMixin"]

PURGE_BATCH = 5_000  # rows of one table deleted in one write by the purge


class ErasureMixin(MembersMixin):
    """What leaves the database, and when."""

    async def erase(self, peer: bytes, author_hash: bytes, tombstone_until: int, outbox: Outbox, now: float) -> int:
        """Delete everything held for ``peer``; keep only a hashed tombstone. Returns listings deleted."""
        rows = list(outbox)

        def job(db: Conn) -> int:
            listings = db.execute("DELETE FROM listings WHERE author=?", (peer,)).rowcount
            db.execute("DELETE FROM withdrawals WHERE author=?", (peer,))
            db.execute("DELETE FROM key_bundles WHERE peer=?", (peer,))
            db.execute("DELETE FROM prekeys WHERE owner=?", (peer,))
            db.execute("DELETE FROM mailbox WHERE mailbox=?", (peer,))
            db.execute("DELETE FROM sessions WHERE peer=?", (peer,))
            db.execute("DELETE FROM members WHERE peer=?", (peer,))
            db.execute("DELETE FROM reports WHERE reporter=?", (peer,))
            # Reports about the erased peer stay, for the moderators' record, without their id or
            # the messages of theirs that were disclosed. Rewritten, not updated, so nothing lingers.
            about = db.execute(
                "SELECT id, reporter, reason, created_at, status, outcome, resolved_at FROM reports"
                " WHERE target_kind='peer' AND target=?",
                (peer,),
            ).fetchall()
            db.execute("DELETE FROM reports WHERE target_kind='peer' AND target=?", (peer,))
            db.executemany(
                "INSERT INTO reports (id, reporter, target_kind, target, reason, disclosed, created_at, status,"
                " outcome, resolved_at) VALUES (?, ?, 'erased', NULL, ?, NULL, ?, ?, ?, ?)",
                [tuple(r) for r in about],
            )
            db.execute(
                "INSERT INTO erasures VALUES (?, ?) ON CONFLICT(author_hash) DO UPDATE SET"
                " expires_at=MAX(erasures.expires_at, excluded.expires_at)",
                (author_hash, tombstone_until),
            )
            enqueue(db, rows, now)
            return listings

        self._forget_sessions(peer)
        try:
            return await self._writer.run(job)
        finally:
            self._forget_sessions(peer)

    async def erasures_after(self, after: int, now: int, limit: int) -> list[ErasedTombstone]:
        """Erasure tombstones in force after a cursor, for a catch-up page (spec §13.7, Catch-up)."""
        rows = await self._all(
            "SELECT rowid, author_hash, expires_at FROM erasures WHERE rowid > ? AND expires_at > ?"
            " ORDER BY rowid LIMIT ?",
            (after, now, limit),
        )
        return [ErasedTombstone(r[0], bytes(r[1]), r[2]) for r in rows]

    async def drop_erased_from(self, origin: str, hashes: set[bytes], hash_of: Callable[[bytes], bytes]) -> int:
        """Delete the listings and key bundles that came from ``origin`` whose author hashes (by
        ``hash_of``) into ``hashes``; nothing from another node. Returns listings deleted."""
        if not hashes:
            return 0

        def job(db: Conn) -> int:
            authors = {
                bytes(r[0])
                for r in db.execute(
                    "SELECT author FROM listings WHERE origin=? UNION SELECT peer FROM key_bundles WHERE origin=?",
                    (origin, origin),
                )
            }
            erased = [(a, origin) for a in authors if hash_of(a) in hashes]
            deleted = sum(db.execute("DELETE FROM listings WHERE author=? AND origin=?", e).rowcount for e in erased)
            db.executemany("DELETE FROM key_bundles WHERE peer=? AND origin=?", erased)
            return deleted

        return await self._writer.run(job)

    # --- retention -------------------------------------------------------------------------

    async def purge(self, now: int, *, report_retention: int, outbox_retention: int) -> dict[str, int]:
        """Delete everything past its time (spec §13.9). Returns rows deleted per table.

        At most PURGE_BATCH rows of each table go in one write, and the purge writes again while
        any table had that many: a write transaction holds the writer (and on PostgreSQL every
        worker's writes, which wait on its cursor lock), so a day's expiries at once must not
        hold them for the length of one huge delete."""
        # table: (its key, which rows are past their time, the time)
        expired: dict[str, tuple[str, str, int]] = {
            "listings": ("seq", "expires_at <= ?", now),
            "withdrawals": ("listing, author", "expires_at <= ?", now),
            "erasures": ("author_hash", "expires_at <= ?", now),
            "mailbox": ("seq", "expires_at <= ?", now),
            "seen_sealed": ("id", "expires_at <= ?", now),
            "key_bundles": ("peer", "expires_at <= ?", now),
            "nonces": ("nonce", "expires_at <= ?", now),
            "challenges": ("challenge", "expires_at <= ?", now),
            "sessions": ("token_hash", "expires_at <= ?", now),
            "outbox": ("seq", "state != 'pending' AND finished_at <= ?", now - outbox_retention),
            "reports": ("id", "status='resolved' AND resolved_at <= ?", now - report_retention),
            "invites": ("code_hash", "expires_at <= ?", now),
        }
        removed = dict.fromkeys(expired, 0)
        pending = list(expired)
        while pending:

            def job(db: Conn, tables: list[str] = pending) -> dict[str, int]:
                done = {}
                for table in tables:
                    key, where, at = expired[table]
                    done[table] = db.execute(
                        f"DELETE FROM {table} WHERE ({key}) IN (SELECT {key} FROM {table} WHERE {where} LIMIT ?)",
                        (at, PURGE_BATCH),
                    ).rowcount
                return done

            done = await self._writer.run(job)
            for table, count in done.items():
                removed[table] += count
            pending = [table for table, count in done.items() if count >= PURGE_BATCH]
        return removed

    async def counts(self) -> dict[str, int]:
        """Rows per table, for the operator's statistics."""
        tables = ("members", "listings", "mailbox", "key_bundles", "prekeys", "outbox", "nodes", "reports", "invites")
        result = {}
        for table in tables:
            row = await self._one(f"SELECT COUNT(*) FROM {table}")
            result[table] = int(row[0])
        return result
