"""The peer's own database under $PEERFED_HOME: keys, listings, peers, connections (spec §8, §9).

Everything private lives here and only here: the plaintext of every message the peer sent or
received, the agreements, the peers it blocked. Each connection keeps its signed messages
(``events``, what a conversation shows and what an erasure deletes) and, beside them, the state
machine's value after the last one applied (``connection_states``), so a command loads the
state instead of verifying the whole history again. A state stored before a concurrent write
from another process, or missing (a database older than schema 2, a restored backup), is
brought up to date by replaying the events after it; an erased conversation keeps its state and
none of its events (``client.wipe``). This peer's own messages not yet delivered are listed in
``outbox`` beside their events (``client.outbox``).

The signed messages and the states are sealed at rest (``client.history``, spec §9.6): a
command unlocks the keyring, then ``unlock_history`` gives this database the key; a database
older than schema 4 has its plaintext sealed then, once (``history`` in ``meta`` says it is done).

Backups (``export_backup``/``import_backup``) carry the four tables of schema 1 and the
meta values in the format ``peerfed-export/1``, the messages opened (the file itself is sealed
under a passphrase); the connection states are derived, so they are left out and rebuilt on the
restored device.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiosqlite

from peerfed.protocol import Connection, Side

from .backup_file import BACKUP_FORMAT, BACKUP_TABLES, Backup, device_only
from .errors import ClientError
from .history import HistoryBox
from .rows import ConnectionRow, ConnectionStateRow, EventRow, ListingRow, PeerRow
from .stored import decode_connection, encode_connection

__all__ = ["BACKUP_FORMAT", "Backup", "ClientError", "LocalState", "default_home"]


SCHEMA = [
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value BLOB);
    CREATE TABLE peers (
        peer BLOB PRIMARY KEY, bundle BLOB, bundle_expires INTEGER NOT NULL DEFAULT 0, home TEXT,
        name TEXT, blocked INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE listings (
        id BLOB PRIMARY KEY, raw BLOB NOT NULL, author BLOB NOT NULL, origin TEXT, mine INTEGER NOT NULL,
        expires_at INTEGER NOT NULL, withdrawn INTEGER NOT NULL DEFAULT 0, seen_at INTEGER NOT NULL
    );
    CREATE TABLE connections (
        id BLOB PRIMARY KEY, listing BLOB NOT NULL, peer BLOB NOT NULL, side TEXT NOT NULL,
        created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, read_seq INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE events (
        n INTEGER PRIMARY KEY AUTOINCREMENT, connection BLOB NOT NULL, inner_id BLOB NOT NULL UNIQUE,
        author BLOB NOT NULL, type TEXT NOT NULL, raw BLOB NOT NULL, at INTEGER NOT NULL
    );
    CREATE INDEX events_connection ON events(connection, n);
    """,
    # 2: each connection's state machine value, as of event number ``through``.
    """
    CREATE TABLE connection_states (
        connection BLOB PRIMARY KEY, through INTEGER NOT NULL, state BLOB NOT NULL
    );
    """,
    # 3: this peer's own messages signed and stored but not yet delivered (client/outbox.py).
    """
    CREATE TABLE outbox (
        n INTEGER PRIMARY KEY AUTOINCREMENT, inner_id BLOB NOT NULL UNIQUE, connection BLOB NOT NULL,
        queued_at INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT
    );
    """,
    # 4: events.raw and connection_states.state sealed at rest; done on the first unlock (spec §9.6).
    """
    INSERT INTO meta (key, value) VALUES ('history', 0) ON CONFLICT(key) DO NOTHING;
    """,
]
_SEALED_HISTORY = 1


def default_home() -> Path:
    """$PEERFED_HOME, else $XDG_DATA_HOME/peerfed, else ~/.local/share/peerfed."""
    if os.environ.get("PEERFED_HOME"):
        return Path(os.environ["PEERFED_HOME"])
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "peerfed"


class LocalState:
    """The device's database. Every method raises ClientError (``local.storage``) on a database failure."""

    def __init__(self, db: aiosqlite.Connection, home: Path) -> None:
        self.db = db
        self.home = home
        self._history: HistoryBox | None = None

    async def unlock_history(self, key: bytes) -> None:
        """Seal and open the history under ``key`` from now on (``client.history.history_key``).

        On the first unlock of a database that kept its history in plaintext (schema 3 or
        older), every stored message and state is sealed in one transaction, then the file is
        rewritten and the write-ahead log emptied so no plaintext page is left behind.
        Raises ClientError (``local.storage``).
        """
        self._history = box = HistoryBox(key)
        if await self.get("history") == _SEALED_HISTORY:
            return
        await self._exec("BEGIN IMMEDIATE")
        try:
            for n, raw in await self._rows("SELECT n, raw FROM events"):
                await self._exec("UPDATE events SET raw=? WHERE n=?", (box.seal(bytes(raw)), n))
            for connection, state in await self._rows("SELECT connection, state FROM connection_states"):
                sealed = box.seal(bytes(state))
                await self._exec("UPDATE connection_states SET state=? WHERE connection=?", (sealed, connection))
            await self.set("history", _SEALED_HISTORY)
            await self._exec("COMMIT")
        except BaseException:
            await self._exec("ROLLBACK")
            raise
        await self.scrub()

    async def scrub(self) -> None:
        """Leave no copy of what was just replaced in the database files (spec §9.6)."""
        # secure_delete zeroes the cells the old values left; VACUUM rewrites every page and the
        # checkpoint empties the log that held the old ones.
        await self._exec("VACUUM")
        await self._exec("PRAGMA wal_checkpoint(TRUNCATE)")

    def seal(self, data: bytes) -> bytes:
        """``data`` (a message or a state of a connection) as stored, sealed (spec §9.6)."""
        assert self._history is not None, "the history is sealed only once the keyring is unlocked"
        return self._history.seal(data)

    def open_sealed(self, stored: bytes) -> bytes:
        """What ``seal`` stored. Raises ClientError (``local.damaged``)."""
        assert self._history is not None, "the history is opened only once the keyring is unlocked"
        return self._history.open(stored)

    @classmethod
    async def open(cls, home: Path) -> LocalState:
        """Open (creating or migrating) the database in ``home``; the folder and file are private to the user."""
        home.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(home, 0o700)
        path = home / "peer.sqlite3"
        try:
            db = await aiosqlite.connect(path, isolation_level=None)
            await db.execute("PRAGMA journal_mode=WAL")
            await db.execute("PRAGMA synchronous=FULL")
            await db.execute("PRAGMA secure_delete=ON")
            row = await (await db.execute("PRAGMA user_version")).fetchone()
            version = int(row[0]) if row else 0
            for number in range(version, len(SCHEMA)):
                await db.executescript(f"BEGIN; {SCHEMA[number]}; PRAGMA user_version={number + 1}; COMMIT;")
        except sqlite3.Error as exc:
            raise ClientError(f"cannot open {path}: {exc}", "local.storage") from exc
        os.chmod(path, 0o600)
        return cls(db, home)

    async def close(self) -> None:
        await self.db.close()

    async def _exec(self, sql: str, params: Sequence[Any] = ()) -> aiosqlite.Cursor:
        try:
            return await self.db.execute(sql, params)
        except sqlite3.Error as exc:
            raise ClientError(f"local database error: {exc}", "local.storage") from exc

    async def write(self, sql: str, params: Sequence[Any] = ()) -> aiosqlite.Cursor:
        """One statement for a part that keeps its own table (the outbox); raises ClientError."""
        return await self._exec(sql, params)

    async def select(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        """One query for a part that keeps its own table (the outbox); raises ClientError."""
        return await self._rows(sql, params)

    async def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        try:
            return list(await (await self.db.execute(sql, params)).fetchall())
        except sqlite3.Error as exc:
            raise ClientError(f"local database error: {exc}", "local.storage") from exc

    # --- meta ------------------------------------------------------------------------------

    async def get(self, key: str) -> Any:
        rows = await self._rows("SELECT value FROM meta WHERE key=?", (key,))
        return rows[0][0] if rows else None

    async def set(self, key: str, value: Any) -> None:
        await self._exec(
            "INSERT INTO meta VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value", (key, value)
        )

    async def count_meta(self, prefix: str) -> int:
        """How many meta keys start with ``prefix`` (one count, nothing unsealed)."""
        rows = await self._rows("SELECT count(*) FROM meta WHERE substr(key, 1, ?) = ?", (len(prefix), prefix))
        return int(rows[0][0])

    async def dump_meta(self) -> dict[str, Any]:
        return {r[0]: r[1] for r in await self._rows("SELECT key, value FROM meta")}

    # --- peers -----------------------------------------------------------------------------

    async def put_peer(
        self, peer: bytes, bundle: bytes | None, expires: int, home: str | None, name: str | None
    ) -> None:
        """Remember a peer's key bundle; the caller decided it is the newest (spec §4.3)."""
        await self._exec(
            "INSERT INTO peers (peer, bundle, bundle_expires, home, name) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT(peer) DO UPDATE SET bundle=excluded.bundle, bundle_expires=excluded.bundle_expires,"
            " home=excluded.home, name=excluded.name",
            (peer, bundle, expires, home, name),
        )

    async def peer(self, peer: bytes) -> PeerRow | None:
        rows = await self._rows(f"SELECT {_PEER} FROM peers WHERE peer=?", (peer,))
        return _peer_row(rows[0]) if rows else None

    async def block(self, peer: bytes) -> None:
        await self._exec(
            "INSERT INTO peers (peer, blocked) VALUES (?, 1) ON CONFLICT(peer) DO UPDATE SET blocked=1", (peer,)
        )

    async def peers(self) -> list[PeerRow]:
        return [_peer_row(r) for r in await self._rows(f"SELECT {_PEER} FROM peers")]

    # --- listings --------------------------------------------------------------------------

    async def put_listing(
        self, listing_id: bytes, raw: bytes, author: bytes, origin: str | None, mine: bool, expires: int, now: int
    ) -> None:
        await self._exec(
            "INSERT INTO listings VALUES (?, ?, ?, ?, ?, ?, 0, ?)"
            " ON CONFLICT(id) DO UPDATE SET seen_at=excluded.seen_at",
            (listing_id, raw, author, origin, int(mine), expires, now),
        )

    async def listing(self, listing_id: bytes) -> ListingRow | None:
        rows = await self._rows(f"SELECT {_LISTING} FROM listings WHERE id=?", (listing_id,))
        return _listing_row(rows[0]) if rows else None

    async def my_listings(self) -> list[ListingRow]:
        rows = await self._rows(f"SELECT {_LISTING} FROM listings WHERE mine=1 ORDER BY seen_at")
        return [_listing_row(r) for r in rows]

    async def mark_withdrawn(self, listing_id: bytes) -> None:
        await self._exec("UPDATE listings SET withdrawn=1 WHERE id=?", (listing_id,))

    # --- connections and their signed messages ---------------------------------------------------

    async def add_connection(self, connection: bytes, listing: bytes, peer: bytes, side: Side, now: int) -> None:
        await self._exec(
            "INSERT INTO connections (id, listing, peer, side, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)"
            " ON CONFLICT(id) DO NOTHING",
            (connection, listing, peer, side.value, now, now),
        )

    async def connection(self, connection: bytes) -> ConnectionRow | None:
        rows = await self._rows(f"SELECT {_CONNECTION} FROM connections WHERE id=?", (connection,))
        return _connection_row(rows[0]) if rows else None

    async def connections(self) -> list[ConnectionRow]:
        rows = await self._rows(f"SELECT {_CONNECTION} FROM connections ORDER BY updated_at DESC")
        return [_connection_row(r) for r in rows]

    async def add_event(
        self, connection: bytes, inner_id: bytes, author: bytes, kind: str, raw: bytes, now: int
    ) -> int | None:
        """Store a signed message of ``connection``; its event number, or None if it was already stored."""
        cursor = await self._exec(
            "INSERT INTO events (connection, inner_id, author, type, raw, at) VALUES (?, ?, ?, ?, ?, ?)"
            " ON CONFLICT(inner_id) DO NOTHING",
            (connection, inner_id, author, kind, self.seal(raw), now),
        )
        if cursor.rowcount != 1:
            return None
        await self._exec("UPDATE connections SET updated_at=? WHERE id=?", (now, connection))
        return cursor.lastrowid

    async def events(self, connection: bytes, after: int = 0) -> list[EventRow]:
        """The connection's signed messages numbered above ``after``, in the order they were applied."""
        rows = await self._rows(
            "SELECT n, inner_id, author, type, raw, at FROM events WHERE connection=? AND n>? ORDER BY n",
            (connection, after),
        )
        return [
            EventRow(int(r[0]), bytes(r[1]), bytes(r[2]), str(r[3]), self.open_sealed(bytes(r[4])), int(r[5]))
            for r in rows
        ]

    async def mark_read(self, connection: bytes, n: int) -> None:
        await self._exec("UPDATE connections SET read_seq=MAX(read_seq, ?) WHERE id=?", (n, connection))

    async def drop_connection(self, connection: bytes) -> None:
        """Forget an unanswered reach-out entirely: it expired, or its sender was declined or blocked."""
        await self._exec("DELETE FROM events WHERE connection=?", (connection,))
        await self._exec("DELETE FROM connection_states WHERE connection=?", (connection,))
        await self._exec("DELETE FROM connections WHERE id=?", (connection,))

    async def connection_state(self, connection: bytes) -> ConnectionStateRow | None:
        """The stored state of ``connection``, if any. Raises ClientError (``local.damaged``) if it does not decode."""
        rows = await self._rows("SELECT through, state FROM connection_states WHERE connection=?", (connection,))
        if not rows:
            return None
        return ConnectionStateRow(connection, int(rows[0][0]), decode_connection(self.open_sealed(bytes(rows[0][1]))))

    async def save_connection_state(self, state: Connection, *, through: int, since: int) -> bool:
        """Store ``state`` as the connection's value after event ``through``; True if stored.

        ``state`` was computed from the state as of event ``since`` plus event ``through``. If
        another process stored an event in between, it is not stored: the next reading replays
        from the older state instead. A state never replaces a later one.
        """
        cursor = await self._exec(
            "INSERT INTO connection_states (connection, through, state)"
            " SELECT ?, ?, ? WHERE NOT EXISTS"
            " (SELECT 1 FROM events WHERE connection=? AND n>? AND n<?)"
            " ON CONFLICT(connection) DO UPDATE SET through=excluded.through, state=excluded.state"
            " WHERE excluded.through > connection_states.through",
            (state.id, through, self.seal(encode_connection(state)), state.id, since, through),
        )
        return cursor.rowcount == 1

    async def prefix(self, table: str, text: str) -> list[bytes]:
        """Ids in ``table`` whose hex starts with ``text``."""
        assert table in ("listings", "connections")
        text = text.lower()
        if not text or any(c not in "0123456789abcdef" for c in text):
            return []
        rows = await self._rows(f"SELECT id FROM {table} WHERE hex(id) LIKE ?", (text.upper() + "%",))
        return [bytes(r[0]) for r in rows]

    # --- backup ------------------------------------------------------------------------------

    async def export_backup(self, keyring: bytes) -> Backup:
        """Everything this device holds but its session token (spec §9.6), with ``keyring``
        (unlocked) for its own."""
        tables = []
        for table, columns in BACKUP_TABLES.items():
            rows = [list(r) for r in await self._rows(f"SELECT {columns} FROM {table}")]
            if table == "events":  # the file carries them open, as every client reads them (§9.6)
                rows = [[*r[:4], self.open_sealed(bytes(r[4])), r[5]] for r in rows]
            tables.append((table, tuple(rows)))
        meta = tuple((k, v) for k, v in (await self.dump_meta()).items() if not device_only(k))
        return Backup(keyring, meta, tuple(tables))

    async def import_backup(self, backup: Backup, keyring: bytes) -> None:
        """Write ``backup`` into this (empty, history unlocked) database, with ``keyring`` as the
        stored, locked keyring; its messages are sealed as they are written."""
        for key, value in backup.meta:
            await self.set(key, value)
        await self.set("keyring", keyring)
        await self.set("token", None)
        for table, rows in backup.tables:
            columns = BACKUP_TABLES[table]
            marks = ", ".join("?" for _ in columns.split(","))
            for row in rows:
                if table == "events" and isinstance(row[4], bytes):
                    row = [*row[:4], self.seal(row[4]), row[5]]
                await self._exec(f"INSERT OR IGNORE INTO {table} ({columns}) VALUES ({marks})", row)


_PEER = "peer, bundle, bundle_expires, home, name, blocked"
_LISTING = "id, raw, author, origin, mine, expires_at, withdrawn"


_CONNECTION = "id, listing, peer, side, created_at, updated_at, read_seq"


def _peer_row(r: sqlite3.Row) -> PeerRow:
    bundle = None if r[1] is None else bytes(r[1])
    return PeerRow(bytes(r[0]), bundle, int(r[2]), r[3], r[4], bool(r[5]))


def _listing_row(r: sqlite3.Row) -> ListingRow:
    return ListingRow(bytes(r[0]), bytes(r[1]), bytes(r[2]), r[3], bool(r[4]), int(r[5]), bool(r[6]))


def _connection_row(r: sqlite3.Row) -> ConnectionRow:
    return ConnectionRow(bytes(r[0]), bytes(r[1]), bytes(r[2]), Side(r[3]), int(r[4]), int(r[5]), int(r[6]))
