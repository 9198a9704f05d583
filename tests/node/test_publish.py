"""Listings stored a burst at a time (store/publish.py, spec §13.9) on both back-ends: each
listing's caller is told what it would be told alone, and the tables hold what they would hold."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from peerfed.node.store import StorageError, Store
from peerfed.node.store.many import PIECE, pieces
from peerfed.protocol import RequestError
from tests.backends import database_for

NOW = 1_700_000_000
_NO_BYTES = object()  # publish's raw: None in the row
BUNDLE = b"bundle of a"


def peer(name: str) -> bytes:
    return hashlib.blake2b(name.encode(), digest_size=32).digest()


def listing_id(n: int) -> bytes:
    return hashlib.blake2b(n.to_bytes(8, "big"), digest_size=32).digest()


async def publish(store: Store, n: int, author: str, *, local: bool = True, entry: Any = "{}", raw: Any = None) -> bool:
    """Listing ``n`` of ``author``: published here (``local``) or held from another node."""
    body: Any = None if raw is _NO_BYTES else b"listing %d" % n if raw is None else raw
    return await store.insert_listing(
        listing_id=listing_id(n),
        author=peer(author),
        author_hash=hashlib.blake2b(peer(author), digest_size=32).digest(),
        kind="offer",
        timing="now",
        created_at=NOW,
        expires_at=NOW + 86_400,
        origin=None if local else "https://other.example",
        raw=body,
        facets=[("lang", "en"), ("word", f"w{n % 3}"), ("format", "text")],
        topic_words=[(0, f"w{n % 3}"), (1, "grief")],
        now=NOW + 0.5,
        bundle_key=(lambda raw: hashlib.blake2b(raw, digest_size=32).digest()) if local else None,
        entry=entry,
    )


async def prepared(data: Path) -> Store:
    """A store where a holds a key bundle, b holds none, c was erased, and a's listing 900 was
    withdrawn and listing 901 is held already."""
    data.mkdir(exist_ok=True)
    store = await Store.open(database_for(data) or data / "node.sqlite3")

    def setup(db: Any) -> None:
        db.execute("INSERT INTO key_bundles (peer, raw, created_at, expires_at) VALUES (?, ?, ?, ?)",
                   (peer("a"), BUNDLE, NOW, NOW + 86_400))  # fmt: skip
        erased = hashlib.blake2b(peer("c"), digest_size=32).digest()
        db.execute("INSERT INTO erasures (author_hash, expires_at) VALUES (?, ?)", (erased, NOW + 86_400))
        db.execute("INSERT INTO withdrawals (listing, author, expires_at) VALUES (?, ?, ?)",
                   (listing_id(900), peer("a"), NOW + 86_400))  # fmt: skip

    await store._writer.run(setup)
    assert await publish(store, 901, "a") is True
    return store


async def outcomes_of(store: Store, calls: Sequence[tuple[int, str, bool]]) -> list[Any]:
    return await asyncio.gather(
        *(publish(store, n, who, local=local) for n, who, local in calls), return_exceptions=True
    )


# A burst with every outcome a listing can have: stored, held already, the author erased, the
# listing withdrawn, no key bundle for a local listing; and listings from another node, which
# need none.
BURST = [
    *((n, "a", True) for n in range(40)),
    (901, "a", True),  # held already
    (902, "c", True),  # its author erased
    (900, "a", True),  # withdrawn
    (903, "b", True),  # published here without a key bundle
    *((n, "b", False) for n in range(40, 50)),  # from another node: no bundle needed
]


def expected(n: int, who: str) -> object:
    return {901: False, 902: "gone", 900: "gone", 903: "request.invalid"}.get(n, True)


def told(outcome: object) -> object:
    return outcome.code if isinstance(outcome, RequestError) else outcome


async def tables(store: Store) -> dict[str, set[tuple[Any, ...]]]:
    """Every listing, search key and topic word, named by the listing's id (not its number)."""
    listings = await store._all("SELECT id, author, kind, origin, raw, entry FROM listings")
    facets = await store._all(
        "SELECT l.id, f.facet, f.value FROM listing_facets f JOIN listings l ON l.seq = f.listing"
    )
    words = await store._all("SELECT l.id, w.topic, w.word FROM topic_words w JOIN listings l ON l.seq = w.listing")
    return {
        "listings": {tuple(bytes(x) if isinstance(x, memoryview) else x for x in r) for r in listings},
        "facets": {(bytes(r[0]), r[1], r[2]) for r in facets},
        "words": {(bytes(r[0]), r[1], r[2]) for r in words},
    }


def test_a_burst_of_listings_is_stored_and_refused_as_each_would_be_alone(tmp_path: Path) -> None:
    async def scenario() -> None:
        together = await prepared(tmp_path / "together")
        alone = await prepared(tmp_path / "alone")
        try:
            outcomes = await outcomes_of(together, BURST)
            assert [told(o) for o in outcomes] == [expected(n, who) for n, who, _ in BURST]
            assert together._writer.batches >= 1 and together._writer.batches_undone == 0
            for n, who, local in BURST:  # the same, one at a time: each a group of its own
                try:
                    outcome: object = await publish(alone, n, who, local=local)
                except RequestError as exc:
                    outcome = exc
                assert told(outcome) == expected(n, who)
            assert alone._writer.batches == 0
            held = await tables(together)
            assert held == await tables(alone)
            assert len(held["listings"]) == 1 + 40 + 10
            assert len(held["facets"]) == 3 * 50 + 3 and len(held["words"]) == 2 * 50 + 2
        finally:
            await together.close()
            await alone.close()

    asyncio.run(scenario())


@pytest.mark.parametrize("refused", ["entry", "raw"])
def test_a_listing_the_database_refuses_fails_alone_and_the_rest_of_its_burst_is_stored(
    tmp_path: Path, refused: str
) -> None:
    # A row the database refuses: a value no driver can bind (refused before it is sent), or a
    # listing without its bytes (refused by the server's NOT NULL; on PostgreSQL the insert is
    # pipelined and nothing reads it, so the error arrives only as the burst's savepoint is
    # released). The burst is undone, and the group writer stores each listing again on its own.
    async def scenario() -> None:
        store = await prepared(tmp_path)
        bad: dict[str, Any] = {"entry": object()} if refused == "entry" else {"raw": _NO_BYTES}
        try:
            calls = [publish(store, n, "a", **(bad if n == 7 else {})) for n in range(20)]
            outcomes = await asyncio.gather(*calls, return_exceptions=True)
            assert isinstance(outcomes[7], StorageError)
            assert [o for n, o in enumerate(outcomes) if n != 7] == [True] * 19
            assert store._writer.batches_undone == 1
            ids = {bytes(r[0]) for r in await store._all("SELECT id FROM listings")}
            assert ids == {listing_id(n) for n in [*range(20), 901] if n != 7}
            facets = await store._all("SELECT COUNT(*) FROM listing_facets")
            assert facets == [(3 * 20,)]  # 19 and the listing held before
        finally:
            await store.close()

    asyncio.run(scenario())


def test_a_listing_twice_in_one_burst_is_stored_once(tmp_path: Path) -> None:
    async def scenario() -> None:
        store = await prepared(tmp_path)
        try:
            outcomes = await outcomes_of(store, [(1, "a", True), (2, "a", True), (1, "a", True), (3, "b", False)])
            assert outcomes == [True, True, False, True]
            assert store._writer.batches_undone == 0  # the second told "held" in the same burst
            counted = await store._all(
                "SELECT COUNT(*) FROM listing_facets f JOIN listings l ON l.seq = f.listing WHERE l.id = ?",
                (listing_id(1),),
            )
            assert counted == [(3,)]
        finally:
            await store.close()

    asyncio.run(scenario())


def test_a_burst_for_federated_nodes_queues_each_item_once_and_never_stores_a_sent_ones_bytes_again(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        store = await prepared(tmp_path)
        woken: list[int] = []
        store.on_queued = lambda: woken.append(1)
        try:
            await store._writer.run(
                lambda db: db.executemany(
                    "INSERT INTO nodes (url, status, added_at) VALUES (?, 'active', 1)",
                    [("https://b.example",), ("https://c.example",)],
                )
            )
            assert await outcomes_of(store, [(n, "a", True) for n in range(10)] + [(50, "b", False)]) == [True] * 11
            assert len(woken) == 10  # every local listing woke the sender; the held one did not
            queued = await store._all(
                "SELECT o.destination, o.kind, o.item, p.raw FROM outbox o JOIN outbox_payload p ON p.seq = o.seq"
            )
            bundle_key = hashlib.blake2b(BUNDLE, digest_size=32).digest()
            want = {
                (url, kind, item, raw)
                for url in ("https://b.example", "https://c.example")
                for kind, item, raw in [
                    ("key-bundle", bundle_key, BUNDLE),
                    *(("listing", listing_id(n), b"listing %d" % n) for n in range(10)),
                ]
            }
            assert {(r[0], r[1], bytes(r[2]), bytes(r[3])) for r in queued} == want
            assert len(queued) == len(want)  # the bundle once per node, not once per listing
            # ... and before the listings, as it travels (spec §13.7): a receiving node checks a
            # listing against its author's bundle.
            for url in ("https://b.example", "https://c.example"):
                kinds = await store._all("SELECT kind FROM outbox WHERE destination = ? ORDER BY seq", (url,))
                assert [k for (k,) in kinds] == ["key-bundle"] + ["listing"] * 10

            # The bundle is sent to b and finished: its bytes go. A later burst by the same author
            # queues its new listings, and not the bundle again, nor its bytes.
            sent = await store._all(
                "SELECT seq FROM outbox WHERE kind = 'key-bundle' AND destination = 'https://b.example'"
            )
            await store.outbox_finish([sent[0][0]], "done", NOW)
            assert await outcomes_of(store, [(n, "a", True) for n in range(10, 14)]) == [True] * 4
            bundles = await store._all(
                "SELECT o.destination, o.state, p.raw FROM outbox o LEFT JOIN outbox_payload p ON p.seq = o.seq"
                " WHERE o.kind = 'key-bundle' ORDER BY o.destination"
            )
            assert [(r[0], r[1], None if r[2] is None else bytes(r[2])) for r in bundles] == [
                ("https://b.example", "done", None),
                ("https://c.example", "pending", BUNDLE),
            ]
            counted = await store._all("SELECT COUNT(*) FROM outbox WHERE kind = 'listing'")
            assert counted == [(2 * 14,)]
        finally:
            await store.close()

    asyncio.run(scenario())


@given(st.lists(st.integers(), max_size=300))
def test_a_burst_is_cut_in_pieces_of_a_few_lengths_in_order(rows: list[int]) -> None:
    cut = list(pieces(rows))
    assert [x for piece in cut for x in piece] == rows
    assert all(len(p) <= PIECE and len(p) & (len(p) - 1) == 0 for p in cut)  # powers of two
    assert len(cut) <= len(rows) // PIECE + PIECE.bit_length()


def test_a_write_the_server_refuses_leaves_every_later_write_working(tmp_path: Path) -> None:
    # psycopg prepares a statement on its sixth use, and in a pipeline it counts the statement
    # prepared when it sends it. Sent behind a statement that fails, the server skips it; had
    # psycopg been left to prepare, every later use on that connection failed ("prepared
    # statement does not exist") until the node restarted: every listing, after one refused row.
    async def scenario() -> None:
        store = await prepared(tmp_path)
        try:

            def failing(db: Any) -> None:
                raise ValueError("a write that fails: its savepoint is rolled back")

            for _ in range(7):  # the writer's rollback statements well used
                with pytest.raises(ValueError):
                    await store._writer.run(failing)
            for n in range(1, 5):  # the statements of a listing alone, used 4 times (+1 before)
                assert await publish(store, n, "a") is True
            with pytest.raises(StorageError):
                await publish(store, 5, "a", raw=_NO_BYTES)  # refused: NOT NULL, behind its 6th uses
            assert [await publish(store, n, "a") for n in range(10, 16)] == [True] * 6
            bursts = [await outcomes_of(store, [(100 * b + n, "a", True) for n in range(b + 2)]) for b in range(1, 8)]
            assert all(told == [True] * len(told) for told in bursts)
        finally:
            await store.close()

    asyncio.run(scenario())
