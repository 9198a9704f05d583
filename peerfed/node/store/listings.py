"""Listings, their search keys, and the tombstones that keep them gone (spec §6, §13.5, §13.6, §13.9).

A listing is stored with its facets (the search keys) and its directory entry; withdrawals and
erasures leave tombstones that refuse it if it comes back. Every call raises StorageError if
the database fails.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from .db import Conn, Database
from .outbox import enqueue
from .publish import NewListing, store_listings
from .rows import ListingRow, ListingSummary, LocalListing, Outbox, SearchRow, WithdrawnTombstone

__all__ = ["ListingsMixin", "search_statement"]


class ListingsMixin(Database):
    """Publishing, taking down and finding listings."""

    async def is_erased(self, author_hash: bytes, now: int) -> bool:
        return (
            await self._one("SELECT 1 FROM erasures WHERE author_hash=? AND expires_at > ?", (author_hash, now))
            is not None
        )

    async def has_live_listing(self, author: bytes, now: int) -> bool:
        """Whether the author has a live listing published here (their key is public already)."""
        return (
            await self._one(
                "SELECT 1 FROM listings WHERE author=? AND origin IS NULL AND expires_at > ? LIMIT 1", (author, now)
            )
            is not None
        )

    async def withdrawals_after(self, after: int, now: int, limit: int) -> list[WithdrawnTombstone]:
        """Withdrawals in force by this node's own members (any standing) after a cursor, for a
        catch-up page (spec §13.7, Catch-up)."""
        rows = await self._all(
            "SELECT w.rowid, w.listing, w.author, w.expires_at FROM withdrawals w JOIN members m ON m.peer = w.author"
            " WHERE w.rowid > ? AND w.expires_at > ? ORDER BY w.rowid LIMIT ?",
            (after, now, limit),
        )
        return [WithdrawnTombstone(r[0], bytes(r[1]), bytes(r[2]), r[3]) for r in rows]

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
        topic_words: Iterable[tuple[int, str]],
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
        item = NewListing(
            listing_id,
            author,
            author_hash,
            kind,
            timing,
            created_at,
            expires_at,
            origin,
            raw,
            entry,
            tuple(facets),
            tuple(topic_words),
            now,
            bundle_key,
        )

        told: tuple[bool, bool] = await self._writer.run_batch(store_listings, item)
        stored, queued = told
        if queued:
            self.on_queued()  # federation work: wake the sender (no federated node: no wake-up)
        return stored

    async def withdraw(self, listing: bytes, author: bytes, expires_at: int, outbox: Outbox, now: float) -> bool:
        """Delete the author's listing and keep a tombstone; True if a listing was deleted."""
        rows = list(outbox)

        def job(db: Conn) -> bool:
            cursor = db.execute("DELETE FROM listings WHERE id=? AND author=?", (listing, author))
            db.execute(
                "INSERT INTO withdrawals VALUES (?, ?, ?) ON CONFLICT(listing, author) DO UPDATE SET"
                " expires_at=MAX(withdrawals.expires_at, excluded.expires_at)",
                (listing, author, expires_at),
            )
            enqueue(db, rows, now)
            return cursor.rowcount == 1

        return await self._writer.run(job)

    async def remove_listing(self, listing: bytes, outbox: Outbox, now: float) -> bool:
        """An operator takes a listing down (moderation); a tombstone keeps it from coming back."""
        rows = list(outbox)

        def job(db: Conn) -> bool:
            row = db.execute("SELECT author, expires_at FROM listings WHERE id=?", (listing,)).fetchone()
            if row is None:
                return False
            db.execute("DELETE FROM listings WHERE id=?", (listing,))
            db.execute(
                "INSERT INTO withdrawals VALUES (?, ?, ?) ON CONFLICT(listing, author) DO NOTHING",
                (listing, row[0], row[1]),
            )
            enqueue(db, rows, now)
            return True

        return await self._writer.run(job)

    async def listing(self, listing: bytes) -> ListingRow | None:
        row = await self._one("SELECT raw, origin, author FROM listings WHERE id=?", (listing,))
        return None if row is None else ListingRow(bytes(row[0]), row[1], bytes(row[2]))

    async def search(
        self,
        *,
        now: int,
        kind: str | None,
        timing: str | None,
        facets: Sequence[tuple[str, str]],
        before: int | None,
        limit: int,
        together: Sequence[Sequence[str]] = (),
    ) -> list[SearchRow]:
        """Live listings matching every filter, newest first, each with its author's key bundle
        (the statement: ``search_statement``)."""
        sql, params = search_statement(
            now=now, kind=kind, timing=timing, facets=facets, before=before, limit=limit, together=together
        )
        rows = await self._all(sql, params)
        return [SearchRow(r[0], bytes(r[1]), r[2], r[3], None if r[4] is None else bytes(r[4])) for r in rows]

    async def local_listings_after(self, after: int, now: int, limit: int) -> list[LocalListing]:
        """Live listings published on this node after ``after``, for a catch-up pull (spec §13.7)."""
        rows = await self._all(
            "SELECT seq, raw, author FROM listings WHERE origin IS NULL AND seq > ? AND expires_at > ?"
            " ORDER BY seq LIMIT ?",
            (after, now, limit),
        )
        return [LocalListing(r[0], bytes(r[1]), bytes(r[2])) for r in rows]

    async def listings_page(self, limit: int = 100) -> list[ListingSummary]:
        """The newest listings held, for the operator."""
        rows = await self._all(
            "SELECT id, author, kind, origin, expires_at FROM listings ORDER BY seq DESC LIMIT ?", (limit,)
        )
        return [ListingSummary(bytes(r[0]), bytes(r[1]), r[2], r[3], r[4]) for r in rows]


def search_statement(
    *,
    now: int,
    kind: str | None,
    timing: str | None,
    facets: Sequence[tuple[str, str]],
    before: int | None,
    limit: int,
    together: Sequence[Sequence[str]] = (),
) -> tuple[str, list[Any]]:
    """Live listings matching every filter, newest first, each with its author's key bundle.

    With a facet filter, the walk runs down that facet's index (facet, value, listing) from
    the newest listing, so a query reads about limit / (share matching the other filters)
    index entries, not every listing; the other facets are index probes per candidate. The
    statement holds the planner to that walk: the kind is compared so that no index serves it.
    Each group in ``together`` is words one topic of the listing must hold all of (a topic
    query of several words, spec §6.4): probes of topic_words' primary key.
    """
    params: list[Any] = []
    if facets:
        (facet, value), others = facets[0], facets[1:]
        sql = (
            "SELECT l.seq, l.raw, l.origin, l.entry, k.raw FROM listing_facets f0 JOIN listings l ON l.seq = f0.listing"
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
        # With a facet, ``|| ''`` keeps listings_kind out of the plan, whatever the statistics say
        # (SQLite with none yet for listings took that index, then sorted: 14 ms at 10,000 listings).
        where.append("l.kind || '' = ?" if facets else "l.kind = ?")
        params.append(kind)
    if timing:
        where.append("l.timing = ?")
        params.append(timing)
    for facet, value in others:
        where.append("EXISTS (SELECT 1 FROM listing_facets f WHERE f.facet = ? AND f.value = ? AND f.listing = l.seq)")
        params += [facet, value]
    for group in together:
        first, *rest = group
        same = "".join(
            f" AND EXISTS (SELECT 1 FROM topic_words t{n} WHERE t{n}.listing = t0.listing"
            f" AND t{n}.word = ? AND t{n}.topic = t0.topic)"
            for n in range(1, len(rest) + 1)
        )
        where.append(f"EXISTS (SELECT 1 FROM topic_words t0 WHERE t0.listing = l.seq AND t0.word = ?{same})")
        params += [first, *rest]
    sql += " WHERE " + " AND ".join(where) + f" ORDER BY {order} DESC LIMIT ?"
    return sql, [*params, limit]
