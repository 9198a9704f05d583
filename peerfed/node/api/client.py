"""The client API's HTTP handlers: the node document, signing in, keys, listings, mailboxes (spec §13.5, §13.2, §13.4).

Each handler reads at most the configured body size, parses, calls one part and answers with the
part's value rendered by ``views``. The live WebSocket is in ``live.py``.
"""

from __future__ import annotations

from aiohttp import web

from peerfed.protocol import PeerId, RequestError

from .. import views
from .common import (
    CATCHUP,
    CONFIG,
    DIRECTORY,
    DOCUMENT,
    MAILBOX,
    MODERATION,
    OCTETS,
    PREKEYS,
    SESSIONS,
    address,
    decode_b64,
    header,
    int_query,
    query,
    read_body,
    read_json,
    signed_in,
    text_of,
    url_of,
)

__all__ = ["routes"]

routes = web.RouteTableDef()

# Page sizes (spec §13.5): `limit` is 1 … 100 on the directory and 1 … 500 on the mailbox.
DIRECTORY_PAGE = 50
MAILBOX_PAGE = 100


# --- the node document and joining ------------------------------------------------------------


@routes.get("/.well-known/peerfed")
async def well_known(request: web.Request) -> web.Response:
    signed = request.app[DOCUMENT].current()
    if OCTETS in request.headers.get("Accept", ""):
        # Nodes fetch each other's documents as raw signed bytes, read up to 65,536 (spec §13.2).
        return web.Response(body=signed.raw, content_type=OCTETS)
    return web.json_response(views.well_known(signed))


@routes.post("/api/v1/challenge")
async def challenge(request: web.Request) -> web.Response:
    return web.json_response(views.challenge(await request.app[SESSIONS].challenge(address(request))))


@routes.post("/api/v1/session")
async def session(request: web.Request) -> web.Response:
    proof = await read_body(request)
    opened = await request.app[SESSIONS].open(
        proof,
        request.headers.get("X-Peerfed-Invite"),
        address(request),
        request.headers.get("X-Peerfed-Work"),
        request.headers.get("X-Peerfed-Device"),
        request.headers.get("X-Peerfed-Take-Over"),
    )
    if opened.took_over:  # the devices it took over from hear nothing more, not even live (spec §13.4)
        request.app[MAILBOX].close_readers(bytes(opened.peer))
    return web.json_response(views.session(opened))


# --- keys and listings --------------------------------------------------------------------------


@routes.put("/api/v1/keys")
async def put_keys(request: web.Request) -> web.Response:
    peer = await signed_in(request)
    env = await request.app[DIRECTORY].publish_key_bundle(peer, await read_body(request), address(request))
    return web.json_response({"status": "accepted", "expires_at": env.expires_at})


@routes.get("/api/v1/keys/{peer}")
async def get_keys(request: web.Request) -> web.Response:
    await signed_in(request)
    held = await request.app[CATCHUP].key_bundle(PeerId.from_text(request.match_info["peer"]))
    return web.json_response(views.key_bundle(held))


@routes.post("/api/v1/listings")
async def post_listing(request: web.Request) -> web.Response:
    peer = await signed_in(request)
    env = await request.app[DIRECTORY].publish(peer, await read_body(request), address(request))
    return web.json_response({"status": "accepted", "id": env.id.hex(), "type": env.type}, status=201)


@routes.get("/api/v1/listings/{listing}")
async def get_listing(request: web.Request) -> web.Response:
    await signed_in(request)
    try:
        listing_id = bytes.fromhex(request.match_info["listing"])
    except ValueError as exc:
        raise RequestError("a listing id is 64 hex digits", "request.invalid") from exc
    held = await request.app[DIRECTORY].listing(listing_id)
    return web.json_response({"listing": views.b64(held.raw), "origin": held.origin})


@routes.get("/api/v1/directory")
async def directory(request: web.Request) -> web.Response:
    await signed_in(request)
    kind = query(request, "kind")
    if kind not in (None, "offer", "request"):
        raise RequestError("kind is offer or request", "request.invalid")
    page = await request.app[DIRECTORY].search(
        kind=kind,
        timing=query(request, "timing"),
        topics=[text_of(value, "topic", 256) for value in request.query.getall("topic", [])],
        lang=query(request, "lang"),
        fmt=query(request, "format"),
        vocab=query(request, "vocab"),
        before=int_query(request, "before", None),
        limit=int_query(request, "limit", DIRECTORY_PAGE, (1, 100)) or DIRECTORY_PAGE,
    )
    return web.Response(text=views.search_answer(page, request.app[CONFIG].url), content_type="application/json")


# --- one-time pre-keys (spec §13.5, One-time pre-keys) ----------------------------------------


@routes.post("/api/v1/prekeys")
async def post_prekeys(request: web.Request) -> web.Response:
    peer = await signed_in(request)
    stock = await request.app[PREKEYS].upload(peer, await read_body(request), address(request))
    return web.json_response({"status": "accepted", "stock": stock})


@routes.get("/api/v1/prekeys")
async def get_prekeys(request: web.Request) -> web.Response:
    peer = await signed_in(request)
    return web.json_response(views.prekey_stock(await request.app[PREKEYS].stock(peer)))


@routes.post("/api/v1/prekeys/claim")
async def claim_prekey(request: web.Request) -> web.Response:
    claimant = await signed_in(request)
    target = PeerId.from_text(text_of((await read_json(request)).get("peer"), "peer", 128))
    key = await request.app[PREKEYS].claim(claimant, target, address(request))
    return web.json_response({"prekey": None if key is None else views.b64(key)})


# --- mailboxes ----------------------------------------------------------------------------------


@routes.post("/api/v1/send")
async def send(request: web.Request) -> web.Response:
    peer = await signed_in(request)
    destination = request.headers.get("X-Peerfed-Destination")

    def route() -> str | None:  # read only once the sealed bytes themselves have passed
        return url_of(destination, "X-Peerfed-Destination") if destination else None

    work = header(request, "X-Peerfed-Work")  # a first message into a mailbox proves work (spec §13.5)
    outcome = await request.app[MAILBOX].submit(peer, await read_body(request), route, address(request), work)
    return web.json_response(views.sent(outcome), status=202)


@routes.get("/api/v1/mailbox")
async def mailbox(request: web.Request) -> web.Response:
    peer = await signed_in(request)
    items = await request.app[MAILBOX].items(
        peer, int_query(request, "after", 0) or 0, int_query(request, "limit", MAILBOX_PAGE, (1, 500)) or MAILBOX_PAGE
    )
    return web.json_response(views.mailbox_page(items))


@routes.post("/api/v1/mailbox/ack")
async def ack(request: web.Request) -> web.Response:
    peer = await signed_in(request)
    ids = (await read_json(request)).get("ids")
    if not isinstance(ids, list) or len(ids) > 1000:
        raise RequestError("ids is a list of at most 1000 hex ids", "request.invalid")
    return web.json_response({"deleted": await request.app[MAILBOX].ack(peer, ids)})


@routes.post("/api/v1/move")
async def move(request: web.Request) -> web.Response:
    peer = await signed_in(request)
    body = await read_json(request)
    to = url_of(body.get("to"), "to")
    statement = decode_b64(body.get("statement"), "statement")
    forwarded = await request.app[MAILBOX].move(peer, to, statement)
    return web.json_response({"status": "moved", "forwarded": forwarded})


# --- erasure and reports ------------------------------------------------------------------------


@routes.post("/api/v1/erase")
async def erase(request: web.Request) -> web.Response:
    peer = await signed_in(request)
    deleted = await request.app[MODERATION].erase(peer, await read_body(request))
    return web.json_response({"status": "erased", "listings": deleted})


@routes.post("/api/v1/reports")
async def post_report(request: web.Request) -> web.Response:
    peer = await signed_in(request)
    body = await read_json(request)
    disclosed = body.get("disclosed") or []
    if not isinstance(disclosed, list) or len(disclosed) > 20:
        raise RequestError("disclosed is a list of at most 20 base64 messages", "request.invalid")
    report_id = await request.app[MODERATION].report(
        peer,
        text_of(body.get("target", ""), "target", 256),
        text_of(body.get("reason", ""), "reason", 2000),
        [decode_b64(d, "disclosed") for d in disclosed],
    )
    return web.json_response({"id": report_id, "status": "open"}, status=201)


@routes.get("/api/v1/reports")
async def get_reports(request: web.Request) -> web.Response:
    peer = await signed_in(request)
    return web.json_response(views.reports(await request.app[MODERATION].reports_of(peer)))
