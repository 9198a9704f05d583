"""Directory search with one read connection against two (issue 17, item 3: search on more than one).

    python bench/readers.py                  # 10,000 listings, 3 runs each way, about 4 minutes
    python bench/readers.py --quick          # 300 listings, 1 run: checks that it still works

One database of signed listings is filled through the node's own Store (not timed); then, in
turns so both see the same machine, a node with ``readers = 1`` and one with ``readers = 2`` are
started on it, and 1 and then 8 client processes ask the directory (``topic``+``lang`` and
``kind``+``format``, 50 results, every answer checked against its filters, as ``run.py``'s
search benchmark does). Each figure is the median over runs with the range in brackets; the
machine's 1-minute load is printed before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import BenchPeer, NodeProc, sign_in, spread
from run import load_listings, search_at

__all__ = ["main"]


def measure(data: Path, readers: int, queries: int, clients: tuple[int, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with NodeProc(data, env={"PEERFED_READERS": str(readers)}) as node:
        node.start()
        reader = BenchPeer(9)
        asyncio.run(sign_in(node.url, [reader]))
        for count in clients:
            out[str(count)] = search_at(node, reader.token, queries, count)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    size, queries, runs, clients = (300, 40, 1, (1, 2)) if args.quick else (10_000, 2_000, args.runs, (1, 8))
    work = Path(tempfile.mkdtemp(prefix="peerfed-readers-"))
    try:
        load_before = os.getloadavg()[0]
        load_listings(work / "db", size, int(time.time()))
        results: dict[int, list[dict[str, Any]]] = {1: [], 2: []}
        for _ in range(runs):
            for readers in (1, 2):
                results[readers].append(measure(work / "db", readers, queries, clients))
        load_after = os.getloadavg()[0]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    table: dict[str, Any] = {"listings": size, "load_1min": {"before": load_before, "after": load_after}}
    print(f"{size:,} listings, {runs} run(s) each; 1-minute load {load_before:.2f} before, {load_after:.2f} after")
    print("| readers | clients | topic+lang p50 / p99 ms | kind+format p50 / p99 ms | node CPU per query ms |")
    print("|---|---|---|---|---|")
    for readers, rows in results.items():
        for count in clients:
            runs_at = [r[str(count)] for r in rows]
            cells = {
                shape: (
                    spread([r[shape]["p50_ms"] for r in runs_at]),
                    spread([r[shape]["p99_ms"] for r in runs_at]),
                )
                for shape in ("topic+lang", "kind+format")
            }
            cpu = spread([r["node_cpu_per_query_ms"] for r in runs_at])
            table[f"{readers} readers, {count} clients"] = {"cpu_per_query_ms": cpu, **cells}

            def show(s: dict[str, float]) -> str:
                return f"{s['median']:.2f} [{s['min']:.2f}-{s['max']:.2f}]"

            print(
                f"| {readers} | {count} | {show(cells['topic+lang'][0])} / {show(cells['topic+lang'][1])} "
                f"| {show(cells['kind+format'][0])} / {show(cells['kind+format'][1])} | {show(cpu)} |"
            )
    if args.out:
        args.out.write_text(json.dumps(table, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
