"""The schema and its migrations: the tables of spec §13.9 ("What a node stores").

Each migration is one script, with any backfill it needs in Python, run in its own transaction
with the new ``user_version``, so a database is always at exactly one version. A database newer
than this software is refused.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from peerfed.protocol.topics import words

from .db import GroupWriter, StorageError

__all__ = ["MIGRATIONS", "POSTGRES_SINCE", "SCHEMA_VERSION", "migrate", "require_current"]

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
    # 4 (federation health): when another node last failed an exchange and the error's code, kept
    # beside last_ok so the operator sees both (a success no longer erases the last error).
    """
    ALTER TABLE nodes ADD COLUMN last_error_code TEXT;
    ALTER TABLE nodes ADD COLUMN last_error_at INTEGER;
    """,
    # 5: topics are searched by words (spec §6.4). Each listing gets a ("word", w) facet per word
    # of its topics, for the walk down the facet index, and topic_words says which topic (by its
    # place in the listing) holds which word, so a query of several words is met in one topic.
    # Existing listings get both from their folded ("topic", ...) facets, which then go.
    """
    CREATE TABLE topic_words (
        listing INTEGER NOT NULL REFERENCES listings(seq) ON DELETE CASCADE,
        topic INTEGER NOT NULL, word TEXT NOT NULL,
        PRIMARY KEY (listing, word, topic)
    ) WITHOUT ROWID;
    """,
    # 6: the one device a member's mail goes to (spec §13.4, One device at a time): the device id
    # its sessions were opened from, when it took over, and when a session's device was superseded.
    """
    ALTER TABLE members ADD COLUMN device BLOB;
    ALTER TABLE members ADD COLUMN device_at INTEGER;
    ALTER TABLE sessions ADD COLUMN device BLOB;
    ALTER TABLE sessions ADD COLUMN moved_at INTEGER;
    """,
    # 7: one-time pre-keys a member gave to be handed out, each once (spec §13.5, One-time
    # pre-keys; §14.1). A claim deletes the row it hands out; a key is never stored twice.
    """
    CREATE TABLE prekeys (
        owner BLOB NOT NULL, key BLOB NOT NULL, uploaded_at INTEGER NOT NULL, PRIMARY KEY (owner, key)
    ) WITHOUT ROWID;
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)
# The first schema a PostgreSQL database was made at (spec §13.9, Storage back-ends). On
# PostgreSQL a migration after it runs the DDL ``dialect.postgres_step`` derives from its script,
# then its backfill through the writer's translation: a backfill from here on is written in the
# SQL both back-ends speak (no rowid but in ROWID_TABLES).
POSTGRES_SINCE = 7


def _words_from_topic_facets(db: sqlite3.Connection) -> None:
    """Schema 5's rows for the listings stored before it, from their folded topics.

    Folding is idempotent, so the words of a folded topic are the words of the topic.
    """
    rows = db.execute("SELECT listing, value FROM listing_facets WHERE facet = 'topic' ORDER BY listing, rowid")
    places: dict[int, int] = {}
    for listing, topic in rows.fetchall():
        place = places[listing] = places.get(listing, -1) + 1
        found = dict.fromkeys(words(topic))
        db.executemany("INSERT OR IGNORE INTO topic_words VALUES (?, ?, ?)", [(listing, place, w) for w in found])
        db.executemany(
            "INSERT INTO listing_facets SELECT ?, 'word', ? WHERE NOT EXISTS"
            " (SELECT 1 FROM listing_facets WHERE listing = ? AND facet = 'word' AND value = ?)",
            [(listing, w, listing, w) for w in found],
        )
    db.execute("DELETE FROM listing_facets WHERE facet = 'topic'")


# Work a migration does in Python, after its script and in the same transaction, keyed by the
# version the migration brings the database to.
BACKFILLS: dict[int, Callable[[sqlite3.Connection], None]] = {5: _words_from_topic_facets}


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
        await writer.run(lambda db, n=number + 1: _step(db, n), bare=True)  # type: ignore[misc]


async def require_current(writer: GroupWriter) -> None:
    """Check the database is at SCHEMA_VERSION without migrating it (the operator's tools).

    Only `peerfed serve` migrates, under its data-folder lock: an admin command run by a newer
    release beside an older node still serving must not change the schema under that node.
    Raises StorageError (and closes the writer) for any other version.
    """
    store_version = await writer.run(lambda db: int(db.execute("PRAGMA user_version").fetchone()[0]), bare=True)
    if store_version != SCHEMA_VERSION:
        await writer.close()
        if store_version > SCHEMA_VERSION:
            raise StorageError(f"the database is schema {store_version}, newer than this software")
        raise StorageError(
            f"the database is schema {store_version} and this software's is {SCHEMA_VERSION}: start peerfed serve "
            "with this version once (it migrates the database as it starts), then run this again"
        )


def _step(db: sqlite3.Connection, version: int) -> None:
    """One migration in one transaction: its script, its backfill, the new user_version."""
    try:
        db.executescript("BEGIN IMMEDIATE;" + MIGRATIONS[version - 1])
        backfill = BACKFILLS.get(version)
        if backfill is not None:
            backfill(db)
        db.execute(f"PRAGMA user_version={version}")
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
