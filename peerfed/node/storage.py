"""The node's SQLite store: schema, migrations, and every query the node makes (spec §13.9).

One write connection, owned by a thread that commits concurrent writes together (group
commit, see _GroupWriter), and one reader connection (aiosqlite), both in WAL mode. A write
that the node acknowledges has been committed with the configured `synchronous` level (FULL
by default) before the call returns. sqlite's errors are translated here, and only here,
into StorageError.

What is stored is only what the node needs: public cards, key bundles, sealed bytes it
cannot read, routing, and moderation records. No table holds a plaintext private message.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from peerfed.protocol import RequestError
from peerfed.protocol.errors import UnavailableError

__all__ = ["SCHEMA_VERSION", "OutboxRow", "StorageError", "Store"]

T = TypeVar("T")
Outbox = Iterable[tuple[str, str, bytes, bytes]]


class StorageError(UnavailableError):
    """The database failed (disk full, read-only, corrupt): the node cannot take the request."""


MIGRATIONS: list[str] = [
    # 1: the first schema.
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE members (
        peer BLOB PRIMARY KEY, status TEXT NOT NULL, joined_at INTEGER NOT NULL, moved_to TEXT
    );
    CREATE TABLE invites (
        code_hash BLOB PRIMARY KEY, created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL,
        uses_left INTEGER NOT NULL, revoked INTEGER NOT NULL DEFAULT 0, note TEXT
    );
    CREATE TABLE challenges (challenge BLOB PRIMARY KEY, expires_at INTEGER NOT NULL);
    CREATE TABLE sessions (
        token_hash BLOB PRIMARY KEY, peer BLOB NOT NULL, expires_at INTEGER NOT NULL
    );
    CREATE INDEX sessions_peer ON sessions(peer);
    CREATE TABLE key_bundles (
        peer BLOB PRIMARY KEY, raw BLOB NOT NULL, created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL, origin TEXT
    );
    CREATE TABLE listings (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, id BLOB NOT NULL UNIQUE, author BLOB NOT NULL,
        kind TEXT NOT NULL, timing TEXT NOT NULL, created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL, origin TEXT, raw BLOB NOT NULL
    );
    CREATE INDEX listings_author ON listings(author);
    CREATE INDEX listings_expiry ON listings(expires_at);
    CREATE INDEX listings_kind ON listings(kind, seq);
    CREATE TABLE listing_facets (
        listing INTEGER NOT NULL REFERENCES listings(seq) ON DELETE CASCADE,
        facet TEXT NOT NULL, value TEXT NOT NULL
    );
    CREATE INDEX facets_lookup ON listing_facets(facet, value, listing);
    CREATE INDEX facets_listing ON listing_facets(listing);
    CREATE TABLE withdrawals (
        listing BLOB NOT NULL, author BLOB NOT NULL, expires_at INTEGER NOT NULL,
        PRIMARY KEY (listing, author)
    );
    CREATE TABLE erasures (author_hash BLOB PRIMARY KEY, expires_at INTEGER NOT NULL);
    CREATE TABLE mailbox (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, id BLOB NOT NULL UNIQUE, mailbox BLOB NOT NULL,
        raw BLOB NOT NULL, received_at INTEGER NOT NULL, expires_at INTEGER NOT NULL
    );
    CREATE INDEX mailbox_owner ON mailbox(mailbox, seq);
    CREATE INDEX mailbox_expiry ON mailbox(expires_at);
    CREATE TABLE seen_sealed (id BLOB PRIMARY KEY, expires_at INTEGER NOT NULL);
    CREATE TABLE outbox (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, destination TEXT NOT NULL, kind TEXT NOT NULL,
        item BLOB NOT NULL, created_at INTEGER NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0, next_at REAL NOT NULL,
        state TEXT NOT NULL DEFAULT 'pending', last_error TEXT, finished_at INTEGER,
        UNIQUE (destination, kind, item)
    );
    CREATE INDEX outbox_due ON outbox(state, next_at);
    CREATE TABLE outbox_payload (seq INTEGER PRIMARY KEY, raw BLOB NOT NULL);
    CREATE TABLE nodes (
        url TEXT PRIMARY KEY, status TEXT NOT NULL, added_at INTEGER NOT NULL,
        document BLOB, document_expires INTEGER NOT NULL DEFAULT 0,
        last_ok INTEGER, last_error TEXT, failures INTEGER NOT NULL DEFAULT 0,
        breaker_until REAL NOT NULL DEFAULT 0, pull_cursor INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE node_keys (
        url TEXT NOT NULL, key BLOB NOT NULL, valid_from INTEGER NOT NULL,
        valid_until INTEGER NOT NULL, PRIMARY KEY (url, key)
    );
    CREATE INDEX node_keys_key ON node_keys(key);
    CREATE TABLE nonces (nonce BLOB PRIMARY KEY, expires_at INTEGER NOT NULL);
    CREATE TABLE own_keys (key BLOB PRIMARY KEY, valid_from INTEGER NOT NULL, valid_until INTEGER NOT NULL);
    CREATE TABLE reports (
        id INTEGER PRIMARY KEY AUTOINCREMENT, reporter BLOB NOT NULL, target_kind TEXT NOT NULL,
        target BLOB, reason TEXT NOT NULL, disclosed BLOB, created_at INTEGER NOT NULL,
        status TEXT NOT NULL DEFAULT 'open', outcome TEXT, resolved_at INTEGER
    );
    CREATE INDEX reports_reporter ON reports(reporter);
    """,
    # 2: a listing's directory entry (id, author, listing, card) kept as JSON text when it is
    # stored, so a search answers without decoding, verifying or re-encoding each result.
    # Rows from schema 1 have none and are built on demand.
    """
    ALTER TABLE listings ADD COLUMN entry TEXT;
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)


class _Job:
    __slots__ = ("bare", "fn", "future")

    def __init__(self, fn: Callable[[sqlite3.Connection], Any], future: asyncio.Future[Any], bare: bool) -> None:
        self.fn = fn
        self.future = future
        self.bare = bare


class _GroupWriter:
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
        """Run ``fn`` in a transaction (or, if ``bare``, outside one) and return once committed."""
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


@dataclass(frozen=True)
class OutboxRow:
    seq: int
    destination: str
    kind: str
    item: bytes
    raw: bytes
    created_at: int
    attempts: int


class Store:
    """Open with ``await Store.open(path)``; close with ``await store.close()``."""

    SESSION_CACHE = 10_000  # signed-in tokens remembered, so a request costs no read to authenticate

    def __init__(self, writer: _GroupWriter, reader: aiosqlite.Connection, path: Path) -> None:
        self._writer = writer
        self._reader = reader
        self.path = path
        # token hash -> (peer, expires_at). Only this process ends sessions (erasure, moving,
        # expiry), and each of those forgets them here too.
        self._sessions: OrderedDict[bytes, tuple[bytes, int]] = OrderedDict()
        self._session_epoch = 0

    @classmethod
    async def open(cls, path: Path, *, synchronous: str = "FULL") -> Store:
        writer = _GroupWriter()
        try:
            await writer.open(path, synchronous)
            store_version = await writer.run(lambda db: int(db.execute("PRAGMA user_version").fetchone()[0]), bare=True)
            if store_version > SCHEMA_VERSION:
                await writer.close()
                raise StorageError(f"the database is schema {store_version}, newer than this software")
            for number in range(store_version, SCHEMA_VERSION):
                script = "BEGIN IMMEDIATE;" + MIGRATIONS[number] + f"; PRAGMA user_version={number + 1}; COMMIT;"
                await writer.run(lambda db, s=script: db.executescript(s), bare=True)  # type: ignore[misc]
            reader = await aiosqlite.connect(path, isolation_level=None)
            await reader.execute("PRAGMA foreign_keys=ON")
            await reader.execute("PRAGMA busy_timeout=5000")
            await reader.execute("PRAGMA query_only=ON")
        except sqlite3.Error as exc:
            await writer.close()
            raise StorageError(f"cannot open the database at {path}: {exc}") from exc
        return cls(writer, reader, path)

    async def close(self) -> None:
        await self._reader.close()
        await self._writer.close()

    # --- plumbing ---------------------------------------------------------------------------

    async def _all(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        try:
            return list(await self._reader.execute_fetchall(sql, params))
        except sqlite3.Error as exc:
            raise StorageError(f"database read failed: {exc}") from exc

    async def _one(self, sql: str, params: Sequence[Any] = ()) -> Any:
        rows = await self._all(sql, params)
        return rows[0] if rows else None

    async def _write(self, sql: str, params: Sequence[Any] = ()) -> int:
        return await self._writer.run(lambda db: db.execute(sql, params).rowcount)

    async def pragma(self, statement: str) -> list[Any]:
        """Run one PRAGMA on the write connection, outside any transaction (operators, tests)."""
        if not statement.upper().startswith("PRAGMA "):
            raise ValueError("only PRAGMA statements")
        return await self._writer.run(lambda db: [tuple(r) for r in db.execute(statement).fetchall()], bare=True)

    @property
    def write_stats(self) -> tuple[int, int]:
        """(transactions committed, writes in them): their ratio is the group-commit factor."""
        return self._writer.groups, self._writer.writes

    # --- meta and own keys -----------------------------------------------------------------

    async def own_keys(self) -> list[tuple[bytes, int, int]]:
        return [tuple(r) for r in await self._all("SELECT key, valid_from, valid_until FROM own_keys")]

    async def record_own_key(self, key: bytes, valid_from: int, valid_until: int) -> None:
        await self._write(
            "INSERT INTO own_keys VALUES (?, ?, ?) ON CONFLICT(key) DO UPDATE SET valid_until=excluded.valid_until",
            (key, valid_from, valid_until),
        )

    # --- members, invites, challenges, sessions ----------------------------------------------

    async def member(self, peer: bytes) -> tuple[str, str | None] | None:
        row = await self._one("SELECT status, moved_to FROM members WHERE peer=?", (peer,))
        return None if row is None else (row[0], row[1])

    async def set_member(self, peer: bytes, status: str, now: int, moved_to: str | None = None) -> None:
        await self._write(
            "INSERT INTO members VALUES (?, ?, ?, ?) ON CONFLICT(peer) DO UPDATE SET status=excluded.status,"
            " moved_to=excluded.moved_to",
            (peer, status, now, moved_to),
        )

    async def members(self, status: str | None = None) -> list[tuple[bytes, str, int, str | None]]:
        if status is None:
            rows = await self._all("SELECT peer, status, joined_at, moved_to FROM members ORDER BY joined_at")
        else:
            rows = await self._all(
                "SELECT peer, status, joined_at, moved_to FROM members WHERE status=? ORDER BY joined_at",
                (status,),
            )
        return [tuple(r) for r in rows]

    async def join_with_invite(self, peer: bytes, code_hash: bytes, now: int, status: str) -> bool:
        """Spend one use of an invite and make ``peer`` a member, atomically."""

        def job(db: sqlite3.Connection) -> bool:
            cursor = db.execute(
                "UPDATE invites SET uses_left = uses_left - 1 WHERE code_hash=? AND revoked=0"
                " AND uses_left > 0 AND expires_at > ?",
                (code_hash, now),
            )
            if cursor.rowcount != 1:
                return False
            db.execute(
                "INSERT INTO members VALUES (?, ?, ?, NULL) ON CONFLICT(peer) DO UPDATE SET status=excluded.status",
                (peer, status, now),
            )
            return True

        return await self._writer.run(job)

    async def create_invite(self, code_hash: bytes, now: int, expires_at: int, uses: int, note: str | None) -> None:
        await self._write("INSERT INTO invites VALUES (?, ?, ?, ?, 0, ?)", (code_hash, now, expires_at, uses, note))

    async def revoke_invite(self, code_hash: bytes) -> bool:
        return await self._write("UPDATE invites SET revoked=1 WHERE code_hash=?", (code_hash,)) == 1

    async def invites(self) -> list[tuple[bytes, int, int, int, int, str | None]]:
        rows = await self._all(
            "SELECT code_hash, created_at, expires_at, uses_left, revoked, note FROM invites ORDER BY created_at"
        )
        return [tuple(r) for r in rows]

    async def add_challenge(self, challenge: bytes, expires_at: int) -> None:
        await self._write("INSERT INTO challenges VALUES (?, ?)", (challenge, expires_at))

    async def take_challenge(self, challenge: bytes, now: int) -> bool:
        """True once for a live challenge: it is deleted as it is used."""
        return await self._write("DELETE FROM challenges WHERE challenge=? AND expires_at > ?", (challenge, now)) == 1

    async def add_session(self, token_hash: bytes, peer: bytes, expires_at: int) -> None:
        await self._write("INSERT INTO sessions VALUES (?, ?, ?)", (token_hash, peer, expires_at))
        self._remember_session(token_hash, peer, expires_at)

    async def session_peer(self, token_hash: bytes, now: int) -> bytes | None:
        known = self._sessions.get(token_hash)
        if known is not None:
            if known[1] > now:
                self._sessions.move_to_end(token_hash)
                return known[0]
            del self._sessions[token_hash]
        epoch = self._session_epoch
        row = await self._one(
            "SELECT peer, expires_at FROM sessions WHERE token_hash=? AND expires_at > ?", (token_hash, now)
        )
        if row is None:
            return None
        if epoch == self._session_epoch:  # no session ended while we read: the row is current
            self._remember_session(token_hash, bytes(row[0]), int(row[1]))
        return bytes(row[0])

    def _remember_session(self, token_hash: bytes, peer: bytes, expires_at: int) -> None:
        self._sessions[token_hash] = (peer, expires_at)
        self._sessions.move_to_end(token_hash)
        while len(self._sessions) > self.SESSION_CACHE:
            self._sessions.popitem(last=False)

    def _forget_sessions(self, peer: bytes) -> None:
        self._session_epoch += 1
        for token_hash in [t for t, (who, _) in self._sessions.items() if who == peer]:
            del self._sessions[token_hash]

    # --- key bundles ---------------------------------------------------------------------

    async def put_key_bundle(
        self,
        peer: bytes,
        raw: bytes,
        created_at: int,
        expires_at: int,
        origin: str | None,
        outbox: Outbox = (),
        now: float = 0.0,
    ) -> bool:
        """Keep the newest bundle per peer, queueing its pushes with it; True if this one was stored."""
        rows = list(outbox)

        def job(db: sqlite3.Connection) -> bool:
            cursor = db.execute(
                "INSERT INTO key_bundles VALUES (?, ?, ?, ?, ?) ON CONFLICT(peer) DO UPDATE SET raw=excluded.raw,"
                " created_at=excluded.created_at, expires_at=excluded.expires_at, origin=excluded.origin"
                " WHERE excluded.created_at > key_bundles.created_at",
                (peer, raw, created_at, expires_at, origin),
            )
            if cursor.rowcount != 1:
                return False
            _enqueue(db, rows, now)
            return True

        return await self._writer.run(job)

    async def key_bundle(self, peer: bytes, now: int) -> tuple[bytes, str | None] | None:
        row = await self._one("SELECT raw, origin FROM key_bundles WHERE peer=? AND expires_at > ?", (peer, now))
        return None if row is None else (bytes(row[0]), row[1])

    # --- listings ------------------------------------------------------------------------

    async def is_erased(self, author_hash: bytes, now: int) -> bool:
        return (
            await self._one("SELECT 1 FROM erasures WHERE author_hash=? AND expires_at > ?", (author_hash, now))
            is not None
        )

    async def was_withdrawn(self, listing: bytes) -> bool:
        return await self._one("SELECT 1 FROM withdrawals WHERE listing=?", (listing,)) is not None

    async def insert_listing(
        self,
        *,
        listing_id: bytes,
        author: bytes,
        author_hash: bytes,
        kind: str,
        timing: str,
        created_at: int,
        expires_at: int,
        origin: str | None,
        raw: bytes,
        facets: Iterable[tuple[str, str]],
        now: float,
        bundle_key: Callable[[bytes], bytes] | None = None,
        entry: str | None = None,
    ) -> bool:
        """Store a listing once; False if already held. Raises RequestError if it may not be stored.

        Everything is decided inside one write: the author's erasure and the listing's withdrawal
        tombstones are checked, and, for a local listing (``bundle_key`` given), the author's key
        bundle must be held and both are queued for every active federated node. No read before
        the write, so nothing can change in between, and no extra trip to the database.
        """
        facet_rows = list(facets)
        instant = int(now)

        def job(db: sqlite3.Connection) -> bool:
            refused = db.execute(
                "SELECT (SELECT 1 FROM erasures WHERE author_hash=? AND expires_at > ?),"
                " (SELECT 1 FROM withdrawals WHERE listing=? AND author=?)",
                (author_hash, instant, listing_id, author),
            ).fetchone()
            if refused[0]:
                raise RequestError("the author of this listing was erased", "gone")
            if refused[1]:
                raise RequestError("this listing was withdrawn", "gone")
            bundle = None
            if bundle_key is not None:
                found = db.execute(
                    "SELECT raw FROM key_bundles WHERE peer=? AND expires_at > ?", (author, instant)
                ).fetchone()
                if found is None:
                    raise RequestError("publish your key bundle first, so others can write to you", "request.invalid")
                bundle = bytes(found[0])
            cursor = db.execute(
                "INSERT INTO listings (id, author, kind, timing, created_at, expires_at, origin, raw, entry)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO NOTHING",
                (listing_id, author, kind, timing, created_at, expires_at, origin, raw, entry),
            )
            if cursor.rowcount != 1:
                return False
            seq = cursor.lastrowid
            db.executemany("INSERT INTO listing_facets VALUES (?, ?, ?)", [(seq, f, v) for f, v in facet_rows])
            if bundle is not None and bundle_key is not None:
                items = [("key-bundle", bundle_key(bundle), bundle), ("listing", listing_id, raw)]
                _enqueue(db, _fan_out(db, items), now)
            return True

        return await self._writer.run(job)

    async def withdraw(self, listing: bytes, author: bytes, expires_at: int, outbox: Outbox, now: float) -> bool:
        """Delete the author's listing and keep a tombstone; True if a listing was deleted."""
        rows = list(outbox)

        def job(db: sqlite3.Connection) -> bool:
            cursor = db.execute("DELETE FROM listings WHERE id=? AND author=?", (listing, author))
            db.execute(
                "INSERT INTO withdrawals VALUES (?, ?, ?) ON CONFLICT(listing, author) DO UPDATE SET"
                " expires_at=MAX(expires_at, excluded.expires_at)",
                (listing, author, expires_at),
            )
            _enqueue(db, rows, now)
            return cursor.rowcount == 1

        return await self._writer.run(job)

    async def remove_listing(self, listing: bytes, outbox: Outbox, now: float) -> bool:
        """An operator takes a listing down (moderation); a tombstone keeps it from coming back."""
        rows = list(outbox)

        def job(db: sqlite3.Connection) -> bool:
            row = db.execute("SELECT author, expires_at FROM listings WHERE id=?", (listing,)).fetchone()
            if row is None:
                return False
            db.execute("DELETE FROM listings WHERE id=?", (listing,))
            db.execute(
                "INSERT INTO withdrawals VALUES (?, ?, ?) ON CONFLICT(listing, author) DO NOTHING",
                (listing, row[0], row[1]),
            )
            _enqueue(db, rows, now)
            return True

        return await self._writer.run(job)

    async def listing(self, listing: bytes) -> tuple[bytes, str | None, bytes] | None:
        row = await self._one("SELECT raw, origin, author FROM listings WHERE id=?", (listing,))
        return None if row is None else (bytes(row[0]), row[1], bytes(row[2]))

    async def search(
        self,
        *,
        now: int,
        kind: str | None,
        timing: str | None,
        facets: Sequence[tuple[str, str]],
        before: int | None,
        limit: int,
    ) -> list[tuple[int, bytes, str | None, str | None, bytes | None]]:
        """Live listings matching every filter, newest first: (seq, raw, origin, entry, key bundle).

        With a facet filter, the walk runs down that facet's index (facet, value, listing) from
        the newest listing, so a query reads about limit / (share matching the other filters)
        index entries, not every listing; the other facets are index probes per candidate.
        """
        params: list[Any] = []
        if facets:
            (facet, value), others = facets[0], facets[1:]
            sql = (
                "SELECT l.seq, l.raw, l.origin, l.entry, k.raw"
                " FROM listing_facets f0 JOIN listings l ON l.seq = f0.listing"
            )
            where = ["f0.facet = ?", "f0.value = ?", "l.expires_at > ?"]
            params += [facet, value, now]
            order = "f0.listing"
            if before is not None:
                where.append("f0.listing < ?")
                params.append(before)
        else:
            others = []
            sql = "SELECT l.seq, l.raw, l.origin, l.entry, k.raw FROM listings l"
            where = ["l.expires_at > ?"]
            params.append(now)
            order = "l.seq"
            if before is not None:
                where.append("l.seq < ?")
                params.append(before)
        sql += " LEFT JOIN key_bundles k ON k.peer = l.author AND k.expires_at > ?"
        params.insert(0, now)  # the join's placeholder comes first in the text
        if kind:
            where.append("l.kind = ?")
            params.append(kind)
        if timing:
            where.append("l.timing = ?")
            params.append(timing)
        for facet, value in others:
            where.append(
                "EXISTS (SELECT 1 FROM listing_facets f WHERE f.facet = ? AND f.value = ? AND f.listing = l.seq)"
            )
            params += [facet, value]
        sql += " WHERE " + " AND ".join(where) + f" ORDER BY {order} DESC LIMIT ?"
        rows = await self._all(sql, [*params, limit])
        return [(r[0], bytes(r[1]), r[2], r[3], None if r[4] is None else bytes(r[4])) for r in rows]

    async def local_listings_after(self, after: int, now: int, limit: int) -> list[tuple[int, bytes, bytes]]:
        """Listings published on this node, for a catch-up pull: (seq, raw, author)."""
        rows = await self._all(
            "SELECT seq, raw, author FROM listings WHERE origin IS NULL AND seq > ? AND expires_at > ?"
            " ORDER BY seq LIMIT ?",
            (after, now, limit),
        )
        return [(r[0], bytes(r[1]), bytes(r[2])) for r in rows]

    async def listings_page(self, limit: int = 100) -> list[tuple[bytes, bytes, str, str | None, int]]:
        rows = await self._all(
            "SELECT id, author, kind, origin, expires_at FROM listings ORDER BY seq DESC LIMIT ?", (limit,)
        )
        return [(bytes(r[0]), bytes(r[1]), r[2], r[3], r[4]) for r in rows]

    # --- mailboxes -----------------------------------------------------------------------

    async def deliver(
        self, *, sealed_id: bytes, mailbox: bytes, raw: bytes, now: int, expires_at: int, seen_until: int, cap: int
    ) -> int | str | tuple[str, str]:
        """Put a sealed message in a local member's mailbox once.

        Returns its mailbox seq, 'duplicate', 'full', 'absent' (no such member here), or
        ('moved', new node URL). The duplicate check comes before the cap, so a resend of a
        delivered item is simply done; the membership check is in the same transaction.
        """

        def job(db: sqlite3.Connection) -> int | str | tuple[str, str]:
            member = db.execute("SELECT status, moved_to FROM members WHERE peer=?", (mailbox,)).fetchone()
            if member is not None and member[0] == "moved" and member[1]:
                return ("moved", str(member[1]))
            if member is None or member[0] != "member":
                return "absent"
            cursor = db.execute(
                "INSERT INTO seen_sealed VALUES (?, ?) ON CONFLICT(id) DO NOTHING", (sealed_id, seen_until)
            )
            if cursor.rowcount != 1:
                return "duplicate"
            waiting = db.execute("SELECT COUNT(*) FROM mailbox WHERE mailbox=?", (mailbox,)).fetchone()[0]
            if waiting >= cap:
                raise _Full()
            cursor = db.execute(
                "INSERT INTO mailbox (id, mailbox, raw, received_at, expires_at) VALUES (?, ?, ?, ?, ?)",
                (sealed_id, mailbox, raw, now, expires_at),
            )
            return int(cursor.lastrowid or 0)

        try:
            return await self._writer.run(job)
        except _Full:
            return "full"

    async def forward_sealed(
        self, *, sealed_id: bytes, seen_until: int, destination: str, raw: bytes, now: float
    ) -> bool:
        """Queue a sealed message for an active federated node, once. False if already seen."""

        def job(db: sqlite3.Connection) -> bool:
            status = db.execute("SELECT status FROM nodes WHERE url=?", (destination,)).fetchone()
            if status is None or status[0] != "active":
                raise RequestError(f"this node does not federate with {destination}", "federation.refused")
            cursor = db.execute(
                "INSERT INTO seen_sealed VALUES (?, ?) ON CONFLICT(id) DO NOTHING", (sealed_id, seen_until)
            )
            if cursor.rowcount != 1:
                return False
            _enqueue(db, [(destination, "sealed", sealed_id, raw)], now)
            return True

        return await self._writer.run(job)

    async def mailbox_items(
        self, mailbox: bytes, after: int, limit: int, now: int
    ) -> list[tuple[int, bytes, bytes, int]]:
        rows = await self._all(
            "SELECT seq, id, raw, received_at FROM mailbox WHERE mailbox=? AND seq > ? AND expires_at > ?"
            " ORDER BY seq LIMIT ?",
            (mailbox, after, now, limit),
        )
        return [(r[0], bytes(r[1]), bytes(r[2]), r[3]) for r in rows]

    async def ack(self, mailbox: bytes, ids: Sequence[bytes]) -> int:
        def job(db: sqlite3.Connection) -> int:
            return sum(
                db.execute("DELETE FROM mailbox WHERE mailbox=? AND id=?", (mailbox, sealed_id)).rowcount
                for sealed_id in ids
            )

        return await self._writer.run(job)

    async def move_mailbox(self, peer: bytes, to: str, outbox_kind: str, now: int) -> int:
        """Mark ``peer`` moved and queue every waiting item for its new node."""

        def job(db: sqlite3.Connection) -> int:
            db.execute("UPDATE members SET status='moved', moved_to=? WHERE peer=?", (to, peer))
            db.execute("DELETE FROM sessions WHERE peer=?", (peer,))
            rows = db.execute("SELECT id, raw FROM mailbox WHERE mailbox=?", (peer,)).fetchall()
            _enqueue(db, [(to, outbox_kind, bytes(r[0]), bytes(r[1])) for r in rows], now)
            db.execute("DELETE FROM mailbox WHERE mailbox=?", (peer,))
            return len(rows)

        self._forget_sessions(peer)  # before the write, and again once it is committed
        try:
            return await self._writer.run(job)
        finally:
            self._forget_sessions(peer)

    # --- erasure -------------------------------------------------------------------------

    async def erase(self, peer: bytes, author_hash: bytes, tombstone_until: int, outbox: Outbox, now: float) -> int:
        """Delete everything held for ``peer``; keep only a hashed tombstone. Returns listings deleted."""
        rows = list(outbox)

        def job(db: sqlite3.Connection) -> int:
            listings = db.execute("DELETE FROM listings WHERE author=?", (peer,)).rowcount
            db.execute("DELETE FROM withdrawals WHERE author=?", (peer,))
            db.execute("DELETE FROM key_bundles WHERE peer=?", (peer,))
            db.execute("DELETE FROM mailbox WHERE mailbox=?", (peer,))
            db.execute("DELETE FROM sessions WHERE peer=?", (peer,))
            db.execute("DELETE FROM members WHERE peer=?", (peer,))
            db.execute("DELETE FROM reports WHERE reporter=?", (peer,))
            # Reports about the erased peer stay, for the moderators' record, without their id or
            # the messages of theirs that were disclosed. Rewritten, not updated, so nothing lingers.
            about = db.execute(
                "SELECT id, reporter, reason, created_at, status, outcome, resolved_at FROM reports"
                " WHERE target_kind='peer' AND target=?",
                (peer,),
            ).fetchall()
            db.execute("DELETE FROM reports WHERE target_kind='peer' AND target=?", (peer,))
            db.executemany(
                "INSERT INTO reports (id, reporter, target_kind, target, reason, disclosed, created_at, status,"
                " outcome, resolved_at) VALUES (?, ?, 'erased', NULL, ?, NULL, ?, ?, ?, ?)",
                [tuple(r) for r in about],
            )
            db.execute(
                "INSERT INTO erasures VALUES (?, ?) ON CONFLICT(author_hash) DO UPDATE SET"
                " expires_at=MAX(expires_at, excluded.expires_at)",
                (author_hash, tombstone_until),
            )
            _enqueue(db, rows, now)
            return listings

        self._forget_sessions(peer)
        try:
            return await self._writer.run(job)
        finally:
            self._forget_sessions(peer)

    # --- outbox --------------------------------------------------------------------------

    async def due(self, now: float, limit: int) -> list[OutboxRow]:
        rows = await self._all(
            "SELECT o.seq, o.destination, o.kind, o.item, p.raw, o.created_at, o.attempts FROM outbox o"
            " JOIN outbox_payload p ON p.seq = o.seq"
            " LEFT JOIN nodes n ON n.url = o.destination"
            " WHERE o.state='pending' AND o.next_at <= ? AND COALESCE(n.breaker_until, 0) <= ?"
            " AND COALESCE(n.status, '') != 'blocked'"
            " ORDER BY o.seq LIMIT ?",
            (now, now, limit),
        )
        return [OutboxRow(r[0], r[1], r[2], bytes(r[3]), bytes(r[4]), r[5], r[6]) for r in rows]

    async def next_due(self) -> float | None:
        row = await self._one(
            "SELECT MIN(MAX(o.next_at, COALESCE(n.breaker_until, 0))) FROM outbox o"
            " LEFT JOIN nodes n ON n.url = o.destination WHERE o.state='pending'"
        )
        return None if row is None or row[0] is None else float(row[0])

    async def outbox_finish(self, seqs: Sequence[int], state: str, now: int, error: str | None = None) -> None:
        def job(db: sqlite3.Connection) -> None:
            db.executemany(
                "UPDATE outbox SET state=?, finished_at=?, last_error=? WHERE seq=?",
                [(state, now, error, s) for s in seqs],
            )
            # The payload goes once an item is finished: only its routing stays, for the record.
            db.executemany("DELETE FROM outbox_payload WHERE seq=?", [(s,) for s in seqs])

        await self._writer.run(job)

    async def outbox_retry(self, retries: Sequence[tuple[int, float]], error: str) -> None:
        await self._writer.run(
            lambda db: db.executemany(
                "UPDATE outbox SET attempts=attempts+1, next_at=?, last_error=? WHERE seq=?",
                [(next_at, error, s) for s, next_at in retries],
            )
        )

    async def reject_outbox_for(self, destination: str, reason: str, now: int) -> int:
        def job(db: sqlite3.Connection) -> int:
            db.execute(
                "DELETE FROM outbox_payload WHERE seq IN"
                " (SELECT seq FROM outbox WHERE destination=? AND state='pending')",
                (destination,),
            )
            return db.execute(
                "UPDATE outbox SET state='rejected', last_error=?, finished_at=?"
                " WHERE destination=? AND state='pending'",
                (reason, now, destination),
            ).rowcount

        return await self._writer.run(job)

    async def outbox_stats(self) -> dict[str, dict[str, int]]:
        rows = await self._all("SELECT destination, state, COUNT(*) FROM outbox GROUP BY destination, state")
        stats: dict[str, dict[str, int]] = {}
        for destination, state, count in rows:
            stats.setdefault(destination, {})[state] = count
        return stats

    async def gave_up(self, limit: int = 100) -> list[tuple[str, str, bytes, int, int, str | None]]:
        rows = await self._all(
            "SELECT destination, kind, item, created_at, attempts, last_error FROM outbox"
            " WHERE state IN ('gave_up', 'rejected') ORDER BY seq DESC LIMIT ?",
            (limit,),
        )
        return [(r[0], r[1], bytes(r[2]), r[3], r[4], r[5]) for r in rows]

    # --- federated nodes ---------------------------------------------------------------------

    async def node(self, url: str) -> dict[str, Any] | None:
        row = await self._one(
            "SELECT url, status, added_at, last_ok, last_error, failures, breaker_until, pull_cursor,"
            " document_expires FROM nodes WHERE url=?",
            (url,),
        )
        if row is None:
            return None
        keys = (
            "url",
            "status",
            "added_at",
            "last_ok",
            "last_error",
            "failures",
            "breaker_until",
            "pull_cursor",
            "document_expires",
        )
        return dict(zip(keys, row, strict=True))

    async def nodes(self, status: str | None = None) -> list[dict[str, Any]]:
        rows = await self._all(
            "SELECT url FROM nodes" + (" WHERE status=?" if status else "") + " ORDER BY url",
            (status,) if status else (),
        )
        found = [await self.node(r[0]) for r in rows]
        return [n for n in found if n is not None]

    async def set_node_status(self, url: str, status: str, now: int) -> None:
        await self._write(
            "INSERT INTO nodes (url, status, added_at) VALUES (?, ?, ?) ON CONFLICT(url) DO UPDATE SET"
            " status=excluded.status",
            (url, status, now),
        )

    async def set_node_document(
        self, url: str, document: bytes, expires: int, keys: Sequence[tuple[bytes, int, int]]
    ) -> None:
        def job(db: sqlite3.Connection) -> None:
            db.execute("UPDATE nodes SET document=?, document_expires=? WHERE url=?", (document, expires, url))
            db.execute("DELETE FROM node_keys WHERE url=?", (url,))
            db.executemany("INSERT INTO node_keys VALUES (?, ?, ?, ?)", [(url, *k) for k in keys])

        await self._writer.run(job)

    async def node_for_key(self, key: bytes, when: int) -> str | None:
        row = await self._one(
            "SELECT url FROM node_keys WHERE key=? AND valid_from <= ? AND valid_until > ?", (key, when, when)
        )
        return None if row is None else str(row[0])

    async def node_result(self, url: str, ok: bool, now: int, error: str | None, breaker_until: float) -> None:
        if ok:
            await self._write(
                "UPDATE nodes SET last_ok=?, failures=0, breaker_until=0, last_error=NULL WHERE url=?",
                (now, url),
            )
        else:
            await self._write(
                "UPDATE nodes SET failures=failures+1, last_error=?, breaker_until=? WHERE url=?",
                (error, breaker_until, url),
            )

    async def set_pull_cursor(self, url: str, cursor: int) -> None:
        await self._write("UPDATE nodes SET pull_cursor=? WHERE url=?", (cursor, url))

    async def use_nonce(self, nonce: bytes, expires_at: int) -> bool:
        """True the first time a node-request nonce is seen; False for a replay."""
        return (
            await self._write("INSERT INTO nonces VALUES (?, ?) ON CONFLICT(nonce) DO NOTHING", (nonce, expires_at))
            == 1
        )

    # --- reports -------------------------------------------------------------------------

    async def add_report(
        self, reporter: bytes, target_kind: str, target: bytes, reason: str, disclosed: bytes | None, now: int
    ) -> int:
        def job(db: sqlite3.Connection) -> int:
            cursor = db.execute(
                "INSERT INTO reports (reporter, target_kind, target, reason, disclosed, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (reporter, target_kind, target, reason, disclosed, now),
            )
            return int(cursor.lastrowid or 0)

        return await self._writer.run(job)

    async def reports(self, *, reporter: bytes | None = None, status: str | None = None) -> list[dict[str, Any]]:
        where: list[str] = []
        params: list[Any] = []
        if reporter is not None:
            where.append("reporter=?")
            params.append(reporter)
        if status is not None:
            where.append("status=?")
            params.append(status)
        sql = "SELECT id, reporter, target_kind, target, reason, disclosed, created_at, status, outcome FROM reports"
        if where:
            sql += " WHERE " + " AND ".join(where)
        rows = await self._all(sql + " ORDER BY id", params)
        keys = (
            "id",
            "reporter",
            "target_kind",
            "target",
            "reason",
            "disclosed",
            "created_at",
            "status",
            "outcome",
        )
        return [dict(zip(keys, r, strict=True)) for r in rows]

    async def resolve_report(self, report_id: int, outcome: str, now: int) -> bool:
        return (
            await self._write(
                "UPDATE reports SET status='resolved', outcome=?, resolved_at=? WHERE id=? AND status='open'",
                (outcome, now, report_id),
            )
            == 1
        )

    # --- retention -------------------------------------------------------------------------

    async def purge(self, now: int, *, report_retention: int, outbox_retention: int) -> dict[str, int]:
        """Delete everything past its time (spec §13.9). Returns rows deleted per table."""
        statements = {
            "listings": ("DELETE FROM listings WHERE expires_at <= ?", (now,)),
            "withdrawals": ("DELETE FROM withdrawals WHERE expires_at <= ?", (now,)),
            "erasures": ("DELETE FROM erasures WHERE expires_at <= ?", (now,)),
            "mailbox": ("DELETE FROM mailbox WHERE expires_at <= ?", (now,)),
            "seen_sealed": ("DELETE FROM seen_sealed WHERE expires_at <= ?", (now,)),
            "key_bundles": ("DELETE FROM key_bundles WHERE expires_at <= ?", (now,)),
            "nonces": ("DELETE FROM nonces WHERE expires_at <= ?", (now,)),
            "challenges": ("DELETE FROM challenges WHERE expires_at <= ?", (now,)),
            "sessions": ("DELETE FROM sessions WHERE expires_at <= ?", (now,)),
            "outbox": (
                "DELETE FROM outbox WHERE state != 'pending' AND finished_at <= ?",
                (now - outbox_retention,),
            ),
            "reports": (
                "DELETE FROM reports WHERE status='resolved' AND resolved_at <= ?",
                (now - report_retention,),
            ),
            "invites": ("DELETE FROM invites WHERE expires_at <= ?", (now,)),
        }

        def job(db: sqlite3.Connection) -> dict[str, int]:
            return {name: db.execute(sql, params).rowcount for name, (sql, params) in statements.items()}

        return await self._writer.run(job)

    async def counts(self) -> dict[str, int]:
        tables = ("members", "listings", "mailbox", "key_bundles", "outbox", "nodes", "reports", "invites")
        result = {}
        for table in tables:
            row = await self._one(f"SELECT COUNT(*) FROM {table}")
            result[table] = int(row[0])
        return result

    async def checkpoint(self) -> None:
        await self._writer.run(lambda db: db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall(), bare=True)


def _fan_out(db: sqlite3.Connection, items: Sequence[tuple[str, bytes, bytes]]) -> list[tuple[str, str, bytes, bytes]]:
    """Outbox rows for every active federated node, read in the transaction that queues them."""
    urls = [r[0] for r in db.execute("SELECT url FROM nodes WHERE status='active'")]
    return [(url, kind, item, raw) for url in urls for kind, item, raw in items]


class _Full(Exception):
    """A mailbox at its cap: rolls back the delivery's savepoint (its seen_sealed row too)."""


def _enqueue(db: sqlite3.Connection, rows: Iterable[tuple[str, str, bytes, bytes]], now: float) -> None:
    # The bytes live in their own table so that finishing an item deletes them outright
    # (secure_delete zeroes deleted rows; an UPDATE that shrinks a row may not).
    for destination, kind, item, raw in rows:
        cursor = db.execute(
            "INSERT INTO outbox (destination, kind, item, created_at, next_at) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT(destination, kind, item) DO NOTHING",
            (destination, kind, item, int(now), now),
        )
        if cursor.rowcount == 1:
            db.execute("INSERT INTO outbox_payload VALUES (?, ?)", (cursor.lastrowid, raw))
