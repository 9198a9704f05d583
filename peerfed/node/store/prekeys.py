"""One-time pre-keys: a member's stock, each key handed out once and deleted (spec §13.5, §14.1, §13.9)."""

from __future__ import annotations

from collections.abc import Sequence

from .db import Conn, Database

__all__ = ["PreKeysMixin"]


class PreKeysMixin(Database):
    """Every call raises StorageError if the database fails.

    Claims and uploads are jobs of the one group writer, which runs them one after another, so
    two claims can never read the same row before either deletes it.
    """

    async def add_prekeys(self, owner: bytes, keys: Sequence[bytes], cap: int, now: int) -> int | None:
        """Add the keys the owner does not hold yet; the stock after, or None (nothing added) when
        that stock would pass ``cap``."""
        wanted = list(dict.fromkeys(keys))

        def job(db: Conn) -> int | None:
            held = {bytes(r[0]) for r in db.execute("SELECT key FROM prekeys WHERE owner=?", (owner,))}
            new = [k for k in wanted if k not in held]
            if len(held) + len(new) > cap:
                return None
            db.executemany("INSERT INTO prekeys VALUES (?, ?, ?)", [(owner, k, now) for k in new])
            return len(held) + len(new)

        return await self._writer.run(job)

    async def claim_prekey(self, owner: bytes) -> bytes | None:
        """Take the owner's oldest one-time pre-key out of the stock, or None if none is left."""

        def job(db: Conn) -> bytes | None:
            row = db.execute(
                "SELECT key FROM prekeys WHERE owner=? ORDER BY uploaded_at, key LIMIT 1", (owner,)
            ).fetchone()
            if row is None:
                return None
            db.execute("DELETE FROM prekeys WHERE owner=? AND key=?", (owner, row[0]))
            return bytes(row[0])

        return await self._writer.run(job)

    async def prekey_stock(self, owner: bytes) -> int:
        """How many one-time pre-keys the owner has left."""
        row = await self._one("SELECT COUNT(*) FROM prekeys WHERE owner=?", (owner,))
        return int(row[0])
