"""One-time pre-keys on a member's home node: upload, claim, stock (spec §13.5, One-time pre-keys; §14.1).

A member uploads a signed batch of X25519 public keys; anyone signed in here may claim one of a
member's keys, which is handed out once and deleted. Limits keep anyone from draining a stock:
per claimant (peer and address) and per target peer, per hour. Past the per-target limit, the
claim answers as an empty stock does, so a claimant learns nothing of how many are left.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import Awaitable, Callable

from peerfed.protocol import Context, PeerId, RemoteError, RequestError, SealError, crypto, open_signed
from peerfed.protocol.node_bodies import MAX_PREKEYS, PreKeys

from .federation.transport import Remote, TransportError
from .limits import RateLimiter, Use
from .store import MemberStatus, NodeStatus, Store

__all__ = [
    "CLAIMS_PER_HOUR",
    "CLAIMS_PER_NODE",
    "CLAIMS_PER_TARGET",
    "CLAIM_PATH",
    "LOW_STOCK",
    "STOCK_CAP",
    "UPLOADS_PER_HOUR",
    "OneTimePreKeys",
]

STOCK_CAP = MAX_PREKEYS  # `prekeys-per-peer`: one-time pre-keys a member may hold here at once
LOW_STOCK = 20  # below this, the owner uploads more (the stock answer says so; spec §13.5)
UPLOADS_PER_HOUR = 10  # `prekey-uploads-per-hour`: uploads per member (four times that per address)
CLAIMS_PER_HOUR = 30  # `prekey-claims-per-hour`: claims per claimant (four times that per address)
CLAIMS_PER_TARGET = 20  # `prekey-claims-per-peer`: keys handed out of one member's stock per hour
CLAIMS_PER_NODE = 120  # `node-prekey-claims-per-hour`: claims one origin node makes for its members
CLAIM_PATH = "/federation/v1/prekeys/claim"
HOUR = 3600
log = logging.getLogger("peerfed.node")
_PROBE = bytes([7]) * 32  # any scalar: a low-order key gives an all-zero product whatever it is


class OneTimePreKeys:
    """The pre-key part of the node; every call raises StorageError (node.unavailable) if the store fails."""

    def __init__(
        self,
        url: str,
        store: Store,
        clock: Callable[[], float],
        limiter: RateLimiter,
        home_of: Callable[[bytes], Awaitable[str | None]],
        client: Callable[[], Remote | None],
    ) -> None:
        self._url = url
        self._store = store
        self._clock = clock
        self._limiter = limiter
        self._home_of = home_of  # the home the peer's held bundle names (spec §13.7, Home)
        self._client = client  # how this node reaches others, read at each use (tests swap it)

    async def upload(self, peer: PeerId, raw: bytes, address: str) -> int:
        """Add the signed one-time pre-keys to the peer's stock; returns the stock after.

        Raises, in this order: rate.limited (uploads per peer, then per address), the object's
        own codes (§5.5), auth.invalid (not a ``prekeys`` object, or for another node),
        auth.forbidden (signed by another peer), schema.invalid (a low-order key),
        auth.replayed (the same object taken before), prekeys.full (the stock would pass the cap).
        """
        now = int(self._clock())
        await self._limiter.hit_all(
            [
                Use("prekey-uploads", bytes(peer).hex(), UPLOADS_PER_HOUR, HOUR),
                Use("prekey-uploads-addr", address, UPLOADS_PER_HOUR * 4, HOUR),
            ],
            now,
        )
        env = open_signed(raw, context=Context.CLIENT_AUTH, now=now)
        if not isinstance(env.body, PreKeys):
            raise RequestError("an upload is a signed prekeys object", "auth.invalid")
        if env.author != peer:
            raise RequestError("the pre-keys are signed by another peer", "auth.forbidden")
        if env.body.node != self._url:
            raise RequestError("the pre-keys are for another node", "auth.invalid")
        for key in env.body.keys:
            try:
                crypto.x25519(_PROBE, key)
            except SealError as exc:
                raise RequestError("a one-time pre-key is a low-order X25519 key", "schema.invalid") from exc
        # Taken once, like a move statement: replayed, it would put back keys already handed out.
        if not await self._store.use_nonce(env.id, env.expires_at + 300):
            raise RequestError("these pre-keys were already uploaded", "auth.replayed")
        stock = await self._store.add_prekeys(bytes(peer), env.body.keys, STOCK_CAP, now)
        if stock is None:
            raise RequestError(f"a member holds at most {STOCK_CAP} one-time pre-keys here", "prekeys.full")
        return stock

    async def claim(self, claimant: PeerId, target: PeerId, address: str) -> bytes | None:
        """One of ``target``'s one-time pre-keys, deleted as it is handed out; None when none is left.

        For a member of another node, that node is asked on the claimant's behalf (spec §13.5,
        Who asks whom). None too for a peer no node here can answer for, past the per-target
        limit, and when the other node cannot be asked, so the answer tells no one who is a
        member or how full a stock is. Raises rate.limited past the claimant's own limit (per
        peer, then per address).
        """
        now = int(self._clock())
        await self._limiter.hit_all(
            [
                Use("prekey-claims", bytes(claimant).hex(), CLAIMS_PER_HOUR, HOUR),
                Use("prekey-claims-addr", address, CLAIMS_PER_HOUR * 4, HOUR),
            ],
            now,
        )
        member = await self._store.member(bytes(target))
        if member is not None and member.status == MemberStatus.MEMBER:
            return await self._hand_out(target, now)
        home = await self._home_of(bytes(target))
        if home is None or home == self._url:
            return None
        return await self._ask(home, target)

    async def claim_for_node(self, origin: str, target: PeerId) -> bytes | None:
        """A federated node's claim for one of its members (spec §13.5, Who asks whom).

        Raises federation.refused for a node this one does not federate with, rate.limited past
        ``CLAIMS_PER_NODE`` an hour from that node; otherwise answers as a local claim does.
        """
        now = int(self._clock())
        known = await self._store.node(origin)
        if known is None or known.status != NodeStatus.ACTIVE:
            raise RequestError("this node does not federate with you", "federation.refused")
        await self._limiter.hit("prekey-claims-node", origin, limit=CLAIMS_PER_NODE, window=HOUR, now=now)
        member = await self._store.member(bytes(target))
        if member is None or member.status != MemberStatus.MEMBER:
            return None
        return await self._hand_out(target, now)

    async def _hand_out(self, target: PeerId, now: int) -> bytes | None:
        try:
            await self._limiter.hit("prekey-target", bytes(target).hex(), limit=CLAIMS_PER_TARGET, window=HOUR, now=now)
        except RequestError:
            return None  # the initiator agrees with the signed pre-key alone (spec §14.1, Running out)
        return await self._store.claim_prekey(bytes(target))

    async def _ask(self, home: str, target: PeerId) -> bytes | None:
        """The key ``home`` hands out for its member, or None when it cannot be asked or refuses."""
        client = self._client()
        known = await self._store.node(home)
        if client is None or known is None or known.status != NodeStatus.ACTIVE:
            return None
        body = json.dumps({"peer": target.text}).encode()
        try:
            answer = await client.request("POST", home, CLAIM_PATH, body, "application/json")
            value = answer["prekey"] if isinstance(answer, dict) else None
            key = None if value is None else base64.b64decode(value, validate=True)
        except (TransportError, RemoteError, KeyError, TypeError, ValueError, binascii.Error) as exc:
            log.info("a pre-key claim at %s failed: %s", home, type(exc).__name__)
            return None
        return key if key is not None and len(key) == 32 else None

    async def stock(self, peer: PeerId) -> int:
        """How many one-time pre-keys the peer has left here (its low-stock signal)."""
        return await self._store.prekey_stock(bytes(peer))
