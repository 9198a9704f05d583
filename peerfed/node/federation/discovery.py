"""Discovery: fetching node documents, checking a request's key against its origin (spec §13.2, §13.3, §13.7).

A key belongs to a node only as that node's own document says: a request's signing key is
checked against the document of the origin the request names, never looked up among other
nodes' documents, so a stranger that lists another node's key in its own document changes
nothing for that node.

Fetching is the part a stranger can trigger, so it is narrow (spec §13.7, Discovery): only for
a follow, or for a node this one federates with; at most once every 10 s per node; at most
MAX_FETCHES at once; through ``NodeClient.fetch_document`` (no redirects, 65,536 bytes, a
deadline, the address rules). Every reason a document cannot be had right now is answered
with one generic ``node.unavailable``; the operator's log has the detail.

Keys are stored only for active nodes (the store drops them when a node stops being active);
documents of nodes this one has no relation with yet live only in bounded memory.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable

from peerfed.protocol import RemoteError, RequestError
from peerfed.protocol.errors import UnavailableError

from ..store import NodeStatus, Store
from .transport import Remote, TransportError, open_document

__all__ = ["CANNOT_CHECK", "MAX_FETCHES", "REFETCH_AFTER", "CachedDocument", "Discovery"]

log = logging.getLogger("peerfed.node")

CachedDocument = tuple[bytes, int, list[tuple[bytes, int, int]]]  # (raw, expires_at, [(key, from, until)])
REFETCH_AFTER = 10  # seconds between fetches of one node's document (spec §13.2)
MAX_FETCHES = 8  # document fetches in flight at once; past it, a request is told to retry
MAX_CACHED = 1000
MAX_THROTTLED = 10_000
CANNOT_CHECK = "this node cannot check the requesting node's key right now; try again later"
NOT_FEDERATED = "this node does not federate with you"
FETCHES_FROM = (NodeStatus.ACTIVE, NodeStatus.REQUESTED)  # a relation this node has: fetching is allowed


class Discovery:
    """Node documents, fetched on demand and cached; ``check_key`` answers from them."""

    def __init__(self, store: Store, clock: Callable[[], float], client: Remote | None) -> None:
        self._store = store
        self._clock = clock
        self.client = client
        self._attempted: OrderedDict[str, float] = OrderedDict()  # url -> when its document was last fetched
        self._documents: OrderedDict[str, CachedDocument] = OrderedDict()
        self._in_flight: dict[str, asyncio.Task[list[tuple[bytes, int, int]]]] = {}
        self.fetches = 0  # documents asked for, for tests and the operator

    async def check_key(self, origin: str, key: bytes, now: int, *, follow: bool) -> None:
        """Return if ``origin``'s own document lists ``key`` as valid at ``now``; raise otherwise (spec §13.3 step 5).

        The document held for ``origin`` is used first; if it does not list the key, the document
        is fetched once more, but only for a follow or a node this one federates with.
        Raises federation.refused (blocked, or no relation and not a follow: nothing is fetched),
        node.unavailable (the document cannot be had now: throttled, busy, unreachable, invalid)
        or auth.invalid (the document fetched just now does not list the key).
        """
        node = await self._store.node(origin)
        if node is not None and node.status == NodeStatus.BLOCKED:
            self._documents.pop(origin, None)
            raise RequestError(NOT_FEDERATED, "federation.refused")
        if await self._held_lists(origin, key, now):
            return
        if not follow and (node is None or node.status not in FETCHES_FROM):
            raise RequestError(NOT_FEDERATED, "federation.refused")
        if self.client is None:
            raise UnavailableError(CANNOT_CHECK)
        keys = await self._fetch(origin, now)
        if not _lists(keys, key, now):
            raise RequestError(f"the key is not one {origin} publishes", "auth.invalid")

    async def _held_lists(self, origin: str, key: bytes, now: int) -> bool:
        if await self._store.node_key_valid(origin, key, now):
            return True
        cached = self._documents.get(origin)
        return cached is not None and cached[1] > now and _lists(cached[2], key, now)

    async def _fetch(self, url: str, now: int) -> list[tuple[bytes, int, int]]:
        """The keys of ``url``'s document, fetched now; raises node.unavailable if it cannot be."""
        running = self._in_flight.get(url)
        if running is not None:
            return await asyncio.shield(running)
        last = self._attempted.get(url)
        if last is not None and self._clock() - last < REFETCH_AFTER:
            raise UnavailableError(CANNOT_CHECK)
        if len(self._in_flight) >= MAX_FETCHES:
            raise UnavailableError(CANNOT_CHECK)
        self._attempted[url] = self._clock()
        self._attempted.move_to_end(url)
        while len(self._attempted) > MAX_THROTTLED:
            self._attempted.popitem(last=False)
        task = asyncio.create_task(self._fetch_now(url, now))
        self._in_flight[url] = task

        def finished(done: asyncio.Task[list[tuple[bytes, int, int]]]) -> None:
            self._in_flight.pop(url, None)
            if not done.cancelled():
                done.exception()  # retrieved here too, in case the request that waited went away

        task.add_done_callback(finished)
        # Shielded: a caller that gives up (its client went away) does not cancel the fetch
        # others may be waiting on.
        return await asyncio.shield(task)

    async def _fetch_now(self, url: str, now: int) -> list[tuple[bytes, int, int]]:
        assert self.client is not None
        self.fetches += 1
        try:
            raw = await self.client.fetch_document(url)
            doc, env = open_document(raw, url, now)
        except (TransportError, RemoteError) as exc:
            log.info("cannot fetch the node document of %s: %s", url, exc)
            raise UnavailableError(CANNOT_CHECK) from exc
        keys = [(k.key, k.valid_from, k.valid_until) for k in doc.keys]
        node = await self._store.node(url)
        if node is not None and node.status == NodeStatus.ACTIVE:
            await self._store.set_node_document(url, env.raw, env.expires_at, keys)
        else:
            # A node this one has no active relation with: its document stays in bounded memory
            # only, so an unverified request cannot make the node store anything.
            self._documents[url] = (env.raw, env.expires_at, keys)
            self._documents.move_to_end(url)
            while len(self._documents) > MAX_CACHED:
                self._documents.popitem(last=False)
        return keys

    def cached(self, url: str) -> CachedDocument | None:
        """The document held in memory for ``url``, to be stored once it becomes active (a verified follow)."""
        return self._documents.get(url)


def _lists(keys: list[tuple[bytes, int, int]], key: bytes, now: int) -> bool:
    return any(k == key and start <= now < end for k, start, end in keys)
