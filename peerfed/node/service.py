"""What a node does, independent of HTTP: join, publish, search, deliver, federate, erase (spec §13).

Handlers in ``api.py`` parse a request and call one method here; the methods check the input
with the protocol core, store it through ``store.Store``, queue federation work in the same
transaction, and return plain values. Everything that arrives from outside is treated as hostile.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import random
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Iterable
from typing import Any

import nacl.utils

from peerfed import __version__
from peerfed.protocol import (
    CLOCK_SKEW,
    Context,
    Envelope,
    Identity,
    KeyBundle,
    Listing,
    PeerId,
    RemoteError,
    RequestError,
    TimeError,
    Withdrawal,
    check_hour,
    crypto,
    open_signed,
    pack,
    parse_sealed,
    sign,
    unpack,
)
from peerfed.protocol.errors import UnavailableError
from peerfed.protocol.node_bodies import (
    ClientAuth,
    Erasure,
    FederationPolicy,
    NodeDocument,
    NodeKey,
    Registration,
    erased_hash,
)
from peerfed.protocol.sealing import MAX_SEALED_AGE
from peerfed.protocol.work import check_work

from .config import Config
from .federation import NodeClient, TransportError, parse_document
from .limits import RateLimiter
from .opener import Opener
from .retry import breaker_until, gives_up, next_attempt
from .store import Delivery, MemberStatus, NodeStatus, OutboxItem, OutboxRow, OwnKey, Store

__all__ = ["BATCH_KINDS", "Node", "listing_card", "listing_facets"]

log = logging.getLogger("peerfed.node")

BATCH_KINDS = ("key-bundle", "listing", "withdrawal", "erasure", "takedown", "sealed")
DOCUMENT_LIFETIME = 7 * 86_400
DOCUMENT_REFRESH = 86_400
PIPELINE = 4  # batches in flight to one destination once it has taken one
_RETRYABLE = {"node.unavailable", "rate.limited", "federation.refused", "node.internal"}


def token_hash(token: str) -> bytes:
    """Session tokens and invite codes are kept only as this hash (spec §13.9)."""
    return crypto.blake2b_256(token.encode("utf-8"), crypto.Person.TOKEN)


def _header_text(value: str | None, code: str) -> str | None:
    """A header that must be text; a malformed one is refused with the code of what it is for."""
    if value is None:
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise RequestError("a header is not valid text", code) from exc
    return value


def item_key(raw: bytes) -> bytes:
    """The outbox's deduplication key for an item without an id of its own (key bundles)."""
    return crypto.blake2b_256(raw, crypto.Person.ITEM)


def b64(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).decode("ascii")


def listing_facets(listing: Listing) -> list[tuple[str, str]]:
    """The search keys of a listing: topics case-folded, languages lower-cased with their primary tag."""
    found: dict[tuple[str, str], None] = {}
    for topic in listing.topics:
        found[("topic", topic.casefold())] = None
    for term in listing.vocab:
        found[("vocab", term)] = None
    for lang in listing.languages:
        tag = lang.lower()
        found[("lang", tag)] = None
        found[("lang", tag.split("-")[0])] = None
    for fmt in listing.formats:
        found[("format", fmt.value)] = None
    return list(found)


def directory_entry(env: Envelope) -> str:
    """The unchanging part of a listing's directory result but its bytes, as compact JSON (an object)."""
    entry = {"id": env.id.hex(), "author": env.author.text, "card": listing_card(env)}
    return json.dumps(entry, separators=(",", ":"), ensure_ascii=False)


def listing_card(env: Envelope) -> dict[str, Any]:
    """The public card as JSON, for clients that show it (they verify ``listing`` themselves)."""
    listing = env.body
    assert isinstance(listing, Listing)
    return {
        "kind": listing.kind.value,
        "topics": list(listing.topics),
        "vocab": list(listing.vocab),
        "languages": list(listing.languages),
        "formats": [f.value for f in listing.formats],
        "tz": listing.tz,
        "availability": [{"days": w.days, "start": w.start, "end": w.end} for w in listing.availability],
        "timing": listing.timing.value,
        "capacity": listing.capacity,
        "area": listing.area,
        "summary": listing.summary,
        "created_at": env.created_at,
        "expires_at": env.expires_at,
    }


class Node:
    """One community node's behaviour. Build it with an open Store and the node key."""

    def __init__(
        self,
        config: Config,
        store: Store,
        identity: Identity,
        *,
        clock: Callable[[], float],
        client: NodeClient | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.identity = identity
        self.clock = clock
        self.client = client
        self.url = config.url
        self.limiter = RateLimiter()
        self.opener = Opener(config.verify_threads)
        self.wakeup = asyncio.Event()
        self.maintain_soon = asyncio.Event()
        self.live: dict[bytes, set[Callable[[dict[str, Any]], None]]] = defaultdict(set)
        self._rng = rng or random.Random()
        self._document: tuple[bytes, int] | None = None
        self._previous_keys: list[OwnKey] = []
        self._discovering: dict[str, float] = {}
        self._documents: OrderedDict[str, tuple[bytes, int, list[tuple[bytes, int, int]]]] = OrderedDict()

    def now(self) -> int:
        return int(self.clock())

    async def start(self) -> None:
        """Record this node's key and load previous ones (for the document)."""
        now = self.now()
        own = bytes(self.identity.peer_id)
        await self.store.record_own_key(own, now - CLOCK_SKEW, 2**40 - 1)
        self._previous_keys = [k for k in await self.store.own_keys() if k.key != own and k.valid_until > now]
        for url in self.config.federate:
            node = await self.store.node(url)
            if node is None or node.status not in (NodeStatus.ACTIVE, NodeStatus.BLOCKED):
                await self.store.set_node_status(url, "requested", now)

    # --- the node document -------------------------------------------------------------------

    def document(self) -> bytes:
        """The signed node document, re-signed once a day (spec §13.2)."""
        now = self.now()
        if self._document is not None and now - self._document[1] < DOCUMENT_REFRESH:
            return self._document[0]
        c = self.config
        keys = [NodeKey(bytes(self.identity.peer_id), now - CLOCK_SKEW, now + DOCUMENT_LIFETIME + DOCUMENT_REFRESH)]
        keys += [NodeKey(k.key, k.valid_from, k.valid_until) for k in self._previous_keys[:7]]
        doc = NodeDocument(
            url=self.url,
            name=c.name,
            description=c.description,
            contact=c.contact,
            registration=c.registration,
            code_of_conduct=c.code_of_conduct,
            resources=c.resources,
            mailbox_ttl=c.mailbox_ttl,
            max_listing_lifetime=c.max_listing_lifetime,
            limits=(
                ("max-bytes", 65_536),
                ("clock-skew", CLOCK_SKEW),
                ("join-per-hour", c.join_per_hour),
                ("listings-per-hour", c.listings_per_hour),
                ("sends-per-minute", c.sends_per_minute),
                ("mailbox-cap", c.mailbox_cap),
                ("join-work-bits", c.join_work_bits),
                ("idle-timeout", int(c.idle_timeout)),
                ("batch-size", c.batch_size),
            ),
            protocols=("peerfed/1",),
            software=f"peerfed-py/{__version__}",
            federation=c.federation,
            keys=tuple(keys),
            vocabulary=c.vocabulary,
        )
        raw = sign(self.identity, doc, created_at=now, expires_at=now + DOCUMENT_LIFETIME).raw
        self._document = (raw, now)
        return raw

    # --- joining and sessions ----------------------------------------------------------------

    async def challenge(self, address: str) -> tuple[bytes, int, int]:
        now = self.now()
        self.limiter.hit("challenge", address, limit=self.config.join_per_hour * 3, window=3600, now=now)
        challenge = nacl.utils.random(32)
        expires = now + 300
        await self.store.add_challenge(challenge, expires)
        return challenge, expires, self.config.join_work_bits

    async def open_session(
        self, proof: bytes, invite: str | None, address: str, work: str | None = None
    ) -> tuple[str, PeerId, int]:
        """Verify a signed challenge, apply the registration policy, and issue a session token."""
        now = self.now()
        env = open_signed(proof, context=Context.CLIENT_AUTH, now=now)
        auth = env.body
        assert isinstance(auth, ClientAuth)
        if auth.node != self.url:
            raise RequestError(f"the proof is for {auth.node}, not this node", "auth.invalid")
        peer = bytes(env.author)
        if await self.store.is_erased(erased_hash(peer), now):
            raise RequestError("this key erased itself here; use a new identity", "gone")
        member = await self.store.member(peer)
        joining = member is None or member.status == MemberStatus.PENDING
        # The invite and work headers matter only to a peer who is joining; a member ignores them.
        invite = _header_text(invite, "auth.invite") if joining else None
        if joining and self.config.join_work_bits and not invite:
            work = _header_text(work, "auth.work")
            check_work(auth.challenge, work, self.config.join_work_bits)  # before the challenge is spent
        if not await self.store.take_challenge(auth.challenge, now):
            raise RequestError("unknown, used or expired challenge; ask for a new one", "auth.invalid")
        if member is None or joining:
            self.limiter.hit("join", address, limit=self.config.join_per_hour, window=3600, now=now)
            await self._join(peer, invite, now, pending=member is not None)
        elif member.status == MemberStatus.MOVED:
            raise RequestError(f"this peer moved to {member.moved_to}", "auth.forbidden")
        elif member.status != MemberStatus.MEMBER:
            raise RequestError("this peer may not use this node", "auth.forbidden")
        token = base64.urlsafe_b64encode(nacl.utils.random(32)).decode("ascii").rstrip("=")
        expires = now + self.config.session_ttl
        await self.store.add_session(token_hash(token), peer, expires)
        log.info("session opened")
        return token, env.author, expires

    async def _join(self, peer: bytes, invite: str | None, now: int, *, pending: bool) -> None:
        policy = self.config.registration
        if invite:
            if await self.store.join_with_invite(peer, token_hash(invite.strip().lower()), now, "member"):
                log.info("a peer joined with an invite")
                return
            raise RequestError("the invite code is unknown, used up, revoked or expired", "auth.invite")
        if policy == Registration.OPEN:
            await self.store.set_member(peer, "member", now)
            log.info("a peer joined")
            return
        if policy == Registration.INVITE:
            raise RequestError("this node needs an invite code to join", "auth.invite")
        if not pending:
            await self.store.set_member(peer, "pending", now)
            log.info("a peer asked to join; an operator must approve")
        raise RequestError("your request to join waits for an operator's approval", "auth.pending")

    async def session(self, authorization: str | None) -> PeerId:
        if not authorization or not authorization.startswith("Bearer "):
            raise RequestError("sign in first: Authorization: Bearer <token>", "auth.required")
        peer = await self.store.session_peer(token_hash(authorization[7:].strip()), self.now())
        if peer is None:
            raise RequestError("the session token is unknown or expired", "auth.required")
        return PeerId(peer)

    # --- key bundles ---------------------------------------------------------------------

    async def publish_key_bundle(self, peer: PeerId, raw: bytes) -> Envelope:
        env = open_signed(raw, context=Context.KEY_BUNDLE, now=self.now())
        if env.author != peer:
            raise RequestError("a key bundle must be signed by the signed-in peer", "auth.forbidden")
        outbox = await self._to_federation("key-bundle", item_key(raw), raw)
        stored = await self.store.put_key_bundle(
            bytes(peer), raw, env.created_at, env.expires_at, None, outbox, self.clock()
        )
        if stored and outbox:
            self.wakeup.set()
        return env

    async def key_bundle(self, peer: PeerId) -> tuple[bytes, str | None]:
        """A peer's current key bundle: held here, or asked of the federated nodes."""
        found = await self.store.key_bundle(bytes(peer), self.now())
        if found is None and self.client is not None:
            for node in await self.store.nodes("active"):
                try:
                    answer = await self.client.request("GET", node.url, f"/federation/v1/keys/{peer.text}")
                    raw = base64.b64decode(answer["key_bundle"])
                    await self.ingest(node.url, "key-bundle", raw)
                except (TransportError, RemoteError, KeyError, TypeError, ValueError):
                    continue
                found = await self.store.key_bundle(bytes(peer), self.now())
                if found is not None:
                    break
        if found is None:
            raise RequestError("no current key bundle for this peer", "not_found")
        return found.raw, found.origin or self.url

    async def local_key_bundle(self, peer: PeerId) -> bytes:
        """The bundle of one of this node's own peers, for another node that asks."""
        member = await self.store.member(bytes(peer))
        found = await self.store.key_bundle(bytes(peer), self.now())
        if member is None or member.status != MemberStatus.MEMBER or found is None or found.origin is not None:
            raise RequestError("no such peer here", "not_found")
        return found.raw

    # --- listings --------------------------------------------------------------------------

    async def publish(self, peer: PeerId, raw: bytes, address: str) -> Envelope:
        """A local peer publishes a listing or a withdrawal; queued for every federated node."""
        now = self.now()
        self.limiter.hit("listings", bytes(peer).hex(), limit=self.config.listings_per_hour, window=3600, now=now)
        self.limiter.hit("listings-addr", address, limit=self.config.listings_per_hour * 4, window=3600, now=now)
        env = await self.opener.open(raw, Context.ENVELOPE, now)
        if env.author != peer:
            raise RequestError("a listing must be signed by the signed-in peer", "auth.forbidden")
        if isinstance(env.body, Listing):
            await self._store_listing(env, None)
            log.debug("listing %s published", env.id.hex()[:8])
        elif isinstance(env.body, Withdrawal):
            await self._withdraw(env, await self._to_federation("withdrawal", env.id, raw))
        else:
            raise RequestError("send an erasure to /api/v1/erase", "request.invalid")
        self.wakeup.set()
        return env

    async def _store_listing(self, env: Envelope, origin: str | None) -> bool:
        """Store a listing: a local one (no origin) is queued for every federated node with its key bundle."""
        listing = env.body
        assert isinstance(listing, Listing)
        if env.expires_at - env.created_at > self.config.max_listing_lifetime:
            raise TimeError(
                f"this node keeps listings at most {self.config.max_listing_lifetime // 86_400} days", "time.lifetime"
            )
        return await self.store.insert_listing(
            listing_id=env.id,
            author=bytes(env.author),
            author_hash=erased_hash(bytes(env.author)),
            kind=listing.kind.value,
            timing=listing.timing.value,
            created_at=env.created_at,
            expires_at=env.expires_at,
            origin=origin,
            raw=env.raw,
            facets=listing_facets(listing),
            now=self.clock(),
            bundle_key=item_key if origin is None else None,
            entry=directory_entry(env),
        )

    async def _withdraw(self, env: Envelope, outbox: list[OutboxItem]) -> bool:
        withdrawal = env.body
        assert isinstance(withdrawal, Withdrawal)
        held = await self.store.listing(withdrawal.listing)
        if held is not None and held.author != bytes(env.author):
            raise RequestError("only a listing's author can withdraw it", "auth.forbidden")
        return await self.store.withdraw(withdrawal.listing, bytes(env.author), env.expires_at, outbox, self.clock())

    async def search(
        self,
        *,
        kind: str | None = None,
        timing: str | None = None,
        topic: str | None = None,
        lang: str | None = None,
        fmt: str | None = None,
        vocab: str | None = None,
        before: int | None = None,
        limit: int = 50,
    ) -> str:
        """The directory answer as JSON text: ``{"listings": [...], "next": CURSOR or null}``.

        Each result is spliced from the entry stored with the listing (it was verified when it
        was stored; clients verify it again themselves), the current key bundle and the cursor:
        no signature check, decoding or card building per result, per query.
        """
        facets = []
        if topic:
            facets.append(("topic", topic.casefold()))
        if vocab:
            facets.append(("vocab", vocab))
        if lang:
            facets.append(("lang", lang.lower()))
        if fmt:
            facets.append(("format", fmt))
        limit = max(1, min(limit, 100))
        now = self.now()
        rows = await self.store.search(now=now, kind=kind, timing=timing, facets=facets, before=before, limit=limit)
        parts = []
        texts: dict[Any, str] = {None: "null", self.url: json.dumps(self.url)}  # each encoded once per answer
        for row in rows:
            seq, raw, origin, entry, bundle = row.seq, row.raw, row.origin, row.entry, row.key_bundle
            if entry is None:  # stored before schema 2
                entry = directory_entry(open_signed(raw, context=Context.ENVELOPE, now=now))
            if origin not in texts:
                texts[origin] = json.dumps(origin)
            if bundle not in texts:
                texts[bundle] = f'"{b64(bundle)}"'  # type: ignore[arg-type]
            parts.append(
                f'{entry[:-1]},"listing":"{b64(raw)}","origin":{texts[origin] if origin else texts[self.url]},'
                f'"key_bundle":{texts[bundle]},"cursor":{seq}}}'
            )
        following = rows[-1].seq if len(rows) == limit else None
        return '{"listings":[' + ",".join(parts) + '],"next":' + json.dumps(following) + "}"

    # --- sealed messages ---------------------------------------------------------------------

    async def submit_sealed(
        self,
        peer: PeerId,
        raw: bytes,
        destination: str | Callable[[], str | None] | None,
        address: str = "local",
    ) -> tuple[bytes, str]:
        """A local peer sends a sealed message: delivered here, or queued for the mailbox's node."""
        now = self.now()
        self.limiter.hit("sends", bytes(peer).hex(), limit=self.config.sends_per_minute, window=60, now=now)
        self.limiter.hit("sends-addr", address, limit=self.config.sends_per_minute * 4, window=60, now=now)
        sealed = parse_sealed(raw)
        check_hour(sealed, now)
        mailbox = bytes(sealed.mailbox)
        if callable(destination):
            destination = destination()
        if destination is None:
            status = await self._deliver_here(sealed.id, mailbox, sealed.hour, raw)
            if status is not None:
                return sealed.id, status
            bundle = await self.store.key_bundle(mailbox, now)
            if bundle is None or bundle.origin is None:
                raise RequestError("the recipient's home node is unknown; name it", "not_found")
            destination = bundle.origin
        return sealed.id, await self._route_sealed(sealed.id, mailbox, sealed.hour, raw, destination)

    async def _route_sealed(self, sealed_id: bytes, mailbox: bytes, hour: int, raw: bytes, destination: str) -> str:
        if destination == self.url:
            status = await self._deliver_here(sealed_id, mailbox, hour, raw)
            if status is None:
                raise RequestError("no such mailbox on this node", "not_found")
            return status
        return await self._forward(sealed_id, hour, raw, destination)

    async def _deliver_here(self, sealed_id: bytes, mailbox: bytes, hour: int, raw: bytes) -> str | None:
        """Into a local member's mailbox (or on to where they moved); None if no such member."""
        now = self.now()
        result = await self.store.deliver(
            sealed_id=sealed_id,
            mailbox=mailbox,
            raw=raw,
            now=now,
            expires_at=now + self.config.mailbox_ttl,
            seen_until=hour + MAX_SEALED_AGE + 3600,
            cap=self.config.mailbox_cap,
        )
        if result.status is Delivery.ABSENT:
            return None
        if result.status is Delivery.MOVED:
            assert result.moved_to is not None  # a move always names the new node
            return await self._forward(sealed_id, hour, raw, result.moved_to)
        if result.status is Delivery.DUPLICATE:
            return "duplicate"
        if result.status is Delivery.FULL:
            raise RequestError("the recipient's mailbox is full; try again later", "rate.limited")
        self._notify(mailbox, {"seq": result.seq, "id": sealed_id.hex(), "sealed": b64(raw), "received_at": now})
        return "delivered"

    async def _forward(self, sealed_id: bytes, hour: int, raw: bytes, destination: str) -> str:
        queued = await self.store.forward_sealed(
            sealed_id=sealed_id,
            seen_until=hour + MAX_SEALED_AGE + 3600,
            destination=destination,
            raw=raw,
            now=self.clock(),
        )
        self.wakeup.set()
        return "queued" if queued else "duplicate"

    def _notify(self, mailbox: bytes, item: dict[str, Any]) -> None:
        for push in list(self.live.get(mailbox, ())):
            push(item)

    async def mailbox(self, peer: PeerId, after: int, limit: int) -> list[dict[str, Any]]:
        rows = await self.store.mailbox_items(bytes(peer), after, max(1, min(limit, 500)), self.now())
        return [{"seq": m.seq, "id": m.id.hex(), "sealed": b64(m.raw), "received_at": m.received_at} for m in rows]

    async def ack(self, peer: PeerId, ids: Iterable[str]) -> int:
        try:
            parsed = [bytes.fromhex(i) for i in ids]
        except (ValueError, TypeError) as exc:
            raise RequestError("ids are hex strings", "request.invalid") from exc
        return await self.store.ack(bytes(peer), parsed)

    # --- moving and erasure ------------------------------------------------------------------

    async def move(self, peer: PeerId, to: str) -> int:
        """The peer now lives at ``to``; waiting and future messages follow them there."""
        to = to.rstrip("/")
        if to == self.url:
            raise RequestError("that is this node", "request.invalid")
        node = await self.store.node(to)
        if node is None or node.status != NodeStatus.ACTIVE:
            raise RequestError(f"this node does not federate with {to}", "federation.refused")
        moved = await self.store.move_mailbox(bytes(peer), to, "sealed", self.now())
        self.wakeup.set()
        log.info("a peer moved to another node (%d waiting items forwarded)", moved)
        return moved

    async def erase(self, peer: PeerId, raw: bytes) -> int:
        """ "Erase me": delete everything held for the peer and tell every federated node."""
        env = open_signed(raw, context=Context.ENVELOPE, now=self.now())
        if not isinstance(env.body, Erasure) or env.author != peer:
            raise RequestError("send an erasure signed by the signed-in peer", "auth.forbidden")
        outbox = await self._to_federation("erasure", env.id, raw)
        deleted = await self.store.erase(bytes(peer), erased_hash(bytes(peer)), env.expires_at, outbox, self.clock())
        await self.store.checkpoint()  # old page images leave the WAL too
        for push in list(self.live.pop(bytes(peer), ())):
            push({"type": "closed"})
        self.wakeup.set()
        log.info("a peer was erased (%d listings)", deleted)
        return deleted

    # --- reports -------------------------------------------------------------------------

    async def report(self, peer: PeerId, target: str, reason: str, disclosed: list[bytes]) -> int:
        now = self.now()
        self.limiter.hit("reports", bytes(peer).hex(), limit=20, window=3600, now=now)
        if not isinstance(reason, str) or not 1 <= len(reason.encode()) <= 2000:
            raise RequestError("a report needs a reason of 1 to 2000 bytes", "request.invalid")
        if target.startswith("pf1"):
            kind, key = "peer", bytes(PeerId.from_text(target))
        else:
            try:
                key = bytes.fromhex(target)
            except ValueError as exc:
                raise RequestError("report a listing id (hex) or a peer id (pf1...)", "request.invalid") from exc
            if len(key) != 32 or await self.store.listing(key) is None:
                raise RequestError("no such listing on this node", "not_found")
            kind = "listing"
        for item in disclosed:
            # Only what the peer chose to disclose: signed inner messages, checked but never decrypted here.
            open_signed(item, context=Context.SEALED, now=now)
        evidence = pack(list(disclosed)) if disclosed else None
        return await self.store.add_report(bytes(peer), kind, key, reason, evidence, now)

    # --- federation: inbound -------------------------------------------------------------------

    async def follow_from(self, origin: str) -> str:
        """Another node asks to federate. Open policy: accepted now. Otherwise an operator decides."""
        now = self.now()
        node = await self.store.node(origin)
        status = node.status if node else None
        if status == "blocked":
            raise RequestError("this node does not federate with you", "federation.refused")
        cached = self._documents.pop(origin, None)
        if status in ("active", "requested") or self.config.federation != FederationPolicy.ALLOW_LIST:
            await self.store.set_node_status(origin, "active", now)
            if cached:
                await self.store.set_node_document(origin, *cached)
            if status != "active":
                log.info("federating with %s", origin)
                self.maintain_soon.set()  # catch up on what it published before
            self.wakeup.set()
            return "active"
        await self.store.set_node_status(origin, "pending", now)
        if cached:
            await self.store.set_node_document(origin, *cached)
        log.info("%s asks to federate; approve with: peerfed admin federation allow %s", origin, origin)
        return "pending"

    async def ingest_batch(self, origin: str, body: bytes) -> list[dict[str, Any]]:
        node = await self.store.node(origin)
        if node is None or node.status not in (NodeStatus.ACTIVE, NodeStatus.REQUESTED):
            raise RequestError("this node does not federate with you (yet)", "federation.refused")
        items = unpack(body)
        if not isinstance(items, list) or not 1 <= len(items) <= self.config.batch_size:
            raise RequestError(f"a batch is an array of 1 to {self.config.batch_size} items", "request.invalid")
        results: list[dict[str, Any]] = [{} for _ in items]

        async def take(index: int) -> None:
            item = items[index]
            try:
                if not (isinstance(item, list) and len(item) == 2 and item[0] in BATCH_KINDS):
                    raise RequestError("an item is [kind, bytes]", "request.invalid")
                kind, raw = item
                if not isinstance(raw, bytes):
                    raise RequestError("an item's payload is bin", "request.invalid")
                results[index] = {"status": await self.ingest(origin, str(kind), raw)}
            except (RemoteError, UnavailableError) as exc:
                results[index] = {"status": "error", "code": exc.code, "message": str(exc)}

        async def in_order(indexes: list[int]) -> None:
            for index in indexes:
                await take(index)

        # Sealed messages are independent of each other and of everything else: they are taken
        # all at once, so their writes share transactions. Other items keep the sender's order
        # (a listing before its withdrawal, a key bundle before an erasure).
        sealed = [i for i, item in enumerate(items) if isinstance(item, list) and item[:1] == ["sealed"]]
        taken_at_once = set(sealed)
        others = [i for i in range(len(items)) if i not in taken_at_once]
        await asyncio.gather(in_order(others), *(take(i) for i in sealed))
        return results

    async def ingest(self, origin: str, kind: str, raw: bytes) -> str:
        """Take one item another node pushed or we pulled: 'ok' or 'duplicate'; raises RemoteError."""
        now = self.now()
        if kind == "sealed":
            sealed = parse_sealed(raw)
            check_hour(sealed, now)
            return (
                "ok"
                if await self._route_sealed(sealed.id, bytes(sealed.mailbox), sealed.hour, raw, self.url) != "duplicate"
                else "duplicate"
            )
        if kind == "key-bundle":
            env = open_signed(raw, context=Context.KEY_BUNDLE, now=now)
            if await self.store.is_erased(erased_hash(bytes(env.author)), now):
                raise RequestError("that peer was erased", "gone")
            local = await self.store.member(bytes(env.author))
            if local is not None and local.status == MemberStatus.MEMBER:
                return "duplicate"  # our own peers' keys are published here, not pushed to us
            assert isinstance(env.body, KeyBundle)
            stored = await self.store.put_key_bundle(bytes(env.author), raw, env.created_at, env.expires_at, origin)
            return "ok" if stored else "duplicate"
        if kind == "takedown":
            if len(raw) != 32:
                raise RequestError("a takedown names a listing id", "request.invalid")
            held = await self.store.listing(raw)
            if held is None:
                return "duplicate"
            if held.origin != origin:
                raise RequestError("only a listing's home node can take it down", "auth.forbidden")
            await self.store.remove_listing(raw, [], self.clock())
            return "ok"
        env = await self.opener.open(raw, Context.ENVELOPE, now)
        if isinstance(env.body, Listing):
            return "ok" if await self._store_listing(env, origin) else "duplicate"
        if isinstance(env.body, Withdrawal):
            return "ok" if await self._withdraw(env, []) else "duplicate"
        assert isinstance(env.body, Erasure)
        await self.store.erase(bytes(env.author), erased_hash(bytes(env.author)), env.expires_at, [], self.clock())
        await self.store.checkpoint()
        return "ok"

    async def pull_page(self, after: int, limit: int) -> tuple[list[dict[str, Any]], int]:
        """Local listings after a cursor, with their authors' key bundles, for a catch-up pull."""
        now = self.now()
        rows = await self.store.local_listings_after(after, now, max(1, min(limit, 500)))
        items = []
        for row in rows:
            bundle = await self.store.key_bundle(row.author, now)
            items.append({"seq": row.seq, "listing": b64(row.raw), "key_bundle": b64(bundle.raw) if bundle else None})
        return items, rows[-1].seq if rows else after

    # --- federation: outbound ------------------------------------------------------------------

    async def _to_federation(self, kind: str, item: bytes, raw: bytes) -> list[OutboxItem]:
        return [OutboxItem(n.url, kind, item, raw) for n in await self.store.nodes("active")]

    async def key_owner(self, key: bytes, now: int) -> str | None:
        owner = await self.store.node_for_key(key, now)
        if owner is not None:
            return owner
        for url, (_, expires, keys) in self._documents.items():
            if expires > now and any(k == key and start <= now < end for k, start, end in keys):
                return url
        return None

    async def discover(self, url: str) -> None:
        """Fetch and cache a node's document and keys (rate-limited per node)."""
        if self.client is None:
            return
        node = await self.store.node(url)
        if node is not None and node.status == NodeStatus.BLOCKED:
            raise RequestError("this node does not federate with you", "federation.refused")
        now = self.clock()
        if now - self._discovering.get(url, -1e9) < 10:
            return
        self._discovering[url] = now
        if len(self._discovering) > 10_000:
            self._discovering.clear()
        try:
            payload = await self.client.fetch_document(url)
        except TransportError as exc:
            raise RequestError(f"cannot fetch the node document of {url}: {exc}", "auth.invalid") from exc
        doc, env = parse_document(payload, url, int(now))
        keys = [(k.key, k.valid_from, k.valid_until) for k in doc.keys]
        if node is not None:
            await self.store.set_node_document(url, env.raw, env.expires_at, keys)
            return
        # A node we have no relation with yet: keep its document in bounded memory only, so an
        # unverified request cannot make us store anything. A follow that verifies records it.
        self._documents[url] = (env.raw, env.expires_at, keys)
        self._documents.move_to_end(url)
        while len(self._documents) > 1000:
            self._documents.popitem(last=False)

    async def maintain(self) -> None:
        """Ask 'requested' nodes to federate, then catch up on listings from every active one."""
        if self.client is None:
            return
        for node in await self.store.nodes("requested"):
            try:
                answer = await self.client.request("POST", node.url, "/federation/v1/follow", b"{}", "application/json")
                if isinstance(answer, dict) and answer.get("status") == "active":
                    await self.store.set_node_status(node.url, "active", self.now())
                    log.info("federating with %s", node.url)
            except (TransportError, RemoteError) as exc:
                log.warning("federation request to %s failed: %s", node.url, exc)
        # Catch up with every federated node: what was published before we federated, or
        # while a push could not reach us. Cheap when there is nothing new.
        for node in await self.store.nodes("active"):
            if node.breaker_until > self.clock():
                continue
            try:
                await self.pull(node.url)
            except (TransportError, RemoteError) as exc:
                log.info("catch-up from %s failed: %s", node.url, exc)

    async def pull(self, url: str) -> int:
        """Catch up on listings published at ``url`` since the last pull."""
        assert self.client is not None
        node = await self.store.node(url)
        if node is None:
            return 0
        cursor, taken = node.pull_cursor, 0
        for _ in range(100):
            answer = await self.client.request("GET", url, f"/federation/v1/listings?after={cursor}&limit=200")
            items = answer.get("items", []) if isinstance(answer, dict) else []
            for item in items:
                try:
                    if item.get("key_bundle"):
                        await self.ingest(url, "key-bundle", base64.b64decode(item["key_bundle"]))
                    await self.ingest(url, "listing", base64.b64decode(item["listing"]))
                    taken += 1
                except (RemoteError, ValueError, TypeError, KeyError, AttributeError) as exc:
                    log.info("skipped a pulled listing from %s: %s", url, exc)
            following = answer.get("next") if isinstance(answer, dict) else None
            if not items or not isinstance(following, int) or following <= cursor:
                break
            cursor = following
            await self.store.set_pull_cursor(url, cursor)
        return taken

    async def deliver_due(self) -> int:
        """Send every due outbox item, batched per destination. Returns items finished."""
        if self.client is None:
            return 0
        now = self.clock()
        rows = await self.store.due(now, self.config.batch_size * 20)
        by_destination: dict[str, list[OutboxRow]] = defaultdict(list)
        for row in rows:
            by_destination[row.destination].append(row)
        counts = await asyncio.gather(*(self._send_all(d, items, now) for d, items in by_destination.items()))
        return sum(counts)

    async def _send_all(self, destination: str, items: list[OutboxRow], now: float) -> int:
        """One destination's due items: a first batch alone, then the rest a few at a time.

        Destinations are served at once, not one after another, so one slow node does not hold
        up the others. A node that fails the first batch costs one failure and one timeout per
        round, as before; one that takes it gets the rest pipelined, PIPELINE batches in flight.
        """
        size = self.config.batch_size
        batches = [items[start : start + size] for start in range(0, len(items), size)]
        before = await self.store.node(destination)
        failures = before.failures if before else 0
        finished = await self._send_batch(destination, batches[0], now)
        after = await self.store.node(destination)
        if len(batches) == 1 or (after.failures if after else 0) > failures:
            return finished
        gate = asyncio.Semaphore(PIPELINE)

        async def send(batch: list[OutboxRow]) -> int:
            async with gate:
                return await self._send_batch(destination, batch, now)

        return finished + sum(await asyncio.gather(*(send(b) for b in batches[1:])))

    async def _send_batch(self, destination: str, rows: list[OutboxRow], now: float) -> int:
        assert self.client is not None
        expired = [r for r in rows if gives_up(r.created_at, now, self.config.give_up_after)]
        if expired:
            await self.store.outbox_finish(
                [r.seq for r in expired], "gave_up", int(now), "gave up after the retry bound"
            )
            log.warning(
                "gave up delivering %d items to %s after %d s; see: peerfed admin federation failures",
                len(expired),
                destination,
                self.config.give_up_after,
            )
        rows = [r for r in rows if r not in expired]
        if not rows:
            return len(expired)
        body = pack([[r.kind, r.raw] for r in rows])
        try:
            answer = await self.client.request(
                "POST", destination, "/federation/v1/batch", body, "application/vnd.peerfed.batch"
            )
            results = answer.get("results") if isinstance(answer, dict) else None
            if not isinstance(results, list) or len(results) != len(rows):
                raise TransportError(f"{destination} answered a batch with a malformed result")
        except (TransportError, RemoteError) as exc:
            code = exc.code if isinstance(exc, RemoteError) else "transport"
            if isinstance(exc, RemoteError) and code not in _RETRYABLE:
                # The whole batch was refused for a reason retrying cannot fix.
                await self.store.outbox_finish([r.seq for r in rows], "rejected", int(now), f"{code}: {exc}")
                log.warning("%s refused a batch of %d: %s", destination, len(rows), exc)
                return len(expired) + len(rows)
            node = await self.store.node(destination)
            failures = (node.failures if node else 0) + 1
            until = breaker_until(failures, now, threshold=self.config.breaker_threshold)
            if node:
                await self.store.node_result(destination, False, int(now), str(exc)[:300], until)
            await self._retry_later(rows, now, str(exc)[:300])
            log.info("delivery to %s failed (%s); will retry", destination, exc)
            return len(expired)
        await self.store.node_result(destination, True, int(now), None, 0)
        done, rejected, retry = [], [], []
        for row, result in zip(rows, results, strict=True):
            status = result.get("status") if isinstance(result, dict) else None
            if status in ("ok", "duplicate"):
                done.append(row.seq)
            elif isinstance(result, dict) and result.get("code") in _RETRYABLE:
                retry.append(row)
            else:
                if isinstance(result, dict):
                    rejected.append((row.seq, f"{result.get('code')}: {result.get('message', '')}"))
                else:
                    rejected.append((row.seq, "malformed result"))
        if done:
            await self.store.outbox_finish(done, "done", int(now))
            if any(r.kind == "erasure" for r in rows):
                await self.store.checkpoint()  # an erasure's bytes leave the WAL once it is delivered
        for seq, reason in rejected:
            await self.store.outbox_finish([seq], "rejected", int(now), reason[:300])
        if retry:
            await self._retry_later(retry, now, "the receiver asked to retry")
        return len(expired) + len(done) + len(rejected)

    async def _retry_later(self, rows: list[OutboxRow], now: float, error: str) -> None:
        """Schedule each row's next attempt by the retry policy (spec §13.7)."""
        config = self.config
        await self.store.outbox_retry(
            [
                (
                    r.seq,
                    next_attempt(
                        r.attempts + 1, now, base=config.retry_base, cap=config.retry_cap, jitter=self._rng.random()
                    ),
                )
                for r in rows
            ],
            error,
        )
