"""Checking a node request another node sent: its signature, window, target, key and nonce (spec §13.3).

The checks run in the order §13.3 lists them, so every implementation reports the same code for
the same bad request; the nonce is spent only once every earlier check has passed.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from peerfed.protocol import CLOCK_SKEW, Context, Envelope, RemoteError, RequestError, open_signed
from peerfed.protocol.node_bodies import NodeRequest, body_hash

from .transport import AUTH_SCHEME

__all__ = ["VerifiedRequest", "verify_request"]


@dataclass(frozen=True)
class VerifiedRequest:
    """A node request that passed every check: who sent it, with which key, and the signed object."""

    origin: str
    key: bytes
    envelope: Envelope


async def verify_request(
    header: str | None,
    *,
    method: str,
    path: str,
    destination: str,
    body: bytes,
    now: int,
    key_owner: Callable[[bytes, int], Awaitable[str | None]],
    discover: Callable[[str], Awaitable[None]],
    use_nonce: Callable[[bytes, int], Awaitable[bool]],
) -> VerifiedRequest:
    """Check a node request; raises RemoteError (auth.*, time.*, signature.invalid, ...).

    ``key_owner(key, now)`` names the node a key belongs to, from cached node documents;
    ``discover(origin)`` fetches the origin's document when its key is not yet known.
    """
    if not header or not header.startswith(AUTH_SCHEME + " "):
        raise RequestError("a node request needs an Authorization: Peerfed-Node header", "auth.required")
    try:
        raw = base64.b64decode(header[len(AUTH_SCHEME) + 1 :].strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise RequestError("the Peerfed-Node header is not base64", "auth.invalid") from exc
    env = open_signed(raw, context=Context.NODE_REQUEST, now=now)
    if env.created_at < now - CLOCK_SKEW:
        raise RemoteError("the node request is older than the clock window", "time.expired")
    request = env.body
    assert isinstance(request, NodeRequest)
    if request.method != method or request.path != path:
        raise RequestError("the signature is for another method or path", "auth.invalid")
    if request.destination != destination:
        raise RequestError(f"the request was signed for {request.destination}, not this node", "auth.invalid")
    if request.body_hash != body_hash(body):
        raise RequestError("the body does not match the signed hash", "auth.invalid")
    key = bytes(env.author)
    owner = await key_owner(key, now)
    if owner != request.origin:
        await discover(request.origin)
        owner = await key_owner(key, now)
    if owner != request.origin:
        raise RequestError(f"the key is not one {request.origin} publishes", "auth.invalid")
    if not await use_nonce(request.nonce, env.expires_at + CLOCK_SKEW):
        raise RequestError("this request was already received", "auth.replayed")
    return VerifiedRequest(request.origin, key, env)
