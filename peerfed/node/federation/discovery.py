"""Discovery: fetching and caching other nodes' documents, and which node a key belongs to (spec §13.2, §13.3).

A key belongs to the node whose own document lists it. Documents of nodes this one federates
with are kept in the store; those of nodes it has no relation with yet only in bounded memory,
so an unverified request cannot make the node store anything.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

from peerfed.protocol import RequestError

from ..store import NodeStatus, Store
from .transport import Remote, TransportError, parse_document

__all__ = ["CachedDocument", "Discovery"]

CachedDocument = tuple[bytes, int, list[tuple[bytes, int, int]]]  # (raw, expires_at, [(key, from, until)])
REFETCH_AFTER = 10  # seconds between fetches of one node's document (spec §13.2)
MAX_CACHED = 1000


class Discovery:
    """Node documents, fetched on demand and cached; ``key_owner`` answers from them."""

    def __init__(self, store: Store, clock: Callable[[], float], client: Remote | None) -> None:
        self._store = store
        self._clock = clock
        self.client = client
        self._discovering: dict[str, float] = {}
        self._documents: OrderedDict[str, CachedDocument] = OrderedDict()

    async def key_owner(self, key: bytes, now: int) -> str | None:
        """The node whose document lists ``key`` as valid at ``now``, if any is known."""
        owner = await self._store.node_for_key(key, now)
        if owner is not None:
            return owner
        for url, (_, expires, keys) in self._documents.items():
            if expires > now and any(k == key and start <= now < end for k, start, end in keys):
                return url
        return None

    async def discover(self, url: str) -> None:
        """Fetch and cache a node's document and keys (at most once every 10 s per node).

        Raises federation.refused (a blocked node, or a document that does not check out) or
        auth.invalid (the document cannot be fetched).
        """
        if self.client is None:
            return
        node = await self._store.node(url)
        if node is not None and node.status == NodeStatus.BLOCKED:
            raise RequestError("this node does not federate with you", "federation.refused")
        now = self._clock()
        if now - self._discovering.get(url, -1e9) < REFETCH_AFTER:
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
            await self._store.set_node_document(url, env.raw, env.expires_at, keys)
            return
        # A node we have no relation with yet: keep its document in bounded memory only, so an
        # unverified request cannot make us store anything. A follow that verifies records it.
        self._documents[url] = (env.raw, env.expires_at, keys)
        self._documents.move_to_end(url)
        while len(self._documents) > MAX_CACHED:
            self._documents.popitem(last=False)

    def take_cached(self, url: str) -> CachedDocument | None:
        """The document held in memory for ``url``, handed over to be stored (a verified follow)."""
        return self._documents.pop(url, None)
