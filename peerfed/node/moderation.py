"""Moderation: "erase me" and its propagation, and peers' reports to the operators (spec §13.6, §13.5).

An erasure deletes everything the node holds for a peer, keeps only a hashed tombstone, and is
queued for every federated node in the same write. A report holds only what the reporting peer
chose to disclose: signed inner messages, checked but never decrypted here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from peerfed.protocol import Context, Envelope, PeerId, RequestError, open_signed, pack
from peerfed.protocol.node_bodies import Erasure, erased_hash

from .federation.outbox import fan_out
from .limits import RateLimiter
from .mailbox import Mailbox
from .store import Store

__all__ = ["REPORTS_PER_HOUR", "Moderation", "OwnReport"]

log = logging.getLogger("peerfed.node")
REPORTS_PER_HOUR = 20


@dataclass(frozen=True)
class OwnReport:
    """What a reporter may see of their own report: what it named, never the reason or evidence again."""

    id: int
    target_kind: str
    target: bytes | None  # None once the peer it named erased itself
    status: str
    outcome: str | None
    created_at: int


class Moderation:
    """Erasure (of local peers, and as pushed by other nodes) and reports."""

    def __init__(
        self,
        store: Store,
        clock: Callable[[], float],
        limiter: RateLimiter,
        mailbox: Mailbox,
        wake: Callable[[], None],
    ) -> None:
        self._store = store
        self._clock = clock
        self._limiter = limiter
        self._mailbox = mailbox
        self._wake = wake  # the outbox has new work

    async def erase(self, peer: PeerId, raw: bytes) -> int:
        """ "Erase me": delete everything held for the peer and tell every federated node.

        Returns the number of listings deleted; raises the envelope's codes or auth.forbidden.
        """
        env = open_signed(raw, context=Context.ENVELOPE, now=int(self._clock()))
        if not isinstance(env.body, Erasure) or env.author != peer:
            raise RequestError("send an erasure signed by the signed-in peer", "auth.forbidden")
        outbox = await fan_out(self._store, "erasure", env.id, raw)
        deleted = await self._store.erase(bytes(peer), erased_hash(bytes(peer)), env.expires_at, outbox, self._clock())
        await self._store.checkpoint()  # old page images leave the WAL too
        self._mailbox.close_readers(bytes(peer))
        self._wake()
        log.info("a peer was erased (%d listings)", deleted)
        return deleted

    async def take_erasure(self, env: Envelope) -> None:
        """An erasure another node pushed: delete what is held here for its author, keep the tombstone."""
        assert isinstance(env.body, Erasure)
        await self._store.erase(bytes(env.author), erased_hash(bytes(env.author)), env.expires_at, [], self._clock())
        await self._store.checkpoint()

    async def report(self, peer: PeerId, target: str, reason: str, disclosed: list[bytes]) -> int:
        """File a report about a listing (hex id) or a peer (pf1...); returns its id.

        Raises rate.limited, request.invalid, not_found, or a disclosed message's own codes.
        """
        now = int(self._clock())
        await self._limiter.hit("reports", bytes(peer).hex(), limit=REPORTS_PER_HOUR, window=3600, now=now)
        if not isinstance(reason, str) or not 1 <= len(reason.encode()) <= 2000:
            raise RequestError("a report needs a reason of 1 to 2000 bytes", "request.invalid")
        if target.startswith("pf1"):
            kind, key = "peer", bytes(PeerId.from_text(target))
        else:
            try:
                key = bytes.fromhex(target)
            except ValueError as exc:
                raise RequestError("report a listing id (hex) or a peer id (pf1...)", "request.invalid") from exc
            if len(key) != 32 or await self._store.listing(key) is None:
                raise RequestError("no such listing on this node", "not_found")
            kind = "listing"
        for item in disclosed:
            # Only what the peer chose to disclose: signed inner messages, checked but never decrypted here.
            open_signed(item, context=Context.SEALED, now=now)
        evidence = pack(list(disclosed)) if disclosed else None
        return await self._store.add_report(bytes(peer), kind, key, reason, evidence, now)

    async def reports_of(self, peer: PeerId) -> list[OwnReport]:
        """The peer's own reports, oldest first, with the operator's outcome."""
        rows = await self._store.reports(reporter=bytes(peer))
        return [OwnReport(r.id, r.target_kind, r.target, r.status, r.outcome, r.created_at) for r in rows]
