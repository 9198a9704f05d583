"""Rate-limit windows shared by every process on one PostgreSQL database (spec §13.9, Storage back-ends; §13.8).

One process counts its limits in memory (``limits.RateLimiter``). Several processes serving one
database (``--workers``, or several machines) must count together, or a caller who spreads its
requests over N of them gets N times every limit. They then count in an UNLOGGED table, on a
connection of its own, in a function that locks the windows it touches, so two processes
counting the same subject at once cannot both take the last use.

The uses one request makes (a peer's and its address's, say) are counted all or none. Requests
that ask while a call is out wait for the next, which takes all of them in the order they asked
(as the writer groups commits): a round trip cost a request 300 µs of node CPU under load, and
one per batch is shared by the batch. A process that serves the database alone still counts in
memory: ``together`` is whether another node process is connected to the same database, looked
up every WATCH_EVERY seconds and set at once when another announces itself (bus.py's ``hello``).

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
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from peerfed.protocol.crypto import Person, blake2b_keyed

from .db import StorageError
from .pg import _NO_JIT, APPLICATION, CONNECT_TIMEOUT, _redacted
from .pgdriver import load_psycopg as _psycopg

if TYPE_CHECKING:
    from ..limits import Use

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
    " tag BYTEA PRIMARY KEY, used BIGINT NOT NULL, ends_at DOUBLE PRECISION NOT NULL)",
    "CREATE INDEX IF NOT EXISTS peerfed_windows_ends ON peerfed_windows (ends_at)",
    # The requests of one batch, in order, each counted all or none. Every window of the batch is
    # made if missing (as one already ended, so the first request to use it starts it at its own
    # time) and locked, in the order of the tags (so two processes never wait on each other in a
    # circle); then request by request (``owners``: each use's request, from 1), a
    # window that has ended starts again, and if every use fits its window all are counted, else
    # none and the first that does not fit is named (its place in the request, from 1, and when
    # its window ends; 0 and 0 when all fit).
    """
    CREATE OR REPLACE FUNCTION peerfed_count_many(
        owners INTEGER[], tags BYTEA[], costs BIGINT[], limits BIGINT[], spans DOUBLE PRECISION[],
        nows DOUBLE PRECISION[], OUT refused INTEGER[], OUT ends DOUBLE PRECISION[]
    ) LANGUAGE plpgsql AS $$
    DECLARE
        n INTEGER := coalesce(array_length(tags, 1), 0);
        lo INTEGER := 1;
        hi INTEGER;
        place INTEGER;
        place_ends DOUBLE PRECISION;
        was BIGINT[] := '{}';
        until DOUBLE PRECISION[] := '{}';
        row_used BIGINT;
        row_ends DOUBLE PRECISION;
    BEGIN
        refused := '{}';
        ends := '{}';
        INSERT INTO peerfed_windows (tag, used, ends_at)
            SELECT DISTINCT t, 0, 0 FROM unnest(tags) AS u(t) ORDER BY t ON CONFLICT (tag) DO NOTHING;
        PERFORM 1 FROM peerfed_windows WHERE tag = ANY(tags) ORDER BY tag FOR UPDATE;
        WHILE lo <= n LOOP
            hi := lo;
            WHILE hi < n AND owners[hi + 1] = owners[lo] LOOP
                hi := hi + 1;
            END LOOP;
            place := 0;
            place_ends := 0;
            FOR i IN lo .. hi LOOP
                SELECT used, ends_at INTO row_used, row_ends FROM peerfed_windows WHERE tag = tags[i];
                IF row_ends <= nows[i] THEN
                    row_used := 0;
                    row_ends := nows[i] + spans[i];
                END IF;
                was[i] := row_used;
                until[i] := row_ends;
                IF place = 0 AND row_used + costs[i] > limits[i] THEN
                    place := i - lo + 1;
                    place_ends := row_ends;
                END IF;
            END LOOP;
            FOR i IN lo .. hi LOOP
                UPDATE peerfed_windows SET used = was[i] + CASE WHEN place = 0 THEN costs[i] ELSE 0 END,
                    ends_at = until[i] WHERE tag = tags[i];
            END LOOP;
            refused := refused || place;
            ends := ends || place_ends;
            lo := hi + 1;
        END LOOP;
    END $$
    """,
)
_COUNT = "SELECT refused, ends FROM peerfed_count_many(%s, %s, %s, %s, %s, %s)"
MAX_BATCH = 256  # requests counted in one call at most
# Ended windows, in the order of their tags as a count locks them, skipping any a count holds:
# locked in another order, a purge and a count in another process could wait on each other.
_PURGE = (
    "DELETE FROM peerfed_windows WHERE tag IN"
    " (SELECT tag FROM peerfed_windows WHERE ends_at <= %s ORDER BY tag FOR UPDATE SKIP LOCKED)"
)


class _Asked(NamedTuple):
    """One request's uses waiting to be counted, and where its answer goes."""

    uses: list[Use]
    now: float
    answer: asyncio.Future[tuple[int, float] | None]


async def connect(address: str, name: str) -> Any:
    """A connection of its own (autocommit), named as this process's are, its statements never
    compiled (pg.py, _NO_JIT). Raises psycopg.Error."""
    conn = await _psycopg().AsyncConnection.connect(
        address, autocommit=True, application_name=name, connect_timeout=CONNECT_TIMEOUT
    )
    try:
        await conn.execute(_NO_JIT)
    except BaseException:
        await conn.close()
        raise
    return conn


async def connect_creating(address: str, name: str, lock: int, statements: Sequence[str]) -> Any:
    """``connect``, and run ``statements`` (each made only if missing) in one transaction under
    the advisory ``lock``, so processes starting together make them once. Raises psycopg.Error."""
    conn = await connect(address, name)
    try:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (lock,))
            for statement in statements:
                await conn.execute(statement)
    except BaseException:
        await conn.close()
        raise
    return conn


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
        self._asked: list[_Asked] = []  # requests waiting for the next call
        self._counting: asyncio.Task[None] | None = None  # the task making calls while any wait

    @classmethod
    async def open(cls, address: str, node_seed: bytes, name: str = APPLICATION) -> SharedWindows:
        """Connect, creating the table if no process has yet. Raises StorageError."""
        try:
            conn = await connect_creating(address, name, _TABLE_LOCK, _CREATE)
        except _psycopg().Error as exc:
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
            self._conn = await connect(self._address, self._name)
        return self._conn

    def tag(self, scope: str, subject: str) -> bytes:
        """The row's key for a scope and subject (a peer key, address or node URL, never stored)."""
        text = f"{scope}\n{subject}".encode("utf-8", "backslashreplace")
        return blake2b_keyed(text, self._key, Person.WINDOW)

    async def count(self, uses: Sequence[Use], now: float) -> tuple[int, float] | None:
        """Count every use of one request, or none: None if all fit their windows, else the place
        (from 0) of the first that does not and when its window ends. Raises StorageError.

        Requests are decided in the order they ask, whichever call takes them."""
        if not uses:
            return None
        asked = _Asked(list(uses), now, asyncio.get_running_loop().create_future())
        self._asked.append(asked)
        if self._counting is None:
            self._counting = asyncio.create_task(self._count_asked(), name="rate-windows-count")
        return await asked.answer

    async def _count_asked(self) -> None:
        """Make calls until no request waits: each takes those that asked while the last was out."""
        batch: list[_Asked] = []
        try:
            while self._asked:
                batch, self._asked = self._asked[:MAX_BATCH], self._asked[MAX_BATCH:]
                batch = [asked for asked in batch if not asked.answer.done()]  # its caller gave up: not counted
                if not batch:
                    continue
                try:
                    answers = await self._call(batch)
                except Exception as exc:  # each caller gets the failure (a fault in this code: as it is)
                    for asked in batch:
                        if not asked.answer.done():
                            asked.answer.set_exception(StorageError(str(exc)) if isinstance(exc, StorageError) else exc)
                else:
                    for asked, answer in zip(batch, answers, strict=True):
                        if not asked.answer.done():  # its caller may have given up meanwhile
                            asked.answer.set_result(answer)
        finally:
            self._counting = None
            left, self._asked = [*batch, *self._asked], []
            for asked in left:  # unanswered only if this was cancelled: the node stops
                if not asked.answer.done():
                    asked.answer.cancel()

    async def _call(self, batch: list[_Asked]) -> list[tuple[int, float] | None]:
        """One call of peerfed_count_many for ``batch``. Raises StorageError."""
        psycopg = _psycopg()
        owners: list[int] = []
        tags: list[bytes] = []
        costs: list[int] = []
        limits: list[int] = []
        spans: list[float] = []
        nows: list[float] = []
        for n, asked in enumerate(batch, 1):
            for use in asked.uses:
                owners.append(n)
                tags.append(self.tag(use.scope, use.subject))
                costs.append(use.cost)
                limits.append(use.limit)
                spans.append(use.window)
                nows.append(asked.now)
        # Only windows ended a while before the batch's earliest request go: one that ends between
        # two requests of the batch still counts the requests asked before its end, and so does
        # one a process with a clock a little behind asks about.
        earliest = min(nows)
        try:
            conn = await self._ready()
            if earliest >= self._purge_at:
                self._purge_at = earliest + PURGE_EVERY
                await conn.execute(_PURGE, (earliest - PURGE_EVERY,))
            row = await (await conn.execute(_COUNT, (owners, tags, costs, limits, spans, nows))).fetchone()
        except psycopg.Error as exc:
            raise StorageError(f"the shared rate windows are unavailable: {_redacted(exc)}") from exc
        refused, ends = row
        return [(int(place) - 1, float(end)) if place else None for place, end in zip(refused, ends, strict=True)]

    async def close(self) -> None:
        if self._counting is not None:
            self._counting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._counting
        # Cancelled before its first step, the task never ran its own clean-up: nobody is left to count these.
        self._counting = None
        for asked in self._asked:
            asked.answer.cancel()
        self._asked = []
        if self._watching is not None:
            self._watching.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watching
        await self._conn.close()
