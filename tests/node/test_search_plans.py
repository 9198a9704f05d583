"""The directory search keeps its plan whatever SQLite's statistics say (spec §13.9; store/listings.py).

A node that had not yet analysed its listings table (statistics for the facets only, as a first
run leaves them) searched a kind and a format by scanning every listing of that kind and sorting:
14 ms a query at 10,000 listings, against 0.1 ms down the facet's index. Each statistics state
here is one a node can be in; each query shape must walk its first facet's index, newest first,
with no sort.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from peerfed.node.store import Store
from peerfed.node.store.listings import search_statement

pytestmark = pytest.mark.one_backend("it reads SQLite's query plans under SQLite's statistics")

NOW = 1_700_000_000

# sqlite_stat1 rows (table, index, stat) as ANALYZE writes them for 10,000 listings of the bench's mix.
FACET_STATS = [
    ("listing_facets", "facets_listing", "70993 8"),
    ("listing_facets", "facets_lookup", "70993 23665 1614 1"),
    ("topic_words", "topic_words", "31035 4 1 1"),
]
LISTING_STATS = [
    ("listings", "listings_kind", "10000 5000 1"),
    ("listings", "listings_expiry", "10000 3"),
    ("listings", "listings_author", "10000 157"),
    ("listings", "sqlite_autoindex_listings_1", "10000 1"),
]
STATES = {
    "no statistics": [],
    "the facets only (a first run's)": FACET_STATS,
    "every table": FACET_STATS + LISTING_STATS,
}

WITH_FACETS = [
    {"kind": "offer", "facets": [("format", "text")]},
    {"kind": "request", "facets": [("word", "grief"), ("lang", "en")]},
    {"kind": "offer", "timing": "soon", "facets": [("format", "voice")]},
    {"timing": "soon", "facets": [("lang", "en")]},
    {"kind": "offer", "facets": [("word", "panic"), ("word", "attacks")], "together": [["attacks", "panic"]]},
    {"kind": "request", "facets": [("lang", "es")], "before": 5_000},
]
WITHOUT_FACETS: list[dict[str, object]] = [{}, {"kind": "offer"}, {"timing": "soon"}, {"kind": "offer", "before": 99}]


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("plans") / "node.sqlite3"

    async def make() -> None:
        store = await Store.open(path)
        await store.close()

    asyncio.run(make())
    return path


def plan(path: Path, stats: list[tuple[str, str, str]], shape: dict[str, object]) -> list[str]:
    """The plan SQLite makes for the search statement of ``shape`` under ``stats``."""
    with sqlite3.connect(path) as db:
        db.execute("ANALYZE sqlite_schema")  # makes sqlite_stat1 if it is not there
        db.execute("DELETE FROM sqlite_stat1")
        db.executemany("INSERT INTO sqlite_stat1 VALUES (?, ?, ?)", stats)
    db = sqlite3.connect(path)  # statistics are read when a connection loads the schema
    try:
        sql, params = search_statement(
            now=NOW,
            kind=shape.get("kind"),  # type: ignore[arg-type]
            timing=shape.get("timing"),  # type: ignore[arg-type]
            facets=shape.get("facets", []),  # type: ignore[arg-type]
            before=shape.get("before"),  # type: ignore[arg-type]
            limit=50,
            together=shape.get("together", []),  # type: ignore[arg-type]
        )
        return [row[3] for row in db.execute("EXPLAIN QUERY PLAN " + sql, params)]
    finally:
        db.close()


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("shape", WITH_FACETS, ids=lambda s: "+".join(sorted(s)))
def test_a_query_with_a_facet_walks_that_facets_index_without_sorting(
    database: Path, state: str, shape: dict[str, object]
) -> None:
    steps = plan(database, STATES[state], shape)
    assert steps[0].startswith("SEARCH f0 USING COVERING INDEX facets_lookup (facet=? AND value=?"), steps
    assert "SEARCH l USING INTEGER PRIMARY KEY (rowid=?)" in steps, steps
    assert not any("TEMP B-TREE" in step for step in steps), steps


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("shape", WITHOUT_FACETS, ids=lambda s: "+".join(sorted(s)) or "none")
def test_a_query_without_a_facet_reads_listings_in_order_without_sorting(
    database: Path, state: str, shape: dict[str, object]
) -> None:
    steps = plan(database, STATES[state], shape)
    assert steps[0].startswith("SEARCH l USING INDEX listings_kind" if "kind" in shape else "SCAN l"), steps
    assert not any("TEMP B-TREE" in step for step in steps), steps
