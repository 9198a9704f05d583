"""Key bundles: each known peer's newest one, and where it came from (spec §4.3, §13.5, §13.9)."""

from __future__ import annotations

from .db import Conn, Database
from .outbox import enqueue
from .rows import KeyBundleRow, Outbox

__all__ = ["BundlesMixin"]


class BundlesMixin(Database):
    """Every call raises StorageError if the database fails."""

    async def put_key_bundle(
        self,
        peer: bytes,
        raw: bytes,
        created_at: int,
        expires_at: int,
        origin: str | None,
        outbox: Outbox = (),
        now: float = 0.0,
    ) -> bool:
        """Keep the newest bundle per peer, queueing its pushes with it; True if this one was stored."""
        rows = list(outbox)

        def job(db: Conn) -> bool:
            cursor = db.execute(
                "INSERT INTO key_bundles VALUES (?, ?, ?, ?, ?) ON CONFLICT(peer) DO UPDATE SET raw=excluded.raw,"
                " created_at=excluded.created_at, expires_at=excluded.expires_at, origin=excluded.origin"
                " WHERE excluded.created_at > key_bundles.created_at",
                (peer, raw, created_at, expires_at, origin),
            )
            if cursor.rowcount != 1:
                return False
            enqueue(db, rows, now)
            return True

        return await self._writer.run(job)

    async def key_bundle(self, peer: bytes, now: int) -> KeyBundleRow | None:
        """The peer's bundle if one is held and live."""
        row = await self._one("SELECT raw, origin FROM key_bundles WHERE peer=? AND expires_at > ?", (peer, now))
        return None if row is None else KeyBundleRow(bytes(row[0]), row[1])
