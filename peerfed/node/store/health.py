"""The store's side of the node's readiness check (spec §13.1, Health): a real write and read back.

The probe writes one row of the ``meta`` table through the group writer, as every acknowledged
write goes (committed under the configured ``synchronous``), and reads it back through the
reader: a full disk, a read-only file or a lock held elsewhere all fail it as they would fail a
member's write.
"""

from __future__ import annotations

import contextlib

from .db import Database, StorageError

__all__ = ["HealthMixin"]

PROBE_KEY = "health.probe"


class HealthMixin(Database):
    async def probe(self, now: float) -> None:
        """Write ``now`` and read it back. Raises StorageError if either fails or they disagree."""
        value = repr(float(now))
        await self._write(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
            (PROBE_KEY, value),
        )
        row = await self._one("SELECT value FROM meta WHERE key = ?", (PROBE_KEY,))
        if row is None or row[0] != value:
            raise StorageError("the database did not read back what was just written to it")

    async def size_bytes(self) -> int:
        """The database's size on disk: SQLite's file with its WAL and shared-memory files (a
        missing one counts 0), or PostgreSQL's pg_database_size. Raises StorageError."""
        if self.path is None:
            row = await self._one("SELECT pg_database_size(current_database())")
            return int(row[0])
        total = 0
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(OSError):
                total += (self.path.parent / (self.path.name + suffix)).stat().st_size
        return total
