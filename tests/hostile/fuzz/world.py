"""The nodes and peers under test: B (the target), A (federated with B), C (not federated with B).

The nodes run in a background event loop; each input runs on it (``World.run``) and is judged
by the oracle. Rate limits and the mailbox cap are off on B so that inputs reach past them
(``LIMITS``), and B asks new peers for a little proof of work so that X-Peerfed-Work is checked too.
"""

from __future__ import annotations

import asyncio
import base64
import gc
import hashlib
import logging
import os
import socket
import threading
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from peerfed.client.transport import NodeAPI
from peerfed.node.federation import sign_request
from peerfed.node.sessions import token_hash
from peerfed.protocol import (
    Context,
    EncryptionSecret,
    Envelope,
    Format,
    Identity,
    KeyBundle,
    Kind,
    Listing,
    Message,
    PeerId,
    PreKeys,
    Timing,
    open_signed,
    seal,
    sign,
)
from peerfed.protocol.node_bodies import erased_hash
from peerfed.protocol.sealing import HOUR
from tests.node.harness import DAY, Clock, TestNode, federate, standing

from .cases import Answer, Case
from .honest import honest_requests
from .oracle import BEFORE_NONCE, TRACKED, Problem, Verdict, judge
from .sources import Source, T
from .wire import converse, http

__all__ = ["SNAPSHOT_SQL", "LIMITS", "WORK_BITS", "seeded", "Member", "LogTrap", "LOGGERS", "World"]


# The tables of Store.counts() and the rest, in one query.
SNAPSHOT_SQL = "SELECT " + ", ".join(f"(SELECT COUNT(*) FROM {t})" for t in TRACKED)
LIMITS: dict[str, Any] = {  # rate limits off so inputs reach past them; rate.limited stays a valid answer
    "listings_per_hour": 0,
    "sends_per_minute": 0,
    "join_per_hour": 0,
    "keys_per_hour": 0,
    "node_listings_per_hour": 0,
    "node_bundles_per_hour": 0,
    "node_bytes_per_minute": 0,
    "mailbox_bytes_per_node": 0,
    "mailbox_cap": 10**9,
    "mailbox_items_per_sender": 0,
    "mailbox_items_per_node": 0,
    # Honest requests here are sent raw; first contact's proof of work has its own tests
    # (tests/hostile/test_stranger_mailbox.py), and a wrong X-Peerfed-Work is still refused coded.
    "first_contact_work_bits": 0,
    "session_ttl": 3650 * DAY,
}
WORK_BITS = 4  # node B asks new peers for a little proof of work, so X-Peerfed-Work is checked too


def seeded(name: str) -> bytes:
    return hashlib.blake2b(name.encode(), digest_size=32).digest()


@dataclass
class Member:
    name: str
    identity: Identity
    secret: EncryptionSecret
    token: str = ""

    @property
    def id(self) -> PeerId:
        return self.identity.peer_id

    @property
    def text(self) -> str:
        return self.identity.peer_id.text


class LogTrap(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[str] = []
        self.setFormatter(logging.Formatter("%(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(self.format(record))


LOGGERS = ("peerfed", "aiohttp", "asyncio")


class World:
    """Node B (the target), node A (federated with B), node C (real, not federated with B), peers."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="hostile-nodes", daemon=True)
        self.thread.start()
        # The node's own log goes to the trap only: each failure quotes what it logged, and thousands
        # of tracebacks from shrinking stay out of pytest's captured log.
        self.trap = LogTrap()
        self.propagate = {name: logging.getLogger(name).propagate for name in LOGGERS}
        for name in LOGGERS:
            logging.getLogger(name).addHandler(self.trap)
            logging.getLogger(name).propagate = False
        self.serial = 0
        self.held: list[tuple[str, str]] = []  # (listing id hex, author name) published on B
        self.withdrawn: list[str] = []
        self.remote_held: list[str] = []  # listings that came from A
        self.sent: list[bytes] = []  # sealed messages B took (to replay)
        self.replayable: list[tuple[str, str, bytes, str]] = []  # (method, target, body, header) B accepted
        self.mail: list[str] = []  # ids waiting in fuzz peers' mailboxes
        self.uploads: list[tuple[str, bytes]] = []  # (member name, pre-key upload) B took (to replay)
        self.prekeys_of: dict[bytes, set[bytes]] = {}  # peer -> every one-time pre-key given for it
        self.handed: set[bytes] = set()  # pre-keys handed out by a claim: never again (spec §13.5)
        try:
            self.call(self._start())
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> World:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 180) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        try:
            if self.loop.is_running():
                self.call(self._stop(), timeout=60)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(30)
            if not self.loop.is_running():
                self.loop.close()
            for name in LOGGERS:
                logging.getLogger(name).removeHandler(self.trap)
                logging.getLogger(name).propagate = self.propagate[name]

    @property
    def now(self) -> int:
        return int(self.clock())

    # --- setup -------------------------------------------------------------------------------

    async def _start(self) -> None:
        self.clock = Clock()
        self.b = await TestNode(self.tmp / "b", self.clock, join_work_bits=WORK_BITS, **LIMITS).start()
        self.a = await TestNode(self.tmp / "a", self.clock, **LIMITS).start()
        self.c = await TestNode(self.tmp / "c", self.clock).start()
        self.nodes = [self.b, self.a, self.c]
        await federate(self.a, self.b)
        self.http = aiohttp.ClientSession()
        with socket.socket() as dead:
            dead.bind(("127.0.0.1", 0))
            self.dead_url = f"http://127.0.0.1:{dead.getsockname()[1]}"  # nothing listens there
        self.honest = await self._join(self.b, "honest")
        self.remote = await self._join(self.a, "remote")
        self.fuzz = [await self._join(self.b, f"fuzz-{n}") for n in range(3)]
        self.bare = await self._join(self.b, "bare", bundle=False)
        self.stranger = Member("stranger", Identity(seeded("stranger")), EncryptionSecret(seeded("stranger/x")))
        await self._publish(self.b, self.honest)
        for member in self.fuzz:
            self.held.append(((await self._publish(self.b, member)).id.hex(), member.name))
        self.remote_held.append((await self._publish(self.a, self.remote)).id.hex())
        await self.a.deliver()  # B now holds remote's key bundle and listing
        await self._fill_mailboxes()
        await self._stock_up()
        self.document = base64.b64decode((await NodeAPI(self.b.url, self.http).document())["document"])

    async def _stop(self) -> None:
        await self.http.close()
        for node in self.nodes:
            if node.runner is not None:
                await node.stop()

    async def _join(self, node: TestNode, name: str, *, bundle: bool = True) -> Member:
        member = Member(name, Identity(seeded(name)), EncryptionSecret(seeded(name + "/x")))
        api = NodeAPI(node.url, self.http)
        await api.sign_in(member.identity, now=self.now)
        member.token = str(api.token)
        if bundle:
            raw = sign(
                member.identity,
                KeyBundle(member.secret.public, home=node.url, pseudonym=name[:64]),
                created_at=self.now,
                expires_at=self.now + 300 * DAY,
            ).raw
            await api.put_keys(raw)
        return member

    def honest_listing(self, member: Member) -> Envelope:
        self.serial += 1
        body = Listing(
            kind=Kind.OFFER, topics=("grief",), languages=("en",), formats=(Format.TEXT,), timing=Timing.SOON,
            summary=f"Here, {self.serial}.",
        )  # fmt: skip
        return sign(member.identity, body, created_at=self.now, expires_at=self.now + 20 * DAY)

    async def _publish(self, node: TestNode, member: Member) -> Envelope:
        env = self.honest_listing(member)
        await NodeAPI(node.url, self.http, token=member.token).publish(env.raw)
        return env

    async def _fill_mailboxes(self) -> None:
        api = NodeAPI(self.b.url, self.http, token=self.honest.token)
        for member in self.fuzz:
            for n in range(2):
                inner = sign(
                    self.honest.identity,
                    Message(member.id, bytes(16), n + 1, "hello"),
                    created_at=self.now,
                    expires_at=self.now + DAY,
                )
                await api.send(seal(inner, member.secret.public).raw)
        self.mail = []
        for member in self.fuzz:
            items = await self.b.node.store.mailbox_items(bytes(member.id), 0, 50, self.now)
            self.mail += [item.id.hex() for item in items]

    async def _stock_up(self) -> None:
        """Keep one-time pre-keys for claims to hand out: honest's on B, remote's on A (claimed via B)."""
        for node, member in ((self.b, self.honest), (self.a, self.remote)):
            store, peer = node.node.store, bytes(member.id)
            if await store.prekey_stock(peer) < 10:
                keys = [bytes(EncryptionSecret(os.urandom(32)).public) for _ in range(30)]
                self.prekeys_of.setdefault(peer, set()).update(keys)
                await store.add_prekeys(peer, keys, 100, self.now)

    async def _drain(self, member: Member) -> None:
        """Empty a member's stock (after prekeys.full), so that later uploads reach past the cap."""
        for _ in range(await self.b.node.store.prekey_stock(bytes(member.id))):
            key = await self.b.node.store.claim_prekey(bytes(member.id))
            if key is not None:
                self.handed.add(key)

    def stock(self, identity: Identity) -> tuple[int, set[bytes]]:
        """A peer's one-time pre-keys on B: how many, and those of them this world knows of."""
        count = self.call(self.b.node.store.prekey_stock(bytes(identity.peer_id)))
        return count, self.prekeys_of.get(bytes(identity.peer_id), set()) - self.handed

    def federates(self, url: str) -> bool:
        node = self.call(self.b.node.store.node(url))
        return node is not None and node.status == "active"

    async def _refresh(self) -> None:
        """Replace fuzz peers that were erased, moved or lost their session or bundle; refill mailboxes."""
        store, now = self.b.node.store, self.now
        for i, member in enumerate(self.fuzz):
            intact = (
                standing(await store.member(bytes(member.id))) == ("member", None)
                and await store.session_peer(token_hash(member.token), now) is not None
                and await store.key_bundle(bytes(member.id), now) is not None
            )
            if not intact:
                self.serial += 1
                self.fuzz[i] = await self._join(self.b, f"fuzz-{self.serial}")
        bare_intact = (
            standing(await store.member(bytes(self.bare.id))) == ("member", None)
            and await store.session_peer(token_hash(self.bare.token), now) is not None
            and await store.key_bundle(bytes(self.bare.id), now) is None
        )
        if not bare_intact:
            self.serial += 1
            self.bare = await self._join(self.b, f"bare-{self.serial}", bundle=False)
        if await store.is_erased(erased_hash(bytes(self.remote.id)), now):
            # A validly signed erasure of the remote peer reached B (garbled batches re-sign with any key).
            self.serial += 1
            self.remote = await self._join(self.a, f"remote-{self.serial}")
            self.remote_held.append((await self._publish(self.a, self.remote)).id.hex())
            await self.a.deliver()
        if len(self.mail) < 2:
            await self._fill_mailboxes()
        await self._stock_up()

    # --- what generators draw from -------------------------------------------------------------

    def member(self, src: Source, *, bare: bool = False) -> Member:
        return src.pick([*self.fuzz, self.bare]) if bare else src.pick(self.fuzz)

    def someone_else(self, src: Source, identity: Identity) -> Identity:
        everyone = [m.identity for m in self.fuzz] + [self.stranger.identity, self.remote.identity]
        return src.pick([i for i in everyone if i != identity])

    def throwaway(self, src: Source) -> Identity:
        return Identity(seeded(f"throwaway-{src.integer(0, 10_000)}"))

    def urls(self) -> list[str]:
        return [self.b.url, self.a.url, self.c.url, self.dead_url, "https://unknown.example"]

    def peer_texts(self) -> list[str]:
        return [m.text for m in (*self.fuzz, self.bare, self.honest, self.remote, self.stranger)]

    def listing_ids(self) -> list[str]:
        return [i for i, _ in self.held[-20:]] + self.withdrawn[-5:] + self.remote_held[-5:] or ["00" * 32]

    def strings(self) -> list[str]:
        return [*self.urls(), *self.peer_texts(), *self.listing_ids()]

    def values(self) -> list[Any]:
        now = self.now
        peers = [bytes(m.id) for m in (*self.fuzz, self.honest, self.remote, self.stranger)]
        ids = [bytes.fromhex(i) for i in self.listing_ids()[:5]]
        times = [now, now - 1, now + 1, now + 300, now + 301, now - 300, now - 301, now + DAY, now + 91 * DAY]
        return [*self.urls(), *peers, *ids, *times, now - now % HOUR, bytes(32), bytes(16)]

    def challenge(self, kind: str) -> bytes:
        value = os.urandom(32)
        if kind == "unknown":
            return value

        async def make() -> None:
            store, now = self.b.node.store, self.now
            await store.add_challenge(value, now if kind == "expired" else now + 300)
            if kind == "used":
                await store.take_challenge(value, now)

        self.call(make())
        return value

    def knows(self, identity: Identity) -> bool:
        """A member of B, or a peer whose key bundle B holds: B can route to it."""
        store, peer = self.b.node.store, bytes(identity.peer_id)
        return not self.joining(identity) or self.call(store.key_bundle(peer, self.now)) is not None

    def joining(self, identity: Identity) -> bool:
        member = self.call(self.b.node.store.member(bytes(identity.peer_id)))
        return member is None or member.status == "pending"

    def a_signs(self, method: str, target: str, body: bytes) -> str:
        return sign_request(
            self.a.node.identity,
            method=method,
            path=target,
            origin=self.a.url,
            destination=self.b.url,
            body=body,
            now=self.now,
        )

    # --- running one input ------------------------------------------------------------------------

    def run(self, case: Case) -> Verdict:
        return self.call(self._run(case))

    async def _snapshot(self) -> dict[str, int]:
        row = await self.b.node.store._one(SNAPSHOT_SQL)
        return dict(zip(TRACKED, (int(v) for v in row), strict=True))

    async def _run(self, case: Case) -> Verdict:
        before = await self._snapshot()
        mark = len(self.trap.records)
        if case.frames is not None:
            answer, problems = await converse(self.http, self.b.url, case)
            # Let the node finish the conversation, and collect its tasks now, so that what it logs
            # ("Task exception was never retrieved" comes when a task is collected) is told of here.
            for _ in range(3):
                await asyncio.sleep(0.005)
            gc.collect()
        else:
            answer = await http(self.b.port, case.method, case.target, case.headers, case.body)
            problems = []
        after = await self._snapshot()
        problems += judge(case, answer, before, after, self)
        log = self.trap.records[mark:]
        problems += [Problem("node log error", text.splitlines()[0][:300]) for text in log]
        await self._bookkeep(case, answer)
        return Verdict(case, answer, problems, log)

    async def _bookkeep(self, case: Case, answer: Answer) -> None:
        if answer.code == "rate.limited":
            self.b.node.limiter.clear()  # keep reaching past the (hard-coded) report limit
        ok = answer.status is not None and answer.status < 400 and isinstance(answer.payload, dict)
        if ok and case.endpoint == "POST /api/v1/listings":
            if answer.payload.get("type") == "listing":
                self.held.append((str(answer.payload.get("id")), case.member))
            elif case.withdraws:
                self.withdrawn.append(case.withdraws)
        if ok and case.endpoint == "POST /api/v1/send" and answer.payload.get("status") != "duplicate":
            self.sent = [*self.sent[-31:], case.body]
        if ok and case.endpoint == "POST /api/v1/mailbox/ack":
            self.mail = [i for i in self.mail if i not in case.body.decode("utf-8", "replace")]
        # A validly signed request spent its nonce unless refused before (or not routed at all).
        spent = answer.status is not None and answer.code not in BEFORE_NONCE | {"schema.invalid", "not_found"}
        if case.federation_header and spent:
            self.replayable = [*self.replayable[-31:], (case.method, case.target, case.body, case.federation_header)]
        await self._bookkeep_prekeys(case, answer, ok)
        if ok and case.method in ("POST", "PUT"):
            await self._refresh()
        if len(self.held) > 200:
            self.held = self.held[-100:]

    async def _bookkeep_prekeys(self, case: Case, answer: Answer, ok: bool) -> None:
        if ok and case.endpoint == "POST /api/v1/prekeys":
            self.uploads = [*self.uploads[-31:], (case.member, case.body)]
            # The keys as the node read them: a re-signed garbled upload may be a valid one too.
            env = open_signed(case.body, context=Context.CLIENT_AUTH, now=self.now)
            assert isinstance(env.body, PreKeys)
            self.prekeys_of.setdefault(bytes(env.author), set()).update(env.body.keys)
        if answer.code == "prekeys.full":
            for member in (*self.fuzz, self.bare):
                if member.name == case.member and await self.b.node.store.prekey_stock(bytes(member.id)) >= 90:
                    await self._drain(member)
        if ok and case.endpoint.endswith("/prekeys/claim") and isinstance(answer.payload.get("prekey"), str):
            self.handed.add(base64.b64decode(answer.payload["prekey"]))

    # --- the node keeps serving ---------------------------------------------------------------------

    def serving(self, *, full: bool = False) -> list[Problem]:
        return self.call(self._serving(full))

    async def _serving(self, full: bool) -> list[Problem]:
        problems = await honest_requests(self, full=full)
        if full:
            await self._refresh()
        return problems

    def advance(self, seconds: int) -> None:
        """Move the clock (long runs): stored objects age and expire; purge as the node would."""

        async def tick() -> None:
            from peerfed.node.app import purge_once

            self.clock.advance(seconds)
            self.replayable.clear()  # their requests have expired by now
            self.uploads.clear()
            for node in self.nodes:
                await purge_once(node.node)
            await self._refresh()

        self.call(tick())

    def deliver(self) -> list[Problem]:
        """Let B and A push what they queued (fuzz-made objects included) and catch up: nothing may raise."""

        async def run() -> list[Problem]:
            mark = len(self.trap.records)
            problems = []
            for node in (self.b, self.a):
                try:
                    await node.node.deliver_due()
                    await node.node.maintain()
                except Exception as exc:
                    problems.append(Problem("node.internal", f"delivery on {node.url}: {exc!r}"))
            problems += [Problem("node log error", t.splitlines()[0][:300]) for t in self.trap.records[mark:]]
            return problems

        return self.call(run())
