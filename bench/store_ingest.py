"""The store alone: what storing a listing costs on SQLite and on PostgreSQL (spec §13.9; issue 17).

No sockets, no signatures, no frames: ``Store.insert_listing`` is
asked for N listings, 256 at a time, so the group writer commits them in groups as ingest
makes them. Each listing is a local one (its author's key bundle held), with three facets and a
topic word, as the ingest benchmark's are. CPU is counted for this process (the node's share)
and, on PostgreSQL, for every process of the throwaway server (the database's share).

    python bench/store_ingest.py                          # SQLite and PostgreSQL, 3 runs each
    python bench/store_ingest.py --federated --listings 1000   # one active federated node
    python bench/store_ingest.py --quick --federated           # 300 listings, 1 run (CI runs it)
    python bench/store_ingest.py --mail                        # sealed messages into 100 mailboxes

With ``--federated`` every listing is also queued for one federated node, with its author's key
bundle (queued once: every author's holds the same bytes here), as a node that federates does.
Figures go to stdout: listings/s, and CPU µs per listing.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # peerfed, and the server of tests/

from peerfed.node.store import Store
from peerfed.node.store.db import Conn
from tests.backends import postgres_server

AUTHORS = 200
AT_ONCE = 256


def _server_cpu() -> float:
    """CPU seconds of every postgres process on this machine (the throwaway server's)."""
    total = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            if Path(f"/proc/{pid}/comm").read_text().strip() != "postgres":
                continue
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


async def _timed(
    store: Store, one: Callable[[int], Awaitable[Any]], count: int
) -> tuple[float, float, float, int, int]:
    """200 items to warm up (plans made), then ``count`` asked AT_ONCE at a time, each answered
    truthy (stored, delivered: once). Returns what ``_figures`` counts from, read before them."""
    await asyncio.gather(*(one(-1 - n) for n in range(200)))
    groups, writes = store.write_stats
    at_start = (time.process_time(), _server_cpu(), time.perf_counter(), groups, writes)
    for start in range(0, count, AT_ONCE):
        answers = await asyncio.gather(*(one(n) for n in range(start, min(count, start + AT_ONCE))))
        assert all(answers), "every item is taken once"
    return at_start


def _figures(what: str, count: int, store: Store, at_start: tuple[float, float, float, int, int]) -> dict[str, float]:
    """Rate, and CPU per item of this process and of the server, since ``at_start`` (process
    CPU, server CPU, wall clock, groups and writes, read before the timed window)."""
    cpu, server, wall, groups, writes = at_start
    wall, server, cpu = time.perf_counter() - wall, _server_cpu() - server, time.process_time() - cpu
    groups, writes = store.write_stats[0] - groups, store.write_stats[1] - writes
    return {
        f"{what}_per_s": count / wall,
        "node_us": 1e6 * cpu / count,
        "server_us": 1e6 * server / count,
        "per_group": writes / max(1, groups),
    }


async def _mail_run(backend: str, messages: int) -> dict[str, float]:
    """``Store.deliver`` for N sealed messages to 100 members, as ingest asks: 256 at a time."""
    folder = tempfile.mkdtemp(prefix="peerfed-store-bench-")
    address = postgres_server().fresh_database() if backend == "postgresql" else str(Path(folder) / "node.sqlite3")
    store = await Store.open(address)
    try:
        members = [m.to_bytes(32, "big") for m in range(100)]
        await store._writer.run(
            lambda db: db.executemany(
                "INSERT INTO members (peer, status, joined_at) VALUES (?, 'member', 1)", [(m,) for m in members]
            )
        )

        async def one(n: int) -> int | None:
            now = int(time.time())
            result = await store.deliver(
                sealed_id=hashlib.blake2b(n.to_bytes(8, "big", signed=True), digest_size=32).digest(),
                mailbox=members[n % len(members)],
                raw=os.urandom(400),
                now=now,
                expires_at=now + 86_400,
                seen_until=now + 90_000,
                cap=1_000_000,
                source=hashlib.blake2b(b"source %d" % (n % 7), digest_size=16).digest(),
            )
            return result.seq

        at_start = await _timed(store, one, messages)
        counted = await store._all("SELECT count(*) FROM mailbox")
        assert counted[0][0] == messages + 200, counted
        return _figures("messages", messages, store, at_start)
    finally:
        await store.close()


async def _one_run(backend: str, listings: int, federated: bool) -> dict[str, float]:
    folder = tempfile.mkdtemp(prefix="peerfed-store-bench-")
    address = postgres_server().fresh_database() if backend == "postgresql" else str(Path(folder) / "node.sqlite3")
    store = await Store.open(address)
    try:
        bundles = [(a.to_bytes(32, "big"), b"b" * 200) for a in range(AUTHORS)]

        def setup(db: Conn) -> None:
            for peer, raw in bundles:
                db.execute(
                    "INSERT INTO key_bundles (peer, raw, created_at, expires_at) VALUES (?, ?, 1, 2000000000)",
                    (peer, raw),
                )
            if federated:
                db.execute("INSERT INTO nodes (url, status, added_at) VALUES ('https://b.example', 'active', 1)")

        await store._writer.run(setup)

        async def one(n: int) -> bool:
            author = (n % AUTHORS).to_bytes(32, "big")
            return await store.insert_listing(
                listing_id=hashlib.blake2b(n.to_bytes(8, "big", signed=True), digest_size=32).digest(),
                author=author,
                author_hash=hashlib.blake2b(author).digest(),
                kind="offer",
                timing="now",
                created_at=int(time.time()),
                expires_at=2_000_000_000,
                origin=None,
                raw=os.urandom(600),
                facets=[("lang", "en"), ("word", f"w{n % 31}"), ("format", "text")],
                topic_words=[(0, f"w{n % 31}")],
                now=time.time(),
                bundle_key=lambda raw: hashlib.blake2b(raw).digest(),
                entry="{}",
            )

        at_start = await _timed(store, one, listings)
        counted = await store._all("SELECT count(*) FROM listings")
        assert counted[0][0] == listings + 200, counted  # and nothing else
        if federated:
            queued = await store._all("SELECT count(*) FROM outbox")
            # each listing once, and the key bundle once (every author's holds the same bytes here)
            assert queued[0][0] == listings + 200 + 1, queued
        return _figures("listings", listings, store, at_start)
    finally:
        await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", action="append", choices=["sqlite", "postgresql"])
    parser.add_argument("--listings", type=int, default=8000, help="how many (of messages, with --mail)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--federated", action="store_true", help="one active federated node")
    parser.add_argument("--mail", action="store_true", help="sealed messages into mailboxes, not listings")
    parser.add_argument("--quick", action="store_true", help="300 listings, 1 run: checks it works (CI)")
    args = parser.parse_args()
    if args.quick:
        args.listings, args.runs = 300, 1
    what = "sealed messages" if args.mail else f"listings (federated: {args.federated})"
    print(f"{args.listings} {what}, {AT_ONCE} asked at a time")
    print(f"1-minute load before: {os.getloadavg()[0]:.2f}")
    for backend in args.backend or ["sqlite", "postgresql"]:
        if args.mail:
            runs = [asyncio.run(_mail_run(backend, args.listings)) for _ in range(args.runs)]
        else:
            runs = [asyncio.run(_one_run(backend, args.listings, args.federated)) for _ in range(args.runs)]
        figures = ", ".join(
            f"{key} {statistics.median(r[key] for r in runs):,.0f}"
            f" [{min(r[key] for r in runs):,.0f}-{max(r[key] for r in runs):,.0f}]"
            for key in runs[0]
        )
        print(f"{backend}: {figures}")
    print(f"1-minute load after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
