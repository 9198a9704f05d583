"""The peer's side of peerfed as a library: identity, listings, and support connections.

``Peer`` is what a command line, a bot or another front end builds on. It keeps keys and the
whole relationship on this device (``state.LocalState``), speaks to the home node through
``transport.NodeAPI``, and runs every connection through the protocol's state machine, so it
refuses locally what the other peer's client would refuse anyway.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import nacl.utils

from peerfed.protocol import (
    Agreement,
    Connection,
    ConnectionStateError,
    Context,
    EncryptionSecret,
    End,
    Envelope,
    Erasure,
    Identity,
    KeyBundle,
    Listing,
    Message,
    PeerId,
    ReachOut,
    RemoteError,
    Response,
    Side,
    Terms,
    Withdrawal,
    open_sealed,
    open_signed,
    seal,
    sign,
    unpack,
)

from . import keyring as kr
from .state import ClientError, LocalState
from .transport import NodeAPI

__all__ = ["DAY", "Peer", "SyncReport", "terms_json"]

DAY = 86_400
BUNDLE_LIFETIME = 180 * DAY
BUNDLE_RENEW = 60 * DAY
REACH_OUT_LIFETIME = 7 * DAY
MESSAGE_LIFETIME = 14 * DAY
PENDING_REACH_OUTS_CAP = 20


def terms_json(terms: Terms) -> dict[str, Any]:
    return {
        "helps": terms.helps,
        "formats": [f.value for f in terms.formats],
        "times": terms.times,
        "until": terms.until,
        "boundaries": list(terms.boundaries),
        "ending": terms.ending,
    }


@dataclass
class SyncReport:
    received: int = 0
    new_connections: int = 0
    dropped: int = 0


class Peer:
    def __init__(
        self, state: LocalState, keys: kr.Keyring, http: aiohttp.ClientSession, clock: Callable[[], float] = time.time
    ) -> None:
        self.state = state
        self.keys = keys
        self.http = http
        self.clock = clock
        self.api = NodeAPI("http://unset.invalid", http)
        self.pending_cap = PENDING_REACH_OUTS_CAP

    def now(self) -> int:
        return int(self.clock())

    @property
    def id(self) -> PeerId:
        return self.keys.identity.peer_id

    # --- creating and loading an identity ---------------------------------------------------------

    @classmethod
    async def create(
        cls,
        home: Path,
        http: aiohttp.ClientSession,
        *,
        node: str,
        name: str | None = None,
        invite: str | None = None,
        passphrase: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> Peer:
        state = await LocalState.open(home)
        if await state.get("keyring") is not None:
            await state.close()
            raise ClientError(f"{home} already holds an identity; use another PEERFED_HOME", "local.exists")
        now = int(clock())
        keys = kr.Keyring(
            Identity(nacl.utils.random(32)),
            [(EncryptionSecret(nacl.utils.random(32)), now, now + BUNDLE_LIFETIME)],
        )
        peer = cls(state, keys, http, clock)
        peer.api = NodeAPI(node, http)
        try:
            await peer.api.sign_in(keys.identity, now=now, invite=invite)
        except BaseException:
            await state.close()
            raise
        await state.set("keyring", kr.lock(keys, passphrase))
        await state.set("node", peer.api.url)
        await state.set("token", peer.api.token)
        await state.set("name", name)
        await peer.publish_bundle()
        return peer

    @classmethod
    async def load(
        cls,
        home: Path,
        http: aiohttp.ClientSession,
        *,
        passphrase: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> Peer:
        if not (home / "peer.sqlite3").exists():
            raise ClientError(f"no identity in {home}; create one with: peerfed id new --node URL", "local.no_identity")
        state = await LocalState.open(home)
        blob = await state.get("keyring")
        if blob is None:
            await state.close()
            raise ClientError(f"no identity in {home}; create one with: peerfed id new --node URL", "local.no_identity")
        try:
            keys = kr.unlock(bytes(blob), passphrase)
        except BaseException:
            await state.close()
            raise
        peer = cls(state, keys, http, clock)
        peer.api = NodeAPI(await state.get("node"), http, await state.get("token"))
        return peer

    @staticmethod
    async def needs_passphrase(home: Path) -> bool:
        if not (home / "peer.sqlite3").exists():
            return False
        state = await LocalState.open(home)
        try:
            blob = await state.get("keyring")
            return blob is not None and kr.is_locked(bytes(blob))
        finally:
            await state.close()

    async def close(self) -> None:
        await self.state.close()

    async def call(self, action: Callable[[], Any]) -> Any:
        """Run a node call, signing in again once if the session expired."""
        try:
            return await action()
        except RemoteError as exc:
            if exc.code != "auth.required":
                raise
        await self.api.sign_in(self.keys.identity, now=self.now())
        await self.state.set("token", self.api.token)
        return await action()

    async def show(self) -> dict[str, Any]:
        meta = await self.state.dump_meta()
        return {
            "peer": self.id.text,
            "node": meta.get("node"),
            "name": meta.get("name"),
            "encrypted": kr.is_locked(bytes(meta["keyring"])),
            "encryption_key": self.keys.current[0].public.hex,
            "key_expires_at": self.keys.current[2],
        }

    async def publish_bundle(self) -> None:
        secret, _, end = self.keys.current
        bundle = sign(
            self.keys.identity,
            KeyBundle(secret.public, home=self.api.url, pseudonym=await self.state.get("name")),
            created_at=self.now(),
            expires_at=min(end, self.now() + BUNDLE_LIFETIME),
        )
        await self.call(lambda: self.api.put_keys(bundle.raw))

    async def renew_keys_if_due(self, passphrase: str | None) -> bool:
        """Rotate the encryption key when its bundle nears expiry; old secrets stay to open late mail."""
        if self.keys.current[2] - self.now() > BUNDLE_RENEW:
            return False
        now = self.now()
        self.keys.encryption.append((EncryptionSecret(nacl.utils.random(32)), now, now + BUNDLE_LIFETIME))
        self.keys.encryption = [k for k in self.keys.encryption if k[2] > now - 30 * DAY]
        await self.state.set("keyring", kr.lock(self.keys, passphrase))
        await self.publish_bundle()
        return True

    # --- listings --------------------------------------------------------------------------

    async def post_listing(self, listing: Listing, expires_in: int) -> dict[str, Any]:
        env = sign(self.keys.identity, listing, created_at=self.now(), expires_at=self.now() + expires_in)
        await self.call(lambda: self.api.publish(env.raw))
        await self.state.put_listing(env.id, env.raw, bytes(self.id), None, True, env.expires_at, self.now())
        return {"id": env.id.hex(), "kind": listing.kind.value, "expires_at": env.expires_at}

    async def my_listings(self) -> list[dict[str, Any]]:
        out = []
        for row in await self.state.my_listings():
            listing = self._listing(bytes(row["raw"]))
            out.append(
                {
                    "id": bytes(row["id"]).hex(),
                    "kind": listing.kind.value,
                    "topics": list(listing.topics),
                    "summary": listing.summary,
                    "expires_at": row["expires_at"],
                    "status": "withdrawn"
                    if row["withdrawn"]
                    else ("expired" if row["expires_at"] <= self.now() else "live"),
                }
            )
        return out

    def _listing(self, raw: bytes) -> Listing:
        payload = unpack(raw[97:])
        return Listing.from_wire(payload[3])  # type: ignore[index]

    async def withdraw(self, prefix: str) -> dict[str, Any]:
        listing_id = await self.resolve_listing(prefix, mine=True)
        row = await self.state.listing(listing_id)
        assert row is not None
        env = sign(
            self.keys.identity,
            Withdrawal(listing_id),
            created_at=self.now(),
            expires_at=max(row["expires_at"], self.now() + 60),
        )
        await self.call(lambda: self.api.publish(env.raw))
        await self.state.mark_withdrawn(listing_id)
        return {"id": listing_id.hex(), "status": "withdrawn"}

    async def browse(self, **filters: Any) -> list[dict[str, Any]]:
        """Search the home node's directory; verify every listing and key bundle returned."""
        page = await self.call(lambda: self.api.directory(**filters))
        results = []
        now = self.now()
        for item in page.get("listings", []):
            try:
                env = open_signed(base64.b64decode(item["listing"]), context=Context.ENVELOPE, now=now)
            except (RemoteError, ValueError, KeyError):
                continue  # a node that serves a bad listing does not get it shown
            if item.get("key_bundle"):
                await self._remember_bundle(base64.b64decode(item["key_bundle"]), env.author)
            peer = await self.state.peer(bytes(env.author))
            if peer and peer["blocked"]:
                continue
            await self.state.put_listing(
                env.id, env.raw, bytes(env.author), item.get("origin"), env.author == self.id, env.expires_at, now
            )
            listing = env.body
            assert isinstance(listing, Listing)
            results.append(
                {
                    "id": env.id.hex(),
                    "author": env.author.text,
                    "name": peer["name"] if peer else None,
                    "origin": item.get("origin"),
                    "kind": listing.kind.value,
                    "topics": list(listing.topics),
                    "languages": list(listing.languages),
                    "formats": [f.value for f in listing.formats],
                    "timing": listing.timing.value,
                    "availability": [{"days": w.days, "start": w.start, "end": w.end} for w in listing.availability],
                    "tz": listing.tz,
                    "capacity": listing.capacity,
                    "area": listing.area,
                    "summary": listing.summary,
                    "expires_at": env.expires_at,
                }
            )
        return results

    async def _remember_bundle(self, raw: bytes, author: PeerId) -> KeyBundle | None:
        try:
            env = open_signed(raw, context=Context.KEY_BUNDLE, now=self.now())
        except RemoteError:
            return None
        if env.author != author:
            return None
        bundle = env.body
        assert isinstance(bundle, KeyBundle)
        await self.state.put_peer(bytes(author), raw, env.expires_at, bundle.home, bundle.pseudonym)
        return bundle

    async def bundle_for(self, peer: PeerId) -> KeyBundle:
        row = await self.state.peer(bytes(peer))
        if row and row["bundle"] and row["bundle_expires"] > self.now() + 60:
            env = open_signed(bytes(row["bundle"]), context=Context.KEY_BUNDLE, now=self.now())
            assert isinstance(env.body, KeyBundle)
            return env.body
        answer = await self.call(lambda: self.api.keys(peer.text))
        bundle = await self._remember_bundle(base64.b64decode(answer["key_bundle"]), peer)
        if bundle is None:
            raise RemoteError("the node served a key bundle that does not verify", "signature.invalid")
        return bundle

    # --- resolving what the user typed -----------------------------------------------------

    async def resolve_listing(self, prefix: str, *, mine: bool = False) -> bytes:
        found = await self.state.prefix("listings", prefix)
        if mine:
            rows = [await self.state.listing(f) for f in found]
            found = [f for f, r in zip(found, rows, strict=True) if r and r["mine"]]
        return _one(found, prefix, "listing", "run peerfed browse (or peerfed listings) first")

    async def resolve_connection(self, prefix: str) -> bytes:
        return _one(await self.state.prefix("connections", prefix), prefix, "connection", "see: peerfed connections")

    async def resolve_peer(self, text: str) -> PeerId:
        if len(text) == 61:
            return PeerId.from_text(text)
        matches = [p["peer"] for p in await self.state.peers() if PeerId(bytes(p["peer"])).text.startswith(text)]
        return PeerId(_one([bytes(m) for m in matches], text, "peer", "use the full pf1... id"))

    # --- the support connection --------------------------------------------------------------

    async def reach(self, prefix: str, hello: str, terms: Terms | None = None) -> dict[str, Any]:
        listing_id = await self.resolve_listing(prefix)
        row = await self.state.listing(listing_id)
        assert row is not None
        author = PeerId(bytes(row["author"]))
        if author == self.id:
            raise ClientError("that is your own listing", "local.not_allowed")
        if row["expires_at"] <= self.now():
            raise RemoteError("that listing has expired", "time.expired")
        try:
            await self.call(lambda: self.api.call("GET", f"/api/v1/listings/{listing_id.hex()}"))
        except RemoteError as exc:
            if exc.code in ("gone", "not_found"):
                raise RemoteError("that listing was withdrawn or is no longer listed", "gone") from exc
            raise
        connection = nacl.utils.random(16)
        inner = self._sign(ReachOut(author, connection, listing_id, hello, terms), REACH_OUT_LIFETIME)
        Connection.start(inner)
        await self._deliver(author, inner)
        await self.state.add_connection(connection, listing_id, bytes(author), Side.REACHER.value, self.now())
        await self.state.add_event(connection, inner.id, bytes(self.id), inner.type, inner.raw, self.now())
        return {
            "connection": connection.hex(),
            "listing": listing_id.hex(),
            "peer": author.text,
            "state": "reached-out",
        }

    def _sign(self, body: Any, lifetime: int = MESSAGE_LIFETIME) -> Envelope:
        return sign(self.keys.identity, body, created_at=self.now(), expires_at=self.now() + lifetime)

    async def _deliver(self, to: PeerId, inner: Envelope) -> None:
        bundle = await self.bundle_for(to)
        sealed = seal(inner, bundle.encryption_key)
        await self.call(lambda: self.api.send(sealed.raw))

    async def connection_state(self, connection: bytes) -> Connection:
        """Replay the connection's signed messages through the state machine."""
        events = await self.state.events(connection)
        if not events or events[0]["type"] != "reach-out":
            raise ClientError("this connection has no reach-out on record", "local.damaged")
        conn = Connection.start(open_signed(bytes(events[0]["raw"]), context=Context.SEALED, now=events[0]["at"]))
        for event in events[1:]:
            env = open_signed(bytes(event["raw"]), context=Context.SEALED, now=event["at"])
            try:
                conn = conn.receive(env)
            except ConnectionStateError:
                continue  # erased content can make a later replay refuse a step; the rest holds
        return conn

    async def _step(
        self, prefix: str, make: Callable[[Connection, PeerId, bytes], Any]
    ) -> tuple[bytes, Envelope, Connection]:
        connection = await self.resolve_connection(prefix)
        row = await self.state.connection(connection)
        assert row is not None
        other = PeerId(bytes(row["peer"]))
        conn = await self.connection_state(connection)
        inner = self._sign(make(conn, other, connection))
        after = conn.send(inner)  # raises IllegalSend before anything leaves the device
        await self._deliver(other, inner)
        await self.state.add_event(connection, inner.id, bytes(self.id), inner.type, inner.raw, self.now())
        return connection, inner, after

    async def respond(self, prefix: str, accept: bool, reply: str | None = None) -> dict[str, Any]:
        connection, _, after = await self._step(prefix, lambda c, other, cid: Response(other, cid, accept, reply))
        return {"connection": connection.hex(), "state": after.state.value}

    async def agree(self, prefix: str, terms: Terms | None) -> dict[str, Any]:
        """Propose ``terms``, or countersign the other peer's pending ones (``terms=None``, or identical terms)."""

        def make(conn: Connection, other: PeerId, cid: bytes) -> Agreement:
            mine = self._side(conn)
            pending = self._pending_terms(conn, events, mine)
            if terms is None:
                if pending is None:
                    raise ClientError("there are no proposed terms to accept", "local.not_allowed")
                return Agreement(other, cid, conn.round, pending)
            if pending is not None and pending == terms:
                return Agreement(other, cid, conn.round, terms)
            return Agreement(other, cid, conn.round + 1, terms)

        events = await self.state.events(await self.resolve_connection(prefix))
        connection, inner, after = await self._step(prefix, make)
        body = inner.body
        assert isinstance(body, Agreement)
        return {
            "connection": connection.hex(),
            "version": body.version,
            "state": after.state.value,
            "in_force": self._in_force(after),
        }

    def _side(self, conn: Connection) -> Side:
        side = conn.side_of(self.id)
        assert side is not None
        return side

    def _pending_terms(self, conn: Connection, events: list[dict[str, Any]], mine: Side) -> Terms | None:
        """The other side's terms in the current round, if we have not signed it yet."""
        if any(side is mine for side, _ in conn.round_terms) or not conn.round_terms:
            return None
        for event in reversed(events):
            if event["type"] == "agreement" and bytes(event["author"]) != bytes(self.id):
                env = open_signed(bytes(event["raw"]), context=Context.SEALED, now=event["at"])
                body = env.body
                assert isinstance(body, Agreement)
                if body.version == conn.round:
                    return body.terms
        return None

    def _in_force(self, conn: Connection) -> dict[str, Any] | None:
        if conn.in_force is None:
            return None
        version, terms = conn.in_force
        return {"version": version, **terms_json(terms)}

    async def agreement(self, prefix: str) -> dict[str, Any]:
        connection = await self.resolve_connection(prefix)
        conn = await self.connection_state(connection)
        events = await self.state.events(connection)
        pending = None
        if conn.round_terms and len(conn.round_terms) == 1:
            signer = conn.round_terms[0][0]
            for event in reversed(events):
                if event["type"] == "agreement":
                    env = open_signed(bytes(event["raw"]), context=Context.SEALED, now=event["at"])
                    body = env.body
                    assert isinstance(body, Agreement)
                    if body.version == conn.round:
                        pending = {
                            "version": conn.round,
                            "proposed_by": "me" if signer is self._side(conn) else "them",
                            **terms_json(body.terms),
                        }
                        break
        return {
            "connection": connection.hex(),
            "state": conn.state.value,
            "in_force": self._in_force(conn),
            "pending": pending,
        }

    async def send(self, prefix: str, text: str, reply_to: bytes | None = None) -> dict[str, Any]:
        def make(conn: Connection, other: PeerId, cid: bytes) -> Message:
            mine = self._side(conn)
            used = [seq for side, seq in conn.seqs if side is mine]
            return Message(other, cid, max(used, default=0) + 1, text, reply_to)

        connection, inner, _ = await self._step(prefix, make)
        body = inner.body
        assert isinstance(body, Message)
        return {"connection": connection.hex(), "seq": body.seq, "id": inner.id.hex()}

    async def end(self, prefix: str, erase: bool = False) -> dict[str, Any]:
        connection, _, after = await self._step(prefix, lambda c, other, cid: End(other, cid, erase))
        return {"connection": connection.hex(), "state": after.state.value, "erase": erase}

    async def messages(self, prefix: str) -> dict[str, Any]:
        connection = await self.resolve_connection(prefix)
        out = []
        last = 0
        for event in await self.state.events(connection):
            last = max(last, event["n"])
            if event["type"] != "message":
                continue
            env = open_signed(bytes(event["raw"]), context=Context.SEALED, now=event["at"])
            body = env.body
            assert isinstance(body, Message)
            out.append(
                {
                    "seq": body.seq,
                    "from": "me" if env.author == self.id else "them",
                    "text": body.text,
                    "at": env.created_at,
                    "id": env.id.hex(),
                    "reply_to": body.reply_to.hex() if body.reply_to else None,
                }
            )
        out.sort(key=lambda m: (m["at"], m["from"], m["seq"]))
        await self.state.mark_read(connection, last)
        conn = await self.connection_state(connection)
        return {"connection": connection.hex(), "state": conn.state.value, "messages": out}

    async def connections(self) -> list[dict[str, Any]]:
        out = []
        for row in await self.state.connections():
            connection = bytes(row["id"])
            conn = await self.connection_state(connection)
            peer = await self.state.peer(bytes(row["peer"]))
            events = await self.state.events(connection)
            unread = sum(
                1
                for e in events
                if e["type"] == "message" and e["n"] > row["read_seq"] and bytes(e["author"]) != bytes(self.id)
            )
            first = open_signed(bytes(events[0]["raw"]), context=Context.SEALED, now=events[0]["at"]).body
            assert isinstance(first, ReachOut)
            out.append(
                {
                    "id": connection.hex(),
                    "peer": PeerId(bytes(row["peer"])).text,
                    "name": peer["name"] if peer else None,
                    "listing": bytes(row["listing"]).hex(),
                    "side": row["side"],
                    "state": conn.state.value,
                    "in_force": conn.in_force[0] if conn.in_force else None,
                    "hello": first.hello,
                    "unread": unread,
                    "updated_at": row["updated_at"],
                }
            )
        return out

    # --- receiving -------------------------------------------------------------------------

    @property
    def _cursor_key(self) -> str:
        # Mailbox positions are per node: after a move, the new node counts from its own start.
        return "cursor " + self.api.url

    async def sync(self) -> SyncReport:
        """Fetch the mailbox, open and apply everything, then acknowledge it so the node deletes it."""
        report = SyncReport()
        cursor = int(await self.state.get(self._cursor_key) or 0)
        for _ in range(100):
            page = await self.call(functools.partial(self.api.mailbox, after=cursor, limit=200))
            items = page.get("items", [])
            if not items:
                break
            for item in items:
                await self.take(base64.b64decode(item["sealed"]), report)
                cursor = max(cursor, int(item["seq"]))
            await self.call(functools.partial(self.api.ack, [i["id"] for i in items]))
            await self.state.set(self._cursor_key, cursor)
        return report

    async def take(self, raw: bytes, report: SyncReport | None = None) -> Envelope | None:
        """Open one sealed message and apply it; anything invalid or unwanted is dropped."""
        report = report or SyncReport()
        try:
            opened = open_sealed(raw, recipient=self.id, secrets=self.keys.secrets(), now=self.now())
        except RemoteError:
            report.dropped += 1
            return None
        inner = opened.inner
        sender = await self.state.peer(bytes(inner.author))
        if sender and sender["blocked"]:
            report.dropped += 1
            return None
        body = inner.body
        if isinstance(body, ReachOut):
            return await self._take_reach_out(inner, body, report)
        row = await self.state.connection(body.connection)  # type: ignore[union-attr]
        if row is None or bytes(row["peer"]) != bytes(inner.author):
            report.dropped += 1
            return None
        conn = await self.connection_state(body.connection)  # type: ignore[union-attr]
        try:
            conn.receive(inner)
        except ConnectionStateError:
            report.dropped += 1
            return None
        await self.state.add_event(body.connection, inner.id, bytes(inner.author), inner.type, inner.raw, self.now())  # type: ignore[union-attr]
        if isinstance(body, End) and body.erase:
            await self.state.forget_connection(body.connection)
        report.received += 1
        return inner

    async def pending_reach_outs(self) -> int:
        """Reach-outs to this peer that are still unanswered."""
        count = 0
        for row in await self.state.connections():
            if row["side"] == Side.AUTHOR.value and (await self.connection_state(bytes(row["id"]))).state.value == (
                "reached-out"
            ):
                count += 1
        return count

    async def _take_reach_out(self, inner: Envelope, body: ReachOut, report: SyncReport) -> Envelope | None:
        listing = await self.state.listing(body.listing)
        if await self.pending_reach_outs() >= self.pending_cap:
            report.dropped += 1  # a flood of reach-outs cannot bury the peer; they may answer and make room
            return None
        if (
            listing is None
            or not listing["mine"]
            or listing["withdrawn"]
            or listing["expires_at"] <= inner.created_at
            or await self.state.connection(body.connection) is not None
        ):
            report.dropped += 1
            return None
        with contextlib.suppress(RemoteError):  # the reply can wait until the sender's key bundle arrives
            await self.bundle_for(inner.author)
        author = bytes(inner.author)
        await self.state.add_connection(body.connection, body.listing, author, Side.AUTHOR.value, self.now())
        await self.state.add_event(body.connection, inner.id, bytes(inner.author), inner.type, inner.raw, self.now())
        report.received += 1
        report.new_connections += 1
        return inner

    async def follow(self, prefix: str | None = None) -> AsyncIterator[Envelope | None]:
        """Live: apply every new sealed message as it arrives; yield the ones applied.

        Yields None once the live subscription is up (after fetching what came meanwhile), so a
        caller can show everything up to that moment without a gap.
        """
        connection = await self.resolve_connection(prefix) if prefix else None
        await self.sync()
        async for item in self.api.live(after=int(await self.state.get(self._cursor_key) or 0)):
            if item.get("type") == "ready":
                await self.sync()
                yield None
                continue
            inner = await self.take(item["sealed_bytes"])
            await self.call(functools.partial(self.api.ack, [item["id"]]))
            if inner is not None and (connection is None or getattr(inner.body, "connection", None) == connection):
                yield inner

    # --- the rest --------------------------------------------------------------------------

    async def block(self, text: str) -> dict[str, Any]:
        peer = await self.resolve_peer(text)
        await self.state.block(bytes(peer))
        return {"peer": peer.text, "blocked": True}

    async def report(self, target: str, reason: str, disclose: str | None = None) -> dict[str, Any]:
        if target.startswith("pf1"):
            resolved = (await self.resolve_peer(target)).text
        else:
            resolved = (await self.resolve_listing(target)).hex()
        disclosed: list[bytes] = []
        if disclose:
            connection = await self.resolve_connection(disclose)
            disclosed = [
                bytes(e["raw"]) for e in await self.state.events(connection) if bytes(e["author"]) != bytes(self.id)
            ]
        answer = await self.call(lambda: self.api.report(resolved, reason, disclosed))
        return {"id": answer["id"], "status": answer["status"], "disclosed": len(disclosed)}

    async def resources(self) -> dict[str, Any]:
        document = await self.api.document()
        summary = document.get("summary", {})
        return {"node": summary.get("url"), "name": summary.get("name"), "resources": summary.get("resources", [])}

    async def erase_me(self) -> dict[str, Any]:
        erasure = self._sign(Erasure(), 90 * DAY)
        answer = await self.call(lambda: self.api.erase(erasure.raw))
        await self.state.set("token", None)
        return {"status": answer["status"], "listings": answer["listings"], "node": self.api.url}

    async def move(self, node: str, invite: str | None = None) -> dict[str, Any]:
        old = self.api
        new = NodeAPI(node, self.http)
        await new.sign_in(self.keys.identity, now=self.now(), invite=invite)
        self.api = new
        await self.publish_bundle()
        try:
            forwarded = await old.move(new.url)
        except RemoteError:
            self.api = old
            raise
        await self.state.set("node", new.url)
        await self.state.set("token", new.token)
        return {"peer": self.id.text, "node": new.url, "previous": old.url, "forwarded": forwarded["forwarded"]}


def _one(found: list[bytes], prefix: str, what: str, hint: str) -> bytes:
    if not found:
        raise ClientError(f"no {what} starts with {prefix!r}; {hint}", "local.not_found")
    if len(found) > 1:
        raise ClientError(f"{len(found)} {what}s start with {prefix!r}; type more of the id", "local.ambiguous")
    return found[0]
