"""What every benchmark shares: node processes, signed-in peers, pre-signed inputs, client
processes that drive a node over its live WebSocket, and the statistics.

Nothing here is timed by itself. Inputs are signed and sealed before a clock starts; drivers
are separate processes, so the node under test has its cores to itself but for them.
"""

from __future__ import annotations

import asyncio
import base64
import json
import multiprocessing
import os
import platform
import random
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import nacl.signing

from peerfed.client.transport import NodeAPI
from peerfed.protocol import (
    EncryptionSecret,
    Format,
    Identity,
    KeyBundle,
    Kind,
    Listing,
    Message,
    Timing,
    sign,
)
from peerfed.protocol.sealing import seal

DAY = 86_400
PROFILE_DIR: Path | None = None
DATABASE_FILE = "node.sqlite3"

# Limits a benchmark lifts: they guard a community from abuse, and the benchmarks measure
# the work behind them. Everything else keeps its default (synchronous=FULL included).
BENCH_ENV = {
    "PEERFED_JOIN_PER_HOUR": "10000000",
    "PEERFED_LISTINGS_PER_HOUR": "100000000",
    "PEERFED_SENDS_PER_MINUTE": "100000000",
    "PEERFED_MAILBOX_CAP": "100000000",
    "PEERFED_MAX_LIVE_PER_PEER": "1000",
    "PEERFED_MAX_LIVE_CONNECTIONS": "20000",
    "PEERFED_MAX_LIVE_PER_ADDRESS": "20000",  # every bench client is 127.0.0.1
    "PEERFED_KEYS_PER_HOUR": "10000000",
    "PEERFED_NODE_LISTINGS_PER_HOUR": "100000000",
    "PEERFED_NODE_BUNDLES_PER_HOUR": "100000000",
    "PEERFED_NODE_BYTES_PER_MINUTE": "4000000000",
    "PEERFED_MAILBOX_BYTES_PER_NODE": "4000000000",
    "PEERFED_MAILBOX_ITEMS_PER_SENDER": "0",  # 0: no count (spec §13.5, Mailbox quotas)
    "PEERFED_MAILBOX_ITEMS_PER_NODE": "0",
    # First contact costs one proof per (source, mailbox) pair, not per message: off, as the
    # benchmarks' raw frames do not solve it; its cost is measured alone (bench/README.md).
    "PEERFED_FIRST_CONTACT_WORK_BITS": "0",
    "PEERFED_FOLLOWS_PER_HOST": "1000",
    "PEERFED_RETRY_BASE": "1",
    "PEERFED_LOG_LEVEL": "WARNING",
}

TOPICS = [
    "grief", "panic attacks", "hearing voices", "loneliness", "burnout", "caring for a parent",
    "divorce", "insomnia", "chronic pain", "new parent", "addiction recovery", "job loss",
    "migration", "bullying", "eating", "self-harm", "anxiety", "low mood", "anger", "trauma",
]  # fmt: skip
LANGS = ["en", "es", "fr", "de", "pt", "it", "nl", "pl", "ar", "tr"]
FORMATS = ["text", "voice", "video", "in-person"]


# --- numbers ------------------------------------------------------------------------------


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-p * len(ordered) // 100))))
    return ordered[rank - 1]


def spread(values: Sequence[float]) -> dict[str, float]:
    """Median and range of one figure over repeated runs."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "runs": len(values)}


def machine() -> dict[str, Any]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        mem = next(x for x in Path("/proc/meminfo").read_text().splitlines() if x.startswith("MemTotal"))
        mem_gib = round(int(mem.split()[1]) / 2**20, 1)
    except (OSError, StopIteration):
        mem_gib = 0.0
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "memory_gib": mem_gib,
        "os": platform.platform(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def verify_rate(seconds: float = 1.0) -> float:
    """Ed25519 verifications per second on one core, through PyNaCl: the floor under ingest."""
    key = nacl.signing.SigningKey(bytes(range(32)))
    signed = key.sign(bytes(400))
    verify = key.verify_key.verify
    count = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(200):
            verify(signed)
        count += 200
    return count / (time.perf_counter() - start)


def verify_rate_pinned(seconds: float = 1.0, runs: int = 3) -> float:
    """The median of ``runs`` verify_rate() measurements, each in a fresh process pinned to one
    core and run while nothing else of the benchmark runs: the denominator of "share of one
    core's verify rate" (measured unpinned right after ingest it read ~12k/s against 15-17k/s)."""
    cpu = min(os.sched_getaffinity(0))
    root = str(Path(__file__).resolve().parents[1])
    code = (
        f"import os, sys; os.sched_setaffinity(0, {{{cpu}}}); sys.path.insert(0, {root!r});"
        f" from bench.common import verify_rate; print(verify_rate({seconds!r}))"
    )
    rates = [float(subprocess.check_output([sys.executable, "-c", code], text=True)) for _ in range(runs)]
    return statistics.median(rates)


# --- node processes -----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def process_cpu_seconds(pid: int, *, children: bool = True) -> float:
    """User + system CPU of process ``pid`` (every thread), plus its live children's if asked
    (a --workers parent's node processes; a PostgreSQL postmaster's backends)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(entry.name) == pid or (children and int(fields[1]) == pid):
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


class NodeProc:
    """`peerfed serve` in its own process on loopback, with the benchmark limits."""

    def __init__(self, data: Path, *, env: dict[str, str] | None = None, federate: Sequence[str] = ()) -> None:
        self.data = data
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, **BENCH_ENV, **(env or {})}
        if federate:
            self.env["PEERFED_FEDERATE"] = ",".join(federate)
        self.proc: subprocess.Popen[bytes] | None = None
        self.profiler: subprocess.Popen[bytes] | None = None
        self.startup = 0.0

    def start(self, timeout: float = 120.0) -> float:
        """Start and wait until the node answers; returns the start-up time in seconds."""
        self.data.mkdir(parents=True, exist_ok=True)
        log = (self.data / "bench-node.log").open("ab")
        args = [sys.executable, "-m", "peerfed", "serve", "--data", str(self.data), "--port", str(self.port)]
        if os.environ.get("BENCH_NODE_WRAPPER"):  # e.g. a script that runs the node under cProfile
            args[1:3] = [os.environ["BENCH_NODE_WRAPPER"]]

        began = time.perf_counter()
        self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=self.env)
        log.close()
        deadline = began + timeout
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"node exited with {self.proc.returncode}; see {self.data / 'bench-node.log'}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                    sock.sendall(b"GET /.well-known/peerfed HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n")
                    if sock.recv(12).startswith(b"HTTP/1.1 200"):
                        self.startup = time.perf_counter() - began
                        self._profile()
                        return self.startup
            except OSError:
                pass
            time.sleep(0.005)
        self.stop()
        raise RuntimeError(f"node did not start within {timeout} s")

    def _profile(self) -> None:
        """With --profile, py-spy samples the node until it stops (a raw, flamegraph-ready file)."""
        if PROFILE_DIR is None:
            return
        assert self.proc is not None
        PROFILE_DIR.mkdir(parents=True, exist_ok=True)
        out = PROFILE_DIR / f"node-{self.port}-{int(time.time())}.txt"
        self.profiler = subprocess.Popen(
            ["py-spy", "record", "--pid", str(self.proc.pid), "--format", "raw", "--rate", "200",
             "--nonblocking", "--gil", "-o", str(out)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip

    def cpu_seconds(self) -> float:
        """User + system CPU time the node has used so far: all its threads, and with --workers
        its live children's too (process_cpu_seconds)."""
        assert self.proc is not None
        return process_cpu_seconds(self.proc.pid)

    def rss_kib(self) -> int:
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    def stop(self) -> None:
        if self.profiler is not None:
            self.profiler.send_signal(signal.SIGINT)
            self.profiler.wait(timeout=60)
            self.profiler = None
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)

    def db(self) -> sqlite3.Connection:
        """The node's own database, read-only: what was really stored."""
        return sqlite3.connect(f"file:{self.data / DATABASE_FILE}?mode=ro", uri=True)

    def __enter__(self) -> NodeProc:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --- peers and inputs ---------------------------------------------------------------------


@dataclass
class BenchPeer:
    seed: int
    identity: Identity = field(init=False)
    secret: EncryptionSecret = field(init=False)
    token: str = ""
    home: str = ""

    def __post_init__(self) -> None:
        seed = self.seed.to_bytes(8, "big")
        self.identity = Identity((seed * 4)[:32])
        self.secret = EncryptionSecret((seed[::-1] * 4)[:32])


async def sign_in(url: str, peers: Sequence[BenchPeer], concurrency: int = 16) -> None:
    """Sign each peer in and publish its key bundle (HTTP, as any client would)."""
    gate = asyncio.Semaphore(concurrency)
    async with aiohttp.ClientSession() as http:

        async def one(peer: BenchPeer) -> None:
            async with gate:
                api = NodeAPI(url, http)
                now = int(time.time())
                await api.sign_in(peer.identity, now=now)
                bundle = sign(
                    peer.identity,
                    KeyBundle(peer.secret.public, home=url, pseudonym=f"p{peer.seed}"),
                    created_at=now,
                    expires_at=now + 30 * DAY,
                )
                await api.put_keys(bundle.raw)
                peer.token = str(api.token)
                peer.home = url

        await asyncio.gather(*(one(p) for p in peers))


def make_listing(peer: BenchPeer, rng: random.Random, now: int, summary_bytes: int = 300) -> bytes:
    """A signed listing with facets drawn from small vocabularies, so searches find many."""
    body = Listing(
        kind=Kind(rng.choice(["offer", "request"])),
        topics=tuple(rng.sample(TOPICS, 2)),
        languages=tuple(rng.sample(LANGS, 2)),
        formats=tuple(Format(name) for name in rng.sample(FORMATS, 2)),
        timing=Timing(rng.choice(["now", "soon", "scheduled"])),
        summary=(f"#{rng.getrandbits(64):x} " + "I have lived through this and can listen. " * 20)[:summary_bytes],
    )
    return sign(peer.identity, body, created_at=now, expires_at=now + 7 * DAY).raw


def make_sealed(sender: BenchPeer, recipient: BenchPeer, n: int, now: int, text_bytes: int = 200) -> bytes:
    inner = sign(
        sender.identity,
        Message(recipient.identity.peer_id, bytes(16), n + 1, ("x" * text_bytes)),
        created_at=now,
        expires_at=now + 3 * DAY,
    )
    return seal(inner, recipient.secret.public).raw


def frame(op: str, ref: int, raw: bytes, destination: str | None = None) -> str:
    """One live-socket request, as text ready to send."""
    key = "object" if op == "publish" else "sealed"
    data: dict[str, Any] = {"type": op, "ref": ref, key: base64.b64encode(raw).decode()}
    if destination:
        data["destination"] = destination
    return json.dumps(data)


# --- driver processes ---------------------------------------------------------------------


@dataclass
class DriveJob:
    """One client process: a socket to ``url`` signed in with ``token``, sending ``frames``.

    Frame i must carry ref i (see ``frame``): answers are matched to sends by it.
    """

    url: str
    token: str
    frames: list[str]
    window: int = 16
    rate: float = 0.0  # frames per second, 0 = as fast as the window allows
    start_at: float = 0.0  # time.monotonic() to start at (the same clock in every process)


def _drive(job: DriveJob) -> dict[str, Any]:
    return asyncio.run(_drive_async(job))


async def _drive_async(job: DriveJob) -> dict[str, Any]:
    sent_at: dict[int, float] = {}
    latencies: list[float] = []
    outcomes: Counter[str] = Counter()
    window = asyncio.Semaphore(job.window)
    done = asyncio.Event()
    first = last = 0.0
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(job.url + "/api/v1/live", max_msg_size=0) as ws,
    ):
        await ws.send_json({"type": "auth", "token": job.token, "after": 2**62 - 1})
        ready = await ws.receive_json(timeout=30)
        if ready.get("type") != "ready":
            raise RuntimeError(f"live sign-in refused: {ready}")

        async def read() -> None:
            nonlocal last
            async for message in ws:
                data = json.loads(message.data)
                ref = data.get("ref")
                if ref is None:
                    continue
                now = time.monotonic()
                latencies.append((now - sent_at[ref]) * 1000)
                outcomes[data.get("status") or data.get("code") or data["type"]] += 1
                last = now
                window.release()
                if sum(outcomes.values()) == len(job.frames):
                    done.set()
                    return

        reader = asyncio.create_task(read())
        while time.monotonic() < job.start_at:
            await asyncio.sleep(min(0.01, job.start_at - time.monotonic()))
        first = time.monotonic()
        cpu_at_first = time.process_time()  # the client's start-up (imports, sign-in) is not counted
        for ref, text in enumerate(job.frames):
            if job.rate:
                due = first + ref / job.rate
                pause = due - time.monotonic()
                if pause > 0:
                    await asyncio.sleep(pause)
            await window.acquire()
            sent_at[ref] = time.monotonic()
            await ws.send_str(text)
        finished = asyncio.ensure_future(done.wait())
        await asyncio.wait({reader, finished}, timeout=300, return_when=asyncio.FIRST_COMPLETED)
        if not done.is_set():
            finished.cancel()
            reader.cancel()
            if reader.done() and not reader.cancelled() and reader.exception():
                raise RuntimeError("the answer reader failed") from reader.exception()
            raise RuntimeError(f"only {sum(outcomes.values())} of {len(job.frames)} answered in time")
        reader.cancel()
        cpu = time.process_time() - cpu_at_first  # the timed window only
    return {
        "cpu_s": cpu,
        "latencies_ms": latencies,
        "outcomes": dict(outcomes),
        "first": first,
        "last": last,
        "sent_at": sent_at,
    }


def drive_all(jobs: Sequence[DriveJob], lead: float = 1.0) -> list[dict[str, Any]]:
    """Run each job in its own process, all starting together ``lead`` seconds from now."""
    start_at = time.monotonic() + lead + 0.3 * len(jobs) ** 0.5
    for job in jobs:
        job.start_at = start_at
    with multiprocessing.get_context("spawn").Pool(len(jobs)) as pool:
        return pool.map(_drive, jobs)


def summarise_drive(results: Sequence[dict[str, Any]]) -> dict[str, Any]:
    latencies = [x for r in results for x in r["latencies_ms"]]
    outcomes: Counter[str] = Counter()
    for r in results:
        outcomes.update(r["outcomes"])
    seconds = max(r["last"] for r in results) - min(r["first"] for r in results)
    total = sum(outcomes.values())
    return {
        "items": total,
        "client_cpu_s": round(sum(r["cpu_s"] for r in results), 2),
        "outcomes": dict(outcomes),
        "seconds": round(seconds, 3),
        "per_s": round(total / seconds, 1) if seconds > 0 else float("nan"),
        "ack_p50_ms": round(percentile(latencies, 50), 2),
        "ack_p99_ms": round(percentile(latencies, 99), 2),
    }
