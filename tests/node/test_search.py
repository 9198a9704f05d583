"""The directory search against a plain model of its rule, and across the schema 2 migration."""

from __future__ import annotations

import asyncio
import base64
import random
import sqlite3
from pathlib import Path
from typing import Any

import aiohttp

from peerfed.node.app import DATABASE_FILE
from peerfed.node.store import MIGRATIONS, SCHEMA_VERSION
from peerfed.protocol import Context, Listing, open_signed

from .harness import Clock, Peer, TestNode, run_node, with_node

TOPICS = ["grief", "Loss", "panic attacks", "burnout"]
LANGS = ["en", "es-MX", "es", "fr"]
FORMATS = ["text", "voice", "video"]


def matches(card: dict[str, Any], query: dict[str, str]) -> bool:
    """The rule of spec §13.5, written plainly."""
    if "topic" in query and query["topic"].casefold() not in [t.casefold() for t in card["topics"]]:
        return False
    if "lang" in query:
        wanted = query["lang"].lower()
        if not any(lang.lower() == wanted or lang.lower().split("-")[0] == wanted for lang in card["languages"]):
            return False
    if "format" in query and query["format"] not in card["formats"]:
        return False
    return not ("kind" in query and card["kind"] != query["kind"])


async def every_page(peer: Peer, query: dict[str, str], limit: int) -> list[str]:
    found: list[str] = []
    before = None
    for _ in range(100):
        page = await peer.api.directory(**query, limit=limit, **({"before": before} if before else {}))
        found += [item["id"] for item in page["listings"]]
        before = page["next"]
        if before is None:
            return found
    raise AssertionError("paging did not end")


def test_every_query_finds_exactly_the_matching_listings_newest_first_across_pages(tmp_path: Path) -> None:
    async def body(node: TestNode, http: aiohttp.ClientSession) -> None:
        rng = random.Random(5)
        ana = await Peer("ana", node, http, 1).join()
        cards: list[tuple[str, dict[str, Any]]] = []
        for n in range(60):
            env = await ana.offer(
                f"offer {n}",
                kind=rng.choice(["offer", "request"]),
                topics=tuple(rng.sample(TOPICS, rng.randint(1, 2))),
                languages=tuple(rng.sample(LANGS, rng.randint(1, 2))),
                formats=tuple(rng.sample(FORMATS, rng.randint(1, 2))),
            )
            assert isinstance(env.body, Listing)
            card = {
                "kind": env.body.kind.value,
                "topics": list(env.body.topics),
                "languages": list(env.body.languages),
                "formats": [f.value for f in env.body.formats],
            }
            cards.append((env.id.hex(), card))
        queries: list[dict[str, str]] = [{}]
        for _ in range(40):
            query = {}
            if rng.random() < 0.6:
                query["topic"] = rng.choice(TOPICS).upper()
            if rng.random() < 0.5:
                query["lang"] = rng.choice(["en", "es", "es-mx", "fr", "de"])
            if rng.random() < 0.4:
                query["format"] = rng.choice(FORMATS)
            if rng.random() < 0.4:
                query["kind"] = rng.choice(["offer", "request"])
            queries.append(query)
        for query in queries:
            expected = [listing_id for listing_id, card in reversed(cards) if matches(card, query)]
            assert await every_page(ana, query, limit=7) == expected, query

    run_node(tmp_path, body)


def test_listings_stored_before_schema_2_are_found_with_the_same_results(tmp_path: Path) -> None:
    data = tmp_path / "n"

    async def publish(node: TestNode, http: aiohttp.ClientSession) -> None:
        ana = await Peer("ana", node, http, 1).join()
        await ana.offer("stored as schema 1 would have", topics=("grief",))
        await ana.offer("stored by schema 2", topics=("grief",))

    async def search(node: TestNode, http: aiohttp.ClientSession) -> None:
        ana = await Peer("ana", node, http, 1).join()
        found = (await ana.api.directory(topic="grief"))["listings"]
        assert [item["card"]["summary"] for item in found] == ["stored by schema 2", "stored as schema 1 would have"]
        for item in found:
            assert open_signed(base64.b64decode(item["listing"]), context=Context.ENVELOPE, now=ana.now())
            assert item["key_bundle"] is not None and item["origin"] == node.url
        assert set(found[0]) == set(found[1])

    clock = Clock()
    asyncio.run(with_node(data, clock, publish))
    # Make the first listing look as schema 1 left it: no stored entry.
    with sqlite3.connect(data / DATABASE_FILE) as db:
        db.execute("UPDATE listings SET entry=NULL WHERE seq=(SELECT MIN(seq) FROM listings)")
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    asyncio.run(with_node(data, clock, search))


def test_a_schema_1_database_is_migrated_in_place(tmp_path: Path) -> None:
    path = tmp_path / "n" / DATABASE_FILE
    path.parent.mkdir()
    with sqlite3.connect(path) as db:
        db.executescript(MIGRATIONS[0] + "; PRAGMA user_version=1;")

    async def check(node: TestNode, http: aiohttp.ClientSession) -> None:
        ana = await Peer("ana", node, http, 1).join()
        await ana.offer("after the migration", topics=("grief",))
        assert len((await ana.api.directory(topic="grief"))["listings"]) == 1

    asyncio.run(with_node(tmp_path / "n", Clock(), check))
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert db.execute("SELECT entry IS NOT NULL FROM listings").fetchone()[0] == 1
