"""Checking a node request another node sent: its signature, window, target, key and nonce (spec §13.3).

The checks run in the order §13.3 lists them, so every implementation reports the same code for
the same bad request; the nonce is spent only once every earlier check has passed. The key is
checked against the claimed origin's own document (``check_key``, ``discovery.py``), never by
looking up which node lists it.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from peerfed.protocol import CLOCK_SKEW, Context, Envelope, RemoteError, RequestError, open_signed
from peerfed.protocol.node_bodies import NodeRequest, body_hash

from .transport import AUTH_SCHEME

__all__ = ["FOLLOW_PATH", "KeyCheck", "VerifiedRequest", "verify_request"]

FOLLOW_PATH = "/federation/v1/follow"


class KeyCheck(Protocol):
    """``Discovery.check_key``: returns if ``origin``'s own document lists ``key`` at ``now``, raises otherwise."""

    async def __call__(self, origin: str, key: bytes, now: int, *, follow: bool) -> None: ...


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
    check_key: KeyCheck,
    use_nonce: Callable[[bytes, int], Awaitable[bool]],
) -> VerifiedRequest:
    """Check a node request; raises RemoteError (auth.*, time.*, signature.invalid, federation.refused, ...)
    or UnavailableError (node.unavailable: the origin's document cannot be had right now).

    ``check_key(origin, key, now, follow=...)`` checks the key against ``origin``'s own document;
    only a follow may make it fetch the document of a node this one has no relation with.
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
    await check_key(request.origin, key, now, follow=method == "POST" and path == FOLLOW_PATH)
    if not await use_nonce(request.nonce, env.expires_at + CLOCK_SKEW):
        raise RequestError("this request was already received", "auth.replayed")
    return VerifiedRequest(request.origin, key, env)
