"""The PostgreSQL writer's connection (spec §13.9, Storage back-ends): pipelined transactions.

The group writer's one psycopg connection, taking the store's SQLite-dialect statements (each
rewritten by ``dialect``) and reading back as sqlite3's cursors read. A write transaction takes
the cursor lock at BEGIN and is pipelined from then on; ``pg`` opens it, creates or migrates
the schema through it, and hands it to the group writer.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from .dialect import IDENTITY, INSERT, to_postgres
from .pgdriver import load_psycopg as _psycopg


class _Cursor:
    """psycopg's cursor as the table groups read sqlite3's: rowcount, lastrowid, rows.

    Read when first asked: in a pipeline (a write transaction) a statement whose results nobody
    reads is not waited for."""

    __slots__ = ("_cursor", "_lastrowid", "_owner", "_returns_key", "_rowcount", "_rows")

    def __init__(self, cursor: Any, returns_key: bool, owner: _WriteConnection | None = None) -> None:
        self._cursor = cursor
        self._owner = owner  # the writer whose pipeline carries it
        self._returns_key = returns_key
        self._rows: list[Any] | None = None
        self._rowcount = 0
        self._lastrowid: int | None = None

    def _read(self) -> list[Any]:
        if self._rows is None:
            cursor = self._cursor
            try:
                if self._owner is not None and cursor.pgresult is None:
                    self._owner.sync()  # its results, and every one before them (raises the first error)
                self._rowcount = int(cursor.rowcount)
                if self._returns_key:
                    rows = cursor.fetchall()
                    self._lastrowid = int(rows[0][0]) if rows else None
                    self._rows = []
                else:
                    self._rows = cursor.fetchall() if cursor.description is not None else []
            except _psycopg().Error:
                if self._owner is not None:
                    self._owner.failed = True
                raise
        return self._rows

    @property
    def rowcount(self) -> int:
        self._read()
        return self._rowcount

    @property
    def lastrowid(self) -> int | None:
        self._read()
        return self._lastrowid

    def fetchone(self) -> Any:
        rows = self._read()
        return rows[0] if rows else None

    def fetchall(self) -> list[Any]:
        return list(self._read())

    def __iter__(self) -> Iterator[Any]:
        return iter(self._read())


class _Done:
    """What a statement with nothing to read back returns."""

    rowcount = 0
    lastrowid = None

    def fetchone(self) -> None:
        return None

    def fetchall(self) -> list[Any]:
        return []

    def __iter__(self) -> Iterator[Any]:
        return iter(())


_DONE = _Done()


# Tables read by cursor (a mailbox's seq, catch-up pages): numbers must commit in order.
CURSORED = ("listings", "mailbox", "withdrawals", "erasures")
_CURSOR_LOCK = 0x7065657266656402


class _WriteConnection:
    """The writer's psycopg connection, taking the store's SQLite-dialect statements.

    Several processes may write one database. A sequence gives numbers as transactions ask, not
    as they commit, so a reader's cursor could pass a number a slower transaction commits later
    and never see its row. Every write transaction takes one advisory lock at BEGIN, held until
    it ends: transactions that add rows to a table read by cursor commit one after another, and
    their numbers in order. At BEGIN, before any row lock: taken at the first such row, a writer
    holding a row lock could wait for it while its holder waits for that row (a deadlock, which
    PostgreSQL breaks after a second by failing one of the two).

    After BEGIN the transaction's statements are pipelined: each is sent at once, and waited for
    only when its results are read (a row, a count), so a write's inserts that nobody reads
    cost no round trip each. Before a write's savepoint is released, its unread statements are
    waited for: the error of a write's statement is raised in that write, as SQLite raises it,
    never in the next.
    """

    def __init__(self, conn: Any, reconnect: Callable[[], Any]) -> None:
        self._conn = conn
        self._reconnect = reconnect  # a new connection, once the server has come back
        self._cursor_locked = False
        self._in_transaction = False
        self._pipe: Any = None  # the transaction's pipeline, from BEGIN to COMMIT or ROLLBACK
        self._piping: Any = None  # its context
        self.failed = False  # a statement of the current write failed (its savepoint must be rolled back)

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> _Cursor | _Done:
        pipe = self._pipe
        if pipe is not None:
            return self._pipelined(pipe, sql, parameters)
        verb = _verb(sql)
        if verb == "BEGIN":
            self._cursor_locked = False
            self._in_transaction = True
        elif verb in ("COMMIT", "ROLLBACK"):
            self._cursor_locked = self._in_transaction = False
        if not self._in_transaction or verb == "BEGIN":
            self._usable()
        text = to_postgres(sql)
        parameters = _storable(parameters)
        args: tuple[Any, ...] | None = tuple(parameters)
        if verb == "BEGIN" and not parameters:  # the lock goes with it, in one round trip
            text, args = f"{text}; SELECT pg_advisory_xact_lock({_CURSOR_LOCK})", None
            self._cursor_locked = True
        elif not self._cursor_locked and _inserts_into(sql, CURSORED):
            self._conn.execute("SELECT pg_advisory_xact_lock(%s)", (_CURSOR_LOCK,))
            self._cursor_locked = True
        try:
            cursor = self._conn.execute(text, args)
        except _psycopg().Error as exc:
            if verb != "BEGIN":
                raise
            if not (isinstance(exc, _psycopg().OperationalError) and self._conn.broken):
                # BEGIN ran and the lock did not (a lock_timeout, a cancelled backend): end the
                # transaction, or every later BEGIN would meet an aborted one and fail too.
                with contextlib.suppress(_psycopg().Error):
                    self._conn.execute("ROLLBACK")
                self._in_transaction = self._cursor_locked = False
                raise
            # The connection was dead before anything ran (the server restarted while it sat
            # idle): nothing to undo, so the transaction begins again on a new one.
            self._conn = self._reconnect()
            cursor = self._conn.execute(text, args)
        if verb == "BEGIN":  # the rest of the transaction is pipelined (_pipelined)
            self.failed = False
            try:
                self._piping = self._conn.pipeline()
                self._pipe = self._piping.__enter__()
            except BaseException:  # no transaction left open, holding the cursor lock
                self._pipe = self._piping = None
                with contextlib.suppress(_psycopg().Error):
                    self._conn.execute("ROLLBACK")
                self._in_transaction = self._cursor_locked = False
                raise
        return _Cursor(cursor, " RETURNING " in text and _inserts_identity(sql))

    def sync(self) -> None:
        """Wait for every statement sent; raises the first error among them."""
        if self._pipe is not None:
            self._pipe.sync()

    def _pipelined(self, pipe: Any, sql: str, parameters: Sequence[Any]) -> _Cursor | _Done:
        """A statement of the transaction: sent at once, and waited for only when its results are
        read. Raises the first error of the write's statements, within that write."""
        verb = _verb(sql)
        if verb in ("COMMIT", "ROLLBACK"):
            piping, self._pipe, self._piping = self._piping, None, None
            self._cursor_locked = self._in_transaction = False
            try:
                if verb == "ROLLBACK":
                    with contextlib.suppress(_psycopg().Error):
                        pipe.sync()  # an aborted pipeline runs nothing more until its sync
                self._conn.execute(sql)
            except BaseException as exc:
                piping.__exit__(type(exc), exc, exc.__traceback__)
                raise
            piping.__exit__(None, None, None)  # its sync: raises if the COMMIT failed
            return _DONE
        if verb == "RELEASE":
            if pipe.result_queue:
                self._failing(pipe.sync)  # the write's unread statements: their error is its own
            if self.failed:  # one failed and the write went on (it caught the error): it fails
                raise _psycopg().errors.InFailedSqlTransaction("a statement of this write failed")
        elif verb in ("SAVEPOINT", "ROLLBACK TO"):
            self.failed = False
            if verb == "ROLLBACK TO":
                with contextlib.suppress(_psycopg().Error):
                    pipe.sync()  # the write's error aborted the pipeline until a sync: end it
        text = to_postgres(sql)  # (the cursor lock was taken with BEGIN, before the pipeline)
        cursor = self._failing(self._conn.execute, text, _storable(parameters))
        return _Cursor(cursor, " RETURNING " in text and _inserts_identity(sql), self)

    def _failing(self, call: Callable[..., Any], *args: Any) -> Any:
        """``call(*args)``, marking the write failed if it raises a psycopg error (an earlier
        statement's, whose result arrived with it)."""
        try:
            return call(*args)
        except _psycopg().Error:
            self.failed = True
            raise

    def executemany(self, sql: str, parameters: Any, /) -> _Cursor:
        rows = [_storable(p) for p in parameters]
        if rows and not self._cursor_locked and _inserts_into(sql, CURSORED):
            self._conn.execute("SELECT pg_advisory_xact_lock(%s)", (_CURSOR_LOCK,))
            self._cursor_locked = True
        with self._conn.cursor() as cursor:
            if rows:
                self._failing(cursor.executemany, to_postgres(sql), rows)
                if self._pipe is not None:
                    self._failing(self._pipe.sync)  # the rows' counts
            done = _Cursor.__new__(_Cursor)
            done._rowcount, done._lastrowid, done._rows = max(0, int(cursor.rowcount)), None, []
            return done

    def _usable(self) -> None:
        """Between transactions: a connection the server dropped (a restart) is made again.
        Raises psycopg.Error while the server is still away (the write fails, StorageError)."""
        if self._conn.closed or self._conn.broken:
            self._conn = self._reconnect()

    def close(self) -> None:
        self._conn.close()


def _verb(sql: str) -> str:
    """A statement's first word, upper-cased; "ROLLBACK TO" for a rollback to a savepoint."""
    words = sql.split(None, 2)
    verb = words[0].upper() if words else ""
    if verb == "ROLLBACK" and len(words) > 1 and words[1].upper() == "TO":
        return "ROLLBACK TO"
    return verb


def _storable(parameters: Sequence[Any]) -> tuple[Any, ...]:
    """PostgreSQL text cannot hold U+0000, which SQLite stores. The protocol refuses it in every
    field a node stores from a peer (spec §2.1 labels and free text); what else reaches a table
    (another node's error message, kept for the operator) has it replaced by U+FFFD, so a
    stranger's byte cannot fail the write that records its own answer."""
    if not any(isinstance(p, str) and "\x00" in p for p in parameters):
        return tuple(parameters)
    return tuple(p.replace("\x00", "\ufffd") if isinstance(p, str) else p for p in parameters)


def _inserts_identity(sql: str) -> bool:
    return _inserts_into(sql, IDENTITY)


def _inserts_into(sql: str, tables: Iterable[str]) -> bool:
    found = INSERT.match(sql)
    return found is not None and found.group(2) in tables
