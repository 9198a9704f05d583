"""The peer's own database under $PEERFED_HOME: keys, listings, peers, connections, messages.

Everything private lives here and only here: the plaintext of every message the peer sent or
received, the agreements, the peers it blocked. A connection's state is never stored as such:
it is rebuilt by replaying the connection's signed messages through the protocol's state
machine, so it cannot drift from what both peers signed.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiosqlite

from peerfed.protocol.errors import LocalError

__all__ = ["ClientError", "LocalState", "default_home"]

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
]


class ClientError(LocalError):
    """Something about this device's own state: no identity yet, an unknown or ambiguous id."""

    def __init__(self, message: str, code: str = "local.error") -> None:
        super().__init__(message)
        self.code = code


def default_home() -> Path:
    """$PEERFED_HOME, else $XDG_DATA_HOME/peerfed, else ~/.local/share/peerfed."""
    if os.environ.get("PEERFED_HOME"):
        return Path(os.environ["PEERFED_HOME"])
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "peerfed"


class LocalState:
    def __init__(self, db: aiosqlite.Connection, home: Path) -> None:
        self.db = db
        self.home = home

    @classmethod
    async def open(cls, home: Path) -> LocalState:
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

    async def _exec(self, sql: str, params: Sequence[Any] = ()) -> int:
        try:
            cursor = await self.db.execute(sql, params)
            return cursor.rowcount
        except sqlite3.Error as exc:
            raise ClientError(f"local database error: {exc}", "local.storage") from exc

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

    async def dump_meta(self) -> dict[str, Any]:
        return {r[0]: r[1] for r in await self._rows("SELECT key, value FROM meta")}

    # --- peers -----------------------------------------------------------------------------

    async def put_peer(
        self, peer: bytes, bundle: bytes | None, expires: int, home: str | None, name: str | None
    ) -> None:
        await self._exec(
            "INSERT INTO peers (peer, bundle, bundle_expires, home, name) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT(peer) DO UPDATE SET bundle=excluded.bundle, bundle_expires=excluded.bundle_expires,"
            " home=excluded.home, name=excluded.name WHERE excluded.bundle_expires >= peers.bundle_expires",
            (peer, bundle, expires, home, name),
        )

    async def peer(self, peer: bytes) -> dict[str, Any] | None:
        rows = await self._rows(
            "SELECT peer, bundle, bundle_expires, home, name, blocked FROM peers WHERE peer=?", (peer,)
        )
        if not rows:
            return None
        keys = ("peer", "bundle", "bundle_expires", "home", "name", "blocked")
        return dict(zip(keys, rows[0], strict=True))

    async def block(self, peer: bytes) -> None:
        await self._exec(
            "INSERT INTO peers (peer, blocked) VALUES (?, 1) ON CONFLICT(peer) DO UPDATE SET blocked=1", (peer,)
        )

    async def peers(self) -> list[dict[str, Any]]:
        rows = await self._rows("SELECT peer FROM peers")
        found = [await self.peer(bytes(r[0])) for r in rows]
        return [p for p in found if p is not None]

    # --- listings --------------------------------------------------------------------------

    async def put_listing(
        self, listing_id: bytes, raw: bytes, author: bytes, origin: str | None, mine: bool, expires: int, now: int
    ) -> None:
        await self._exec(
            "INSERT INTO listings VALUES (?, ?, ?, ?, ?, ?, 0, ?)"
            " ON CONFLICT(id) DO UPDATE SET seen_at=excluded.seen_at",
            (listing_id, raw, author, origin, int(mine), expires, now),
        )

    async def listing(self, listing_id: bytes) -> dict[str, Any] | None:
        rows = await self._rows(
            "SELECT id, raw, author, origin, mine, expires_at, withdrawn FROM listings WHERE id=?", (listing_id,)
        )
        if not rows:
            return None
        keys = ("id", "raw", "author", "origin", "mine", "expires_at", "withdrawn")
        return dict(zip(keys, rows[0], strict=True))

    async def my_listings(self) -> list[dict[str, Any]]:
        rows = await self._rows("SELECT id FROM listings WHERE mine=1 ORDER BY seen_at")
        found = [await self.listing(bytes(r[0])) for r in rows]
        return [x for x in found if x is not None]

    async def mark_withdrawn(self, listing_id: bytes) -> None:
        await self._exec("UPDATE listings SET withdrawn=1 WHERE id=?", (listing_id,))

    # --- connections and their signed messages ---------------------------------------------------

    async def add_connection(self, connection: bytes, listing: bytes, peer: bytes, side: str, now: int) -> None:
        await self._exec(
            "INSERT INTO connections (id, listing, peer, side, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)"
            " ON CONFLICT(id) DO NOTHING",
            (connection, listing, peer, side, now, now),
        )

    async def connection(self, connection: bytes) -> dict[str, Any] | None:
        rows = await self._rows(
            "SELECT id, listing, peer, side, created_at, updated_at, read_seq FROM connections WHERE id=?",
            (connection,),
        )
        if not rows:
            return None
        keys = ("id", "listing", "peer", "side", "created_at", "updated_at", "read_seq")
        return dict(zip(keys, rows[0], strict=True))

    async def connections(self) -> list[dict[str, Any]]:
        rows = await self._rows("SELECT id FROM connections ORDER BY updated_at DESC")
        found = [await self.connection(bytes(r[0])) for r in rows]
        return [c for c in found if c is not None]

    async def add_event(
        self, connection: bytes, inner_id: bytes, author: bytes, kind: str, raw: bytes, now: int
    ) -> bool:
        added = await self._exec(
            "INSERT INTO events (connection, inner_id, author, type, raw, at) VALUES (?, ?, ?, ?, ?, ?)"
            " ON CONFLICT(inner_id) DO NOTHING",
            (connection, inner_id, author, kind, raw, now),
        )
        if added:
            await self._exec("UPDATE connections SET updated_at=? WHERE id=?", (now, connection))
        return added == 1

    async def events(self, connection: bytes) -> list[dict[str, Any]]:
        rows = await self._rows(
            "SELECT n, inner_id, author, type, raw, at FROM events WHERE connection=? ORDER BY n", (connection,)
        )
        keys = ("n", "inner_id", "author", "type", "raw", "at")
        return [dict(zip(keys, r, strict=True)) for r in rows]

    async def mark_read(self, connection: bytes, n: int) -> None:
        await self._exec("UPDATE connections SET read_seq=MAX(read_seq, ?) WHERE id=?", (n, connection))

    async def forget_connection(self, connection: bytes) -> None:
        """Erase a conversation's content on request; keep only that it ended."""
        await self._exec("DELETE FROM events WHERE connection=? AND type IN ('message', 'agreement')", (connection,))
        await self._exec("PRAGMA wal_checkpoint(TRUNCATE)")

    async def prefix(self, table: str, text: str) -> list[bytes]:
        """Ids in ``table`` whose hex starts with ``text``."""
        assert table in ("listings", "connections")
        text = text.lower()
        if not text or any(c not in "0123456789abcdef" for c in text):
            return []
        rows = await self._rows(f"SELECT id FROM {table} WHERE hex(id) LIKE ?", (text.upper() + "%",))
        return [bytes(r[0]) for r in rows]
