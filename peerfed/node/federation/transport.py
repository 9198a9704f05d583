"""Talking to other nodes: signed node requests and the HTTP client that sends them (spec §13.3, §13.2).

Every request one node makes of another carries

    Authorization: Peerfed-Node <base64 of a signed node-request object>

signed by the sending node's key over the method, path, origin, destination, a fresh nonce and
the BLAKE2b-256 hash of the body. ``verify.py`` holds the receiver's side. ``NodeClient`` is the
one place foreign network errors become ``TransportError``; the parts that reach other nodes see
it only through the ``Remote`` protocol, so a test can put another client in its place.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Any, Protocol

import aiohttp
import nacl.utils

from peerfed.protocol import CLOCK_SKEW, Context, Envelope, Identity, RemoteError, RequestError, open_signed, sign
from peerfed.protocol.errors import UnavailableError
from peerfed.protocol.node_bodies import NodeDocument, NodeRequest, body_hash

__all__ = [
    "AUTH_SCHEME",
    "BATCH_TYPE",
    "NodeClient",
    "REQUEST_LIFETIME",
    "Remote",
    "TransportError",
    "parse_document",
    "sign_request",
]

AUTH_SCHEME = "Peerfed-Node"
BATCH_TYPE = "application/vnd.peerfed.batch"
REQUEST_LIFETIME = 2 * CLOCK_SKEW


class TransportError(UnavailableError):
    """The other node could not be reached, or answered with a server error: try again later."""


def sign_request(
    identity: Identity,
    *,
    method: str,
    path: str,
    origin: str,
    destination: str,
    body: bytes,
    now: int,
    nonce: bytes | None = None,
) -> str:
    """The Authorization header value for one request."""
    request = NodeRequest(method, path, origin, destination, nonce or nacl.utils.random(16), body_hash(body))
    env = sign(identity, request, created_at=now, expires_at=now + REQUEST_LIFETIME)
    return f"{AUTH_SCHEME} {base64.b64encode(env.raw).decode('ascii')}"


def parse_document(payload: Any, url: str, now: int) -> tuple[NodeDocument, Envelope]:
    """Verify a node document fetched from ``url``: signed by a key it lists, and about ``url``."""
    if not isinstance(payload, dict) or not isinstance(payload.get("document"), str):
        raise RequestError(f"{url} did not answer with a node document", "federation.refused")
    try:
        raw = base64.b64decode(payload["document"], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise RequestError(f"{url} sent a document that is not base64", "federation.refused") from exc
    env = open_signed(raw, context=Context.NODE_DOCUMENT, now=now)
    doc = env.body
    assert isinstance(doc, NodeDocument)
    if doc.url != url:
        raise RequestError(f"the document at {url} describes {doc.url}", "federation.refused")
    if not doc.key_valid_at(bytes(env.author), now):
        raise RequestError(f"the document at {url} is signed by a key it does not list", "federation.refused")
    return doc, env


class Remote(Protocol):
    """What the parts that reach other nodes need of a client (``NodeClient``, or a test's stand-in)."""

    async def request(self, method: str, url: str, path: str, body: bytes = b"", content_type: str = "") -> Any:
        """One signed request; raises TransportError (try later) or RemoteError (refused)."""

    async def send(self, url: str, path: str, body: bytes) -> Any:
        """One signed batch POST; raises as ``request`` does."""

    async def fetch_document(self, url: str) -> Any:
        """The unsigned GET of a node's document; raises TransportError."""


class NodeClient:
    """Signed HTTP requests to other nodes. One aiohttp session; bounded timeouts."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        identity: Callable[[], Identity],
        origin: str,
        clock: Callable[[], float],
        timeout: float = 15.0,
    ) -> None:
        self._session = session
        self._identity = identity
        self._origin = origin
        self._clock = clock
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    async def request(self, method: str, url: str, path: str, body: bytes = b"", content_type: str = "") -> Any:
        """Send one signed request; returns the decoded JSON answer.

        Raises TransportError for network failures, timeouts, 5xx and 429, and RemoteError with
        the answer's code for any other refusal.
        """
        headers = {
            "Authorization": sign_request(
                self._identity(),
                method=method,
                path=path,
                origin=self._origin,
                destination=url,
                body=body,
                now=int(self._clock()),
            ),
        }
        if content_type:
            headers["Content-Type"] = content_type
        try:
            async with self._session.request(
                method, url + path, data=body or None, headers=headers, timeout=self._timeout
            ) as response:
                payload = await _json(response)
                if response.status >= 500 or response.status == 429:
                    raise TransportError(f"{url} answered {response.status}")
                if response.status >= 400:
                    error = payload.get("error", {}) if isinstance(payload, dict) else {}
                    code = error.get("code") if isinstance(error, dict) else None
                    message = error.get("message", f"HTTP {response.status}") if isinstance(error, dict) else ""
                    raise RemoteError.from_wire(code, f"{url}: {message}", response.status)
                return payload
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise TransportError(f"{url} unreachable: {exc or type(exc).__name__}") from exc

    async def send(self, url: str, path: str, body: bytes) -> Any:
        """POST one federation batch (the outbound sender's transport); raises as ``request`` does."""
        return await self.request("POST", url, path, body, BATCH_TYPE)

    async def fetch_document(self, url: str) -> Any:
        """GET ``url``'s node document, unverified; raises TransportError if it cannot be had."""
        try:
            async with self._session.get(url + "/.well-known/peerfed", timeout=self._timeout) as response:
                if response.status != 200:
                    raise TransportError(f"{url} answered {response.status} for its node document")
                return await _json(response)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise TransportError(f"{url} unreachable: {exc or type(exc).__name__}") from exc


async def _json(response: aiohttp.ClientResponse) -> Any:
    try:
        return await response.json(content_type=None)
    except (ValueError, aiohttp.ContentTypeError):
        return None
