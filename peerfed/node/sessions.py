"""Signing in: challenges, proof of work, the registration policy and sessions (spec §13.4).

A peer proves it holds its key by signing a fresh challenge; the node then applies its
registration policy to a peer it does not know and issues a session token. Tokens and invite
codes are kept only as hashes (spec §13.9).
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable
from dataclasses import dataclass

import nacl.utils

from peerfed.protocol import MovedError, PeerId, RequestError, crypto
from peerfed.protocol.node_bodies import Registration, erased_hash
from peerfed.protocol.sign_in import open_sign_in
from peerfed.protocol.work import check_work

from .config import Config
from .limits import RateLimiter
from .store import MemberStatus, Store

__all__ = ["CHALLENGE_LIFETIME", "DEVICE_BYTES", "Challenge", "Session", "Sessions", "moved_error", "token_hash"]

log = logging.getLogger("peerfed.node")
CHALLENGE_LIFETIME = 300
DEVICE_BYTES = 16  # a device id: random, made once per device by its client (spec §13.4)


def token_hash(token: str) -> bytes:
    """Session tokens and invite codes are kept only as this hash (spec §13.9)."""
    return crypto.blake2b_256(token.encode("utf-8"), crypto.Person.TOKEN)


def _header_text(value: str | None, code: str) -> str | None:
    """A header that must be text; a malformed one is refused with the code of what it is for."""
    if value is None:
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise RequestError("a header is not valid text", code) from exc
    return value


def _device(value: str | None) -> bytes | None:
    """The ``X-Peerfed-Device`` header: 16 bytes in hex of either case; raises RequestError otherwise."""
    if value is None:
        return None
    try:
        device = bytes.fromhex(value.strip())
    except ValueError as exc:
        raise RequestError("X-Peerfed-Device is 16 bytes in hex", "request.invalid") from exc
    if len(device) != DEVICE_BYTES:
        raise RequestError("X-Peerfed-Device is 16 bytes in hex", "request.invalid")
    return device


def moved_error(moved_at: int) -> MovedError:
    """The refusal a device gets once another device took its identity over at ``moved_at``."""
    return MovedError(
        "this identity now lives on another device, which took it over; this device no longer receives", moved_at
    )


@dataclass(frozen=True)
class Challenge:
    """A sign-in challenge: its bytes, the node it is for, until when, and the work asked of newcomers."""

    value: bytes
    node: str
    expires_at: int
    work: int


@dataclass(frozen=True)
class Session:
    """A session just opened: the token (given out once, kept only hashed) and whose it is."""

    token: str
    peer: PeerId
    expires_at: int
    took_over: bool = False  # this device took the identity over: other devices' live readers must go


class Sessions:
    """Challenges, joining by the registration policy, and session tokens."""

    def __init__(self, config: Config, store: Store, clock: Callable[[], float], limiter: RateLimiter) -> None:
        self._config = config
        self._store = store
        self._clock = clock
        self._limiter = limiter

    async def challenge(self, address: str) -> Challenge:
        """A fresh one-use challenge; raises RequestError (rate.limited) past the join limit's triple."""
        now = int(self._clock())
        await self._limiter.hit("challenge", address, limit=self._config.join_per_hour * 3, window=3600, now=now)
        value = nacl.utils.random(32)
        expires = now + CHALLENGE_LIFETIME
        await self._store.add_challenge(value, expires)
        return Challenge(value, self._config.url, expires, self._config.join_work_bits)

    async def open(
        self,
        proof: bytes,
        invite: str | None,
        address: str,
        work: str | None = None,
        device: str | None = None,
        take_over: str | None = None,
    ) -> Session:
        """Verify a signed challenge, apply the registration policy, and issue a session token.

        ``device`` and ``take_over`` are the ``X-Peerfed-Device`` and ``X-Peerfed-Take-Over``
        headers (spec §13.4, One device at a time). Raises RemoteError in the order of spec §13.4:
        request.invalid (a malformed device header), the proof's own codes, auth.invalid,
        auth.work, auth.invalid (challenge), then gone, auth.invite, auth.pending, auth.forbidden,
        rate.limited or auth.moved. A peer that had moved away is a member here again (its move undone).
        """
        now = int(self._clock())
        device_id = _device(_header_text(device, "request.invalid"))
        if take_over not in (None, "1") or (take_over and device_id is None):
            raise RequestError("X-Peerfed-Take-Over is 1, with X-Peerfed-Device", "request.invalid")
        auth, env = open_sign_in(proof, node=self._config.url, now=now)
        peer = bytes(env.author)
        if await self._store.is_erased(erased_hash(peer), now):
            raise RequestError("this key erased itself here; use a new identity", "gone")
        member = await self._store.member(peer)
        joining = member is None or member.status == MemberStatus.PENDING
        # The invite and work headers matter only to a peer who is joining; a member ignores them.
        invite = _header_text(invite, "auth.invite") if joining else None
        if joining and self._config.join_work_bits and not invite:
            work = _header_text(work, "auth.work")
            check_work(auth.challenge, work, self._config.join_work_bits)  # before the challenge is spent
        if not await self._store.take_challenge(auth.challenge, now):
            raise RequestError("unknown, used or expired challenge; ask for a new one", "auth.invalid")
        if member is None or joining:
            await self._limiter.hit("join", address, limit=self._config.join_per_hour, window=3600, now=now)
            await self._join(peer, invite, now, pending=member is not None)
        elif member.status == MemberStatus.MOVED:
            # A fresh proof of the key here undoes a move (spec §13.5, Moving): mail stays here again.
            await self._store.set_member(peer, "member", now)
            log.info("a peer that had moved signed in again; its move is undone")
        elif member.status != MemberStatus.MEMBER:
            raise RequestError("this peer may not use this node", "auth.forbidden")
        await self._one_device(peer, device_id, take_over == "1", now)
        token = base64.urlsafe_b64encode(nacl.utils.random(32)).decode("ascii").rstrip("=")
        expires = now + self._config.session_ttl
        await self._store.add_session(token_hash(token), peer, expires, device_id)
        log.info("session opened")
        return Session(token, env.author, expires, took_over=take_over == "1")

    async def _one_device(self, peer: bytes, device: bytes | None, take_over: bool, now: int) -> None:
        """The member's mail goes to one device (spec §13.4): refuse another unless it takes over.

        Raises MovedError (auth.moved) for a device that is not the member's current one and did
        not ask to take over, including a client that names no device once one has.
        """
        if device is not None and await self._store.claim_device(peer, device, now, take_over=take_over):
            if take_over:
                log.info("a member's identity moved to another device")
            return
        member = await self._store.member(peer)
        if member is None or member.device is None:
            return  # a client that names no device, for a member no device has claimed
        raise moved_error(member.device_at or now)

    async def _join(self, peer: bytes, invite: str | None, now: int, *, pending: bool) -> None:
        policy = self._config.registration
        if invite:
            if await self._store.join_with_invite(peer, token_hash(invite.strip().lower()), now, "member"):
                log.info("a peer joined with an invite")
                return
            raise RequestError("the invite code is unknown, used up, revoked or expired", "auth.invite")
        if policy == Registration.OPEN:
            await self._store.set_member(peer, "member", now)
            log.info("a peer joined")
            return
        if policy == Registration.INVITE:
            raise RequestError("this node needs an invite code to join", "auth.invite")
        if not pending:
            await self._store.set_member(peer, "pending", now)
            log.info("a peer asked to join; an operator must approve")
        raise RequestError("your request to join waits for an operator's approval", "auth.pending")

    async def authenticate(self, authorization: str | None) -> PeerId:
        """The peer a ``Bearer`` token belongs to; raises RequestError (auth.required) otherwise,
        MovedError (auth.moved) if another device took the identity over since it was opened."""
        if not authorization or not authorization.startswith("Bearer "):
            raise RequestError("sign in first: Authorization: Bearer <token>", "auth.required")
        signed = await self._store.session_peer(token_hash(authorization[7:].strip()), int(self._clock()))
        if signed is None:
            raise RequestError("the session token is unknown or expired", "auth.required")
        if signed.moved_at is not None:
            raise moved_error(signed.moved_at)
        return PeerId(signed.peer)
