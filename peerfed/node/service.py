"""The node as one object: its parts, one per spec subsection, over one store, clock and key (spec §13).

``Node`` builds and holds the parts; it has no behaviour of its own beyond starting them and the
two background rounds (``deliver_due``, ``maintain``) the app's loops and tests drive:

    document    the signed node document (§13.2)        sessions    signing in (§13.4)
    directory   key bundles, listings, search (§6)      mailbox     sealed messages (§7, §13.5)
    moderation  erasure and reports (§13.6)             discovery   other nodes' documents (§13.2)
    inbound     what other nodes ask (§13.3, §13.7)     catchup     follows, pulls, key look-ups (§13.7)
    sender      the outbound per-destination queue (§13.7)
    prekeys     one-time pre-keys, uploaded and claimed (§13.5, §14.1)

The parts share a rate limiter, a signature-checking pool and two wake-up events.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable

from peerfed.protocol import Identity

from .bus import Bus, LocalBus
from .config import Config
from .contact import Contacts
from .directory import Directory
from .document import DocumentSigner
from .federation.catchup import CatchUp
from .federation.discovery import Discovery
from .federation.inbound import Inbound
from .federation.sender import Sender
from .federation.transport import Remote
from .limits import RateLimiter
from .mailbox import Mailbox
from .moderation import Moderation
from .opener import Opener
from .prekeys import OneTimePreKeys
from .sessions import Sessions
from .store import Store

__all__ = ["Node"]


class Node:
    """One community node's parts. Build it with an open Store and the node key."""

    def __init__(
        self,
        config: Config,
        store: Store,
        identity: Identity,
        *,
        clock: Callable[[], float],
        client: Remote | None = None,
        rng: random.Random | None = None,
        web_client: bytes | None = None,
        source_secret: bytes | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.identity = identity
        self.clock = clock
        self.url = config.url
        self.limiter = RateLimiter()
        self.opener = Opener(config.verify_threads)
        self.wakeup = asyncio.Event()  # the outbox has new work
        self.maintain_soon = asyncio.Event()  # a node started federating: follow and pull now
        self.bus: Bus = LocalBus()  # other processes on the same database (attach)
        self.leading = False  # whether this process runs the background rounds (app.py)
        self._heard: set[asyncio.Task[None]] = set()
        wake = self._wake
        store.on_queued = wake
        self.document = DocumentSigner(config, store, identity, clock, web_client)
        self.sessions = Sessions(config, store, clock, self.limiter)
        self.directory = Directory(config, store, clock, self.limiter, self.opener, wake)
        self.mailbox = Mailbox(
            config,
            store,
            clock,
            self.limiter,
            wake,
            self.directory.home_of,
            Contacts(config, self.limiter, source_secret),
        )
        self.prekeys = OneTimePreKeys(
            config.url, store, clock, self.limiter, self.directory.home_of, lambda: self._client
        )
        self.moderation = Moderation(store, clock, self.limiter, self.mailbox, wake)
        self.discovery = Discovery(store, clock, client)
        self.inbound = Inbound(
            config,
            store,
            clock,
            self.opener,
            directory=self.directory,
            mailbox=self.mailbox,
            moderation=self.moderation,
            discovery=self.discovery,
            wake=wake,
            maintain_soon=self._maintain_soon,
            limiter=self.limiter,
        )
        self.catchup = CatchUp(config, store, clock, client, inbound=self.inbound, directory=self.directory)
        self.sender = Sender(config, store, client, clock, rng)
        self._client = client

    def now(self) -> int:
        return int(self.clock())

    def _wake(self) -> None:
        self.wakeup.set()
        if not self.leading:
            self.bus.publish("outbox")  # the sender runs in another worker

    def _maintain_soon(self) -> None:
        self.maintain_soon.set()
        if not self.leading:
            self.bus.publish("maintain")

    def attach(self, bus: Bus) -> None:
        """Tell, and hear from, the other processes on this database through ``bus``."""
        self.bus = self.mailbox.bus = bus
        self.store.sessions_ended = lambda peer: bus.publish("sessions", peer.hex())
        self.mailbox.contacts.told = lambda pair, until: bus.publish("contact", pair.hex(), str(int(until)))

    def hear(self, kind: str, words: list[str]) -> None:
        """A notice from another worker (bus.py); anything malformed or unknown is ignored."""
        try:
            first = bytes.fromhex(words[0]) if words else b""
            if kind == "mail" and len(words) == 2:
                task = asyncio.get_running_loop().create_task(self.mailbox.delivered_elsewhere(first, int(words[1])))
                self._heard.add(task)
                task.add_done_callback(self._heard.discard)
            elif kind == "close" and first:
                self.mailbox.close_readers(first, here_only=True)
            elif kind == "sessions" and first:
                self.store.forget_cached_sessions(first)
            elif kind == "outbox":
                self.wakeup.set()
            elif kind == "maintain":
                self.maintain_soon.set()
            elif kind == "contact" and first and len(words) == 2:
                self.mailbox.contacts.heard(first, float(int(words[1])))
            elif kind == "hello":
                self.limiter.joined()
        except ValueError:
            return

    @property
    def client(self) -> Remote | None:
        """The client every part reaches other nodes with."""
        return self._client

    @client.setter
    def client(self, client: Remote | None) -> None:
        # One client for discovery, catch-up and the sender alike: tests put a fault-injecting one here.
        self._client = client
        self.discovery.client = client
        self.catchup.client = client
        self.sender.transport = client

    async def start(self) -> None:
        """Record this node's key, load previous ones, and ask the configured nodes to federate."""
        await self.document.start()
        await self.catchup.start()

    def close(self) -> None:
        """Stop the signature-checking threads (the store is closed by its owner)."""
        self.opener.close()

    async def deliver_due(self) -> int:
        """One round of the outbound sender; returns the items finished."""
        return await self.sender.deliver_due()

    async def maintain(self) -> None:
        """One round of follows and catch-up pulls."""
        await self.catchup.maintain()
