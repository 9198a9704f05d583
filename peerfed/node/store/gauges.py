"""Open live connections counted by all of a node's processes on PostgreSQL (spec §13.5; §13.9 Storage back-ends).

The caps on open live connections (per address, per peer, in all) are the node's, not each
process's: without sharing, a caller whose sockets the kernel or a load balancer spreads over N
processes would hold N times ``live-per-address``, which the node's document promises it will
not. Each process keeps what it holds in an UNLOGGED table, one row per (digest, holder), where
the holder is the backend of the process's own counting connection (its pid and start time). A
process that dies loses that connection, and rows whose backend is gone from
``pg_stat_activity`` count for nothing from that moment (and are deleted when a process opens
the gauges). So every process of a node must connect as the same role, as it does with one
``database`` address: another role's backends show no start time. Taking a socket locks its
digests (transaction advisory locks, in order), sums the live holders' rows, and adds one to
each if every count is under its cap; giving it back takes one off the holder's own rows. A
process knows what it holds: when its connection is made again (the server dropped it), the
old holder's rows are deleted and what it holds is counted under the new one. A crash of the
server empties the table.

Digests are the windows' (keyed by the node key), so the table names no address or peer.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

from peerfed.protocol.crypto import Person, blake2b_keyed

from .db import StorageError
from .pg import APPLICATION, _redacted
from .pgdriver import load_psycopg as _psycopg
from .windows import RECONNECT_EVERY, connect, connect_creating, windows_key

__all__ = ["SharedSockets"]

_TABLE_LOCK = 0x7065657266656404  # "peerfe" + 4: creating the table once
_LOCK_CLASS = 0x6C697665  # "live": the first key of a digest's (int, int) advisory lock

_CREATE = (
    "CREATE UNLOGGED TABLE IF NOT EXISTS peerfed_live ("
    " tag BYTEA NOT NULL, pid INTEGER NOT NULL, started TIMESTAMPTZ NOT NULL, held INTEGER NOT NULL,"
    " PRIMARY KEY (tag, pid, started))",
    # 0 and one more counted on each digest, or the place (from 1) of the first at its cap and
    # nothing counted. Only rows whose holder is still connected count, as seen once the locks
    # are held (the statistics snapshot is taken again: one taken before could miss a holder
    # that connected while this waited).
    f"""
    CREATE OR REPLACE FUNCTION peerfed_live_take(tags BYTEA[], caps INTEGER[]) RETURNS INTEGER
    LANGUAGE plpgsql AS $$
    DECLARE
        me TIMESTAMPTZ;
        k INTEGER;
        now_held BIGINT;
    BEGIN
        FOR k IN SELECT DISTINCT hashtext(encode(u, 'hex')) FROM unnest(tags) AS u ORDER BY 1 LOOP
            PERFORM pg_advisory_xact_lock({_LOCK_CLASS}, k);
        END LOOP;
        PERFORM pg_stat_clear_snapshot();
        me := (SELECT backend_start FROM pg_stat_activity WHERE pid = pg_backend_pid());
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
_ME = "SELECT pid, backend_start FROM pg_stat_activity WHERE pid = pg_backend_pid()"
_FORGET = "DELETE FROM peerfed_live WHERE pid = %s AND started = %s"
_HOLD = (
    "INSERT INTO peerfed_live (tag, pid, started, held)"
    " SELECT t, %s, %s, n FROM unnest(%s::bytea[], %s::integer[]) AS u(t, n)"
)


class SharedSockets:
    """Counts open live connections against the node's caps in PostgreSQL, on a connection of
    its own. ``take`` and ``give`` raise StorageError if the server is away."""

    def __init__(self, address: str, conn: Any, key: bytes, name: str = APPLICATION) -> None:
        self._address = address
        self._name = name
        self._conn = conn
        self._key = key
        self._holder: tuple[int, Any] | None = None  # the connection's backend: pid, start time
        self._stale: list[tuple[int, Any]] = []  # holders before a reconnection, rows not yet deleted
        self._held: Counter[bytes] = Counter()  # what this process holds, by digest
        self._connect_after = 0.0
        self._closed = False

    @classmethod
    async def open(cls, address: str, node_seed: bytes, name: str = APPLICATION) -> SharedSockets:
        """Connect, create the table and functions if no process has yet, and delete the rows of
        holders that are gone. Raises StorageError."""
        psycopg = _psycopg()
        try:
            conn = await connect_creating(address, name, _TABLE_LOCK, _CREATE)
            try:
                await conn.execute(_DEAD)
                gauges = cls(address, conn, windows_key(node_seed), name)
                gauges._holder = await cls._whoami(conn)
            except BaseException:
                await conn.close()
                raise
        except psycopg.Error as exc:
            raise StorageError(f"cannot open the shared live-connection counts: {_redacted(exc)}") from exc
        return gauges

    @staticmethod
    async def _whoami(conn: Any) -> tuple[int, Any]:
        row = await (await conn.execute(_ME)).fetchone()
        return int(row[0]), row[1]

    async def _ready(self) -> Any:
        """The connection; made again if the server dropped it (not more than once a second),
        with what this process holds moved to the new holder."""
        if self._closed:
            raise StorageError("the shared live-connection counts are closed")
        if self._conn.closed or self._conn.broken:
            if time.monotonic() < self._connect_after:
                raise StorageError("the shared live-connection counts are unavailable (reconnecting)")
            self._connect_after = time.monotonic() + RECONNECT_EVERY
            self._conn = await connect(self._address, self._name)
            if self._holder is not None:
                self._stale.append(self._holder)
            self._holder = await self._whoami(self._conn)
            held = [(tag, n) for tag, n in self._held.items() if n > 0]
            try:
                async with self._conn.transaction():
                    for pid, started in self._stale:
                        await self._conn.execute(_FORGET, (pid, started))
                    if held:
                        tags, counts = zip(*held, strict=True)
                        await self._conn.execute(_HOLD, (*self._holder, list(tags), list(counts)))
            except BaseException:
                await self._conn.close()  # not counted under the new holder yet: try again next time
                raise
            self._stale = []
        return self._conn

    def tag(self, scope: str, subject: str) -> bytes:
        """The row's key for a scope and subject (an address, a peer key, or none for the total)."""
        text = f"live {scope}\n{subject}".encode("utf-8", "backslashreplace")
        return blake2b_keyed(text, self._key, Person.WINDOW)

    async def take(self, capped: Sequence[tuple[str, str, int]]) -> int:
        """One more socket on every (scope, subject) under its cap: 0 if counted on all, else the
        place (from 1) of the first at its cap, and nothing counted. Raises StorageError."""
        tags = [self.tag(scope, subject) for scope, subject, _ in capped]
        caps = [cap for _, _, cap in capped]
        try:
            conn = await self._ready()
            row = await (await conn.execute("SELECT peerfed_live_take(%s, %s)", (tags, caps))).fetchone()
        except _psycopg().Error as exc:
            raise StorageError(f"the shared live-connection counts are unavailable: {_redacted(exc)}") from exc
        if row[0] == 0:
            self._held.update(set(tags))
        return int(row[0])

    async def give(self, subjects: Sequence[tuple[str, str]]) -> None:
        """One socket fewer on each (scope, subject) this process took it on. Raises StorageError
        (what it holds is still known here, and counted right once the server is back)."""
        tags = list({self.tag(scope, subject) for scope, subject in subjects})
        self._held.subtract(tags)
        self._held = +self._held  # none at zero or below
        try:
            conn = await self._ready()
            await conn.execute("SELECT peerfed_live_give(%s)", (tags,))
        except _psycopg().Error as exc:
            raise StorageError(f"the shared live-connection counts are unavailable: {_redacted(exc)}") from exc

    async def close(self) -> None:
        self._closed = True
        await self._conn.close()
