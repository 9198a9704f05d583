"""Catching up with other nodes: following them, pulling their listings, asking them for keys (spec §13.7).

Pushes can be missed (a node was down, or not yet federated); the pull is what makes every
federated node converge. Everything pulled is taken through ``Inbound.ingest``, with the same
checks as a push.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Callable

from peerfed.protocol import PeerId, RemoteError, RequestError

from ..config import Config
from ..directory import Directory, KeyBundleHeld
from ..store import NodeStatus, Store
from .inbound import Inbound
from .transport import Remote, TransportError

__all__ = ["MISSING_KEYS_HELD", "MISSING_KEYS_TTL", "PAGE", "PAGES_PER_PULL", "CatchUp"]

log = logging.getLogger("peerfed.node")
PAGE = 200  # listings asked for per catch-up request
PAGES_PER_PULL = 100
# Peers no federated node could serve a bundle for, not asked about again for a while (spec §13.7).
MISSING_KEYS_TTL = 60
MISSING_KEYS_HELD = 4096


class CatchUp:
    """Follows, catch-up pulls and key look-ups, from this node to the ones it federates with."""

    def __init__(
        self,
        config: Config,
        store: Store,
        clock: Callable[[], float],
        client: Remote | None,
        *,
        inbound: Inbound,
        directory: Directory,
    ) -> None:
        self._config = config
        self._store = store
        self._clock = clock
        self.client = client
        self._inbound = inbound
        self._directory = directory
        self._missing: dict[bytes, float] = {}  # peer -> until when it is not asked about; oldest first

    async def start(self) -> None:
        """Ask the nodes the configuration names to federate, unless already federated or blocked."""
        now = int(self._clock())
        for url in self._config.federate:
            node = await self._store.node(url)
            if node is None or node.status not in (NodeStatus.ACTIVE, NodeStatus.BLOCKED):
                await self._store.set_node_status(url, "requested", now)

    async def maintain(self) -> None:
        """Ask 'requested' nodes to federate, then catch up on listings from every active one."""
        if self.client is None:
            return
        for node in await self._store.nodes("requested"):
            try:
                answer = await self.client.request("POST", node.url, "/federation/v1/follow", b"{}", "application/json")
                if isinstance(answer, dict) and answer.get("status") == "active":
                    await self._store.set_node_status(node.url, "active", int(self._clock()))
                    log.info("federating with %s", node.url)
            except (TransportError, RemoteError) as exc:
                log.warning("federation request to %s failed: %s", node.url, exc)
        # Catch up with every federated node: what was published before we federated, or
        # while a push could not reach us. Cheap when there is nothing new.
        for node in await self._store.nodes("active"):
            if node.breaker_until > self._clock():
                continue
            try:
                await self.pull(node.url)
            except (TransportError, RemoteError) as exc:
                log.info("catch-up from %s failed: %s", node.url, exc)

    async def pull(self, url: str) -> int:
        """Catch up on listings published at ``url`` since the last pull; returns how many were taken.

        Raises TransportError or RemoteError if a page cannot be had; what was taken stays taken.
        """
        assert self.client is not None
        node = await self._store.node(url)
        if node is None:
            return 0
        cursor, taken = node.pull_cursor, 0
        for _ in range(PAGES_PER_PULL):
            answer = await self.client.request("GET", url, f"/federation/v1/listings?after={cursor}&limit={PAGE}")
            items = answer.get("items", []) if isinstance(answer, dict) else []
            for item in items:
                try:
                    if item.get("key_bundle"):
                        await self._inbound.ingest(url, "key-bundle", base64.b64decode(item["key_bundle"]))
                    await self._inbound.ingest(url, "listing", base64.b64decode(item["listing"]))
                    taken += 1
                except (RemoteError, ValueError, TypeError, KeyError, AttributeError) as exc:
                    log.info("skipped a pulled listing from %s: %s", url, exc)
            following = answer.get("next") if isinstance(answer, dict) else None
            if not items or not isinstance(following, int) or following <= cursor:
                break
            cursor = following
            await self._store.set_pull_cursor(url, cursor)
        return taken

    async def key_bundle(self, peer: PeerId) -> KeyBundleHeld:
        """A peer's current key bundle: held here, or asked of the federated nodes; raises not_found.

        Every active node is asked at once, and all of them together get ``key_lookup_deadline``
        seconds: slow or silent nodes cost one deadline, not one timeout each. A peer nobody could
        serve is remembered for ``MISSING_KEYS_TTL`` seconds (at most ``MISSING_KEYS_HELD`` peers).
        """
        found = await self._directory.key_bundle(peer)
        if found is None and self.client is not None and not self._known_missing(bytes(peer)):
            asks = [asyncio.create_task(self._ask_keys(node.url, peer)) for node in await self._store.nodes("active")]
            if asks:
                _, late = await asyncio.wait(asks, timeout=self._config.key_lookup_deadline)
                for task in late:
                    task.cancel()
                await asyncio.gather(*late, return_exceptions=True)
            found = await self._directory.key_bundle(peer)
            if found is None:
                self._remember_missing(bytes(peer))
        if found is None:
            raise RequestError("no current key bundle for this peer", "not_found")
        return found

    async def _ask_keys(self, url: str, peer: PeerId) -> None:
        assert self.client is not None
        try:
            answer = await self.client.request("GET", url, f"/federation/v1/keys/{peer.text}")
            await self._inbound.ingest(url, "key-bundle", base64.b64decode(answer["key_bundle"]))
        except (TransportError, RemoteError, KeyError, TypeError, ValueError):
            return

    def _known_missing(self, peer: bytes) -> bool:
        until = self._missing.get(peer)
        if until is None:
            return False
        if until > self._clock():
            return True
        del self._missing[peer]
        return False

    def _remember_missing(self, peer: bytes) -> None:
        self._missing.pop(peer, None)
        self._missing[peer] = self._clock() + MISSING_KEYS_TTL
        while len(self._missing) > MISSING_KEYS_HELD:
            del self._missing[next(iter(self._missing))]
