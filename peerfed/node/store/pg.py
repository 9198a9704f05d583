"""The store on PostgreSQL (spec §13.9, Storage back-ends), through psycopg 3.

The same table groups, the same group-committing writer (one connection, one thread, one
COMMIT for many writes, each in its own savepoint; its connection, whose transactions are
pipelined, is ``pgwriter``'s), and read connections that take the fewest-in-flight turn as SQLite's do. Statements are
SQLite's, rewritten by ``dialect``. The schema is created at this software's version in one
transaction, or migrated to it one migration per transaction (SQLite's, derived by
``dialect``), under an advisory lock, so processes starting together create or migrate it
once. psycopg's errors become StorageError here.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from .db import GroupWriter, StorageError
from .dialect import postgres_schema, postgres_step, to_postgres
from .pgdriver import load_psycopg as _psycopg
from .pgwriter import _storable, _WriteConnection

__all__ = ["APPLICATION", "connect_postgres", "is_postgres"]

# Any constant both sides agree on: the lock a process holds while it creates or checks the schema.
_SCHEMA_LOCK = 0x70656572666564  # "peerfed"
# How this process's connections are named in pg_stat_activity (an operator's aid).
APPLICATION = f"peerfed-{os.getpid()}"
# How long a stopping node waits for the server to finish a write (GroupWriter.close), and how
# long a connection attempt may take: a server that went away must not hold a node up for ever.
STOP_WAIT = 5.0
CONNECT_TIMEOUT = 10
# Every statement of a node is short, and a scan the settings below turn away from (enable_seqscan
# off) is priced at ten billion: above jit_above_cost, so PostgreSQL (where built with LLVM, as
# Debian's is) compiled the statement to machine code before running it, every time. Measured:
# the federated nodes' look-up queued with every listing took 12.7 ms instead of 0.1.
_NO_JIT = "SET jit = off"
_COMMIT_LEVEL = {"FULL": "on", "EXTRA": "on", "NORMAL": "off", "OFF": "off"}


def is_postgres(target: str) -> bool:
    """Whether a --database value names a PostgreSQL server rather than a SQLite file."""
    return target.startswith(("postgresql://", "postgres://"))


class _Reader:
    """One psycopg AsyncConnection in autocommit: each read is one statement, one snapshot."""

    def __init__(self, conn: Any, reconnect: Callable[[], Awaitable[Any]]) -> None:
        self._conn = conn
        self._reconnect = reconnect

    async def execute_fetchall(self, sql: str, parameters: Sequence[Any] = (), /) -> list[Any]:
        parameters = _storable(parameters)
        if self._conn.closed or self._conn.broken:  # the server dropped it (a restart): again
            self._conn = await self._reconnect()
        try:
            cursor = await self._conn.execute(to_postgres(sql), tuple(parameters))
        except _psycopg().OperationalError:
            if not self._conn.broken:
                raise
            self._conn = await self._reconnect()  # a read is safe to ask again, once
            cursor = await self._conn.execute(to_postgres(sql), tuple(parameters))
        rows: list[Any] = await cursor.fetchall()
        return rows

    async def close(self) -> None:
        await self._conn.close()


def _no_new_connection() -> Any:
    # A migration's statements run in its one transaction, on its one connection, or not at all.
    raise _psycopg().OperationalError("the connection was lost during a migration")


def _create_or_migrate(conn: Any, version: int, creating: bool) -> None:
    """Create the schema at ``version`` in an empty database, or bring it to ``version`` one
    migration per transaction, each under the schema lock and after reading the version again
    (another process may have run it meanwhile). With ``creating=False`` (the operator's tools)
    neither: an empty or older database is refused, as on SQLite. Raises StorageError."""
    from .schema import BACKFILLS, POSTGRES_SINCE  # schema imports db, which is not needed at import

    while True:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
            found = conn.execute("SELECT to_regclass('peerfed_schema') IS NOT NULL").fetchone()[0]
            if not found:
                if not creating:
                    raise StorageError("this PostgreSQL database holds no node: start peerfed serve on it first")
                for statement in postgres_schema(version):
                    conn.execute(statement)
                conn.execute("CREATE TABLE peerfed_schema (version INTEGER NOT NULL)")
                conn.execute("INSERT INTO peerfed_schema VALUES (%s)", (version,))
                return
            stored = int(conn.execute("SELECT version FROM peerfed_schema").fetchone()[0])
            if stored == version:
                return
            if stored > version:
                raise StorageError(f"the database is schema {stored}, newer than this software")
            if not creating:
                raise StorageError(
                    f"the database is schema {stored} and this software's is {version}: start peerfed serve"
                    " with this version once (it migrates the database as it starts), then run this again"
                )
            if stored < POSTGRES_SINCE:  # no release made one: nothing to migrate it with
                raise StorageError(f"the database is schema {stored}, older than any PostgreSQL node's")
            for statement in postgres_step(stored + 1):
                conn.execute(statement)
            backfill = BACKFILLS.get(stored + 1)
            if backfill is not None:  # SQLite's dialect, through the writer's own translation
                backfill(_WriteConnection(conn, _no_new_connection))  # type: ignore[arg-type]
            conn.execute("UPDATE peerfed_schema SET version = %s", (stored + 1,))


async def connect_postgres(
    url: str, synchronous: str, version: int, *, creating: bool = True, readers: int = 1
) -> tuple[GroupWriter, list[_Reader]]:
    """Open the writer (creating or checking the schema) and ``readers`` read connections.

    With ``creating=False`` an empty database is refused, not created (the operator's tools).
    Raises StorageError if the server cannot be reached or the schema does not match.
    """
    psycopg = _psycopg()
    level = _COMMIT_LEVEL.get(synchronous.upper(), "on")
    writer = GroupWriter(errors=(psycopg.Error,), begin="BEGIN")
    writer.closing_timeout = STOP_WAIT
    opened: list[_Reader] = []

    def writing() -> Any:
        conn = psycopg.connect(url, autocommit=True, application_name=APPLICATION, connect_timeout=CONNECT_TIMEOUT)
        try:
            conn.execute(f"SET synchronous_commit = {level}")
            # Every write finds its rows by key. A plan made while a table was nearly empty (the
            # foreign-key checks' plans, made once per connection, and prepared statements)
            # would otherwise scan the whole table for ever after: measured, 10 scans of
            # `listings` per listing stored, 2 ms of server CPU each at 4,000 rows.
            conn.execute("SET enable_seqscan = off")
            conn.execute(_NO_JIT)
        except BaseException:
            conn.close()
            raise
        # No statement of the writer is prepared on the server. In a pipeline psycopg counts a
        # statement prepared when it sends it; sent behind one that fails, the server skips it,
        # and every later use failed ("prepared statement does not exist") until a restart. The
        # writer's statements are few per group (bursts go in a few statements), so parsing each
        # costs little (bench/README.md).
        conn.prepare_threshold = None
        return conn

    async def reading() -> Any:
        conn = await psycopg.AsyncConnection.connect(
            url, autocommit=True, application_name=APPLICATION, connect_timeout=CONNECT_TIMEOUT
        )
        try:
            await conn.execute("SET default_transaction_read_only = on")
            # A statement used often (psycopg prepares it) is planned once, for no values in
            # particular, and the plan kept until the tables' statistics change: planning every
            # search cost the server 0.3 ms of its 1.2. Such a plan must hold as the tables grow,
            # so a read never scans a table where it can use an index: made while the directory
            # held ten listings, a plan would otherwise scan `listings` once per candidate for
            # ever after (the writer's setting, above, for the same reason).
            await conn.execute("SET plan_cache_mode = force_generic_plan")
            await conn.execute("SET enable_seqscan = off")
            # Every read walks an index in the order it returns rows, or probes one by key; its
            # joins are written in the order to walk them. A search for "grief" in English walks
            # the word's facet entries from the newest and stops at the limit. Given statistics,
            # the planner would rather gather every English listing, hash or sort, and take the
            # top 50: measured at 20,000 listings, 4.8 ms against 0.9 ms, and 14.9 against 2.0
            # with a two-word topic. With no sort or hash join to choose, the walk is the plan,
            # and with the written join order it is planned in half the time.
            for setting in ("enable_sort", "enable_hashjoin", "enable_mergejoin"):
                await conn.execute(f"SET {setting} = off")
            await conn.execute("SET join_collapse_limit = 1")
            await conn.execute(_NO_JIT)
        except BaseException:
            await conn.close()
            raise
        return conn

    def connect() -> _WriteConnection:
        conn = writing()
        try:
            _create_or_migrate(conn, version, creating)
        except BaseException:
            conn.close()
            raise
        return _WriteConnection(conn, writing)

    try:
        await writer.open_with(connect)
        for _ in range(max(1, readers)):
            opened.append(_Reader(await reading(), reading))
    except psycopg.Error as exc:
        for reader in opened:
            await reader.close()
        await writer.close()
        raise StorageError(f"cannot open the PostgreSQL database: {_redacted(exc)}") from exc
    except (StorageError, asyncio.CancelledError):
        for reader in opened:
            await reader.close()
        await writer.close()
        raise
    except Exception as exc:  # a migration that cannot be derived, or a fault in a backfill
        for reader in opened:
            await reader.close()
        await writer.close()
        raise StorageError(f"cannot open the PostgreSQL database: {type(exc).__name__}: {exc}") from exc
    return writer, opened


def _redacted(exc: BaseException) -> str:
    """psycopg's message without anything after 'password' (a connection string may hold one)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text.split("password", 1)[0].rstrip(" =:")
