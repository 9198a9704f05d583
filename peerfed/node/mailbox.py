"""Mailboxes: routing a sealed message, delivery, acknowledgement, moving, live readers (spec §7, §13.5).

A node reads only a sealed message's routing layer (spec §7.3 steps 1-6): which mailbox, which
hour. It delivers into a local member's mailbox, or queues the bytes for the home node the
recipient signed into their key bundle, once per sealed id; live readers of a mailbox are told of
each new item at once.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from peerfed.protocol import Context, PeerId, RequestError, check_hour, open_signed, parse_sealed
from peerfed.protocol.node_bodies import Move
from peerfed.protocol.sealing import MAX_SEALED_AGE

from .bus import Bus, LocalBus
from .config import Config
from .contact import Contacts, Source
from .limits import RateLimiter, Use
from .store import Delivery, MailboxItem, NodeStatus, Store

__all__ = ["Closed", "Delivery", "LiveEvent", "Mailbox", "MailboxItem", "Reader", "Sent", "Source"]

log = logging.getLogger("peerfed.node")


@dataclass(frozen=True)
class Sent:
    id: bytes
    status: Delivery


@dataclass(frozen=True)
class Closed:
    """Told to a live reader whose peer is gone (erased): the connection ends."""


LiveEvent = MailboxItem | Closed
Reader = Callable[[LiveEvent], None]


class Mailbox:
    """Sealed messages in and out of this node's mailboxes, and who is reading them live."""

    def __init__(
        self,
        config: Config,
        store: Store,
        clock: Callable[[], float],
        limiter: RateLimiter,
        wake: Callable[[], None],
        home_of: Callable[[bytes], Awaitable[str | None]],
        contacts: Contacts,
    ) -> None:
        self._config = config
        self.contacts = contacts
        self._store = store
        self._clock = clock
        self._limiter = limiter
        self._wake = wake  # the outbox has new work
        self._home_of = home_of  # the home a peer signed into the key bundle held here
        self._url = config.url
        self.readers: dict[bytes, set[Reader]] = defaultdict(set)
        self.bus: Bus = LocalBus()  # other processes on the same database (Node sets it)

    # --- sending ------------------------------------------------------------------------------------

    async def submit(
        self,
        peer: PeerId,
        raw: bytes,
        destination: str | Callable[[], str | None] | None,
        address: str = "local",
        work: str | None = None,
    ) -> Sent:
        """A local peer sends a sealed message: to the named node, else to the recipient's home.

        ``destination`` may be a function, called only once the sealed bytes have passed. Without
        one, the message goes to the ``home`` the recipient signed into the key bundle held here,
        never to the node the bundle copy came from (spec §13.5, Routing); a local
        member's bundle names this node. ``work`` is the proof of work over the sealed id that a
        first message into a mailbox needs (spec §13.5, Mailbox quotas). Raises RemoteError:
        rate.limited, the routing layer's codes, auth.work, not_found (no key bundle held),
        federation.refused.
        """
        now = int(self._clock())
        per_minute = self._config.sends_per_minute
        await self._limiter.hit_all(
            [Use("sends", bytes(peer).hex(), per_minute, 60), Use("sends-addr", address, per_minute * 4, 60)], now
        )
        sealed = parse_sealed(raw)
        check_hour(sealed, now)
        mailbox = bytes(sealed.mailbox)
        if callable(destination):
            destination = destination()
        if destination is None:
            destination = await self._home_of(mailbox)
            if destination is None:
                raise RequestError("no key bundle is held for the recipient; name their home node", "not_found")
        source = Source.peer(peer)
        await self.contacts.check(source, mailbox, sealed.id, work, now)
        return Sent(sealed.id, await self.route(sealed.id, mailbox, sealed.hour, raw, destination, source))

    async def take(self, origin: str, raw: bytes, work: str | None) -> Delivery:
        """A sealed message another node sent for a mailbox here (spec §13.7, Batches): counted
        and, on first contact, charged against ``origin`` like a local sender's (§13.5)."""
        now = int(self._clock())
        sealed = parse_sealed(raw)
        check_hour(sealed, now)
        mailbox = bytes(sealed.mailbox)
        source = Source.node(origin)
        await self.contacts.check(source, mailbox, sealed.id, work, now)
        return await self.route(sealed.id, mailbox, sealed.hour, raw, self._url, source)

    async def route(
        self, sealed_id: bytes, mailbox: bytes, hour: int, raw: bytes, destination: str, source: Source
    ) -> Delivery:
        """Into a mailbox here if ``destination`` is this node, else into the outbox for it.

        A message for no member here is answered as delivered and dropped, keeping only its id,
        so the answer does not tell who is a member (spec §13.7, Keys on demand). A full mailbox
        makes room by dropping the oldest item of the source holding the most items in it, so the
        answer never tells a sender whether the recipient has read (§13.5, Mailbox quotas).
        Raises federation.refused.
        """
        if destination == self._url:
            status = await self._deliver_here(sealed_id, mailbox, hour, raw, self.contacts.tag(source))
            if status is None:
                absorbed = await self._store.absorb(sealed_id=sealed_id, seen_until=hour + MAX_SEALED_AGE + 3600)
                return Delivery.DELIVERED if absorbed else Delivery.DUPLICATE
            return status
        return await self._forward(sealed_id, hour, raw, destination)

    async def _deliver_here(
        self, sealed_id: bytes, mailbox: bytes, hour: int, raw: bytes, source: bytes
    ) -> Delivery | None:
        """Into a local member's mailbox (or on to where they moved); None if no such member."""
        now = int(self._clock())
        result = await self._store.deliver(
            sealed_id=sealed_id,
            mailbox=mailbox,
            raw=raw,
            now=now,
            expires_at=now + self._config.mailbox_ttl,
            seen_until=hour + MAX_SEALED_AGE + 3600,
            cap=self._config.mailbox_cap,
            source=source,
        )
        if result.status is Delivery.ABSENT:
            return None
        if result.status is Delivery.MOVED:
            assert result.moved_to is not None  # a move always names the new node
            return await self._forward(sealed_id, hour, raw, result.moved_to)
        if result.status is Delivery.DUPLICATE:
            return Delivery.DUPLICATE
        assert result.seq is not None  # a delivered item has its place in the mailbox
        self._notify(mailbox, MailboxItem(result.seq, sealed_id, raw, now))
        return Delivery.DELIVERED

    async def _forward(self, sealed_id: bytes, hour: int, raw: bytes, destination: str) -> Delivery:
        queued = await self._store.forward_sealed(
            sealed_id=sealed_id,
            seen_until=hour + MAX_SEALED_AGE + 3600,
            destination=destination,
            raw=raw,
            now=self._clock(),
        )
        self._wake()
        return Delivery.QUEUED if queued else Delivery.DUPLICATE

    # --- reading ------------------------------------------------------------------------------------

    async def items(self, peer: PeerId, after: int, limit: int) -> list[MailboxItem]:
        """The peer's waiting items after a position, oldest first, at most ``limit`` (1-500)."""
        return await self._store.mailbox_items(bytes(peer), after, max(1, min(limit, 500)), int(self._clock()))

    async def ack(self, peer: PeerId, ids: Iterable[str]) -> int:
        """Delete acknowledged items (hex ids) from the peer's own mailbox; raises request.invalid."""
        try:
            parsed = [bytes.fromhex(i) for i in ids]
        except (ValueError, TypeError) as exc:
            raise RequestError("ids are hex strings", "request.invalid") from exc
        return await self._store.ack(bytes(peer), parsed)

    async def move(self, peer: PeerId, to: str, statement: bytes) -> int:
        """The peer now lives at ``to``; waiting and future messages follow them there.

        ``statement`` is the peer's signed ``move`` (spec §13.5, Moving): a session alone cannot
        move an account. Raises, in this order: the statement's own codes (§5.5),
        auth.invalid (not a move), auth.forbidden (signed by another peer), auth.invalid (for
        another node or destination), request.invalid (this node), federation.refused (a node
        not federated with), auth.replayed (a statement already taken).
        """
        now = int(self._clock())
        env = open_signed(statement, context=Context.CLIENT_AUTH, now=now)
        if not isinstance(env.body, Move):
            raise RequestError("a move needs a signed move statement", "auth.invalid")
        if env.author != peer:
            raise RequestError("the move statement is signed by another peer", "auth.forbidden")
        to = to.rstrip("/")
        if env.body.from_node != self._url or env.body.to_node != to:
            raise RequestError("the move statement names other nodes", "auth.invalid")
        if to == self._url:
            raise RequestError("that is this node", "request.invalid")
        node = await self._store.node(to)
        if node is None or node.status != NodeStatus.ACTIVE:
            raise RequestError(f"this node does not federate with {to}", "federation.refused")
        # Taken once: the statement's id joins the request nonces until it has expired (spec §13.9).
        if not await self._store.use_nonce(env.id, env.expires_at + 300):
            raise RequestError("this move statement was already used", "auth.replayed")
        moved = await self._store.move_mailbox(bytes(peer), to, "sealed", now)
        self._wake()
        log.info("a peer moved to another node (%d waiting items forwarded)", moved)
        return moved

    # --- live readers -------------------------------------------------------------------------------

    def add_reader(self, peer: PeerId, reader: Reader) -> bool:
        """Register a live reader; False past the per-peer or total limit (spec §13.5, Live mailbox)."""
        total = sum(len(v) for v in self.readers.values())
        if total >= self._config.max_live_connections or (
            len(self.readers.get(bytes(peer), ())) >= self._config.max_live_per_peer
        ):
            return False
        self.readers[bytes(peer)].add(reader)
        return True

    def remove_reader(self, peer: PeerId, reader: Reader) -> None:
        readers = self.readers.get(bytes(peer))
        if readers is None:
            return
        readers.discard(reader)
        if not readers:
            self.readers.pop(bytes(peer), None)

    def close_readers(self, peer: bytes, *, here_only: bool = False) -> None:
        """Tell every live reader of ``peer`` that it is gone, and forget them (in every worker)."""
        for reader in list(self.readers.pop(peer, ())):
            reader(Closed())
        if not here_only:
            self.bus.publish("close", peer.hex())

    def _notify(self, mailbox: bytes, item: MailboxItem) -> None:
        for reader in list(self.readers.get(mailbox, ())):
            reader(item)
        self.bus.publish("mail", mailbox.hex(), str(item.seq))

    async def delivered_elsewhere(self, mailbox: bytes, seq: int) -> None:
        """Another worker delivered item ``seq`` of ``mailbox``: give it to the live readers here."""
        if not self.readers.get(mailbox):
            return  # nobody reads it here: no read at all
        for item in await self._store.mailbox_items(mailbox, seq - 1, 1, int(self._clock())):
            for reader in list(self.readers.get(mailbox, ())):
                reader(item)
