"""The sender's reads against a down node's backlog (spec §13.7, Delivery; issue 17).

A federated node that stops answering has its breaker opened, and what is queued for it waits.
Every round of the sender still asks the outbox for the items that are due (``Store.due``) and
when the next one will be (``Store.next_due``). This measures both, on SQLite, as the backlog
for one down node grows, with five items due for a node that answers:

    python bench/outbox_backlog.py            # backlogs of 1,000, 10,000 and 60,000 items
    python bench/outbox_backlog.py --quick    # 100 and 1,000: checks that it still works

Each figure is the median of 5 calls, in ms. Anyone can run a node and follow ours (the open
policies), so a backlog this size is what a stranger that follows and then goes quiet costs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from peerfed.node.store import Store
from peerfed.node.store.outbox import enqueue
from peerfed.node.store.rows import OutboxItem

__all__ = ["main"]

NOW = 1_700_000_000
DOWN, UP = "https://down.example", "https://up.example"


def _items(destination: str, count: int) -> list[OutboxItem]:
    return [OutboxItem(destination, "listing", os.urandom(32), os.urandom(400)) for _ in range(count)]


async def _median_ms(call: Callable[[], Awaitable[Any]]) -> float:
    times = []
    for _ in range(5):
        began = time.perf_counter()
        await call()
        times.append((time.perf_counter() - began) * 1000)
    return round(statistics.median(times), 2)


async def measure(backlogs: list[int]) -> list[dict[str, Any]]:
    out = []
    with tempfile.TemporaryDirectory(prefix="peerfed-backlog-") as folder:
        store = await Store.open(Path(folder) / "node.sqlite3", synchronous="OFF")
        try:
            for url in (DOWN, UP):
                await store.set_node_status(url, "active", NOW)
            held = 0
            for backlog in backlogs:
                more = _items(DOWN, backlog - held)
                await store._writer.run(lambda db, rows=more: enqueue(db, rows, NOW))  # type: ignore[misc]
                held = backlog
                await store.node_result(DOWN, False, NOW, "down", NOW + 3600)  # its breaker open an hour
                await store._writer.run(lambda db: enqueue(db, _items(UP, 5), NOW))
                due = await store.due(NOW + 1, 100)
                out.append(
                    {
                        "backlog": backlog,
                        "due_returned": len(due),
                        "due_ms": await _median_ms(lambda: store.due(NOW + 1, 100)),
                        "next_due_ms": await _median_ms(store.next_due),
                    }
                )
        finally:
            await store.close()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    backlogs = [100, 1_000] if args.quick else [1_000, 10_000, 60_000]
    rows = asyncio.run(measure(backlogs))
    print("| backlog for the down node | items due returned | due() ms | next_due() ms |")
    print("|---|---|---|---|")
    for row in rows:
        print(f"| {row['backlog']:,} | {row['due_returned']} | {row['due_ms']} | {row['next_due_ms']} |")
    if any(row["due_returned"] < 5 for row in rows):
        print("error: the answering node's items were not all due", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
