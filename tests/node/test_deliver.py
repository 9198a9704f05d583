"""Sealed messages delivered a burst at a time (store/deliver.py, spec §13.5, §13.9) on both
back-ends: each sender is told what it would be told alone, and every mailbox holds what it
would hold, in the same order, its cap kept the same way."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from peerfed.node.store import Store
from peerfed.node.store.rows import Delivery, DeliveryResult
from peerfed.protocol import RequestError
from tests.backends import database_for

NOW = 1_700_000_000
CAP = 12


def peer(name: str) -> bytes:
    return hashlib.blake2b(name.encode(), digest_size=32).digest()


def sealed(n: int) -> bytes:
    return hashlib.blake2b(n.to_bytes(8, "big"), digest_size=32).digest()


def source(n: int) -> bytes:
    return hashlib.blake2b(b"source %d" % n, digest_size=16).digest()


async def deliver(store: Store, n: int, to: str, sender: int) -> DeliveryResult:
    return await store.deliver(
        sealed_id=sealed(n),
        mailbox=peer(to),
        raw=b"sealed %d" % n,
        now=NOW,
        expires_at=NOW + 86_400,
        seen_until=NOW + 90_000,
        cap=CAP,
        source=source(sender),
    )


async def prepared(data: Path) -> Store:
    """Members a, b, c and full (its mailbox at the cap, most of it from source 1); m moved to
    another node; message 500 seen already."""
    data.mkdir(exist_ok=True)
    store = await Store.open(database_for(data) or data / "node.sqlite3")

    def setup(db: Any) -> None:
        for name in ("a", "b", "c", "full"):
            db.execute("INSERT INTO members (peer, status, joined_at) VALUES (?, 'member', 1)", (peer(name),))
        db.execute(
            "INSERT INTO members (peer, status, joined_at, moved_to) VALUES (?, 'moved', 1, 'https://new.example')",
            (peer("m"),),
        )
        db.execute("INSERT INTO seen_sealed (id, expires_at) VALUES (?, ?)", (sealed(500), NOW + 90_000))

    await store._writer.run(setup)
    for n in range(1000, 1000 + CAP):
        assert (await deliver(store, n, "full", 1 if n % 3 else 2)).status is Delivery.DELIVERED
    return store


# Every outcome: delivered to a and b (interleaved, 10 and 11: under the cap), seen already, twice
# in the burst, no such member, moved; and a full mailbox taking 4 more from two sources.
BURST = [
    (801, "nobody", 0),  # absent, then the same message to b: delivered there, before b's others
    (801, "b", 0),
    *((n, "a" if n % 2 else "b", n % 3) for n in range(20)),
    (500, "a", 0),  # seen already
    (7, "a", 0),  # twice in this burst (7 went to a above)
    (501, "nobody", 0),
    (502, "m", 0),
    *((n, "full", 1 if n % 2 else 3) for n in range(600, 604)),
    *((n, "c", n % 3) for n in range(700, 700 + CAP + 3)),  # past the cap within the burst
]


def told(result: object) -> object:
    assert isinstance(result, DeliveryResult), result
    return (result.status, result.moved_to, result.seq is not None)


async def mailboxes(store: Store) -> dict[bytes, list[tuple[bytes, bytes, bytes]]]:
    rows = await store._all("SELECT mailbox, id, source, raw FROM mailbox ORDER BY seq")
    held: dict[bytes, list[tuple[bytes, bytes, bytes]]] = {}
    for mailbox, sealed_id, by, raw in rows:
        held.setdefault(bytes(mailbox), []).append((bytes(sealed_id), bytes(by), bytes(raw)))
    return held


async def seen(store: Store) -> set[bytes]:
    return {bytes(r[0]) for r in await store._all("SELECT id FROM seen_sealed")}


def test_a_burst_of_sealed_messages_is_delivered_as_each_would_be_alone(tmp_path: Path) -> None:
    async def scenario() -> None:
        together = await prepared(tmp_path / "together")
        alone = await prepared(tmp_path / "alone")
        try:
            burst: Sequence[Any] = await asyncio.gather(*(deliver(together, *call) for call in BURST))
            assert together._writer.batches >= 1
            one_by_one = [await deliver(alone, *call) for call in BURST]
            assert alone._writer.batches == 0
            assert [told(r) for r in burst] == [told(r) for r in one_by_one]
            statuses = [r.status for r in burst]
            assert statuses.count(Delivery.DELIVERED) == 20 + 4 + CAP + 3 + 1
            assert statuses[22:26] == [Delivery.DUPLICATE, Delivery.DUPLICATE, Delivery.ABSENT, Delivery.MOVED]
            assert burst[25].moved_to == "https://new.example"
            held = await mailboxes(together)
            assert held == await mailboxes(alone)
            assert len(held[peer("full")]) == CAP == len(held[peer("c")])  # four out (source 1's oldest), four in
            assert [m[0] for m in held[peer("full")][-4:]] == [sealed(n) for n in range(600, 604)]
            assert await seen(together) == await seen(alone)
            # Each delivery's number is its place in its mailbox, as a live reader is told it.
            for call, result in zip(BURST, burst, strict=True):
                if result.status is Delivery.DELIVERED and call[1] != "c":  # (c's first were dropped)
                    row = await together._all("SELECT id FROM mailbox WHERE seq = ?", (result.seq,))
                    assert [bytes(r[0]) for r in row] == [sealed(call[0])]
        finally:
            await together.close()
            await alone.close()

    asyncio.run(scenario())


def test_a_message_the_database_refuses_fails_alone_and_the_rest_of_its_burst_is_delivered(tmp_path: Path) -> None:
    # A sealed id already in a mailbox but no longer among the seen ones: its insert breaks the
    # mailbox's unique key, so the burst's one statement fails and each message goes alone.
    async def scenario() -> None:
        store = await prepared(tmp_path)
        try:
            await store._writer.run(lambda db: db.execute("DELETE FROM seen_sealed WHERE id = ?", (sealed(1003),)))
            calls = [(n, "a", 0) for n in range(10)] + [(1003, "b", 0)] + [(n, "b", 0) for n in range(10, 20)]
            results = await asyncio.gather(*(deliver(store, *call) for call in calls), return_exceptions=True)
            assert type(results[10]).__name__ == "StorageError"
            assert [r.status for n, r in enumerate(results) if n != 10] == [Delivery.DELIVERED] * 20  # type: ignore[union-attr]
            assert store._writer.batches_undone == 1
            held = await mailboxes(store)
            assert [m[0] for m in held[peer("a")]] == [sealed(n) for n in range(10)]
            assert [m[0] for m in held[peer("b")]] == [sealed(n) for n in range(10, 20)]
        finally:
            await store.close()

    asyncio.run(scenario())


async def forward(store: Store, n: int, to: str) -> object:
    try:
        return await store.forward_sealed(
            sealed_id=sealed(n), seen_until=NOW + 90_000, destination=to, raw=b"sealed %d" % n, now=NOW + 0.25
        )
    except RequestError as exc:
        return exc.code


def test_a_burst_of_sealed_messages_for_other_nodes_is_queued_as_each_would_be_alone(tmp_path: Path) -> None:
    async def scenario() -> None:
        stores = [await prepared(tmp_path / "together"), await prepared(tmp_path / "alone")]
        try:
            for store in stores:
                await store._writer.run(
                    lambda db: db.executemany(
                        "INSERT INTO nodes (url, status, added_at) VALUES (?, ?, 1)",
                        [
                            ("https://b.example", "active"),
                            ("https://c.example", "active"),
                            ("https://p.example", "pending"),
                        ],
                    )
                )
            calls = [
                *((n, "https://b.example" if n % 3 else "https://c.example") for n in range(30)),
                (500, "https://b.example"),  # seen already
                (4, "https://b.example"),  # twice in this burst
                (31, "https://p.example"),  # a node that asked to federate, not yet let in
                (32, "https://nowhere.example"),
                (33, "https://p.example"),  # refused, then the same message to b: queued
                (33, "https://b.example"),
            ]
            together, alone = stores
            burst = await asyncio.gather(*(forward(together, *call) for call in calls))
            assert together._writer.batches >= 1 and together._writer.batches_undone == 0
            assert burst == [await forward(alone, *call) for call in calls]
            refused = "federation.refused"
            assert burst == [True] * 30 + [False, False, refused, refused, refused, True]
            outboxes = []
            for store in stores:
                rows = await store._all(
                    "SELECT o.destination, o.kind, o.item, p.raw FROM outbox o JOIN outbox_payload p ON p.seq = o.seq"
                )
                outboxes.append(sorted((r[0], r[1], bytes(r[2]), bytes(r[3])) for r in rows))
            assert outboxes[0] == outboxes[1]
            want = [*calls[:30], calls[-1]]
            assert outboxes[0] == sorted((to, "sealed", sealed(n), b"sealed %d" % n) for n, to in want)
            assert await seen(together) == await seen(alone)
        finally:
            for store in stores:
                await store.close()

    asyncio.run(scenario())
