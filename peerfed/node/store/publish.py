"""Storing new listings, a burst of them in one write (spec §6, §13.9, §13.7 Outbox).

A listing arrives with what decides whether it may be stored: its author's erasure, its own
withdrawal, and, published here, its author's key bundle. ``store_listings`` decides and stores
many at once, in a few statements for all (``many``); the group writer gives it the listings
that came together, and a listing that comes alone is a burst of one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from peerfed.protocol import RequestError

from .db import Conn
from .many import pieces, values
from .outbox import active_nodes, enqueue
from .rows import OutboxItem

__all__ = ["NewListing", "store_listings"]


class NewListing(NamedTuple):
    """A listing to store, with what decides whether it may be (``insert_listing``'s arguments)."""

    id: bytes
    author: bytes
    author_hash: bytes
    kind: str
    timing: str
    created_at: int
    expires_at: int
    origin: str | None
    raw: bytes
    entry: str | None
    facets: tuple[tuple[str, str], ...]
    topic_words: tuple[tuple[int, str], ...]
    now: float
    bundle_key: Callable[[bytes], bytes] | None


def _checked(at: int, item: NewListing) -> tuple[Any, ...]:
    local = int(item.bundle_key is not None)
    return (at, item.author_hash, item.id, item.author, local, int(item.now))


def _by_listing(db: Conn, insert: str, rows: list[tuple[bytes, Any, Any]]) -> None:
    """Rows (listing id, a, b) into a table keyed by the listing's number, which each statement
    finds by the id: a listing's search keys and topic words."""
    for piece in pieces(rows):
        db.execute(
            f"{insert} SELECT l.seq, v.column2, v.column3"
            f" FROM (VALUES {values(3, len(piece))}) v JOIN listings l ON l.id = v.column1 WHERE true",
            [x for row in piece for x in row],
        )


def store_listings(db: Conn, items: list[NewListing]) -> list[tuple[bool, Any]]:
    """Store listings in one write, a few statements for all of them: an outcome each.

    (True, (stored, queued)) where ``stored`` is False for a listing already held and ``queued``
    whether it was queued for a federated node; (False, RequestError) for one that may not be
    stored. Everything is decided inside the write: the author's erasure and the listing's
    withdrawal tombstones are checked, and, for a local listing (``bundle_key`` given), the
    author's key bundle must be held and both are queued for every active federated node. No
    read before the write, so nothing can change in between. Raises the driver's error if a
    statement fails: the group writer then stores each listing alone.
    """
    firsts: dict[bytes, int] = {}
    for i, item in enumerate(items):
        firsts.setdefault(item.id, i)
    checks = []
    for span in pieces(range(len(items))):
        # One statement for every check of every listing of the piece, and whether any
        # federated node is active (nobody to queue for: no look-up of who).
        checks.append(
            db.execute(
                "SELECT v.column1, (SELECT 1 FROM erasures WHERE author_hash = v.column2 AND expires_at > v.column6),"
                " (SELECT 1 FROM withdrawals WHERE listing = v.column3 AND author = v.column4),"
                " (SELECT raw FROM key_bundles WHERE peer = v.column4 AND expires_at > v.column6 AND v.column5 = 1),"
                " (SELECT 1 FROM listings WHERE id = v.column3),"
                " EXISTS (SELECT 1 FROM nodes WHERE status='active')"
                f" FROM (VALUES {values(6, len(span))}) v",
                [x for i in span for x in _checked(i, items[i])],
            )
        )
    outcomes: list[tuple[bool, Any]] = [(True, (False, False))] * len(items)
    stored: list[tuple[int, NewListing, bytes | None]] = []
    active = False
    for cursor in checks:  # read after every piece is sent: one wait for all on PostgreSQL
        for i, erased, withdrawn, bundle, held, anyone in sorted(cursor.fetchall()):
            item, active = items[i], bool(anyone)
            if erased:
                outcomes[i] = (False, RequestError("the author of this listing was erased", "gone"))
            elif withdrawn:
                outcomes[i] = (False, RequestError("this listing was withdrawn", "gone"))
            elif item.bundle_key is not None and bundle is None:
                message = "publish your key bundle first, so others can write to you"
                outcomes[i] = (False, RequestError(message, "request.invalid"))
            elif not held and firsts[item.id] == i:
                stored.append((i, item, None if bundle is None else bytes(bundle)))
                outcomes[i] = (True, (True, False))
    for new in pieces(stored):
        db.execute(
            "INSERT INTO listings (id, author, kind, timing, created_at, expires_at, origin, raw, entry)"
            f" VALUES {values(9, len(new))}",
            [
                x
                for _, item, _ in new
                for x in (
                    item.id,
                    item.author,
                    item.kind,
                    item.timing,
                    item.created_at,
                    item.expires_at,
                    item.origin,
                    item.raw,
                    item.entry,
                )
            ],
        )
    facets = [(item.id, f, v) for _, item, _ in stored for f, v in item.facets]
    _by_listing(db, "INSERT INTO listing_facets (listing, facet, value)", facets)
    words = [(item.id, n, w) for _, item, _ in stored for n, w in item.topic_words]
    _by_listing(db, "INSERT OR IGNORE INTO topic_words (listing, topic, word)", words)
    if active and stored:  # a federated node to send local listings to, each with its author's bundle
        urls, queue = active_nodes(db), []
        for i, item, bundle in stored:
            if bundle is not None and item.bundle_key is not None and urls:
                pair = (("key-bundle", item.bundle_key(bundle), bundle), ("listing", item.id, item.raw))
                queue += [OutboxItem(url, kind, key, raw) for url in urls for kind, key, raw in pair]
                outcomes[i] = (True, (True, True))
        if queue:  # all in one go, as they came in one group (its latest time)
            enqueue(db, queue, max(item.now for _, item, _ in stored))
    for i, item in enumerate(items):  # a listing a second time: told what it would be after the first
        if firsts[item.id] != i:
            outcomes[i] = store_listings(db, [item])[0]
    return outcomes
