"""What every handler shares: typed app keys, the error format, bounded body and header parsing (spec §13.1).

Every refusal is ``{"error": {"code": ..., "message": ...}}`` with the code's HTTP status, so a
client can act on the code without reading the message. Text from outside (headers, query
parameters, JSON strings) is checked here to be UTF-8 and bounded before any part sees it.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import ipaddress
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from peerfed.protocol import ERROR_CODES, InvalidValue, MovedError, PeerId, RemoteError, RequestError
from peerfed.protocol.errors import UnavailableError
from peerfed.protocol.node_bodies import check_url

from ..config import Config
from ..directory import Directory
from ..document import DocumentSigner
from ..federation.catchup import CatchUp
from ..federation.inbound import Inbound
from ..health import Health
from ..limits import LiveSockets
from ..mailbox import Mailbox
from ..metrics import Metrics
from ..moderation import Moderation
from ..prekeys import OneTimePreKeys
from ..service import Node
from ..sessions import Sessions

__all__ = [
    "CATCHUP",
    "CONFIG",
    "DIRECTORY",
    "DOCUMENT",
    "HEALTH",
    "INBOUND",
    "LIVE_SOCKETS",
    "MAILBOX",
    "METRICS",
    "MODERATION",
    "NODE",
    "OCTETS",
    "PREKEYS",
    "SESSIONS",
    "address",
    "client_address",
    "decode_b64",
    "error_middleware",
    "error_response",
    "from_trusted_proxy",
    "header",
    "int_query",
    "parse_json",
    "query",
    "read_body",
    "read_json",
    "signed_in",
    "text_of",
    "url_of",
]

log = logging.getLogger("peerfed.node")

NODE: web.AppKey[Node] = web.AppKey("node", Node)  # every part at once: for tests and the demo
CONFIG: web.AppKey[Config] = web.AppKey("config", Config)
DOCUMENT: web.AppKey[DocumentSigner] = web.AppKey("document", DocumentSigner)
SESSIONS: web.AppKey[Sessions] = web.AppKey("sessions", Sessions)
DIRECTORY: web.AppKey[Directory] = web.AppKey("directory", Directory)
MAILBOX: web.AppKey[Mailbox] = web.AppKey("mailbox", Mailbox)
MODERATION: web.AppKey[Moderation] = web.AppKey("moderation", Moderation)
INBOUND: web.AppKey[Inbound] = web.AppKey("inbound", Inbound)
CATCHUP: web.AppKey[CatchUp] = web.AppKey("catchup", CatchUp)
PREKEYS: web.AppKey[OneTimePreKeys] = web.AppKey("prekeys", OneTimePreKeys)
LIVE_SOCKETS: web.AppKey[LiveSockets] = web.AppKey("live_sockets", LiveSockets)
HEALTH: web.AppKey[Health] = web.AppKey("health", Health)
METRICS: web.AppKey[Metrics] = web.AppKey("metrics", Metrics)

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


def error_response(code: str, message: str, **extra: Any) -> web.Response:
    """The spec's error body; ``extra`` fields go beside the code (``moved_at`` for auth.moved, §13.4)."""
    return web.json_response({"error": {"code": code, "message": message, **extra}}, status=ERROR_CODES.get(code, 500))


@web.middleware
async def error_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Every refusal in the spec's error format; an unexpected fault is logged and answered node.internal."""
    try:
        return await handler(request)
    except MovedError as exc:
        return error_response(exc.code, str(exc), moved_at=exc.moved_at)
    except (RemoteError, UnavailableError) as exc:
        return _refused(request, exc.code, str(exc))
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _HTTP_CODES.get(exc.status, "request.invalid" if exc.status < 500 else "node.internal")
        return _refused(request, code, exc.reason or "refused")
    except Exception:
        log.exception("unexpected error handling %s %s", request.method, request.path)
        return _refused(request, "node.internal", "the node failed; the operator can see why in its log")


def _refused(request: web.Request, code: str, message: str) -> web.Response:
    """The refusal, counted by its code in the node's metrics."""
    metrics = request.app.get(METRICS)
    if metrics is not None:
        metrics.refused(code)
    return error_response(code, message)


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@functools.lru_cache(maxsize=8)
def _networks(proxies: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(p, strict=False) for p in proxies)


def _ip(text: str) -> IPAddress | None:
    """An address as a forwarding header or the socket writes it: quoted, bracketed, with a port."""
    value = text.strip().strip('"')
    if value.startswith("["):
        value = value[1 : value.find("]")] if "]" in value else ""
    elif value.count(":") == 1:
        value = value.split(":", 1)[0]  # IPv4 with a port
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        return None
    return ip.ipv4_mapped or ip if isinstance(ip, ipaddress.IPv6Address) else ip


def _hops(values: list[str], header: str) -> list[str]:
    """The client addresses a forwarding header lists, nearest proxy last."""
    elements = ",".join(values).split(",")
    if header.lower() != "forwarded":
        return elements
    hops = []
    for element in elements:  # RFC 7239: for=ADDRESS among ;-separated pairs
        found = [v for k, _, v in (p.partition("=") for p in element.split(";")) if k.strip().lower() == "for"]
        hops.append(found[0] if found else "")
    return hops


def client_address(remote: str | None, forwarded: list[str], trusted: tuple[str, ...], header: str) -> str:
    """The address limits apply to (spec §13.8): the socket's peer, unless that peer is a trusted
    proxy; then the rightmost address in its forwarding header that is not itself a trusted proxy.

    A header from any other peer is ignored, so a client cannot pick its own address. A hop that
    is not an address stops the walk at the last trusted proxy, which then answers for it.
    """
    peer = _ip(remote or "")
    if peer is None or not trusted:
        return remote or "unknown"
    networks = _networks(trusted)
    current = peer
    for hop in reversed(_hops(forwarded, header)):
        if not any(current in network for network in networks):
            break
        ip = _ip(hop)
        if ip is None:
            break
        current = ip
    return str(current)


def from_trusted_proxy(request: web.Request) -> bool:
    """Whether the socket's peer is one of ``trusted_proxies`` (so its forwarding header is read)."""
    peer = _ip(request.remote or "")
    trusted = request.app[CONFIG].trusted_proxies
    return peer is not None and bool(trusted) and any(peer in network for network in _networks(trusted))


def address(request: web.Request) -> str:
    """The caller's address, for per-address limits (through ``trusted_proxies``)."""
    config = request.app[CONFIG]
    forwarded = request.headers.getall(config.proxy_header, []) if config.trusted_proxies else []
    return client_address(request.remote, forwarded, config.trusted_proxies, config.proxy_header)


async def read_body(request: web.Request) -> bytes:
    """The body, bounded in size (aiohttp answers 413 past client_max_size) and in time (request.timeout)."""
    try:
        return await asyncio.wait_for(request.read(), request.app[CONFIG].body_timeout)
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
    """A node URL from outside (spec §13.1); raises request.invalid."""
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


def _single(request: web.Request, name: str) -> str | None:
    """The one value of a query parameter; raises request.invalid if it is given twice (spec §13.1)."""
    values = request.query.getall(name, [])
    if len(values) > 1:
        raise RequestError(f"{name} is given more than once", "request.invalid")
    return values[0] if values else None


def int_query(
    request: web.Request, name: str, default: int | None, bounds: tuple[int, int] | None = None
) -> int | None:
    """An integer query parameter, ``default`` when absent or empty (spec §13.1).

    Raises request.invalid for a repeated parameter, a non-integer, or one outside ``bounds``
    (inclusive; 0 … 2^62-1 when none are given).
    """
    value = _single(request, name)
    if value is None or value == "":
        return default
    try:
        number = int(text_of(value, name, 20))
    except ValueError as exc:
        raise RequestError(f"{name} must be an integer", "request.invalid") from exc
    low, high = bounds or (0, 2**62 - 1)
    if not low <= number <= high:
        raise RequestError(f"{name} must be {low} … {high}", "request.invalid")
    return number


def query(request: web.Request, name: str) -> str | None:
    """A text query parameter, None when absent or empty; raises request.invalid if repeated."""
    value = _single(request, name)
    return text_of(value, name, 256) if value else None


async def signed_in(request: web.Request) -> PeerId:
    """The session's peer; raises auth.required."""
    try:
        authorization = header(request, "Authorization")
    except RequestError as exc:
        raise RequestError("the Authorization header is not a session token", "auth.required") from exc
    return await request.app[SESSIONS].authenticate(authorization)
