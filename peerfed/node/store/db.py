"""The database plumbing under the store: one group-committing writer, one reader (spec §13.9).

One write connection, owned by a thread that commits concurrent writes together (group
commit, see GroupWriter), and one reader connection (aiosqlite), both in WAL mode. A write
that the node acknowledges has been committed with the configured `synchronous` level (FULL
by default) before the call returns. sqlite's errors are translated in this package, and only
here, into StorageError: the rest of the node never sees sqlite3 or aiosqlite.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from peerfed.protocol.errors import UnavailableError

__all__ = ["Database", "GroupWriter", "StorageError", "connect"]

T = TypeVar("T")


class StorageError(UnavailableError):
    """The database failed (disk full, read-only, corrupt): the node cannot take the request."""


class _Job:
    __slots__ = ("bare", "fn", "future")

    def __init__(self, fn: Callable[[sqlite3.Connection], Any], future: asyncio.Future[Any], bare: bool) -> None:
        self.fn = fn
        self.future = future
        self.bare = bare


class GroupWriter:
    """The one write connection, owned by one thread, committing concurrent writes together.

    Each write is a function of the connection. Writes that arrive while a commit is on disk
    wait, and then go in one transaction, each in its own savepoint: a write that fails is
    rolled back alone, and every write is acknowledged only once the shared COMMIT (one
    fsync under synchronous=FULL) has returned. One fsync for many writes is what makes
    concurrent ingest fast; one thread hop per write, not one per statement, is the rest.
    """

    MAX_GROUP = 512

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="peerfed-writer")
        self._conn: sqlite3.Connection | None = None
        self._pending: deque[_Job] = deque()
        self._flushing: asyncio.Task[None] | None = None
        self.groups = 0
        self.writes = 0

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

    async def run(self, fn: Callable[[sqlite3.Connection], T], *, bare: bool = False) -> T:
        """Run ``fn`` in a transaction (or, if ``bare``, outside one) and return once committed.

        Raises StorageError if the database fails, or whatever ``fn`` raised (its write is
        then rolled back alone).
        """
        loop = asyncio.get_running_loop()
        job = _Job(fn, loop.create_future(), bare)
        self._pending.append(job)
        if self._flushing is None or self._flushing.done():
            self._flushing = loop.create_task(self._flush())
        result: T = await job.future
        return result

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
                return [(False, _translated(exc, "database write failed"))]
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            return [(False, StorageError(f"database unavailable: {exc}")) for _ in group]
        outcomes: list[tuple[bool, Any]] = []
        try:
            for job in group:
                conn.execute("SAVEPOINT w")
                try:
                    outcomes.append((True, job.fn(conn)))
                    conn.execute("RELEASE w")
                except Exception as exc:  # each write's failure is its own caller's
                    conn.execute("ROLLBACK TO w")
                    conn.execute("RELEASE w")
                    outcomes.append((False, _translated(exc, "database write failed")))
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            with suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            return [(False, StorageError(f"database write failed: {exc}")) for _ in group]
        self.groups += 1
        self.writes += len(group)
        return outcomes

    async def close(self) -> None:
        while self._flushing is not None and not self._flushing.done():
            await asyncio.shield(self._flushing)

        def shut() -> None:
            if self._conn is not None:
                with suppress(sqlite3.Error):
                    self._conn.execute("PRAGMA optimize")
                self._conn.close()

        await asyncio.get_running_loop().run_in_executor(self._pool, shut)
        self._pool.shutdown(wait=True)


def _translated(exc: BaseException, what: str) -> BaseException:
    return StorageError(f"{what}: {exc}") if isinstance(exc, sqlite3.Error) else exc


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

    def __init__(self, writer: GroupWriter, readers: Sequence[aiosqlite.Connection], path: Path) -> None:
        self._writer = writer
        self._readers = list(readers)
        self._reading = [0] * len(self._readers)  # reads in flight on each
        self.path = path

    async def close(self) -> None:
        for reader in self._readers:
            await reader.close()
        await self._writer.close()

    async def _all(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        """Every row of one read, on the read connection with the fewest in flight. Raises StorageError.

        Each read is one statement, so it sees one committed state whichever connection runs it.
        """
        at = min(range(len(self._readers)), key=self._reading.__getitem__)
        self._reading[at] += 1
        try:
            return list(await self._readers[at].execute_fetchall(sql, params))
        except sqlite3.Error as exc:
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
        return await self._writer.run(lambda db: [tuple(r) for r in db.execute(statement).fetchall()], bare=True)

    async def checkpoint(self) -> None:
        """Move the WAL into the database file and truncate it, so deleted bytes leave the WAL."""
        await self._writer.run(lambda db: db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall(), bare=True)

    @property
    def write_stats(self) -> tuple[int, int]:
        """(transactions committed, writes in them): their ratio is the group-commit factor."""
        return self._writer.groups, self._writer.writes
