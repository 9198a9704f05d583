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

__all__ = ["ErasureMixin"]


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
        """Delete everything past its time (spec §13.9). Returns rows deleted per table."""
        statements = {
            "listings": ("DELETE FROM listings WHERE expires_at <= ?", (now,)),
            "withdrawals": ("DELETE FROM withdrawals WHERE expires_at <= ?", (now,)),
            "erasures": ("DELETE FROM erasures WHERE expires_at <= ?", (now,)),
            "mailbox": ("DELETE FROM mailbox WHERE expires_at <= ?", (now,)),
            "seen_sealed": ("DELETE FROM seen_sealed WHERE expires_at <= ?", (now,)),
            "key_bundles": ("DELETE FROM key_bundles WHERE expires_at <= ?", (now,)),
            "nonces": ("DELETE FROM nonces WHERE expires_at <= ?", (now,)),
            "challenges": ("DELETE FROM challenges WHERE expires_at <= ?", (now,)),
            "sessions": ("DELETE FROM sessions WHERE expires_at <= ?", (now,)),
            "outbox": (
                "DELETE FROM outbox WHERE state != 'pending' AND finished_at <= ?",
                (now - outbox_retention,),
            ),
            "reports": (
                "DELETE FROM reports WHERE status='resolved' AND resolved_at <= ?",
                (now - report_retention,),
            ),
            "invites": ("DELETE FROM invites WHERE expires_at <= ?", (now,)),
        }

        def job(db: Conn) -> dict[str, int]:
            return {name: db.execute(sql, params).rowcount for name, (sql, params) in statements.items()}

        return await self._writer.run(job)

    async def counts(self) -> dict[str, int]:
        """Rows per table, for the operator's statistics."""
        tables = ("members", "listings", "mailbox", "key_bundles", "prekeys", "outbox", "nodes", "reports", "invites")
        result = {}
        for table in tables:
            row = await self._one(f"SELECT COUNT(*) FROM {table}")
            result[table] = int(row[0])
        return result
