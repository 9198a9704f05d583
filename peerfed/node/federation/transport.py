"""Talking to other nodes: signed node requests and the HTTP client that sends them (spec §13.3, §13.2).

Every request one node makes of another carries

    Authorization: Peerfed-Node <base64 of a signed node-request object>

signed by the sending node's key over the method, path, origin, destination, a fresh nonce and
the BLAKE2b-256 hash of the body. ``verify.py`` holds the receiver's side. ``NodeClient`` is the
one place foreign network errors become ``TransportError``; the parts that reach other nodes see
it only through the ``Remote`` protocol, so a test can put another client in its place.

It follows no redirect, checks every URL against the address rules (``addresses.py``) before
connecting, and reads a node document within a deadline and at most 65,536 bytes of it
(spec §13.7, Discovery).
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any, Protocol

import aiohttp
import nacl.utils

from peerfed.protocol import CLOCK_SKEW, Identity, RemoteError, sign
from peerfed.protocol.document import open_document, parse_document
from peerfed.protocol.envelope import MAX_ENVELOPE_BYTES
from peerfed.protocol.errors import UnavailableError
from peerfed.protocol.node_bodies import NodeRequest, body_hash

__all__ = [
    "AUTH_SCHEME",
    "AddressRefused",
    "BATCH_TYPE",
    "DOCUMENT_DEADLINE",
    "MAX_DOCUMENT_BYTES",
    "NodeClient",
    "OCTETS",
    "REQUEST_LIFETIME",
    "Remote",
    "TransportError",
    "URLCheck",
    "WELL_KNOWN",
    "open_document",
    "parse_document",
    "sign_request",
]

AUTH_SCHEME = "Peerfed-Node"
BATCH_TYPE = "application/vnd.peerfed.batch"
OCTETS = "application/octet-stream"
REQUEST_LIFETIME = 2 * CLOCK_SKEW
WELL_KNOWN = "/.well-known/peerfed"
MAX_DOCUMENT_BYTES = MAX_ENVELOPE_BYTES  # a node document is one signed object (spec §5.4)
DOCUMENT_DEADLINE = 10.0  # seconds for a whole document fetch: connect, headers and body


class TransportError(UnavailableError):
    """The other node could not be reached, or answered with a server error: try again later."""


class AddressRefused(TransportError):
    """The URL or address is one this node does not connect to (spec §13.7, Discovery)."""


class URLCheck(Protocol):
    """The address rules a client applies before connecting (``addresses.AddressPolicy``)."""

    def check_url(self, url: str) -> None:
        """Raise AddressRefused unless ``url`` may be reached."""


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


class Remote(Protocol):
    """What the parts that reach other nodes need of a client (``NodeClient``, or a test's stand-in)."""

    async def request(self, method: str, url: str, path: str, body: bytes = b"", content_type: str = "") -> Any:
        """One signed request; raises TransportError (try later) or RemoteError (refused)."""

    async def send(self, url: str, path: str, body: bytes) -> Any:
        """One signed batch POST; raises as ``request`` does."""

    async def fetch_document(self, url: str) -> bytes:
        """The unsigned GET of a node's document, its raw signed bytes; raises TransportError."""


class NodeClient:
    """Signed HTTP requests to other nodes. One aiohttp session; bounded timeouts; no redirects.

    ``policy`` checks every URL before a connection (``addresses.AddressPolicy``); the session
    should resolve names through ``addresses.GuardedResolver`` (``addresses.guarded_session``).
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        identity: Callable[[], Identity],
        origin: str,
        clock: Callable[[], float],
        timeout: float = 15.0,
        *,
        policy: URLCheck | None = None,
        document_deadline: float = DOCUMENT_DEADLINE,
    ) -> None:
        self._session = session
        self._identity = identity
        self._origin = origin
        self._clock = clock
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._document_timeout = aiohttp.ClientTimeout(total=document_deadline)
        self._policy = policy

    def _check(self, url: str) -> None:
        if self._policy is not None:
            self._policy.check_url(url)

    async def request(self, method: str, url: str, path: str, body: bytes = b"", content_type: str = "") -> Any:
        """Send one signed request; returns the decoded JSON answer.

        Raises TransportError for network failures, timeouts, 5xx, 429, a redirect or an address
        this node does not connect to, and RemoteError with the answer's code for any other refusal.
        """
        self._check(url)
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
                method, url + path, data=body or None, headers=headers, timeout=self._timeout, allow_redirects=False
            ) as response:
                payload = await _json(response)
                if response.status >= 500 or response.status == 429 or 300 <= response.status < 400:
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

    async def fetch_document(self, url: str) -> bytes:
        """GET ``url``'s node document as raw signed bytes, unverified (spec §13.2, §13.7 Discovery).

        No redirect is followed, the whole fetch has DOCUMENT_DEADLINE seconds, and at most
        MAX_DOCUMENT_BYTES are read: a longer answer is refused without reading the rest.
        Raises TransportError (AddressRefused for a URL this node does not connect to).
        """
        self._check(url)
        headers = {"Accept": OCTETS, "Accept-Encoding": "identity"}
        try:
            async with self._session.get(
                url + WELL_KNOWN, headers=headers, timeout=self._document_timeout, allow_redirects=False
            ) as response:
                if response.status != 200:
                    raise TransportError(f"{url} answered {response.status} for its node document")
                if (response.content_length or 0) > MAX_DOCUMENT_BYTES:
                    raise TransportError(f"{url} announced a node document over {MAX_DOCUMENT_BYTES} bytes")
                body = bytearray()
                while len(body) <= MAX_DOCUMENT_BYTES:
                    chunk = await response.content.read(MAX_DOCUMENT_BYTES + 1 - len(body))
                    if not chunk:
                        return bytes(body)
                    body += chunk
                raise TransportError(f"{url} sent a node document over {MAX_DOCUMENT_BYTES} bytes")
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise TransportError(f"{url} unreachable: {exc or type(exc).__name__}") from exc


async def _json(response: aiohttp.ClientResponse) -> Any:
    try:
        return await response.json(content_type=None)
    except (ValueError, aiohttp.ContentTypeError):
        return None
