"""The HTTP and WebSocket surface of a node (spec §13.5): thin handlers over ``service.Node``.

Each handler reads at most the configured body size, parses, calls one Node method and answers
JSON. Every refusal is ``{"error": {"code": ..., "message": ...}}`` with the code's HTTP status,
so a client can act on the code without reading the message.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import WSMsgType, web

from peerfed.protocol import ERROR_CODES, Context, InvalidValue, PeerId, RemoteError, RequestError, open_signed
from peerfed.protocol.errors import UnavailableError
from peerfed.protocol.node_bodies import check_url

from .federation import verify_request
from .service import Node, b64
from .store import NodeStatus

__all__ = ["NODE", "error_middleware", "routes"]

log = logging.getLogger("peerfed.node")
NODE: web.AppKey[Node] = web.AppKey("node", Node)
LIVE_FRAME_BYTES = 100_000  # one 65,536-byte object in base64, with its JSON around it
LIVE_WINDOW = 64  # publishes and sends one live connection may have in flight
OCTETS = "application/octet-stream"

_HTTP_CODES = {
    400: "request.invalid",
    401: "auth.required",
    403: "auth.forbidden",
    404: "not_found",
    405: "request.invalid",
    413: "size.too_large",
    429: "rate.limited",
}


def error_response(code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=ERROR_CODES.get(code, 500))


@web.middleware
async def error_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except (RemoteError, UnavailableError) as exc:
        return error_response(exc.code, str(exc))
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _HTTP_CODES.get(exc.status, "request.invalid" if exc.status < 500 else "node.internal")
        return error_response(code, exc.reason or "refused")
    except Exception:
        log.exception("unexpected error handling %s %s", request.method, request.path)
        return error_response("node.internal", "the node failed; the operator can see why in its log")


def node_of(request: web.Request) -> Node:
    return request.app[NODE]


def address(request: web.Request) -> str:
    return request.remote or "unknown"


async def read_body(request: web.Request) -> bytes:
    """The body, bounded in size (aiohttp answers 413 past client_max_size) and in time."""
    try:
        return await asyncio.wait_for(request.read(), node_of(request).config.body_timeout)
    except TimeoutError as exc:
        raise RequestError("the body arrived too slowly", "request.timeout") from exc


def text_of(value: object, name: str, max_bytes: int = 4096) -> str:
    """Text from outside (a header, a query parameter, a JSON string): UTF-8 and bounded.

    aiohttp hands undecodable header bytes over as surrogates, and JSON can spell lone
    surrogates; neither is text, and neither may reach the database or a hash.
    """
    if not isinstance(value, str):
        raise RequestError(f"{name} must be text", "request.invalid")
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise RequestError(f"{name} is not valid UTF-8 text", "request.invalid") from exc
    if size > max_bytes:
        raise RequestError(f"{name} is longer than {max_bytes} bytes", "request.invalid")
    return value


def header(request: web.Request, name: str) -> str | None:
    value = request.headers.get(name)
    return None if value is None else text_of(value, name)


def url_of(value: object, name: str) -> str:
    try:
        return check_url(text_of(value, name, 256).rstrip("/"), name)
    except InvalidValue as exc:
        raise RequestError(str(exc), "request.invalid") from exc


def parse_json(data: bytes | str) -> Any:
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise RequestError("the body is not JSON (or is nested too deeply)", "request.invalid") from exc


async def read_json(request: web.Request) -> dict[str, Any]:
    value = parse_json(await read_body(request) or b"{}")
    if not isinstance(value, dict):
        raise RequestError("the body must be a JSON object", "request.invalid")
    return value


def decode_b64(value: object, name: str) -> bytes:
    if not isinstance(value, str):
        raise RequestError(f"{name} must be a base64 string", "request.invalid")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise RequestError(f"{name} is not base64", "request.invalid") from exc


def int_query(request: web.Request, name: str, default: int | None) -> int | None:
    value = request.query.get(name)
    if value is None or value == "":
        return default
    try:
        number = int(text_of(value, name, 20))
    except ValueError as exc:
        raise RequestError(f"{name} must be an integer", "request.invalid") from exc
    if not 0 <= number < 2**62:
        raise RequestError(f"{name} is out of range", "request.invalid")
    return number


def query(request: web.Request, name: str) -> str | None:
    value = request.query.get(name)
    return text_of(value, name, 256) if value else None


async def signed_in(request: web.Request) -> PeerId:
    try:
        authorization = header(request, "Authorization")
    except RequestError as exc:
        raise RequestError("the Authorization header is not a session token", "auth.required") from exc
    return await node_of(request).session(authorization)


routes = web.RouteTableDef()


# --- the node document --------------------------------------------------------------------


@routes.get("/.well-known/peerfed")
async def well_known(request: web.Request) -> web.Response:
    node = node_of(request)
    raw = node.document()
    doc = open_signed(raw, context=Context.NODE_DOCUMENT, now=node.now()).body
    summary = {
        "url": doc.url,  # type: ignore[union-attr]
        "name": doc.name,  # type: ignore[union-attr]
        "registration": doc.registration.value,  # type: ignore[union-attr]
        "federation": doc.federation.value,  # type: ignore[union-attr]
        "resources": [
            {
                "name": r.name,
                "contact": r.contact,
                "hours": r.hours,
                "languages": list(r.languages),
                "emergency": r.emergency.value,
                "note": r.note,
            }
            for r in doc.resources  # type: ignore[union-attr]
        ],
    }
    return web.json_response({"document": b64(raw), "summary": summary})


# --- joining ------------------------------------------------------------------------------


@routes.post("/api/v1/challenge")
async def challenge(request: web.Request) -> web.Response:
    value, expires, work = await node_of(request).challenge(address(request))
    return web.json_response(
        {"challenge": value.hex(), "node": node_of(request).url, "expires_at": expires, "work": work}
    )


@routes.post("/api/v1/session")
async def session(request: web.Request) -> web.Response:
    proof = await read_body(request)
    token, peer, expires = await node_of(request).open_session(
        proof,
        request.headers.get("X-Peerfed-Invite"),
        address(request),
        request.headers.get("X-Peerfed-Work"),
    )
    return web.json_response({"token": token, "peer": peer.text, "expires_at": expires})


# --- keys and listings --------------------------------------------------------------------


@routes.put("/api/v1/keys")
async def put_keys(request: web.Request) -> web.Response:
    peer = await signed_in(request)
    env = await node_of(request).publish_key_bundle(peer, await read_body(request))
    return web.json_response({"status": "accepted", "expires_at": env.expires_at})


@routes.get("/api/v1/keys/{peer}")
async def get_keys(request: web.Request) -> web.Response:
    await signed_in(request)
    raw, home = await node_of(request).key_bundle(PeerId.from_text(request.match_info["peer"]))
    return web.json_response({"key_bundle": b64(raw), "home": home})


@routes.post("/api/v1/listings")
async def post_listing(request: web.Request) -> web.Response:
    peer = await signed_in(request)
    env = await node_of(request).publish(peer, await read_body(request), address(request))
    return web.json_response({"status": "accepted", "id": env.id.hex(), "type": env.type}, status=201)


@routes.get("/api/v1/listings/{listing}")
async def get_listing(request: web.Request) -> web.Response:
    await signed_in(request)
    node = node_of(request)
    try:
        listing_id = bytes.fromhex(request.match_info["listing"])
    except ValueError as exc:
        raise RequestError("a listing id is 64 hex digits", "request.invalid") from exc
    held = await node.store.listing(listing_id)
    if held is None:
        if await node.store.was_withdrawn(listing_id):
            raise RequestError("that listing was withdrawn", "gone")
        raise RequestError("no such listing here", "not_found")
    open_signed(held.raw, context=Context.ENVELOPE, now=node.now())  # time.expired once it has lapsed
    return web.json_response({"listing": b64(held.raw), "origin": held.origin or node.url})


@routes.get("/api/v1/directory")
async def directory(request: web.Request) -> web.Response:
    await signed_in(request)
    kind = query(request, "kind")
    if kind not in (None, "offer", "request"):
        raise RequestError("kind is offer or request", "request.invalid")
    answer = await node_of(request).search(
        kind=kind,
        timing=query(request, "timing"),
        topic=query(request, "topic"),
        lang=query(request, "lang"),
        fmt=query(request, "format"),
        vocab=query(request, "vocab"),
        before=int_query(request, "before", None),
        limit=int_query(request, "limit", 50) or 50,
    )
    return web.Response(text=answer, content_type="application/json")


# --- mailboxes ----------------------------------------------------------------------------


@routes.post("/api/v1/send")
async def send(request: web.Request) -> web.Response:
    peer = await signed_in(request)
    destination = request.headers.get("X-Peerfed-Destination")

    def route() -> str | None:  # read only once the sealed bytes themselves have passed
        return url_of(destination, "X-Peerfed-Destination") if destination else None

    sealed_id, status = await node_of(request).submit_sealed(peer, await read_body(request), route, address(request))
    return web.json_response({"id": sealed_id.hex(), "status": status}, status=202)


@routes.get("/api/v1/mailbox")
async def mailbox(request: web.Request) -> web.Response:
    peer = await signed_in(request)
    items = await node_of(request).mailbox(
        peer, int_query(request, "after", 0) or 0, int_query(request, "limit", 100) or 100
    )
    return web.json_response({"items": items, "next": items[-1]["seq"] if items else None})


@routes.post("/api/v1/mailbox/ack")
async def ack(request: web.Request) -> web.Response:
    peer = await signed_in(request)
    ids = (await read_json(request)).get("ids")
    if not isinstance(ids, list) or len(ids) > 1000:
        raise RequestError("ids is a list of at most 1000 hex ids", "request.invalid")
    return web.json_response({"deleted": await node_of(request).ack(peer, ids)})


@routes.get("/api/v1/live")
async def live(request: web.Request) -> web.WebSocketResponse:
    """Live connection: authenticate first, then receive mailbox items, ack, publish and send.

    Publishes and sends are answered out of order, each by its ``ref``, once durably stored;
    up to LIVE_WINDOW run at once per connection, which is what lets one socket keep the
    node's group commit full.
    """
    node = node_of(request)
    ws = web.WebSocketResponse(heartbeat=30, max_msg_size=LIVE_FRAME_BYTES)
    await ws.prepare(request)
    peer: PeerId | None = None
    pushed: set[int] = set()
    sending: set[asyncio.Task[None]] = set()
    window = asyncio.Semaphore(LIVE_WINDOW)
    where = address(request)

    async def quietly(coro: Any) -> None:
        # A reader that went away while an item was on its way is not an error.
        with contextlib.suppress(ConnectionError, RuntimeError, asyncio.CancelledError):
            await coro

    def spawn(coro: Any) -> None:
        task = asyncio.ensure_future(quietly(coro))
        sending.add(task)
        task.add_done_callback(sending.discard)

    async def submit(signed_in: PeerId, data: dict[str, Any]) -> None:
        # One publish or send, answered with its ref once durably stored (or refused).
        ref = data.get("ref")
        try:
            if type(ref) is not int or not 0 <= ref < 2**53:
                raise RequestError("ref is an integer from 0 to 2^53-1 that names the answer", "request.invalid")
            if data["type"] == "publish":
                env = await node.publish(signed_in, decode_b64(data.get("object"), "object"), where)
                reply = {"type": "accepted", "ref": ref, "id": env.id.hex(), "object_type": env.type}
            else:
                destination = data.get("destination")

                def route() -> str | None:
                    return url_of(destination, "destination") if destination is not None else None

                raw = decode_b64(data.get("sealed"), "sealed")
                sealed_id, status = await node.submit_sealed(signed_in, raw, route, where)
                reply = {"type": "sent", "ref": ref, "id": sealed_id.hex(), "status": status}
        except (RemoteError, UnavailableError) as exc:
            reply = {"type": "error", "ref": ref, "code": exc.code, "message": str(exc)}
        except Exception:
            log.exception("a live %s failed", data["type"])
            reply = {"type": "error", "ref": ref, "code": "node.internal", "message": "a fault in the node"}
        finally:
            window.release()
        await ws.send_json(reply)

    def push(item: dict[str, Any]) -> None:
        if item.get("type") == "closed":
            spawn(ws.close())
            return
        if item["seq"] not in pushed:
            pushed.add(item["seq"])
            spawn(ws.send_json({"type": "item", **item}))

    try:
        async for message in ws:
            if message.type != WSMsgType.TEXT:
                await ws.send_json({"type": "error", "code": "request.invalid", "message": "send JSON text"})
                continue
            try:
                data = parse_json(message.data)
                if not isinstance(data, dict):
                    raise ValueError("not an object")
                if peer is None:
                    if data.get("type") != "auth":
                        raise RequestError("authenticate first", "auth.required")
                    after = data.get("after", 0)
                    if type(after) is not int or not 0 <= after < 2**62:
                        raise RequestError("after is a mailbox position (an integer)", "request.invalid")
                    peer = await node.session("Bearer " + text_of(data.get("token", ""), "token", 256))
                    total = sum(len(v) for v in node.live.values())
                    if (
                        total >= node.config.max_live_connections
                        or len(node.live.get(bytes(peer), ())) >= node.config.max_live_per_peer
                    ):
                        await ws.send_json(
                            {"type": "error", "code": "rate.limited", "message": "too many live readers"}
                        )
                        peer = None
                        break
                    node.live[bytes(peer)].add(push)
                    await ws.send_json({"type": "ready"})
                    for item in await node.mailbox(peer, after, 500):
                        push(item)
                elif data.get("type") in ("publish", "send"):
                    await window.acquire()  # at most LIVE_WINDOW in flight: past it, stop reading
                    spawn(submit(peer, data))
                elif data.get("type") == "ack":
                    ids = data.get("ids")
                    if not isinstance(ids, list):
                        raise RequestError("ids is a list", "request.invalid")
                    await ws.send_json({"type": "acked", "deleted": await node.ack(peer, ids)})
                else:
                    raise RequestError("unknown message type", "request.invalid")
            except (RemoteError, UnavailableError) as exc:
                await ws.send_json({"type": "error", "code": exc.code, "message": str(exc)})
            except (ValueError, TypeError) as exc:
                await ws.send_json({"type": "error", "code": "request.invalid", "message": str(exc)})
    except ConnectionError:
        pass  # the reader went away mid-answer: nothing to do but forget it
    finally:
        if peer is not None:
            node.live[bytes(peer)].discard(push)
            if not node.live[bytes(peer)]:
                node.live.pop(bytes(peer), None)
    return ws


# --- moving, erasure, reports ---------------------------------------------------------------


@routes.post("/api/v1/move")
async def move(request: web.Request) -> web.Response:
    peer = await signed_in(request)
    to = url_of((await read_json(request)).get("to"), "to")
    return web.json_response({"status": "moved", "forwarded": await node_of(request).move(peer, to)})


@routes.post("/api/v1/erase")
async def erase(request: web.Request) -> web.Response:
    peer = await signed_in(request)
    deleted = await node_of(request).erase(peer, await read_body(request))
    return web.json_response({"status": "erased", "listings": deleted})


@routes.post("/api/v1/reports")
async def post_report(request: web.Request) -> web.Response:
    peer = await signed_in(request)
    body = await read_json(request)
    disclosed = body.get("disclosed") or []
    if not isinstance(disclosed, list) or len(disclosed) > 20:
        raise RequestError("disclosed is a list of at most 20 base64 messages", "request.invalid")
    report_id = await node_of(request).report(
        peer,
        text_of(body.get("target", ""), "target", 256),
        text_of(body.get("reason", ""), "reason", 2000),
        [decode_b64(d, "disclosed") for d in disclosed],
    )
    return web.json_response({"id": report_id, "status": "open"}, status=201)


@routes.get("/api/v1/reports")
async def get_reports(request: web.Request) -> web.Response:
    peer = await signed_in(request)
    rows = await node_of(request).store.reports(reporter=bytes(peer))
    return web.json_response(
        {
            "reports": [
                {
                    "id": r.id,
                    "target_kind": r.target_kind,
                    "status": r.status,
                    "outcome": r.outcome,
                    "created_at": r.created_at,
                }
                for r in rows
            ]
        }
    )


# --- federation -----------------------------------------------------------------------------


async def from_node(request: web.Request, body: bytes) -> str:
    node = node_of(request)
    verified = await verify_request(
        request.headers.get("Authorization"),
        method=request.method,
        path=request.raw_path,
        destination=node.url,
        body=body,
        now=node.now(),
        key_owner=node.key_owner,
        discover=node.discover,
        use_nonce=node.store.use_nonce,
    )
    return verified.origin


async def from_active_node(request: web.Request) -> str:
    """A verified GET from a node this one federates with (federation.refused otherwise)."""
    origin = await from_node(request, b"")
    known = await node_of(request).store.node(origin)
    if known is None or known.status != NodeStatus.ACTIVE:
        raise RequestError("this node does not federate with you", "federation.refused")
    return origin


@routes.post("/federation/v1/follow")
async def follow(request: web.Request) -> web.Response:
    body = await read_body(request)
    origin = await from_node(request, body)
    return web.json_response({"status": await node_of(request).follow_from(origin)})


@routes.post("/federation/v1/batch")
async def batch(request: web.Request) -> web.Response:
    body = await read_body(request)
    origin = await from_node(request, body)
    results = await node_of(request).ingest_batch(origin, body)
    node_of(request).wakeup.set()
    return web.json_response({"results": results})


@routes.get("/federation/v1/listings")
async def pull(request: web.Request) -> web.Response:
    await from_active_node(request)
    items, following = await node_of(request).pull_page(
        int_query(request, "after", 0) or 0, int_query(request, "limit", 200) or 200
    )
    return web.json_response({"items": items, "next": following})


@routes.get("/federation/v1/keys/{peer}")
async def federation_keys(request: web.Request) -> web.Response:
    await from_active_node(request)
    raw = await node_of(request).local_key_bundle(PeerId.from_text(request.match_info["peer"]))
    return web.json_response({"key_bundle": b64(raw)})
