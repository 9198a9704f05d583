"""Crash safety: a node process SIGKILLed again and again under steady traffic keeps every acknowledgement.

Node A (a real `python -m peerfed serve` process) federates with node B (another one). Four peers, as
asyncio tasks in this process, publish listings on A and send sealed messages through A, to peers whose
mailbox is on A and to a peer whose mailbox is on B. Meanwhile A is killed with SIGKILL at random moments
(seeded) and restarted with the same data and port; the test holds that port between lives
(tests/processes.py), so a request made while A is down waits for A's next life. A client retries an
operation with the same signed or sealed bytes until the node answers, and counts it acknowledged only
when the node said so. In the end every acknowledged message is in its recipient's mailbox exactly once,
every acknowledged listing is on A and on B, and both databases pass `PRAGMA integrity_check`.
On PostgreSQL (issue 17, item 6), A is two workers: a kill SIGKILLs one of them, and every seventh
restarts PostgreSQL itself; both nodes' databases are on that server.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from peerfed.client.transport import NodeAPI, NodeUnreachable
from peerfed.protocol import Format, Kind, Listing, Message, RemoteError, Timing
from peerfed.protocol.sealing import parse_sealed
from peerfed.protocol.sealing2 import Session
from tests.backends import database_for, postgres_server, query
from tests.node.harness import DAY, Peer
from tests.processes import NodeProcess, NodeProcesses, children_of

SEED = int(os.environ.get("PEERFED_CRASH_SEED", "20240611"))
KILLS = 22  # SIGKILLs of node A (at least 20)
KILL_DELAY = (0.1, 0.6)  # seconds A runs between answering and being killed
OPS_PER_CLIENT = 400  # a cap on operations per client
MAILBOX_BUDGET = 300  # messages per recipient: below the node's mailbox_cap (500), so no mailbox fills up
TRIES = 300  # attempts per operation, 50 ms apart: a bound, far above one restart
SETTLE_POLLS = 60  # 0.5 s apart: the bound on waiting for A to deliver after the last restart
RETRYABLE = {"node.internal", "node.unavailable", "rate.limited"}


def tail(node: NodeProcess, life: int) -> str:
    """The end of what one life of a node logged, for a failure message."""
    return node.output(life)[-4000:]


class Home:
    """What tests.node.harness.Peer needs of its node: a URL and a clock (the wall clock: the process reads it)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.clock = time.time


def federating(data: Path, other: str) -> bool:
    out = subprocess.run(
        [sys.executable, "-m", "peerfed", "admin", "--data", str(data), "--json", "federation", "list"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return out.returncode == 0 and any(n["url"] == other and n["status"] == "active" for n in json.loads(out.stdout))


@dataclass
class Item:
    """One listing or sealed message a client tried to get accepted."""

    kind: str  # "listing" or "message"
    sender: str
    recipient: str | None  # the mailbox owner, for a message
    raw: bytes
    sealed_id: str | None
    first_life: int  # the life of A during which the first attempt was made
    attempts: int = 0
    acked_life: int | None = None  # the life of A that acknowledged it
    answer: Any = None


@dataclass
class Ledger:
    items: dict[str, Item] = field(default_factory=dict)  # by listing id or inner envelope id (hex)
    refused: list[str] = field(default_factory=list)  # a valid operation refused for good: a finding
    wrong: list[str] = field(default_factory=list)  # an answer that does not fit the request: a finding
    errors: Counter[str] = field(default_factory=Counter)

    def acked(self, kind: str, recipient: str | None = None) -> dict[str, Item]:
        return {
            key: item
            for key, item in self.items.items()
            if item.kind == kind and item.acked_life is not None and (recipient is None or item.recipient == recipient)
        }


async def until_answered(call: Callable[[], Awaitable[Any]], ledger: Ledger, what: str) -> tuple[Any, int]:
    """Call until the node answers (bounded): the answer (None if it never did) and how many attempts it took."""
    for attempt in range(1, TRIES + 1):
        try:
            return await call(), attempt
        except (NodeUnreachable, aiohttp.ClientError, TimeoutError) as exc:
            ledger.errors[type(exc).__name__] += 1
        except RemoteError as exc:
            if exc.code not in RETRYABLE:
                ledger.refused.append(f"{what}: {exc.code}: {exc} (attempt {attempt})")
                return None, attempt
            ledger.errors[exc.code] += 1
        await asyncio.sleep(0.05)
    return None, TRIES


async def all_mailbox_ids(peer: Peer, sent: dict[bytes, str]) -> list[str]:
    """The ledger key (inner envelope id) of every item in the peer's mailbox, in order, over every
    page, found by its exact sealed bytes in ``sent``: a scheme-2 item opens only with its session,
    which the test does not keep for the recipient; bytes the node changed or nobody sent are
    named by their digest, which no ledger key is."""
    ids: list[str] = []
    after = 0
    for _ in range(1000):
        page = await peer.api.mailbox(after=after, limit=500)
        if not page["items"]:
            return ids
        for item in page["items"]:
            raw = base64.b64decode(item["sealed"])
            ids.append(sent.get(raw) or "unknown " + hashlib.sha256(raw).hexdigest())
        after = page["next"]
    raise AssertionError("the mailbox does not end")


async def all_directory(api: NodeAPI) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    before = None
    for _ in range(1000):
        page = await api.directory(limit=100, before=before)
        found += page["listings"]
        if page["next"] is None:
            return found
        before = page["next"]
    raise AssertionError("the directory does not end")


@pytest.mark.slow
def test_a_node_killed_again_and_again_keeps_everything_it_acknowledged(
    tmp_path: Path, node_processes: NodeProcesses
) -> None:
    """On PostgreSQL, node A is two workers (--workers 2): each kill SIGKILLs one of them at
    random (its parent starts it again), and every seventh restarts PostgreSQL itself instead
    (SIGKILL of the server, then a start: B's database goes down and up with it)."""
    retry = {"PEERFED_RETRY_BASE": "1"}  # a failed push is retried in seconds, not minutes
    # B takes every listing A acknowledges within the run (per-origin limits are not under test).
    roomy = {**retry, "PEERFED_NODE_LISTINGS_PER_HOUR": "100000"}
    on_postgres = bool(database_for(tmp_path / "node-a"))

    async def scenario() -> None:
        b = node_processes(tmp_path / "node-b", name="B", env=roomy)
        await b.start()
        workers = ["--workers", "2"] if on_postgres else []
        a = node_processes(tmp_path / "node-a", "--federate", b.url, *workers, name="A", env=retry)
        await a.start()
        for _ in range(200):  # bounded wait for A's follow to be accepted
            if federating(a.data, b.url):
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the nodes did not federate:\n" + tail(a, 1) + tail(b, 1))

        ledger = Ledger()
        async with aiohttp.ClientSession() as http:
            on_a = [
                await Peer(name, Home(a.url), http, seed).join()  # type: ignore[arg-type]
                for name, seed in (("ana", 11), ("ben", 12), ("cy", 13), ("eve", 14))
            ]
            dee = await Peer("dee", Home(b.url), http, 15).join()  # type: ignore[arg-type]
            peers = {p.name: p for p in [*on_a, dee]}
            chaos_over = asyncio.Event()

            async def publish(peer: Peer, rng: random.Random, n: int) -> None:
                env = peer.signed(
                    Listing(
                        kind=rng.choice([Kind.OFFER, Kind.REQUEST]),
                        topics=(rng.choice(["panic attacks", "grief", "sleep", "voices"]),),
                        languages=("en",),
                        formats=(Format.TEXT,),
                        timing=Timing.SOON,
                        summary=f"{peer.name} listing {n}: steady traffic while the node crashes.",
                    ),
                    life=20 * DAY,  # nothing expires during the test
                )
                key = env.id.hex()
                item = ledger.items[key] = Item("listing", peer.name, None, env.raw, None, a.lives)

                async def call() -> Any:
                    item.attempts += 1
                    return await peer.api.publish(env.raw)

                answer, _ = await until_answered(call, ledger, f"listing {key[:12]} by {peer.name}")
                if answer is None:
                    return
                item.answer = answer
                if isinstance(answer, dict) and answer.get("status") == "accepted" and answer.get("id") == key:
                    item.acked_life = a.lives
                else:
                    ledger.wrong.append(f"listing {key[:12]}: answer {answer!r}")

            async def send(peer: Peer, to: Peer, n: int) -> None:
                body = Message(to.id, bytes(16), n, f"{peer.name} to {to.name}, #{n}")
                # Half the messages sealed with scheme 2 (spec §14): the node must carry both alike.
                session = sessions.setdefault(peer.name, {})
                inner, sealed = peer.seal2_to(to, body, session) if n % 2 else peer.seal_to(to, body)
                key = inner.id.hex()
                item = ledger.items[key] = Item("message", peer.name, to.name, sealed.raw, sealed.id.hex(), a.lives)
                far = to is dee
                expected = "queued" if far else "delivered"

                async def call() -> Any:
                    item.attempts += 1
                    return await peer.api.send(sealed.raw, b.url if far else None)

                answer, attempts = await until_answered(call, ledger, f"message {key[:12]} {peer.name}->{to.name}")
                if answer is None:
                    return
                item.answer = answer
                # "duplicate" acknowledges too, but only for bytes sent before (an earlier answer was lost).
                allowed = {expected, "duplicate"} if attempts > 1 else {expected}
                if isinstance(answer, dict) and answer.get("status") in allowed and answer.get("id") == item.sealed_id:
                    item.acked_life = a.lives
                else:
                    ledger.wrong.append(f"message {key[:12]} (attempt {attempts}): answer {answer!r}")

            async def client(peer: Peer, rng: random.Random) -> None:
                others = [p for p in on_a if p is not peer]
                for n in range(1, OPS_PER_CLIENT + 1):
                    if chaos_over.is_set():
                        return
                    roll = rng.random()
                    to = None if roll < 0.3 else rng.choice(others) if roll < 0.65 else dee
                    if to is not None and budget[to.name] < MAILBOX_BUDGET:
                        budget[to.name] += 1
                        await send(peer, to, n)
                    else:
                        await publish(peer, rng, n)
                    await asyncio.sleep(rng.uniform(0.02, 0.06))
                capped.append(peer.name)

            sessions: dict[str, dict[bytes, Session]] = {}  # each sender's scheme-2 sessions, by recipient
            kills: list[tuple[int, float]] = []
            capped: list[str] = []  # clients that reached OPS_PER_CLIENT before the kills ended
            budget: Counter[str] = Counter()  # messages sent to each mailbox

            async def killer(rng: random.Random) -> None:
                try:
                    for k in range(1, KILLS + 1):
                        await asyncio.sleep(rng.uniform(*KILL_DELAY))
                        if not on_postgres:
                            a.kill()
                            kills.append((k, time.monotonic()))
                            await a.start()  # same data, same port
                            continue
                        if k % 7 == 0:
                            postgres_server().kill()
                            kills.append((k, time.monotonic()))
                            postgres_server().start()
                        else:
                            assert a.proc is not None
                            for _ in range(TRIES):  # bounded: until the parent has both again
                                if len(children_of(a.proc.pid)) == 2:
                                    break
                                await asyncio.sleep(0.05)
                            os.kill(rng.choice(sorted(children_of(a.proc.pid))), signal.SIGKILL)
                            kills.append((k, time.monotonic()))
                        a.new_life()  # the parent lives on; its log and ledger count lives by kills
                        await a.answering()
                finally:
                    chaos_over.set()

            started = time.monotonic()
            await asyncio.gather(
                killer(random.Random(SEED)),
                *(client(p, random.Random(SEED * 10 + i)) for i, p in enumerate(on_a)),
            )
            chaos = time.monotonic() - started
            assert len(kills) == KILLS

            # A runs on; wait (bounded) until what it acknowledged has reached every mailbox and B.
            acked_listings = ledger.acked("listing")
            missing: dict[str, set[str]] = {}
            for _ in range(SETTLE_POLLS):
                sent = {item.raw: key for key, item in ledger.items.items() if item.kind == "message"}
                boxes = {p.name: await all_mailbox_ids(p, sent) for p in peers.values()}
                listed = {"A": await all_directory(on_a[0].api), "B": await all_directory(dee.api)}
                on_a_dir, on_b_dir = ({x["id"]: x for x in rows} for rows in listed.values())
                missing = {name: set(ledger.acked("message", name)) - set(boxes[name]) for name in peers}
                missing["directory A"] = set(acked_listings) - set(on_a_dir)
                missing["directory B"] = set(acked_listings) - set(on_b_dir)
                if not any(missing.values()):
                    break
                await asyncio.sleep(0.5)

        def where(key: str) -> str:
            item = ledger.items.get(key)
            if item is None:
                return f"{key}: nobody sent this"
            life = item.acked_life or item.first_life
            ended = f"kill {life} ended that life" if life <= KILLS else "that was A's last life"
            return (
                f"{item.kind} {key[:16]} from {item.sender} to {item.recipient}: first tried in A's life"
                f" {item.first_life}, acknowledged in life {item.acked_life} after {item.attempts} attempts"
                f" ({item.answer!r}); {ended}.\n--- A, life {life} ---\n{tail(a, life)}"
                f"\n--- A, life {life + 1} ---\n{tail(a, life + 1)}"
            )

        a_stopped, b_stopped = a.stop(), b.stop()
        outbox = {}
        for node in (a, b):
            outbox[node.name] = query(
                node.data, "SELECT state, last_error, COUNT(*) FROM outbox GROUP BY state, last_error"
            )
        acked_messages = ledger.acked("message")
        lives = {i.acked_life for i in ledger.items.values() if i.acked_life is not None}
        answered = [i for i in ledger.items.values() if isinstance(i.answer, dict)]
        summary = (
            f"seed {SEED}: {len(kills)} kills in {chaos:.1f} s; acknowledged {len(acked_listings)} listings and"
            f" {len(acked_messages)} messages ({len(ledger.acked('message', 'dee'))} to B) of {len(ledger.items)}"
            f" tried; retried failures {dict(ledger.errors)}; outboxes {outbox};"
            f" lives with acks {len(lives)}; retried items {sum(i.attempts > 1 for i in ledger.items.values())};"
            f" answered duplicate {sum(i.answer.get('status') == 'duplicate' for i in answered)};"
            f" clients stopped by the cap {capped}"
        )
        print(summary)

        # Every answer fitted its request, and no valid request was refused for good.
        assert ledger.wrong == [], summary
        assert ledger.refused == [], summary
        assert acked_listings and acked_messages, summary
        schemes = Counter(parse_sealed(item.raw).payload[0] for item in acked_messages.values())
        assert schemes[1] and schemes[2], f"both sealing schemes acknowledged: {schemes}"
        assert len(lives) > KILLS // 2, f"the traffic did not overlap the kills: {summary}"

        # Nothing acknowledged is missing: messages in their mailboxes (on A, or on B for dee), listings on A and B.
        for name, keys in missing.items():
            assert not keys, f"{name} lacks {len(keys)} acknowledged items ({summary}); the first:\n" + where(
                sorted(keys, key=lambda k: ledger.items[k].acked_life or 0)[0]
            )
        # Nothing is there twice, and nothing is there that nobody sent to that mailbox.
        for name, ids in boxes.items():
            twice = [key for key, count in Counter(ids).items() if count > 1]
            assert not twice, f"{name}'s mailbox holds {len(twice)} messages twice; the first:\n" + where(twice[0])
            strangers = [key for key in ids if key not in ledger.items or ledger.items[key].recipient != name]
            assert not strangers, f"{name}'s mailbox holds messages never sent to it: {strangers}"
        for name, rows in listed.items():
            twice = [key for key, count in Counter(x["id"] for x in rows).items() if count > 1]
            assert not twice, f"{name}'s directory lists {len(twice)} listings twice; the first:\n" + where(twice[0])
        # The listings are the very bytes that were signed, and B knows they come from A.
        for key in acked_listings:
            for directory in (on_a_dir, on_b_dir):
                assert base64.b64decode(directory[key]["listing"]) == ledger.items[key].raw, where(key)
            assert on_b_dir[key]["origin"] == a.url, where(key)

        # Both databases are sound after all this.
        assert (a_stopped, b_stopped) == (0, 0), tail(a, a.lives) + tail(b, b.lives)
        for node in (a, b):
            if database_for(node.data):  # PostgreSQL checks its own pages; no row breaks a foreign key
                orphans = "SELECT COUNT(*) FROM listing_facets f LEFT JOIN listings l ON l.seq = f.listing"
                assert query(node.data, orphans + " WHERE l.seq IS NULL") == [(0,)], node.name
                continue
            with closing(sqlite3.connect(node.data / "node.sqlite3")) as db:
                assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)], node.name
                assert db.execute("PRAGMA foreign_key_check").fetchall() == [], node.name

    asyncio.run(scenario())
