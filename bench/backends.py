"""Ingest and search on SQLite and on PostgreSQL with 1, 2 and 4 workers, side by side (issue 17, item 5).

    python bench/backends.py                 # 20,000 listings, 3 runs of each, about 20 minutes
    python bench/backends.py --quick         # 300 listings, 1 run, 1 and 2 workers: checks it works
    python bench/backends.py --only postgresql:2 --only sqlite:1   # some set-ups, no relay

Each run starts a fresh node per set-up, in turns so every set-up sees the same machine: SQLite
(one process; the default), and PostgreSQL (a throwaway server of the system's binaries, fsync
on, as a production server runs) with --workers 1, 2 and 4. K clients publish N signed listings
over live sockets, each answered once stored; then 8 clients search the N listings. Every answer
is checked (all accepted, N rows stored, search results match their filters, as run.py does).
Without --quick, nostr-relay (PyPI, in a venv of its own, as run.py installs it) takes the same
count of events over the same sockets and window in the same turns, each event with 300 bytes of
text: its rate and acknowledgement times are beside ours (its CPU is not counted; its search is
another query shape, in run.py's comparison).
CPU is counted for the node's processes and, on PostgreSQL, for the server's: both are the
cost of a listing. Figures are medians of the runs with the range in brackets; the machine's
1-minute load is printed before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the throwaway server of tests/

from common import (
    BenchPeer,
    DriveJob,
    NodeProc,
    drive_all,
    frame,
    make_listing,
    process_cpu_seconds,
    sign_in,
    spread,
    summarise_drive,
)
from run import search_at

from tests.pgserver import PgServer

__all__ = ["main"]


def stored(setup: str, data: Path, address: str) -> int:
    """Listings really stored, read from the database itself."""
    if setup == "sqlite":
        with sqlite3.connect(f"file:{data / 'node.sqlite3'}?mode=ro", uri=True) as db:
            return int(db.execute("SELECT COUNT(*) FROM listings").fetchone()[0])
    import psycopg

    with psycopg.connect(address) as db:
        row = db.execute("SELECT COUNT(*) FROM listings").fetchone()
        return int(row[0]) if row else 0


def shared_counts(address: str) -> int:
    """Rows written in the shared rate windows: 0 while each process counted in memory."""
    if not address:
        return 0
    import psycopg

    with psycopg.connect(address) as db:
        row = db.execute(
            "SELECT coalesce(sum(n_tup_ins + n_tup_upd), 0) FROM pg_stat_user_tables WHERE relname = 'peerfed_windows'"
        ).fetchone()
        return int(row[0]) if row else 0


def machine_cpu() -> tuple[float, float]:
    """(busy, all) CPU seconds of the whole machine since boot, every core summed (/proc/stat)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    idle, iowait = fields[3], fields[4]  # user, nice, system, idle, iowait, irq, softirq, steal
    tick = os.sysconf("SC_CLK_TCK")
    return (sum(fields) - idle - iowait) / tick, sum(fields) / tick


class MachineSampler(threading.Thread):
    """The machine's CPU counters every 50 ms, stamped with time.monotonic() (the clock the
    driving processes stamp their first and last answers with)."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.samples: list[tuple[float, float, float]] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            self.samples.append((time.monotonic(), *machine_cpu()))
            self.stopping.wait(0.05)

    def cores_busy(self, start: float, end: float) -> float:
        """How many of the machine's cores were busy, on average, from ``start`` to ``end``."""
        inside = [s for s in self.samples if start <= s[0] <= end]
        if len(inside) < 2:
            return float("nan")
        (_, busy0, all0), (_, busy1, all1) = inside[0], inside[-1]
        return (busy1 - busy0) / (all1 - all0) * (os.cpu_count() or 1)


def one_run(work: Path, server: PgServer, setup: str, workers: int, n: int, k: int, queries: int) -> dict[str, Any]:
    address = server.fresh_database() if setup == "postgresql" else ""
    env = {"PEERFED_DATABASE": address, "PEERFED_WORKERS": str(workers), "PEERFED_SYNCHRONOUS": "FULL"}
    now = int(time.time())
    peers = [BenchPeer(3000 + i) for i in range(k)]
    rng = random.Random(11)
    listings = [[make_listing(peers[i], rng, now) for _ in range(n // k)] for i in range(k)]
    postmaster = int((server.data / "postmaster.pid").read_text().split()[0])
    data = work / f"{setup}-{workers}"
    with NodeProc(data, env=env) as node:
        node.start()
        time.sleep(1.0 if workers > 1 else 0.0)  # every worker up, not just the first to answer
        asyncio.run(sign_in(node.url, peers))
        node_cpu, db_cpu = node.cpu_seconds(), process_cpu_seconds(postmaster)
        sampler = MachineSampler()
        sampler.start()
        jobs = [
            DriveJob(node.url, p.token, [frame("publish", j, raw) for j, raw in enumerate(listings[i])], 64)
            for i, p in enumerate(peers)
        ]
        driven = drive_all(jobs)
        node_cpu, db_cpu = node.cpu_seconds() - node_cpu, process_cpu_seconds(postmaster) - db_cpu
        sampler.stopping.set()
        sampler.join()
        ingest = summarise_drive(driven)
        busy = sampler.cores_busy(min(r["first"] for r in driven), max(r["last"] for r in driven))
        if setup == "sqlite":
            db_cpu = 0.0  # in the node's own process, counted there
        logged = server.log.stat().st_size
        search = search_at(node, peers[0].token, queries, 8, postmaster if setup == "postgresql" else None)
        slow = slow_plans(server.log, logged)
        SLOW.extend(f"{setup} x{workers}: {plan}" for plan in slow)
        node.stop()
    total = (n // k) * k
    if ingest["outcomes"] != {"accepted": total} or stored(setup, data, address) != total:
        raise RuntimeError(f"{setup} x{workers}: {ingest['outcomes']}, {stored(setup, data, address)} stored")
    return {
        "listings_per_s": ingest["per_s"],
        "ack_p50_ms": ingest["ack_p50_ms"],
        "ack_p99_ms": ingest["ack_p99_ms"],
        "node_us_per_listing": round(node_cpu / total * 1e6),
        "db_us_per_listing": round(db_cpu / total * 1e6),
        "search_p50_ms": search["topic+lang"]["p50_ms"],
        "search_p99_ms": search["topic+lang"]["p99_ms"],
        "search_node_cpu_ms": search["node_cpu_per_query_ms"],
        "search_server_cpu_ms": search["server_cpu_per_query_ms"],
        # How many cores were busy while the listings came in (2.0: both, none left for another
        # worker), and the clients' CPU per listing in that window (signing was done before it).
        "cores_busy": round(busy, 2),
        "client_us_per_listing": round(ingest["client_cpu_s"] / total * 1e6),
        # Whether the workers counted the limits together (spec §13.9), and how often per listing.
        "window_writes_per_listing": round(shared_counts(address) / total, 2),
        # Statements of the search phase the server took over SLOW_MS to run (auto_explain).
        "slow_statements": len(slow),
    }


# The server logs the plan of any statement slower than this (auto_explain), so a slow run
# shows how it was planned: one PostgreSQL run in 28 once searched at a p50 of 502 ms.
SLOW_MS = 100
SLOW_PLAN_SETTINGS = ("session_preload_libraries=auto_explain", f"auto_explain.log_min_duration={SLOW_MS}ms")
SLOW: list[str] = []  # every slow statement's logged plan, in order


def slow_plans(log: Path, since: int) -> list[str]:
    """The plans auto_explain wrote to the server's log after byte ``since``, one text each."""
    with log.open("rb") as f:
        f.seek(since)
        text = f.read().decode(errors="replace")
    plans, current = [], None
    for line in text.splitlines():
        if "duration:" in line and "plan:" in line:
            current = [line]
            plans.append(current)
        elif current is not None and line.startswith(("\t", " ")):
            current.append(line)
        else:
            current = None
    return ["\n".join(plan) for plan in plans]


def relay_run(work: Path, python: Path, n: int, k: int) -> dict[str, Any]:
    """nostr-relay's ingest of n events over k sockets, 64 in flight each, every one checked stored."""
    import nostr_peer

    folder = work / "nostr-relay"
    folder.mkdir(parents=True, exist_ok=True)
    theirs = nostr_peer.run_ingest(python, folder, n=n, k=k, window=64, payload=300)
    return {
        "listings_per_s": theirs["accepted_per_s"],
        "ack_p50_ms": theirs["ack_p50_ms"],
        "ack_p99_ms": theirs["ack_p99_ms"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path)
    parser.add_argument(
        "--only", action="append", metavar="SETUP", help="e.g. postgresql:2 (repeatable): these set-ups, no relay"
    )
    args = parser.parse_args()
    n, k, queries, runs = (300, 4, 80, 1) if args.quick else (20_000, 8, 2_000, args.runs)
    setups = [("sqlite", 1), ("postgresql", 1), ("postgresql", 2)]
    if not args.quick:
        setups.append(("postgresql", 4))
    if args.only:
        setups = [(name, int(workers)) for name, _, workers in (o.partition(":") for o in args.only)]
    work = Path(tempfile.mkdtemp(prefix="peerfed-backends-"))
    server = PgServer(durable=True, settings=SLOW_PLAN_SETTINGS).start()
    try:
        relay = None
        if not args.quick and not args.only:
            import nostr_peer

            relay = nostr_peer.install(work)
        load_before = os.getloadavg()[0]
        results: dict[str, list[dict[str, Any]]] = {f"{s} x{w}": [] for s, w in setups}
        if relay is not None:
            results["nostr-relay"] = []
        for r in range(runs):
            for setup, workers in setups:
                results[f"{setup} x{workers}"].append(one_run(work / f"r{r}", server, setup, workers, n, k, queries))
            if relay is not None:
                results["nostr-relay"].append(relay_run(work / f"r{r}", relay, n, k))
        load_after = os.getloadavg()[0]
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    table: dict[str, Any] = {"listings": n, "clients": k, "runs": runs, "load_1min": [load_before, load_after]}
    load = f"1-minute load {load_before:.2f} before, {load_after:.2f} after"
    print(f"{n:,} listings over {k} sockets, {runs} run(s); {load}")
    columns = list(next(iter(results.values()))[0])
    print("| set-up | " + " | ".join(columns) + " |")
    print("|---" * (len(columns) + 1) + "|")
    for name, rows in results.items():
        cells = {c: spread([float(r[c]) for r in rows]) for c in columns if c in rows[0]}
        table[name] = cells
        shown = [
            "-"
            if c not in cells
            else f"{cells[c]['median']:g} [{cells[c]['min']:g}-{cells[c]['max']:g}]"
            if runs > 1
            else f"{cells[c]['median']:g}"
            for c in columns
        ]
        print(f"| {name} | " + " | ".join(shown) + " |")
    if args.out:
        args.out.write_text(json.dumps(table, indent=1))
    if SLOW:
        where = args.out.with_suffix(".slow-plans.txt") if args.out else None
        if where is not None:
            where.write_text("\n\n".join(SLOW) + "\n")
        print(f"{len(SLOW)} statement(s) over {SLOW_MS} ms; their plans: {where or 'below'}")
        if where is None:
            print("\n\n".join(SLOW))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
