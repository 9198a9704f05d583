"""The database plumbing under the store: one group-committing writer, read connections (spec §13.9).

One write connection, owned by a thread that commits concurrent writes together (group
commit, see GroupWriter), and read connections (aiosqlite), all in WAL mode. A write that the
node acknowledges has been committed with the configured `synchronous` level (FULL by default)
before the call returns. The same writer drives PostgreSQL (``pg``, spec §13.9 "Storage
back-ends") through a connection that speaks this module's ``Conn``. Database errors are
translated in this package, and only here, into StorageError: the rest of the node never sees
sqlite3, aiosqlite or psycopg.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from pathlib import Path
from typing import Any, Protocol, TypeVar

import aiosqlite

from peerfed.protocol.errors import UnavailableError

__all__ = ["Batch", "Conn", "Database", "GroupWriter", "Reader", "StorageError", "connect"]

T = TypeVar("T")
log = logging.getLogger("peerfed.node")

# The tables whose rows a peer's erasure, a withdrawal or an acknowledgement deletes.
VACUUM_ERASABLE = (
    "VACUUM listings, listing_facets, topic_words, key_bundles, prekeys, mailbox, members, sessions,"
    " reports, outbox_payload"
)


class Cursor(Protocol):
    """What a write reads back from one statement: sqlite3's cursor, or pg's."""

    @property
    def rowcount(self) -> int: ...
    @property
    def lastrowid(self) -> int | None: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...
    def __iter__(self) -> Any: ...


class Conn(Protocol):
    """The write connection a write function gets: sqlite3's, or pg's (SQL in SQLite's dialect)."""

    def execute(self, sql: str, parameters: Any = ..., /) -> Cursor: ...
    def executemany(self, sql: str, parameters: Any, /) -> Cursor: ...


class Reader(Protocol):
    """One read connection: aiosqlite's, or pg's."""

    async def execute_fetchall(self, sql: str, parameters: Any = ..., /) -> Any: ...
    async def close(self) -> None: ...


class StorageError(UnavailableError):
    """The database failed (disk full, read-only, corrupt): the node cannot take the request."""


# A write that may go with others of its kind in one call: ``batch(conn, items)`` stores every
# item and returns one outcome each, (True, value) or (False, the exception its caller gets).
Batch = Callable[[Any, list[Any]], list[tuple[bool, Any]]]


class _Job:
    __slots__ = ("bare", "batch", "fn", "future", "item")

    def __init__(
        self,
        fn: Callable[[Any], Any],
        future: asyncio.Future[Any],
        bare: bool,
        batch: Batch | None = None,
        item: Any = None,
    ) -> None:
        self.fn = fn
        self.future = future
        self.bare = bare
        self.batch = batch
        self.item = item


class GroupWriter:
    """The one write connection, owned by one thread, committing concurrent writes together.

    Each write is a function of the connection. Writes that arrive while a commit is on disk
    wait, and then go in one transaction, each in its own savepoint: a write that fails is
    rolled back alone, and every write is acknowledged only once the shared COMMIT (one
    fsync under synchronous=FULL) has returned. One fsync for many writes is what makes
    concurrent ingest fast; one thread hop per write, not one per statement, is the rest.

    Writes of one kind that come together (a burst of listings) may go in one call, ``batch``,
    and so in a few statements for all of them, not a few each: a statement is a trip to the
    server on PostgreSQL. They share one savepoint; if it fails as a whole, it is rolled back and
    each write runs again alone, in its own, so a write still fails alone.
    """

    MAX_GROUP = 512

    def __init__(
        self, errors: tuple[type[BaseException], ...] = (sqlite3.Error,), begin: str = "BEGIN IMMEDIATE"
    ) -> None:
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="peerfed-writer")
        self._conn: Any = None
        self._errors = errors  # the driver's own errors, which become StorageError
        self._begin = begin
        self.closing_timeout: float | None = None  # see close
        self._pending: deque[_Job] = deque()
        self._flushing: asyncio.Task[None] | None = None
        self.groups = 0
        self.writes = 0
        self.batches = 0  # calls of a batch function that stored their writes
        self.batches_undone = 0  # ... and that failed, their writes then run alone

    async def open(self, path: Path, synchronous: str) -> None:
        """Connect and set the pragmas. Raises sqlite3.Error (``connect`` translates it)."""

        def connect() -> None:
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._conn = conn
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={synchronous}")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA busy_timeout=5000")
            # Deleted rows are overwritten, not left in free pages: erasure means erasure.
            conn.execute("PRAGMA secure_delete=ON")

        await asyncio.get_running_loop().run_in_executor(self._pool, connect)

    async def open_with(self, connect: Callable[[], Any]) -> None:
        """Open the connection ``connect()`` makes, on the writer's thread (the pg back-end)."""

        def opened() -> None:
            self._conn = connect()

        await asyncio.get_running_loop().run_in_executor(self._pool, opened)

    async def run(self, fn: Callable[[Any], T], *, bare: bool = False, batch: tuple[Batch, Any] | None = None) -> T:
        """Run ``fn`` in a transaction (or, if ``bare``, outside one) and return once committed.

        With ``batch``, (a batch function, this write's item), the write may instead go in one
        call of that function with the writes next to it in the group that name the same one;
        ``fn`` must do what the batch function does for this item alone.

        Raises StorageError if the database fails, or whatever ``fn`` raised (its write is
        then rolled back alone).
        """
        loop = asyncio.get_running_loop()
        job = _Job(fn, loop.create_future(), bare, *(batch or (None, None)))
        self._pending.append(job)
        if self._flushing is None or self._flushing.done():
            self._flushing = loop.create_task(self._flush())
        result: T = await job.future
        return result

    async def run_batch(self, batch: Batch, item: Any) -> Any:
        """``run`` for a write whose batch function is also how it is stored alone: a burst of one.

        Returns the item's value; raises the exception its outcome names.
        """

        def alone(db: Conn) -> Any:
            ((ok, value),) = batch(db, [item])
            if not ok:
                raise value
            return value

        return await self.run(alone, batch=(batch, item))

    async def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        while self._pending:
            group: list[_Job] = [self._pending.popleft()]
            if not group[0].bare:
                while self._pending and not self._pending[0].bare and len(group) < self.MAX_GROUP:
                    group.append(self._pending.popleft())
            outcomes = await loop.run_in_executor(self._pool, self._commit, group)
            for job, (ok, value) in zip(group, outcomes, strict=True):
                if job.future.done():
                    continue
                if ok:
                    job.future.set_result(value)
                else:
                    job.future.set_exception(value)

    def _commit(self, group: list[_Job]) -> list[tuple[bool, Any]]:
        conn = self._conn
        assert conn is not None
        if group[0].bare:
            try:
                return [(True, group[0].fn(conn))]
            except BaseException as exc:
                return [(False, self._translated(exc, "database write failed"))]
        try:
            conn.execute(self._begin)
        except self._errors as exc:
            return [(False, StorageError(f"database unavailable: {exc}")) for _ in group]
        outcomes: list[tuple[bool, Any]] = []
        try:
            at = 0
            while at < len(group):
                batch, end = group[at].batch, at + 1
                while batch is not None and end < len(group) and group[end].batch == batch:
                    end += 1
                if batch is not None and end - at > 1:
                    outcomes += self._batched(conn, batch, group[at:end])
                else:
                    outcomes.append(self._alone(conn, group[at]))
                at = end
            conn.execute("COMMIT")
        except self._errors as exc:
            with suppress(*self._errors):
                conn.execute("ROLLBACK")
            return [(False, StorageError(f"database write failed: {exc}")) for _ in group]
        self.groups += 1
        self.writes += len(group)
        return outcomes

    def _alone(self, conn: Any, job: _Job) -> tuple[bool, Any]:
        """One write in its own savepoint: its outcome. Raises the driver's error if the
        transaction itself fails (the savepoint cannot be rolled back)."""
        conn.execute("SAVEPOINT w")
        try:
            value = job.fn(conn)
            conn.execute("RELEASE w")  # on PostgreSQL, where the write's own errors may surface
            return (True, value)
        except Exception as exc:  # each write's failure is its own caller's
            conn.execute("ROLLBACK TO w")
            conn.execute("RELEASE w")
            return (False, self._translated(exc, "database write failed"))

    def _batched(self, conn: Any, batch: Batch, jobs: list[_Job]) -> list[tuple[bool, Any]]:
        """Writes of one kind in one call and one savepoint; each alone if that fails."""
        conn.execute("SAVEPOINT w")
        try:
            outcomes = batch(conn, [job.item for job in jobs])
            if len(outcomes) != len(jobs):
                raise RuntimeError(f"a batch of {len(jobs)} writes gave {len(outcomes)} outcomes")
            conn.execute("RELEASE w")
        except Exception:  # one write's fault (a row the database refused): each goes alone
            conn.execute("ROLLBACK TO w")
            conn.execute("RELEASE w")
            self.batches_undone += 1
            return [self._alone(conn, job) for job in jobs]
        self.batches += 1
        return [(ok, value if ok else self._translated(value, "database write failed")) for ok, value in outcomes]

    async def close(self) -> None:
        """Finish the writes in hand, then close. With ``closing_timeout`` (a database server, not
        a file) a flush that does not end in time is left, unacknowledged, so a stopping node
        cannot hang on a server that went away; its callers were never told ``accepted``."""
        while self._flushing is not None and not self._flushing.done():
            try:
                await asyncio.wait_for(asyncio.shield(self._flushing), self.closing_timeout)
            except TimeoutError:
                log.warning("the database did not finish a write in %g s; closing without it", self.closing_timeout)
                self._pool.shutdown(wait=False)
                return

        def shut() -> None:
            if isinstance(self._conn, sqlite3.Connection):
                with suppress(sqlite3.Error):
                    self._conn.execute("PRAGMA optimize")
            if self._conn is not None:
                with suppress(*self._errors):
                    self._conn.close()

        await asyncio.get_running_loop().run_in_executor(self._pool, shut)
        self._pool.shutdown(wait=True)

    def _translated(self, exc: BaseException, what: str) -> BaseException:
        return StorageError(f"{what}: {exc}") if isinstance(exc, self._errors) else exc


async def connect(
    path: Path, synchronous: str, migrate: Callable[[GroupWriter], Awaitable[None]], readers: int = 1
) -> tuple[GroupWriter, list[aiosqlite.Connection]]:
    """Open the writer, bring the schema up to date with ``migrate``, then open ``readers`` read
    connections, each with its own thread (sqlite releases the GIL while it steps, so two reads
    run on two cores at once).

    Raises StorageError if the database cannot be opened or migrated.
    """
    writer = GroupWriter()
    opened: list[aiosqlite.Connection] = []
    try:
        await writer.open(path, synchronous)
        await migrate(writer)
        for _ in range(max(1, readers)):
            reader = await aiosqlite.connect(path, isolation_level=None)
            opened.append(reader)
            await reader.execute("PRAGMA foreign_keys=ON")
            await reader.execute("PRAGMA busy_timeout=5000")
            await reader.execute("PRAGMA query_only=ON")
    except sqlite3.Error as exc:
        for reader in opened:
            await reader.close()
        await writer.close()
        raise StorageError(f"cannot open the database at {path}: {exc}") from exc
    return writer, opened


class Database:
    """The connections and the read and write helpers every table group builds on."""

    def __init__(self, writer: GroupWriter, readers: Sequence[Reader], path: Path | None) -> None:
        self._writer = writer
        self._readers = list(readers)
        self._reading = [0] * len(self._readers)  # reads in flight on each
        self.path = path  # the SQLite file; None on PostgreSQL
        # Called once a write that queued federation work has committed (the node wakes its sender).
        self.on_queued: Callable[[], None] = lambda: None
        self._read_errors: tuple[type[BaseException], ...] = (sqlite3.Error, *writer._errors)

    async def close(self) -> None:
        for reader in self._readers:
            await reader.close()
        await self._writer.close()

    async def _all(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """Every row of one read, on the read connection with the fewest in flight. Raises StorageError.

        Each read is one statement, so it sees one committed state whichever connection runs it.
        """
        at = min(range(len(self._readers)), key=self._reading.__getitem__)
        self._reading[at] += 1
        try:
            return list(await self._readers[at].execute_fetchall(sql, params))
        except self._read_errors as exc:
            raise StorageError(f"database read failed: {exc}") from exc
        finally:
            self._reading[at] -= 1

    async def _one(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """The first row of one read, or None. Raises StorageError."""
        rows = await self._all(sql, params)
        return rows[0] if rows else None

    async def _write(self, sql: str, params: Sequence[Any] = ()) -> int:
        """One statement in a group-committed transaction; returns its row count. Raises StorageError."""
        return await self._writer.run(lambda db: db.execute(sql, params).rowcount)

    async def pragma(self, statement: str) -> list[Any]:
        """Run one PRAGMA on the write connection, outside any transaction (operators, tests).

        Raises ValueError for anything but a PRAGMA, StorageError if it fails.
        """
        if not statement.upper().startswith("PRAGMA "):
            raise ValueError("only PRAGMA statements")
        if self.path is None:
            raise StorageError("PRAGMA statements are SQLite's, and this node's database is PostgreSQL")
        return await self._writer.run(lambda db: [tuple(r) for r in db.execute(statement).fetchall()], bare=True)

    async def checkpoint(self) -> None:
        """Move the WAL into the database file and truncate it, so deleted bytes leave the WAL.

        On PostgreSQL, VACUUM the tables that hold what a peer can erase, so their deleted rows'
        space is reused (spec §13.9, Storage back-ends, says what that does and does not erase).
        """
        if self.path is None:
            await self._writer.run(lambda db: db.execute(VACUUM_ERASABLE), bare=True)
            return
        await self._writer.run(lambda db: db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall(), bare=True)

    @property
    def write_stats(self) -> tuple[int, int]:
        """(transactions committed, writes in them): their ratio is the group-commit factor."""
        return self._writer.groups, self._writer.writes
