"""The federation API's HTTP handlers: follow, batch, catch-up, keys and pre-key claims (spec §13.7, §13.3, §13.5).

Every request is a signed node request, verified by ``Inbound`` before its body is looked at.
"""

from __future__ import annotations

from aiohttp import web

from peerfed.protocol import PeerId

from .. import views
from .common import INBOUND, PREKEYS, int_query, parse_json, read_body, text_of

__all__ = ["routes"]

routes = web.RouteTableDef()


async def from_node(request: web.Request, body: bytes) -> str:
    """The verified origin of a node request with this body; raises RemoteError (spec §13.3)."""
    return await request.app[INBOUND].verify(
        request.headers.get("Authorization"), request.method, request.raw_path, body
    )


async def from_active_node(request: web.Request) -> str:
    """A verified GET from a node this one federates with (federation.refused otherwise)."""
    return await request.app[INBOUND].verify_active(
        request.headers.get("Authorization"), request.method, request.raw_path
    )


@routes.post("/federation/v1/follow")
async def follow(request: web.Request) -> web.Response:
    body = await read_body(request)
    origin = await from_node(request, body)
    return web.json_response({"status": await request.app[INBOUND].follow_from(origin)})


@routes.post("/federation/v1/batch")
async def batch(request: web.Request) -> web.Response:
    body = await read_body(request)
    origin = await from_node(request, body)
    return web.json_response(views.batch_results(await request.app[INBOUND].ingest_batch(origin, body)))


@routes.get("/federation/v1/listings")
async def pull(request: web.Request) -> web.Response:
    await from_active_node(request)
    page = await request.app[INBOUND].pull_page(
        int_query(request, "after", 0) or 0,
        int_query(request, "limit", 200) or 200,
        int_query(request, "withdrawn_after", 0) or 0,
        int_query(request, "erased_after", 0) or 0,
    )
    return web.json_response(views.catch_up_page(page))


@routes.get("/federation/v1/keys/{peer}")
async def federation_keys(request: web.Request) -> web.Response:
    await from_active_node(request)
    raw = await request.app[INBOUND].member_key_bundle(PeerId.from_text(request.match_info["peer"]))
    return web.json_response({"key_bundle": views.b64(raw)})


@routes.post("/federation/v1/prekeys/claim")
async def federation_prekey_claim(request: web.Request) -> web.Response:
    body = await read_body(request)
    origin = await from_node(request, body)
    value = parse_json(body)
    peer = PeerId.from_text(text_of(value.get("peer") if isinstance(value, dict) else None, "peer", 128))
    key = await request.app[PREKEYS].claim_for_node(origin, peer)
    return web.json_response({"prekey": None if key is None else views.b64(key)})
