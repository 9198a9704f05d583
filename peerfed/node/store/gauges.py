"""Open live connections counted by all of a node's processes on PostgreSQL (spec §13.5; §13.9 Storage back-ends).

The caps on open live connections (per address, per peer, in all) are the node's, not each
process's: without sharing, a caller whose sockets the kernel or a load balancer spreads over N
processes would hold N times ``live-per-address``, which the node's document promises it will
not. Each process keeps what it holds in an UNLOGGED table, one row per (digest, holder), where
the holder is the backend of the shared windows' connection (its pid and start time). A process
that dies loses that connection, and rows whose backend is gone from ``pg_stat_activity`` count
for nothing from that moment (and are deleted when a process opens the gauges). Taking a socket
locks its digests (transaction advisory locks, in digest order), sums the live holders' rows,
and adds one to each if every count is under its cap; giving it back takes one off the holder's
own rows. A crash of the server empties the table, as it ends every live connection anyway.

Digests are the windows' (keyed by the node key), so the table names no address or peer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from .db import StorageError
from .pg import _psycopg, _redacted

if TYPE_CHECKING:
    from .windows import SharedWindows

__all__ = ["SharedSockets"]

_TABLE_LOCK = 0x7065657266656404  # "peerfe" + 4: creating the table once
_LOCK_SEED = 0x6C697665  # "live": seeds the advisory lock key of a digest

_CREATE = (
    "CREATE UNLOGGED TABLE IF NOT EXISTS peerfed_live ("
    " tag BYTEA NOT NULL, pid INTEGER NOT NULL, started TIMESTAMPTZ NOT NULL, held INTEGER NOT NULL,"
    " PRIMARY KEY (tag, pid, started))",
    # 0 and one more counted on each digest, or the place (from 1) of the first at its cap and
    # nothing counted. Only rows whose holder is still connected count.
    f"""
    CREATE OR REPLACE FUNCTION peerfed_live_take(tags BYTEA[], caps INTEGER[]) RETURNS INTEGER
    LANGUAGE plpgsql AS $$
    DECLARE
        me TIMESTAMPTZ := (SELECT backend_start FROM pg_stat_activity WHERE pid = pg_backend_pid());
        t BYTEA;
        now_held BIGINT;
    BEGIN
        FOR t IN SELECT DISTINCT u FROM unnest(tags) AS u ORDER BY u LOOP
            PERFORM pg_advisory_xact_lock(hashtextextended(encode(t, 'hex'), {_LOCK_SEED}));
        END LOOP;
        FOR i IN 1 .. coalesce(array_length(tags, 1), 0) LOOP
            SELECT coalesce(sum(l.held), 0) INTO now_held FROM peerfed_live l
                JOIN pg_stat_activity a ON a.pid = l.pid AND a.backend_start = l.started
                WHERE l.tag = tags[i];
            IF now_held >= caps[i] THEN
                RETURN i;
            END IF;
        END LOOP;
        INSERT INTO peerfed_live (tag, pid, started, held)
            SELECT DISTINCT u, pg_backend_pid(), me, 1 FROM unnest(tags) AS u
            ON CONFLICT (tag, pid, started) DO UPDATE SET held = peerfed_live.held + 1;
        RETURN 0;
    END $$
    """,
    """
    CREATE OR REPLACE FUNCTION peerfed_live_give(tags BYTEA[]) RETURNS VOID LANGUAGE plpgsql AS $$
    DECLARE
        me TIMESTAMPTZ := (SELECT backend_start FROM pg_stat_activity WHERE pid = pg_backend_pid());
    BEGIN
        UPDATE peerfed_live SET held = held - 1
            WHERE tag = ANY(tags) AND pid = pg_backend_pid() AND started = me;
        DELETE FROM peerfed_live WHERE tag = ANY(tags) AND pid = pg_backend_pid() AND started = me AND held <= 0;
    END $$
    """,
)
_DEAD = (
    "DELETE FROM peerfed_live l WHERE NOT EXISTS"
    " (SELECT 1 FROM pg_stat_activity a WHERE a.pid = l.pid AND a.backend_start = l.started)"
)


class SharedSockets:
    """Counts open live connections against the node's caps in PostgreSQL, on the shared
    windows' connection. ``take`` and ``give`` raise StorageError if the server is away."""

    def __init__(self, windows: SharedWindows) -> None:
        self._windows = windows

    @classmethod
    async def open(cls, windows: SharedWindows) -> SharedSockets:
        """Create the table and functions if no process has yet, and delete the rows of holders
        that are gone. Raises StorageError."""
        try:
            conn = await windows.ready()
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_TABLE_LOCK,))
                for statement in _CREATE:
                    await conn.execute(statement)
            await conn.execute(_DEAD)
        except _psycopg().Error as exc:
            raise StorageError(f"cannot open the shared live-connection counts: {_redacted(exc)}") from exc
        return cls(windows)

    def _tags(self, subjects: Sequence[tuple[str, str]]) -> list[bytes]:
        return [self._windows.tag("live " + scope, subject) for scope, subject in subjects]

    async def take(self, capped: Sequence[tuple[str, str, int]]) -> int:
        """One more socket on every (scope, subject) under its cap: 0 if counted on all, else the
        place (from 1) of the first at its cap, and nothing counted. Raises StorageError."""
        tags = self._tags([(scope, subject) for scope, subject, _ in capped])
        caps = [cap for _, _, cap in capped]
        try:
            conn = await self._windows.ready()
            row = await (await conn.execute("SELECT peerfed_live_take(%s, %s)", (tags, caps))).fetchone()
        except _psycopg().Error as exc:
            raise StorageError(f"the shared live-connection counts are unavailable: {_redacted(exc)}") from exc
        return int(row[0])

    async def give(self, subjects: Sequence[tuple[str, str]]) -> None:
        """One socket fewer on each (scope, subject) this process took it on. Raises StorageError."""
        try:
            conn = await self._windows.ready()
            await conn.execute("SELECT peerfed_live_give(%s)", (self._tags(subjects),))
        except _psycopg().Error as exc:
            raise StorageError(f"the shared live-connection counts are unavailable: {_redacted(exc)}") from exc
