"""Catching up with other nodes: following them, pulling their listings, asking them for keys (spec §13.7).

Pushes can be missed (a node was down, or not yet federated); the pull is what makes every
federated node converge. Everything pulled is taken through ``Inbound.ingest``, with the same
checks as a push; the tombstones a page carries act only on what came from the node pulled. A
key bundle asked of a node is kept only if it names that node as its home, or once its home
confirms it.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Callable
from typing import Any

from peerfed.protocol import PeerId, RemoteError, RequestError

from ..config import Config
from ..directory import Directory, KeyBundleHeld
from ..homes import signed_home
from ..retry import next_attempt
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
        # Tombstone cursors per node, in memory: after a restart they are pulled again from the
        # start, which is idempotent and bounded by the tombstones in force.
        self._tombstones: dict[str, tuple[int, int]] = {}
        self._missing: dict[bytes, float] = {}  # peer -> until when it is not asked about; oldest first
        # Nodes followed again after they stopped federating: failed attempts, and when to try next.
        self._refollows: dict[str, tuple[int, float]] = {}

    async def start(self) -> None:
        """Ask the nodes the configuration names to federate, unless already federated or blocked."""
        now = int(self._clock())
        for url in self._config.federate:
            node = await self._store.node(url)
            if node is None or node.status not in (NodeStatus.ACTIVE, NodeStatus.BLOCKED):
                await self._store.set_node_status(url, "requested", now)

    async def maintain(self) -> None:
        """Ask 'requested' nodes to federate, then catch up on listings from every active one.

        An active node that refuses a pull with federation.refused has lost this node: it was
        replaced at the same URL, or lost its follow state. It is followed again at once, and
        then, while it keeps refusing, with the outbox's doubling backoff (spec §13.7, Following).
        """
        if self.client is None:
            return
        now = self._clock()
        for node in await self._store.nodes("requested"):
            if self._refollows.get(node.url, (0, 0.0))[1] <= now:
                await self._follow(node.url)
        # Catch up with every federated node: what was published before we federated, or
        # while a push could not reach us. Cheap when there is nothing new.
        for node in await self._store.nodes("active"):
            if node.breaker_until > self._clock():
                continue
            try:
                await self.pull(node.url)
            except (RemoteError, TransportError) as exc:
                await self._store.node_exchange(node.url, int(self._clock()), str(exc), exc.code)
                if isinstance(exc, TransportError) or exc.code != "federation.refused":
                    log.info("catch-up from %s failed: %s", node.url, exc)
                    continue
                log.warning("%s no longer federates with this node (%s); following it again", node.url, exc)
                await self._store.set_node_status(node.url, "requested", int(self._clock()))
                # Its listings are numbered afresh if it lost its state: pull from the start
                # (idempotent, and bounded by what it holds).
                await self._store.set_pull_cursor(node.url, 0)
                self._tombstones.pop(node.url, None)
                self._refollows[node.url] = (0, self._clock())
                if await self._follow(node.url):
                    await self._pull_quietly(node.url)  # what it published since it was replaced

    async def _pull_quietly(self, url: str) -> None:
        try:
            await self.pull(url)
        except (TransportError, RemoteError) as exc:
            log.info("catch-up from %s failed: %s", url, exc)

    async def _follow(self, url: str) -> bool:
        """Ask ``url`` to federate; True once it is active. Backs off if it was followed again after refusing."""
        assert self.client is not None
        try:
            answer = await self.client.request("POST", url, "/federation/v1/follow", b"{}", "application/json")
            if isinstance(answer, dict) and answer.get("status") == "active":
                await self._store.set_node_status(url, "active", int(self._clock()))
                await self._store.node_exchange(url, int(self._clock()))
                self._refollows.pop(url, None)
                log.info("federating with %s", url)
                return True
        except (TransportError, RemoteError) as exc:
            log.warning("federation request to %s failed: %s", url, exc)
            await self._store.node_exchange(url, int(self._clock()), str(exc), exc.code)
        if url in self._refollows:
            failures = self._refollows[url][0] + 1
            # No jitter: one node re-following another is not a crowd arriving at once.
            again = next_attempt(
                failures, self._clock(), base=self._config.retry_base, cap=self._config.retry_cap, jitter=0.0
            )
            self._refollows[url] = (failures, again)
        return False

    async def pull(self, url: str) -> int:
        """Catch up on listings published at ``url`` since the last pull, and on the withdrawals
        and erasures in force there; returns how many listings were taken.

        Raises TransportError or RemoteError if a page cannot be had; what was taken stays taken.
        """
        assert self.client is not None
        node = await self._store.node(url)
        if node is None:
            return 0
        cursor, taken = node.pull_cursor, 0
        withdrawn_after, erased_after = self._tombstones.get(url, (0, 0))
        for number in range(PAGES_PER_PULL):
            answer = await self.client.request(
                "GET",
                url,
                f"/federation/v1/listings?after={cursor}&limit={PAGE}"
                f"&withdrawn_after={withdrawn_after}&erased_after={erased_after}",
            )
            if number == 0:  # a page had: the last successful exchange, for the operator
                await self._store.node_exchange(url, int(self._clock()))
            page = answer if isinstance(answer, dict) else {}
            items = page.get("items") or []
            for item in items:
                try:
                    if item.get("key_bundle"):
                        bundle = base64.b64decode(item["key_bundle"])
                        await self._inbound.charge(url, "key-bundle", bundle)
                        await self._inbound.ingest(url, "key-bundle", bundle)
                    listing = base64.b64decode(item["listing"])
                    await self._inbound.charge(url, "listing", listing)
                    await self._inbound.ingest(url, "listing", listing)
                    taken += 1
                except RemoteError as exc:
                    if exc.code == "rate.limited":  # over its quota: this page again at a later pull
                        log.info("catch-up from %s paused: %s", url, exc)
                        return taken
                    log.info("skipped a pulled listing from %s: %s", url, exc)
                except (ValueError, TypeError, KeyError, AttributeError) as exc:
                    log.info("skipped a pulled listing from %s: %s", url, exc)
            await self._take_tombstones(url, page)
            tombstones = (
                _advance(page.get("withdrawn_next"), withdrawn_after),
                _advance(page.get("erased_next"), erased_after),
            )
            moved = tombstones != (withdrawn_after, erased_after)
            withdrawn_after, erased_after = self._tombstones[url] = tombstones
            following = _advance(page.get("next"), cursor)
            if items and following > cursor:
                cursor, moved = following, True
                await self._store.set_pull_cursor(url, cursor)
            if not moved:  # nothing new on either cursor: caught up (or a node that never advances)
                break
        return taken

    async def _take_tombstones(self, url: str, page: dict[str, Any]) -> None:
        """Apply a page's tombstones from ``url`` (spec §13.7, Catch-up); a bad entry is skipped."""
        withdrawn = page.get("withdrawn") or []
        erased = page.get("erased") or []
        if not isinstance(withdrawn, list) or not isinstance(erased, list):
            return
        for entry in withdrawn:
            try:
                until = entry["until"]
                if not isinstance(until, int) or isinstance(until, bool):
                    raise TypeError("until is an integer")
                listing_id = bytes.fromhex(entry["listing"])
                author = PeerId.from_text(entry["author"])
                await self._directory.take_withdrawn(url, listing_id, bytes(author), until)
            except (RemoteError, ValueError, TypeError, KeyError, AttributeError) as exc:
                log.info("skipped a withdrawal tombstone from %s: %s", url, exc)
        hashes = []
        for entry in erased:
            try:
                hashes.append(base64.b64decode(entry["hash"], validate=True))
            except (ValueError, TypeError, KeyError, AttributeError) as exc:
                log.info("skipped an erasure tombstone from %s: %s", url, exc)
        if hashes:
            dropped = await self._directory.take_erased(url, hashes)
            if dropped:
                log.info("dropped %d listings of erased peers from %s", dropped, url)

    async def key_bundle(self, peer: PeerId) -> KeyBundleHeld:
        """A peer's current key bundle: held here, or asked of the federated nodes; raises not_found.

        Every active node is asked at once, and all of them together get ``key_lookup_deadline``
        seconds: slow or silent nodes cost one deadline, not one timeout each. A bundle a node gives
        is taken only if that node is the home it names; one naming another federated node is asked
        of that home instead, and kept only from there (spec §13.7, Home). A peer nobody could serve
        is remembered for ``MISSING_KEYS_TTL`` seconds (at most ``MISSING_KEYS_HELD`` peers).
        """
        found = await self._directory.key_bundle(peer)
        if found is None and self.client is not None and not self._known_missing(bytes(peer)):
            active = [node.url for node in await self._store.nodes("active")]
            asks = [asyncio.create_task(self._take_keys_from(url, peer, active)) for url in active]
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

    async def _take_keys_from(self, url: str, peer: PeerId, active: list[str]) -> None:
        """Ask ``url`` for the peer's bundle and keep it only from its signed home (asked in turn)."""
        try:
            raw = await self._ask_keys(url, peer)
            home = signed_home(raw, int(self._clock()))
            if home != url:
                if home is None or home not in active:
                    return
                raw, url = await self._ask_keys(home, peer), home
            await self._inbound.ingest(url, "key-bundle", raw)
        except (TransportError, RemoteError, KeyError, TypeError, ValueError):
            return

    async def _ask_keys(self, url: str, peer: PeerId) -> bytes:
        """The key bundle ``url`` answers for ``peer``; raises TransportError, RemoteError, KeyError, ..."""
        assert self.client is not None
        answer = await self.client.request("GET", url, f"/federation/v1/keys/{peer.text}")
        return base64.b64decode(answer["key_bundle"], validate=True)

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


def _advance(value: object, cursor: int) -> int:
    """A tombstone cursor from a page: only forward, only an integer."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > cursor else cursor
