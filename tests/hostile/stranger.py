"""A stranger on loopback: a small aiohttp app posing as a node, for the attacks of issue 11 (spec §13.3, §13.7).

It serves ``/.well-known/peerfed`` the way it is told (a document listing whatever keys it likes,
a redirect, a server error, garbage, an endless body, or nothing until the deadline), counts every
request it gets, and signs node requests as its own origin. It listens on 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Sequence
from typing import Any

import aiohttp
from aiohttp import web

from peerfed.node.federation import sign_request
from peerfed.protocol import Identity, NodeDocument, sign
from peerfed.protocol.node_bodies import FederationPolicy, NodeKey, Registration

from ..node.harness import Clock, free_socket

__all__ = ["HUGE", "Stranger", "node_document", "post_signed"]

HUGE = 150 * 1024 * 1024  # the "document" of the attack: 150 MB
CHUNK = 64 * 1024


def node_document(identity: Identity, url: str, now: int, extra_keys: Sequence[bytes] = ()) -> bytes:
    """A valid signed node document for ``url``, signed by ``identity``, listing its key and ``extra_keys``."""
    keys = [NodeKey(bytes(identity.peer_id), now - 300, now + 30 * 86_400)]
    keys += [NodeKey(k, now - 300, now + 30 * 86_400) for k in extra_keys]
    doc = NodeDocument(
        url=url,
        name="A friendly node",
        description="Nothing to see here.",
        contact="nobody",
        registration=Registration.OPEN,
        code_of_conduct="Be nice.",
        resources=(),
        mailbox_ttl=86_400,
        max_listing_lifetime=86_400,
        limits=(),
        protocols=("peerfed/1",),
        software="stranger/0",
        federation=FederationPolicy.OPEN,
        keys=tuple(keys),
    )
    return sign(identity, doc, created_at=now, expires_at=now + 7 * 86_400).raw


class Stranger:
    """A fake node on 127.0.0.1. ``behaviour``: document, redirect, error, garbage, huge or hang."""

    def __init__(
        self, clock: Clock, seed: int, behaviour: str = "document", *, extra_keys: Sequence[bytes] = ()
    ) -> None:
        self.clock = clock
        self.identity = Identity(bytes([seed]) * 32)
        self.behaviour = behaviour
        self.extra_keys = list(extra_keys)
        self.redirect_to = ""
        self.hits: list[str] = []
        self.sent = 0  # bytes of a huge body written (and drained) so far
        self.finished = asyncio.Event()  # the huge or hanging handler has returned
        self._release = asyncio.Event()
        self.sock = free_socket()
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self._runner: web.AppRunner | None = None

    async def start(self) -> Stranger:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        await web.SockSite(self._runner, self.sock).start()
        return self

    async def stop(self) -> None:
        self._release.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Stranger:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def document(self) -> bytes:
        return node_document(self.identity, self.url, int(self.clock()), self.extra_keys)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.hits.append(request.path)
        if request.path != "/.well-known/peerfed":
            return web.json_response({"error": {"code": "not_found", "message": "no"}}, status=404)
        if self.behaviour == "document":
            return web.Response(body=self.document(), content_type="application/octet-stream")
        if self.behaviour == "redirect":
            raise web.HTTPFound(self.redirect_to + "/.well-known/peerfed")
        if self.behaviour == "error":
            return web.Response(status=500, text=f"database at 10.0.0.7:5432 refused; internal port {self.url}")
        if self.behaviour == "garbage":
            return web.Response(body=b"\xc1 not a document", content_type="application/octet-stream")
        if self.behaviour == "hang":
            try:
                await self._release.wait()
            finally:
                self.finished.set()
            return web.Response(status=204)
        assert self.behaviour == "huge"
        return await self._huge(request)

    async def _huge(self, request: web.Request) -> web.StreamResponse:
        """150 MB, chunked (no length announced), counting what the reader let through."""
        transport = request.transport
        raw = transport.get_extra_info("socket") if transport is not None else None
        if raw is not None:  # an asyncio TransportSocket: keep the kernel's share of the body small
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8192)
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        response.enable_chunked_encoding()
        chunk = b"\x00" * CHUNK
        try:
            await response.prepare(request)
            while self.sent < HUGE:
                await response.write(chunk)
                self.sent += CHUNK
        except (ConnectionError, aiohttp.ClientConnectionResetError):
            pass  # the reader stopped reading and closed the connection: what we wanted
        finally:
            self.finished.set()
        return response

    def sign(self, method: str, path: str, destination: str, body: bytes, identity: Identity | None = None) -> str:
        """A Peerfed-Node header from this stranger's origin (or signed by ``identity`` instead)."""
        return sign_request(
            identity or self.identity,
            method=method,
            path=path,
            origin=self.url,
            destination=destination,
            body=body,
            now=int(self.clock()),
        )


async def post_signed(
    http: aiohttp.ClientSession, url: str, path: str, body: bytes, header: str, method: str = "POST"
) -> tuple[int, Any]:
    """Send one signed request to a node; (HTTP status, JSON answer)."""
    async with http.request(method, url + path, data=body or None, headers={"Authorization": header}) as response:
        return response.status, await response.json(content_type=None)
