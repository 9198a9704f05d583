"""Who writes into a mailbox: blinded sources, their rates, and first contact (spec §13.5, Mailbox quotas).

A sealed message hides its author from the node, but the node knows which *source* handed it in:
a local peer's session, or another node. Each source is counted per mailbox, so no one party can
fill a mailbox or push others out of it, and a source writing into a mailbox for the first time
pays proof of work over the sealed id. Sources are kept only as keyed digests under a secret held
in memory, never written to disk, so the database never records who wrote to whom; a restart
forgets every first contact (sources then pay once more). The processes of a `--workers` node
share the secret, and tell each other of each first contact (``told``, ``heard``), so a source
pays once whichever process takes its items.
"""

from __future__ import annotations

import secrets
from collections import OrderedDict
from collections.abc import Callable

from peerfed.protocol import PeerId, RequestError
from peerfed.protocol.crypto import Person, blake2b_keyed
from peerfed.protocol.work import check_work

from .config import Config
from .limits import RateLimiter

__all__ = ["FIRST_CONTACT_MEMORY", "Contacts", "Source"]

# How long a first contact is remembered, and for how many (source, mailbox) pairs at most.
FIRST_CONTACT_MEMORY = 30 * 86_400
MAX_PAIRS = 200_000


class Source:
    """Who handed an item in: a local peer or another node (their digest is ``tag``)."""

    __slots__ = ("label", "local")

    def __init__(self, label: bytes, local: bool) -> None:
        self.label = label
        self.local = local

    @classmethod
    def peer(cls, peer: PeerId) -> Source:
        return cls(b"peer " + bytes(peer), True)

    @classmethod
    def node(cls, url: str) -> Source:
        return cls(b"node " + url.encode("utf-8"), False)


class Contacts:
    """Per-mailbox rates per source, and the memory of which sources have written to which mailbox."""

    def __init__(self, config: Config, limiter: RateLimiter, secret: bytes | None = None) -> None:
        self._config = config
        self._limiter = limiter
        self._secret = secret or secrets.token_bytes(32)  # memory only: a restart forgets who wrote
        self._known: OrderedDict[bytes, float] = OrderedDict()
        # Tells the node's other processes of a first contact: its pair's digest, and until when.
        self.told: Callable[[bytes, float], None] | None = None

    def tag(self, source: Source) -> bytes:
        """The source's 16-byte digest under this process's secret (what the mailbox table keeps)."""
        return blake2b_keyed(source.label, self._secret, Person.SOURCE)

    def _pair(self, source: Source, mailbox: bytes) -> bytes:
        return blake2b_keyed(source.label + b" to " + mailbox, self._secret, Person.SOURCE)

    async def check(self, source: Source, mailbox: bytes, sealed_id: bytes, work: str | None, now: float) -> None:
        """Before an item from ``source`` enters ``mailbox`` (or is forwarded for it, when the
        source is a local peer). Raises RequestError: auth.work if this is the source's first item
        for the mailbox and ``work`` is not a valid proof over ``sealed_id`` (spec §13.4's function,
        ``first-contact-work-bits``); rate.limited past the source's hourly count for the mailbox.
        A valid proof makes the pair known at once, so the items after it in the same batch pass.
        Neither answer depends on what the recipient has read."""
        c = self._config
        pair = self._pair(source, mailbox)
        if c.first_contact_work_bits and not self._is_known(pair, now):
            try:
                check_work(sealed_id, work, c.first_contact_work_bits)
            except RequestError as exc:
                raise RequestError(
                    f"a first message into a mailbox needs {c.first_contact_work_bits} bits of proof of work"
                    " over its sealed id (X-Peerfed-Work)",
                    exc.code,
                ) from exc
            if self.told is not None:
                self.told(pair, now + FIRST_CONTACT_MEMORY)
        self._remember(pair, now + FIRST_CONTACT_MEMORY)
        limit = c.mailbox_items_per_sender if source.local else c.mailbox_items_per_node
        await self._limiter.hit("mailbox-items", pair.hex(), limit=limit, window=3600, now=now)

    def _is_known(self, pair: bytes, now: float) -> bool:
        until = self._known.get(pair)
        if until is None or until <= now:
            return False
        self._known.move_to_end(pair)
        return True

    def heard(self, pair: bytes, until: float) -> None:
        """Another process of the node took a first contact: the pair (its digest) is known here
        too, until ``until``. Without the shared secret the digest matches nothing: no harm."""
        if pair and until > self._known.get(pair, 0.0):
            self._remember(pair, until)

    def _remember(self, pair: bytes, until: float) -> None:
        self._known.pop(pair, None)
        self._known[pair] = until
        while len(self._known) > MAX_PAIRS:
            self._known.popitem(last=False)
