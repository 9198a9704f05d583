"""Catching up with other nodes: following them, pulling their listings, asking them for keys (spec §13.7).

Pushes can be missed (a node was down, or not yet federated); the pull is what makes every
federated node converge. Everything pulled is taken through ``Inbound.ingest``, with the same
checks as a push.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable

from peerfed.protocol import PeerId, RemoteError, RequestError

from ..config import Config
from ..directory import Directory, KeyBundleHeld
from ..store import NodeStatus, Store
from .inbound import Inbound
from .transport import Remote, TransportError

__all__ = ["PAGE", "PAGES_PER_PULL", "CatchUp"]

log = logging.getLogger("peerfed.node")
PAGE = 200  # listings asked for per catch-up request
PAGES_PER_PULL = 100


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
                        bundle = base64.b64decode(item["key_bundle"])
                        self._inbound.charge(url, "key-bundle", bundle)
                        await self._inbound.ingest(url, "key-bundle", bundle)
                    listing = base64.b64decode(item["listing"])
                    self._inbound.charge(url, "listing", listing)
                    await self._inbound.ingest(url, "listing", listing)
                    taken += 1
                except RemoteError as exc:
                    if exc.code == "rate.limited":  # over its quota: this page again at a later pull
                        log.info("catch-up from %s paused: %s", url, exc)
                        return taken
                    log.info("skipped a pulled listing from %s: %s", url, exc)
                except (ValueError, TypeError, KeyError, AttributeError) as exc:
                    log.info("skipped a pulled listing from %s: %s", url, exc)
            following = answer.get("next") if isinstance(answer, dict) else None
            if not items or not isinstance(following, int) or following <= cursor:
                break
            cursor = following
            await self._store.set_pull_cursor(url, cursor)
        return taken

    async def key_bundle(self, peer: PeerId) -> KeyBundleHeld:
        """A peer's current key bundle: held here, or asked of the federated nodes; raises not_found."""
        found = await self._directory.key_bundle(peer)
        if found is None and self.client is not None:
            for node in await self._store.nodes("active"):
                try:
                    answer = await self.client.request("GET", node.url, f"/federation/v1/keys/{peer.text}")
                    raw = base64.b64decode(answer["key_bundle"])
                    await self._inbound.ingest(node.url, "key-bundle", raw)
                except (TransportError, RemoteError, KeyError, TypeError, ValueError):
                    continue
                found = await self._directory.key_bundle(peer)
                if found is not None:
                    break
        if found is None:
            raise RequestError("no current key bundle for this peer", "not_found")
        return found
