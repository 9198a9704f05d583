"""Rate-limit windows shared by every process on one PostgreSQL database (spec §13.9, Storage back-ends; §13.8).

One process counts its limits in memory (``limits.RateLimiter``). Several processes serving one
database (``--workers``, or several machines) must count together, or a caller who spreads its
requests over N of them gets N times every limit. Each use is then one statement on a
connection of its own: an upsert on an UNLOGGED table that starts, counts or refuses in the same
step, so two processes counting the same subject at once cannot both take the last use.

That statement costs a node process about 280 µs of CPU and the server 90 µs (measured, two per
listing), so a process that serves the database alone keeps counting in memory: ``together`` is
whether another node process is connected to the same database, looked up every WATCH_EVERY
seconds and set at once when another announces itself (bus.py's ``hello``).

A window is kept under a keyed digest of its scope and subject, never the peer key, address or
node URL itself: the key is derived from the node key every process of the node holds, so they
agree, and the rows say nothing to someone reading the database's files without it. A row lives
until its window ends, and is then deleted within a minute; UNLOGGED, it never reaches the WAL,
and a crash of the server empties the table (every window starts again).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from peerfed.protocol.crypto import Person, blake2b_keyed

from .db import StorageError
from .pg import APPLICATION, CONNECT_TIMEOUT, _psycopg, _redacted

__all__ = ["SharedWindows"]

_TABLE_LOCK = 0x7065657266656403  # "peerfe" + 3: creating the table once
PURGE_EVERY = 60.0  # seconds of the node's clock between deletions of ended windows
RECONNECT_EVERY = 1.0  # seconds between attempts to reach a server that went away
WATCH_EVERY = 10.0  # seconds between looks for other node processes on the database

# Other node processes on this database: by name (peerfed-PID) and, across machines, by address.
_OTHERS = (
    "SELECT count(DISTINCT (coalesce(host(client_addr), ''), application_name)) FROM pg_stat_activity"
    " WHERE datname = current_database() AND application_name LIKE 'peerfed-%%' AND application_name <> %s"
)

_CREATE = (
    "CREATE UNLOGGED TABLE IF NOT EXISTS peerfed_windows ("
    " tag BYTEA PRIMARY KEY, used BIGINT NOT NULL, ends_at DOUBLE PRECISION NOT NULL, refused BOOLEAN NOT NULL)",
    "CREATE INDEX IF NOT EXISTS peerfed_windows_ends ON peerfed_windows (ends_at)",
)

# A window that has ended starts again at this use; a use that would take it past the limit is
# refused and not counted (as in memory); ``refused`` reports which, in the same statement.
_COUNT = """
INSERT INTO peerfed_windows AS w (tag, used, ends_at, refused)
VALUES (%(tag)s, CASE WHEN %(cost)s > %(limit)s THEN 0 ELSE %(cost)s END, %(now)s + %(window)s, %(cost)s > %(limit)s)
ON CONFLICT (tag) DO UPDATE SET
    used = CASE
        WHEN w.ends_at <= %(now)s THEN CASE WHEN %(cost)s > %(limit)s THEN 0 ELSE %(cost)s END
        WHEN w.used + %(cost)s > %(limit)s THEN w.used
        ELSE w.used + %(cost)s END,
    refused = CASE WHEN w.ends_at <= %(now)s THEN %(cost)s > %(limit)s ELSE w.used + %(cost)s > %(limit)s END,
    ends_at = CASE WHEN w.ends_at <= %(now)s THEN %(now)s + %(window)s ELSE w.ends_at END
RETURNING refused, ends_at
"""


def windows_key(node_seed: bytes) -> bytes:
    """The key of the windows' digests: the node key's, so every process of the node derives it."""
    return blake2b_keyed(b"rate windows", node_seed, Person.WINDOW, 32)


class SharedWindows:
    """Counts uses against limits in PostgreSQL; ``count`` raises StorageError if the server is away."""

    def __init__(self, address: str, conn: Any, key: bytes, name: str = APPLICATION) -> None:
        self._address = address
        self._name = name  # this process's connections' application_name
        self._conn = conn
        self._key = key
        self._purge_at = 0.0
        self._connect_after = 0.0  # monotonic time of the next connection attempt
        self.together = False  # another node process serves this database: count here, not in memory
        self._watching: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, address: str, node_seed: bytes, name: str = APPLICATION) -> SharedWindows:
        """Connect, creating the table if no process has yet. Raises StorageError."""
        psycopg = _psycopg()
        try:
            conn = await cls._connect(address, name)
            try:
                async with conn.transaction():
                    await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_TABLE_LOCK,))
                    for statement in _CREATE:
                        await conn.execute(statement)
            except BaseException:
                await conn.close()
                raise
        except psycopg.Error as exc:
            raise StorageError(f"cannot open the shared rate windows: {_redacted(exc)}") from exc
        windows = cls(address, conn, windows_key(node_seed), name)
        await windows.look()
        windows._watching = asyncio.create_task(windows._watch(), name="rate-windows-watch")
        return windows

    async def look(self) -> bool:
        """Whether another node process is connected to this database now (``together``). Raises StorageError."""
        try:
            row = await (await (await self._ready()).execute(_OTHERS, (self._name,))).fetchone()
        except _psycopg().Error as exc:
            raise StorageError(f"the shared rate windows are unavailable: {_redacted(exc)}") from exc
        self.together = bool(row and row[0])
        return self.together

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(WATCH_EVERY)
            with contextlib.suppress(StorageError):  # the server is away: as it was until it is back
                await self.look()

    async def _ready(self) -> Any:
        """The connection, made again if the server dropped it (not more than once a second)."""
        if self._conn.closed or self._conn.broken:
            if time.monotonic() < self._connect_after:  # not a connection attempt per request
                raise StorageError("the shared rate windows are unavailable (reconnecting)")
            self._connect_after = time.monotonic() + RECONNECT_EVERY
            self._conn = await self._connect(self._address, self._name)
        return self._conn

    @staticmethod
    async def _connect(address: str, name: str) -> Any:
        return await _psycopg().AsyncConnection.connect(
            address, autocommit=True, application_name=name, connect_timeout=CONNECT_TIMEOUT
        )

    def tag(self, scope: str, subject: str) -> bytes:
        """The row's key for a scope and subject (a peer key, address or node URL, never stored)."""
        text = f"{scope}\n{subject}".encode("utf-8", "backslashreplace")
        return blake2b_keyed(text, self._key, Person.WINDOW)

    async def count(
        self, scope: str, subject: str, *, limit: int, window: float, now: float, cost: int
    ) -> float | None:
        """Count ``cost`` uses; None if they fit, else when the window ends (they were not counted)."""
        psycopg = _psycopg()
        params = {"tag": self.tag(scope, subject), "cost": cost, "limit": limit, "now": now, "window": window}
        try:
            conn = await self._ready()
            if now >= self._purge_at:
                self._purge_at = now + PURGE_EVERY
                await conn.execute("DELETE FROM peerfed_windows WHERE ends_at <= %s", (now,))
            row = await (await conn.execute(_COUNT, params)).fetchone()
        except psycopg.Error as exc:
            raise StorageError(f"the shared rate windows are unavailable: {_redacted(exc)}") from exc
        refused, ends_at = row
        return float(ends_at) if refused else None

    async def close(self) -> None:
        if self._watching is not None:
            self._watching.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watching
        await self._conn.close()
