"""The schema and its migrations: the tables of spec §13.9 ("What a node stores").

Each migration is one script, run in its own transaction with the new ``user_version``, so a
database is always at exactly one version. A database newer than this software is refused.
"""

from __future__ import annotations

from .db import GroupWriter, StorageError

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "migrate"]

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
    # 3: who handed each mailbox item in, as a digest keyed by a secret the node holds in memory
    # only (spec §13.5, Mailbox quotas): a full mailbox drops from its largest source. Items from
    # before, and from before a restart, keep digests nobody can link to a source any more.
    """
    ALTER TABLE mailbox ADD COLUMN source BLOB;
    CREATE INDEX mailbox_source ON mailbox(mailbox, source);
    """,
    # 4: the one device a member's mail goes to (spec §13.4, One device at a time): the device id
    # its sessions were opened from, when it took over, and when a session's device was superseded.
    """
    ALTER TABLE members ADD COLUMN device BLOB;
    ALTER TABLE members ADD COLUMN device_at INTEGER;
    ALTER TABLE sessions ADD COLUMN device BLOB;
    ALTER TABLE sessions ADD COLUMN moved_at INTEGER;
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)


async def migrate(writer: GroupWriter) -> None:
    """Bring the database up to SCHEMA_VERSION, one migration per transaction.

    Raises StorageError (and closes the writer) if the database is newer than this software;
    a migration that fails raises StorageError too.
    """
    store_version = await writer.run(lambda db: int(db.execute("PRAGMA user_version").fetchone()[0]), bare=True)
    if store_version > SCHEMA_VERSION:
        await writer.close()
        raise StorageError(f"the database is schema {store_version}, newer than this software")
    for number in range(store_version, SCHEMA_VERSION):
        script = "BEGIN IMMEDIATE;" + MIGRATIONS[number] + f"; PRAGMA user_version={number + 1}; COMMIT;"
        await writer.run(lambda db, s=script: db.executescript(s), bare=True)  # type: ignore[misc]
