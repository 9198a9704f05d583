"""The directory search against a plain model of its rule, and across the schema 2 and 4 migrations."""

from __future__ import annotations

import asyncio
import base64
import random
import sqlite3
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from peerfed.node.app import DATABASE_FILE
from peerfed.node.store import MIGRATIONS, SCHEMA_VERSION
from peerfed.protocol import Context, Listing, RemoteError, open_signed

from .harness import Clock, Peer, TestNode, run_node, with_node

TOPICS = ["grief", "Loss", "panic attacks", "burnout", "Grief & loss", "Panic-Attacks at night", "ΣΊΣΥΦΟΣ"]
WORDS = ["grief", "LOSS", "panic", "Attacks", "burnout", "night", "at", "σίσυφος", "pan", "panic attacks", "loss grief"]
LANGS = ["en", "es-MX", "es", "fr"]
FORMATS = ["text", "voice", "video"]


def plain_words(text: str) -> set[str]:
    """Spec §6.4 for the texts used here: fold, then split at white space, '&' and '-'."""
    return set(text.casefold().replace("&", " ").replace("-", " ").split())


def matches(card: dict[str, Any], query: dict[str, Any]) -> bool:
    """The rule of spec §13.5 and §6.4, written plainly: every topic query met by one topic."""
    for topic_query in query.get("topic", []):
        if not any(plain_words(topic_query) <= plain_words(t) for t in card["topics"]):
            return False
    if "lang" in query:
        wanted = query["lang"].lower()
        if not any(lang.lower() == wanted or lang.lower().split("-")[0] == wanted for lang in card["languages"]):
            return False
    if "format" in query and query["format"] not in card["formats"]:
        return False
    return not ("kind" in query and card["kind"] != query["kind"])


async def every_page(peer: Peer, query: dict[str, Any], limit: int) -> list[str]:
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
        queries: list[dict[str, Any]] = [{}]
        for _ in range(60):
            query: dict[str, Any] = {}
            if rng.random() < 0.7:
                query["topic"] = rng.sample(WORDS, rng.choice([1, 1, 1, 2]))
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


@pytest.mark.one_backend("it rewrites a SQLite file into an earlier schema")
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


@pytest.mark.one_backend("it rewrites a SQLite file into an earlier schema")
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


def test_topic_queries_by_words_their_bounds_and_several_topic_parameters(tmp_path: Path) -> None:
    async def body(node: TestNode, http: aiohttp.ClientSession) -> None:
        ana = await Peer("ana", node, http, 1).join()
        night = await ana.offer("nights", topics=("Panic attacks", "sleepless nights"))
        day = await ana.offer("days", topics=("panic at work",))

        async def found(**query: Any) -> list[str]:
            return [item["id"] for item in (await ana.api.directory(**query))["listings"]]

        assert await found(topic="panic") == [day.id.hex(), night.id.hex()]
        assert await found(topic="PANIC, attacks!") == [night.id.hex()]
        assert await found(topic="pan") == []
        # One query's words are met in one topic; each topic parameter by any topic.
        assert await found(topic="panic sleepless") == []
        assert await found(topic=["panic", "sleepless"]) == [night.id.hex()]
        assert await found(topic=["panic", "work"]) == [day.id.hex()]
        for bad in ["", "   ", "...", " ".join("abcdefghi")]:
            with pytest.raises(RemoteError) as info:
                await ana.api.directory(topic=bad)
            assert info.value.code == "request.invalid", bad
        with pytest.raises(RemoteError) as info:
            await ana.api.directory(topic=["a b c d", "e f g h i"])
        assert info.value.code == "request.invalid"

    run_node(tmp_path, body)


@pytest.mark.one_backend("it rewrites a SQLite file into an earlier schema")
def test_a_schema_4_database_migrates_and_its_listings_are_found_by_words(tmp_path: Path) -> None:
    data = tmp_path / "n"

    async def publish(node: TestNode, http: aiohttp.ClientSession) -> None:
        ana = await Peer("ana", node, http, 1).join()
        await ana.offer("before", topics=("Panic-Attacks", "Straße", "grief"), languages=("es",))

    async def search(node: TestNode, http: aiohttp.ClientSession) -> None:
        ana = await Peer("ana", node, http, 1).join()
        await ana.offer("after", topics=("panic at night",), languages=("en",))

        async def summaries(**query: Any) -> list[str]:
            return [item["card"]["summary"] for item in (await ana.api.directory(**query))["listings"]]

        assert await summaries(topic="panic") == ["after", "before"]
        assert await summaries(topic="attacks PANIC") == ["before"]
        assert await summaries(topic="strasse", lang="es") == ["before"]
        assert await summaries(topic="panic", lang="en") == ["after"]
        assert await summaries(topic="panic grief") == []
        assert await summaries(topic=["panic", "grief"]) == ["before"]

    clock = Clock()
    asyncio.run(with_node(data, clock, publish))
    # Put the database back as schema 4 left it: whole folded topics as facets, no words.
    with sqlite3.connect(data / DATABASE_FILE) as db:
        db.execute("DROP TABLE topic_words")
        db.execute("DELETE FROM listing_facets WHERE facet = 'word'")
        for seq, raw in db.execute("SELECT seq, raw FROM listings").fetchall():
            listing = open_signed(bytes(raw), context=Context.ENVELOPE, now=int(clock())).body
            assert isinstance(listing, Listing)
            for topic in listing.topics:
                db.execute("INSERT INTO listing_facets VALUES (?, 'topic', ?)", (seq, topic.casefold()))
        # And without what came after schema 5 (schema 6: one device at a time), so the migration
        # runs from 4 as a real schema-4 database would.
        for table, column in (
            ("members", "device"),
            ("members", "device_at"),
            ("sessions", "device"),
            ("sessions", "moved_at"),
        ):
            db.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
        db.execute("DROP TABLE prekeys")  # schema 7: one-time pre-keys
        db.execute("PRAGMA user_version=4")
    asyncio.run(with_node(data, clock, search))
    with sqlite3.connect(data / DATABASE_FILE) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert db.execute("SELECT COUNT(*) FROM listing_facets WHERE facet = 'topic'").fetchone()[0] == 0
        first = "SELECT topic, word FROM topic_words WHERE listing = (SELECT MIN(seq) FROM listings) ORDER BY 1, 2"
        assert db.execute(first).fetchall() == [(0, "attacks"), (0, "panic"), (1, "strasse"), (2, "grief")]
