"""What other nodes ask of this one: verified requests, follows, batches, catch-up pages, keys (spec §13.3, §13.7).

Every request is verified first (``verify.py``); a batch is taken only from a node this one
federates with, item by item, each item checked by the part it belongs to as hostile input.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from peerfed.protocol import (
    Context,
    Listing,
    PeerId,
    RemoteError,
    RequestError,
    Withdrawal,
    unpack,
)
from peerfed.protocol.errors import UnavailableError
from peerfed.protocol.node_bodies import Erasure, FederationPolicy, url_host

from ..config import Config
from ..directory import Directory
from ..limits import OriginQuotas, RateLimiter
from ..mailbox import Mailbox
from ..moderation import Moderation
from ..opener import Opener
from ..store import Delivery, ErasedTombstone, NodeStatus, Store, WithdrawnTombstone
from .discovery import Discovery
from .verify import verify_request

__all__ = ["BATCH_KINDS", "CatchUpItem", "CatchUpPage", "Inbound", "IngestResult"]

log = logging.getLogger("peerfed.node")

BATCH_KINDS = ("key-bundle", "listing", "withdrawal", "erasure", "takedown", "sealed")


@dataclass(frozen=True)
class IngestResult:
    """One batch item's result: ``ok``, ``duplicate``, or ``error`` with its code and message;
    ``auth.work`` also says how many bits of work the item needs (spec §13.7, Batches)."""

    status: Literal["ok", "duplicate", "error"]
    code: str | None = None
    message: str | None = None
    bits: int | None = None


@dataclass(frozen=True)
class CatchUpItem:
    seq: int
    listing: bytes
    key_bundle: bytes | None


@dataclass(frozen=True)
class CatchUpPage:
    items: list[CatchUpItem]
    next: int  # the cursor to pull after
    withdrawn: list[WithdrawnTombstone] = field(default_factory=list)
    erased: list[ErasedTombstone] = field(default_factory=list)
    withdrawn_next: int = 0  # the tombstone cursors to pull after
    erased_next: int = 0


class Inbound:
    """This node's side of node-to-node requests."""

    def __init__(
        self,
        config: Config,
        store: Store,
        clock: Callable[[], float],
        opener: Opener,
        *,
        directory: Directory,
        mailbox: Mailbox,
        moderation: Moderation,
        discovery: Discovery,
        wake: Callable[[], None],
        maintain_soon: Callable[[], None],
        limiter: RateLimiter | None = None,
    ) -> None:
        self._config = config
        self._store = store
        self._clock = clock
        self._opener = opener
        self._directory = directory
        self._mailbox = mailbox
        self._moderation = moderation
        self._discovery = discovery
        self._wake = wake  # the outbox has new work
        self._maintain_soon = maintain_soon  # follow and pull now, not at the next tick
        self._quotas = OriginQuotas(config, limiter or RateLimiter())

    # --- who is asking ------------------------------------------------------------------------------

    async def verify(self, authorization: str | None, method: str, path: str, body: bytes) -> str:
        """The origin of a verified node request; raises RemoteError in the order of spec §13.3."""
        verified = await verify_request(
            authorization,
            method=method,
            path=path,
            destination=self._config.url,
            body=body,
            now=int(self._clock()),
            check_key=self._discovery.check_key,
            use_nonce=self._store.use_nonce,
        )
        return verified.origin

    async def verify_active(self, authorization: str | None, method: str, path: str) -> str:
        """A verified body-less request from a node this one federates with (federation.refused otherwise)."""
        origin = await self.verify(authorization, method, path, b"")
        known = await self._store.node(origin)
        if known is None or known.status != NodeStatus.ACTIVE:
            raise RequestError("this node does not federate with you", "federation.refused")
        return origin

    # --- following ----------------------------------------------------------------------------------

    async def follow_from(self, origin: str) -> Literal["active", "pending"]:
        """Another node asks to federate. Open policy: accepted now. Otherwise an operator decides."""
        now = int(self._clock())
        node = await self._store.node(origin)
        status = node.status if node else None
        if status == "blocked":
            raise RequestError("this node does not federate with you", "federation.refused")
        if node is None:
            await self._check_room_for(origin)
        if status in ("active", "requested") or self._config.federation != FederationPolicy.ALLOW_LIST:
            await self._store.set_node_status(origin, "active", now)
            # The document the follow was checked with: stored now that the node is active
            # (only an active node's keys are stored; a pending one's stay in memory).
            cached = self._discovery.cached(origin)
            if cached:
                await self._store.set_node_document(origin, *cached)
            if status != "active":
                log.info("federating with %s", origin)
                self._maintain_soon()  # catch up on what it published before
            self._wake()
            return "active"
        await self._store.set_node_status(origin, "pending", now)
        log.info("%s asks to federate; approve with: peerfed admin federation allow %s", origin, origin)
        return "pending"

    async def _check_room_for(self, origin: str) -> None:
        """Refuse a node this one does not know yet past the follower cap, or past the cap of nodes
        on its host (spec §13.7, Following): one host cannot pose as many nodes by varying the port."""
        known = await self._store.node_statuses()
        host = url_host(origin)
        if sum(1 for url, _ in known if url_host(url) == host) >= self._config.follows_per_host:
            raise RequestError("this node federates with enough nodes on your host", "federation.refused")
        if sum(1 for _, status in known if status != NodeStatus.BLOCKED) >= self._config.max_followers:
            raise RequestError("this node federates with as many nodes as it takes", "federation.refused")

    # --- batches ------------------------------------------------------------------------------------

    async def ingest_batch(self, origin: str, body: bytes) -> list[IngestResult]:
        """Take a pushed batch; one result per item, in order. Raises federation.refused or
        request.invalid for the batch as a whole."""
        node = await self._store.node(origin)
        if node is None or node.status not in (NodeStatus.ACTIVE, NodeStatus.REQUESTED):
            raise RequestError("this node does not federate with you (yet)", "federation.refused")
        items = unpack(body)
        size = self._config.batch_size
        if not isinstance(items, list) or not 1 <= len(items) <= size:
            raise RequestError(f"a batch is an array of 1 to {size} items", "request.invalid")
        results: list[IngestResult] = [IngestResult("error") for _ in items]

        async def take(index: int) -> None:
            item = items[index]
            try:
                kind, raw, work = _item(item)
                await self.charge(origin, kind, raw)
                results[index] = IngestResult(await self.ingest(origin, kind, raw, work))
            except (RemoteError, UnavailableError) as exc:
                bits = self._config.first_contact_work_bits if exc.code == "auth.work" else None
                results[index] = IngestResult("error", exc.code, str(exc), bits)

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
        self._wake()  # taking a batch can queue work for other nodes: the outbox loop looks again
        return results

    async def charge(self, origin: str, kind: str, raw: bytes) -> None:
        """Count an item ``origin`` sends (pushed or pulled) against its quotas (spec §13.8, Limits on
        other nodes); raises RequestError (rate.limited): the sender keeps the item and retries it."""
        await self._quotas.charge(origin, kind, raw, self._clock())

    async def ingest(self, origin: str, kind: str, raw: bytes, work: str | None = None) -> Literal["ok", "duplicate"]:
        """Take one item another node pushed or we pulled; raises RemoteError if it is refused.
        ``work`` is a sealed item's proof of work (hex), needed on first contact (§13.5)."""
        now = int(self._clock())
        if kind == "sealed":
            status = await self._mailbox.take(origin, raw, work)
            return "duplicate" if status == Delivery.DUPLICATE else "ok"
        if kind == "key-bundle":
            return "ok" if await self._directory.take_key_bundle(origin, raw) else "duplicate"
        if kind == "takedown":
            return "ok" if await self._directory.take_down(origin, raw) else "duplicate"
        env = await self._opener.open(raw, Context.ENVELOPE, now)
        if isinstance(env.body, Listing):
            return "ok" if await self._directory.take_listing(env, origin) else "duplicate"
        if isinstance(env.body, Withdrawal):
            return "ok" if await self._directory.withdraw(env, [], origin) else "duplicate"
        assert isinstance(env.body, Erasure)
        await self._moderation.take_erasure(env)
        return "ok"

    # --- what other nodes read ----------------------------------------------------------------------

    async def pull_page(self, after: int, limit: int, withdrawn_after: int = 0, erased_after: int = 0) -> CatchUpPage:
        """Local listings after a cursor, with their authors' key bundles, and the tombstones in
        force after theirs (withdrawals by members here, erasures), for a catch-up pull."""
        now = int(self._clock())
        limit = max(1, min(limit, 500))
        rows = await self._store.local_listings_after(after, now, limit)
        items = []
        for row in rows:
            bundle = await self._store.key_bundle(row.author, now)
            items.append(CatchUpItem(row.seq, row.raw, bundle.raw if bundle else None))
        withdrawn = await self._store.withdrawals_after(max(0, withdrawn_after), now, limit)
        erased = await self._store.erasures_after(max(0, erased_after), now, limit)
        return CatchUpPage(
            items,
            rows[-1].seq if rows else after,
            withdrawn,
            erased,
            withdrawn[-1].cursor if withdrawn else withdrawn_after,
            erased[-1].cursor if erased else erased_after,
        )

    async def member_key_bundle(self, peer: PeerId) -> bytes:
        """A member's key bundle, for a node that asks (spec §13.7, Keys on demand).

        Raises not_found, the same for a non-member and a member without a bundle."""
        return await self._directory.member_key_bundle(peer)


def _item(item: object) -> tuple[str, bytes, str | None]:
    """A batch item: ``[kind, bytes]``, or ``["sealed", bytes, work]`` with 1-32 bytes of proof of
    work over the sealed id (spec §13.7, Batches). Raises request.invalid."""
    if not (isinstance(item, list) and len(item) in (2, 3) and item[0] in BATCH_KINDS):
        raise RequestError('an item is [kind, bytes] (or ["sealed", bytes, work])', "request.invalid")
    if not isinstance(item[1], bytes):
        raise RequestError("an item's payload is bin", "request.invalid")
    if len(item) == 3 and (item[0] != "sealed" or not isinstance(item[2], bytes) or not 1 <= len(item[2]) <= 32):
        raise RequestError("only a sealed item carries work, as 1 to 32 bytes", "request.invalid")
    return str(item[0]), item[1], item[2].hex() if len(item) == 3 else None
