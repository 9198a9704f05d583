"""The node keeps serving: honest requests to B after hostile ones."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import aiohttp

from peerfed.protocol import Message, pack, seal, sign
from tests.node.harness import DAY

from .oracle import Problem
from .wire import http

if TYPE_CHECKING:
    from .world import World

__all__ = ["honest_requests"]


async def honest_requests(w: World, *, full: bool) -> list[Problem]:
    """What an honest peer and an honest node ask of B, which B must still answer as the spec says.

    Always a mailbox read and a pull; with ``full``, also a challenge, the pre-key stock, a
    listing published, read and found in the directory, a sealed message, a batch from A, and a live
    sign-in. Returns the problems.
    """
    problems: list[Problem] = []
    bearer = [("Authorization", f"Bearer {w.honest.token}".encode())]

    async def expect(label: str, status: int, method: str, target: str, headers: Any, body: bytes = b"") -> Any:
        answer = await http(w.b.port, method, target, headers, body)
        if answer.status != status:
            problems.append(Problem("honest request failed", f"{label}: {answer.describe(300)}"))
        return answer.payload

    await expect("mailbox", 200, "GET", "/api/v1/mailbox?limit=1", bearer)
    target = "/federation/v1/listings?after=0&limit=1"
    await expect("a pull", 200, "GET", target, [("Authorization", w.a_signs("GET", target, b"").encode())])
    if not full:
        return problems
    await expect("challenge", 200, "POST", "/api/v1/challenge", [])
    # The stock only: claims have fixed per-address limits that the fuzzers' claims from 127.0.0.1 use up.
    stock = await expect("pre-key stock", 200, "GET", "/api/v1/prekeys", bearer)
    if not (isinstance(stock, dict) and set(stock) == {"stock", "cap", "low"}):
        problems.append(Problem("honest request failed", f"pre-key stock: {stock}"))
    listing = w.honest_listing(w.honest)
    await expect("publish", 201, "POST", "/api/v1/listings", bearer, listing.raw)
    await expect("get listing", 200, "GET", f"/api/v1/listings/{listing.id.hex()}", bearer)
    found = await expect("directory", 200, "GET", "/api/v1/directory?limit=1", bearer)
    if isinstance(found, dict) and [x.get("id") for x in found.get("listings", [])] != [listing.id.hex()]:
        problems.append(Problem("honest request failed", f"directory does not show the new listing: {found}"))
    inner = sign(
        w.honest.identity, Message(w.fuzz[0].id, bytes(16), 1, "hi"), created_at=w.now,
        expires_at=w.now + DAY,
    )  # fmt: skip
    await expect("send", 202, "POST", "/api/v1/send", bearer, seal(inner, w.fuzz[0].secret.public).raw)
    remote = w.honest_listing(w.remote)
    body = pack([["listing", remote.raw]])
    result = await expect(
        "a batch", 200, "POST", "/federation/v1/batch",
        [("Authorization", w.a_signs("POST", "/federation/v1/batch", body).encode())], body,
    )  # fmt: skip
    if isinstance(result, dict) and result.get("results") != [{"status": "ok"}]:
        problems.append(Problem("honest request failed", f"a batch of one good listing: {result}"))
    try:
        async with w.http.ws_connect(w.b.url + "/api/v1/live") as ws:
            await ws.send_json({"type": "auth", "token": w.honest.token, "after": 0})
            message = await ws.receive(timeout=10)
            if message.type != aiohttp.WSMsgType.TEXT or json.loads(message.data).get("type") != "ready":
                problems.append(Problem("honest request failed", f"live: {message!r}"))
    except (aiohttp.ClientError, TimeoutError) as exc:
        problems.append(Problem("honest request failed", f"live: {exc!r}"))
    return problems
