"""A peer's HTTP and WebSocket connection to its home node (spec §13.5).

``NodeAPI`` speaks the client API and nothing else: it signs in with the peer's key, sends
signed and sealed bytes the caller made with ``peerfed.protocol``, and returns decoded JSON.
A refusal from the node is raised as RemoteError with the node's code; a node that cannot be
reached raises NodeUnreachable. It never sees a secret key except to sign the challenge.

``http_session`` makes the session the command line uses: https to the node is checked against the
system's certificate authorities and, when PEERFED_CA_FILE names a PEM file, those in it too (the
node's ``ca_file`` setting reads the same variable).
"""

from __future__ import annotations

import asyncio
import base64
import os
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp

from peerfed.node.tls import trusting
from peerfed.protocol import Identity, MovedError, RemoteError, parse_sealed, sign, work
from peerfed.protocol.document import parse_document
from peerfed.protocol.errors import UnavailableError
from peerfed.protocol.node_bodies import client_auth_for

from .errors import ClientError

__all__ = ["CA_FILE_VARIABLE", "MAX_WORK_BITS", "NodeAPI", "NodeUnreachable", "http_session"]

CA_FILE_VARIABLE = "PEERFED_CA_FILE"

# A node asking more proof of work than this of a first message is refused: it would cost minutes.
MAX_WORK_BITS = 24


def solve_work(challenge: bytes, bits: int) -> str:
    """The X-Peerfed-Work header for a challenge (spec §13.4), solved by the protocol core."""
    return work.solve_work(challenge, bits).hex()


class NodeUnreachable(UnavailableError):
    """The node did not answer (down, wrong address, or a network failure)."""


def http_session() -> aiohttp.ClientSession:
    """A session for talking to nodes, trusting PEERFED_CA_FILE's authorities besides the system's.

    Raises ClientError (``local.ca_file``) if the variable names a file that holds no usable certificate.
    """
    ca_file = os.environ.get(CA_FILE_VARIABLE, "")
    if not ca_file:
        return aiohttp.ClientSession()
    try:
        tls = trusting(ca_file)
    except ValueError as exc:
        raise ClientError(f"{CA_FILE_VARIABLE}: {exc}", "local.ca_file") from exc
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=tls))


def _refusal(error: object, http_status: int | None = None) -> RemoteError:
    """The node's ``{"code", "message", ...}`` as an error; ``auth.moved`` keeps its ``moved_at`` (§13.4)."""
    fields = error if isinstance(error, dict) else {}
    code, message, moved_at = fields.get("code"), fields.get("message"), fields.get("moved_at")
    if code == "auth.moved" and type(moved_at) is int:
        return MovedError(message[:2000] if isinstance(message, str) else "refused", moved_at)
    if not isinstance(error, dict):
        return RemoteError.from_wire(None, f"HTTP {http_status}", http_status)
    return RemoteError.from_wire(code, message, http_status)


class NodeAPI:
    def __init__(
        self,
        url: str,
        session: aiohttp.ClientSession,
        token: str | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.url = url.rstrip("/")
        self.session = session
        self.token = token
        self.clock = clock  # checks the node document's times

    def _headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = dict(extra or {})
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers

    async def call(
        self,
        method: str,
        path: str,
        *,
        data: bytes | None = None,
        json: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        try:
            async with self.session.request(
                method,
                self.url + path,
                data=data,
                json=json,
                params=_query(params or {}),
                headers=self._headers(headers),
                timeout=aiohttp.ClientTimeout(total=30),
            ) as response:
                try:
                    payload = await response.json(content_type=None)
                except ValueError:
                    payload = None
                if response.status >= 400:
                    raise _refusal(payload.get("error") if isinstance(payload, dict) else None, response.status)
                return payload
        except (aiohttp.ClientConnectionError, TimeoutError, OSError) as exc:
            raise NodeUnreachable(f"cannot reach {self.url}: {exc or type(exc).__name__}") from exc

    # --- the node document and signing in ------------------------------------------------------

    async def document(self) -> dict[str, Any]:
        result: dict[str, Any] = await self.call("GET", "/.well-known/peerfed")
        return result

    async def sign_in(
        self,
        identity: Identity,
        *,
        now: int,
        invite: str | None = None,
        device: bytes | None = None,
        take_over: bool = False,
    ) -> dict[str, Any]:
        """Prove the key by signing a fresh challenge for this node, and only this one; keeps the token.

        ``device`` is this device's id; with ``take_over`` this device takes the identity over from
        the one the node routes to now (spec §13.4, One device at a time); without it, a node that
        routes to another device refuses with MovedError (``auth.moved``).

        Raises WrongNode (``local.wrong_node``) before signing anything if the challenge names
        another node than ``self.url`` (spec §13.4): a node must not sign in elsewhere as us.
        Raises InvalidValue for a malformed challenge, RemoteError, NodeUnreachable.
        """
        challenge = await self.call("POST", "/api/v1/challenge")
        if not isinstance(challenge, dict) or not isinstance(challenge.get("challenge"), str):
            raise RemoteError.from_wire("schema.invalid", "the node's challenge is malformed", 502)
        try:
            value = bytes.fromhex(challenge["challenge"])
        except ValueError as exc:
            raise RemoteError.from_wire("schema.invalid", "the node's challenge is not hex", 502) from exc
        body = client_auth_for(self.url, challenge.get("node"), value)
        headers = {"Content-Type": "application/octet-stream"}
        if challenge.get("work"):
            headers["X-Peerfed-Work"] = solve_work(value, int(challenge["work"]))
        proof = sign(identity, body, created_at=now, expires_at=now + 300)
        if invite:
            headers["X-Peerfed-Invite"] = invite
        if device is not None:
            headers["X-Peerfed-Device"] = device.hex()
            if take_over:
                headers["X-Peerfed-Take-Over"] = "1"
        result: dict[str, Any] = await self.call("POST", "/api/v1/session", data=proof.raw, headers=headers)
        self.token = result["token"]
        return result

    # --- publishing ------------------------------------------------------------------------

    async def put_keys(self, bundle: bytes) -> Any:
        return await self.call("PUT", "/api/v1/keys", data=bundle)

    async def keys(self, peer_text: str) -> Any:
        return await self.call("GET", f"/api/v1/keys/{peer_text}")

    async def publish(self, signed: bytes) -> Any:
        return await self.call("POST", "/api/v1/listings", data=signed)

    async def directory(self, **filters: Any) -> Any:
        return await self.call("GET", "/api/v1/directory", params=filters)

    # --- mailboxes -----------------------------------------------------------------------

    async def send(self, sealed: bytes, destination: str | None = None) -> Any:
        """Hand a sealed message to the node. A first message into a mailbox may be refused
        ``auth.work``: the proof of work the node's document asks (``first-contact-work-bits``)
        is then solved over the sealed id, off the event loop, and the message sent once more
        (spec §13.5, Mailbox quotas). Raises RemoteError, NodeUnreachable."""
        headers = {"X-Peerfed-Destination": destination} if destination else {}
        try:
            return await self.call("POST", "/api/v1/send", data=sealed, headers=headers)
        except RemoteError as exc:
            if exc.code != "auth.work":
                raise
            bits = await self.first_contact_bits()
            if not 0 < bits <= MAX_WORK_BITS:
                raise
        nonce = await asyncio.to_thread(work.solve_work, parse_sealed(sealed).id, bits)
        headers["X-Peerfed-Work"] = nonce.hex()
        return await self.call("POST", "/api/v1/send", data=sealed, headers=headers)

    async def first_contact_bits(self) -> int:
        """The proof of work this node asks of a first message into a mailbox, from its signed
        document's limits (0 if it asks none). Raises RemoteError, NodeUnreachable."""
        payload = await self.document()
        # Read only as spec §13.2 allows: about this URL, signed by a key it lists as valid now.
        doc, _ = parse_document(payload, self.url, int(self.clock()))
        return doc.limit("first-contact-work-bits", 0) or 0

    async def mailbox(self, after: int = 0, limit: int = 100) -> Any:
        return await self.call("GET", "/api/v1/mailbox", params={"after": after, "limit": limit})

    async def ack(self, ids: list[str]) -> Any:
        return await self.call("POST", "/api/v1/mailbox/ack", json={"ids": ids})

    async def live(
        self, *, after: int = 0, until: Callable[[dict[str, Any]], bool] | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        """Yield ``{"type": "ready"}`` once subscribed, then mailbox items live, starting after ``after``."""
        try:
            async with self.session.ws_connect(self.url + "/api/v1/live", heartbeat=30) as ws:
                await ws.send_json({"type": "auth", "token": self.token, "after": after})
                async for message in ws:
                    if message.type != aiohttp.WSMsgType.TEXT:
                        break
                    data = message.json()
                    if data.get("type") == "error":
                        raise _refusal(data)
                    if data.get("type") == "ready":
                        yield data
                    if data.get("type") == "item":
                        data["sealed_bytes"] = base64.b64decode(data["sealed"])
                        yield data
                        if until is not None and until(data):
                            return
        except (aiohttp.ClientConnectionError, OSError) as exc:
            raise NodeUnreachable(f"cannot reach {self.url}: {exc}") from exc

    # --- leaving ---------------------------------------------------------------------------

    async def move(self, to: str, statement: bytes) -> Any:
        """Ask this node to forward to ``to``; ``statement`` is the peer's signed move (spec §13.5)."""
        return await self.call(
            "POST", "/api/v1/move", json={"to": to, "statement": base64.b64encode(statement).decode("ascii")}
        )

    async def erase(self, erasure: bytes) -> Any:
        return await self.call("POST", "/api/v1/erase", data=erasure)

    async def report(self, target: str, reason: str, disclosed: list[bytes] | None = None) -> Any:
        return await self.call(
            "POST",
            "/api/v1/reports",
            json={
                "target": target,
                "reason": reason,
                "disclosed": [base64.b64encode(d).decode("ascii") for d in disclosed or []],
            },
        )

    async def reports(self) -> Any:
        return await self.call("GET", "/api/v1/reports")


def _query(params: dict[str, Any]) -> dict[str, str | list[str]]:
    """Query parameters as text; a list or tuple is the parameter given once per item."""
    return {
        k: [str(x) for x in v] if isinstance(v, list | tuple) else str(v) for k, v in params.items() if v is not None
    }
