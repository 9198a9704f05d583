"""The second node the suite plays for the federation cases (spec §13.2, §13.3, §13.7).

It binds a loopback port, serves its own signed node document there, answers the federation
API with the smallest honest answers (a follow is taken, a batch is taken item by item, its
catch-up pages are empty), and signs requests to the node under test as §13.3 says, with every
part of the header open to a case that wants to spoil one.
"""

from __future__ import annotations

import base64
import os
import socket
from typing import Any

from aiohttp import web

from peerfed.protocol import Identity, NodeDocument, NodeRequest, sign, unpack
from peerfed.protocol.node_bodies import NodeKey, body_hash

from .target import DAY, Answer, Target

__all__ = ["SecondNode"]

AUTH_SCHEME = "Peerfed-Node"
EMPTY_PAGE = {"items": [], "next": 0, "withdrawn": [], "withdrawn_next": 0, "erased": [], "erased_next": 0}


class SecondNode:
    """A node of the suite's own on 127.0.0.1, federating with the node under test."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.identity = Identity(os.urandom(32))
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.runner: web.AppRunner | None = None
        self.followed: str | None = None  # the node under test's answer to this node's follow
        self.received: list[tuple[str, str]] = []  # (method, path) of what the node under test asked

    def document(self) -> bytes:
        now = self.target.now()
        doc = NodeDocument(
            url=self.url,
            name="peerfed conformance suite",
            description="A test node run by `peerfed conformance`.",
            contact="the person running the conformance suite",
            registration="open",  # type: ignore[arg-type]
            code_of_conduct="Tests only.",
            resources=(),
            mailbox_ttl=14 * DAY,
            max_listing_lifetime=30 * DAY,
            limits=(),
            protocols=("peerfed/1",),
            software="peerfed-conformance/1",
            federation="open",  # type: ignore[arg-type]
            keys=(NodeKey(bytes(self.identity.peer_id), now - 3600, now + 7 * DAY),),
        )
        return sign(self.identity, doc, created_at=now - 60, expires_at=now + DAY).raw

    async def start(self) -> SecondNode:
        app = web.Application()
        app.router.add_get("/.well-known/peerfed", self._document)
        app.router.add_post("/federation/v1/follow", self._follow)
        app.router.add_post("/federation/v1/batch", self._batch)
        app.router.add_get("/federation/v1/listings", self._listings)
        app.router.add_get("/federation/v1/keys/{peer}", self._keys)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        await web.SockSite(self.runner, self.sock).start()
        return self

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
        self.sock.close()

    async def _document(self, request: web.Request) -> web.Response:
        self.received.append((request.method, request.path))
        raw = self.document()
        if "application/octet-stream" in request.headers.get("Accept", ""):
            return web.Response(body=raw, content_type="application/octet-stream")
        return web.json_response({"document": base64.b64encode(raw).decode("ascii"), "summary": {}})

    async def _follow(self, request: web.Request) -> web.Response:
        self.received.append((request.method, request.path))
        return web.json_response({"status": "active"})

    async def _batch(self, request: web.Request) -> web.Response:
        self.received.append((request.method, request.path))
        items = unpack(await request.read())
        count = len(items) if isinstance(items, list) else 0
        return web.json_response({"results": [{"status": "ok"}] * count})

    async def _listings(self, request: web.Request) -> web.Response:
        self.received.append((request.method, request.path))
        return web.json_response(EMPTY_PAGE)

    async def _keys(self, request: web.Request) -> web.Response:
        self.received.append((request.method, request.path))
        error = {"code": "not_found", "message": "no such key bundle"}
        return web.json_response({"error": error}, status=404)

    def header(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        *,
        origin: str | None = None,
        destination: str | None = None,
        nonce: bytes | None = None,
        created_at: int | None = None,
        life: int = 300,
        identity: Identity | None = None,
        hashed: bytes | None = None,
    ) -> str:
        """The ``Authorization`` value for one request; each argument spoils one part for a case."""
        request = NodeRequest(
            method,
            path,
            origin or self.url,
            destination or self.target.url,
            nonce or os.urandom(16),
            body_hash(body if hashed is None else hashed),
        )
        now = self.target.now() if created_at is None else created_at
        env = sign(identity or self.identity, request, created_at=now, expires_at=now + life)
        return f"{AUTH_SCHEME} {base64.b64encode(env.raw).decode('ascii')}"

    async def call(
        self, method: str, path: str, body: bytes = b"", *, header: str | None = None, **spoil: Any
    ) -> Answer:
        """One signed request from this node to the node under test."""
        headers = {"Authorization": header or self.header(method, path, body, **spoil)}
        if body or method == "POST":
            headers["Content-Type"] = "application/octet-stream" if not path.endswith("/follow") else "application/json"
        return await self.target.call(method, path, data=body, headers=headers)

    async def follow(self) -> str:
        """Ask the node under test to federate; its answer's status (``active`` or ``pending``)."""
        data = (await self.call("POST", "/federation/v1/follow", b"{}")).ok()
        status = data.get("status") if isinstance(data, dict) else None
        return str(status)
