"""``GET /metrics`` and the middleware that counts every request (spec §13.1, Metrics): operational, not protocol.

The page is for the operator's Prometheus, so by default only a client on this machine may read
it: a loopback address, judged as per-address limits judge it (through ``trusted_proxies``). A
request that came through a proxy is judged by the client the proxy names, and only when that
proxy is trusted; a forwarded request from an untrusted proxy (a proxy on this machine the
operator has not listed) is not local, however it connects. Anyone else needs the bearer token
``metrics_token``, when one is set; otherwise the answer is 403 ``auth.forbidden``.
"""

from __future__ import annotations

import hmac
import ipaddress
import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from peerfed.protocol import RequestError

from .common import CONFIG, METRICS, address, from_trusted_proxy

__all__ = ["FORWARDING_HEADERS", "metrics_middleware", "routes"]

routes = web.RouteTableDef()
# Headers a proxy writes to name the client: any of them marks a request as forwarded.
FORWARDING_HEADERS = ("X-Forwarded-For", "Forwarded", "X-Real-IP")
# Methods counted by name; anything else is "other", so a stranger cannot mint label values.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})
UNMATCHED = "(unmatched)"


def _route(request: web.Request) -> str:
    """The route's template (``/v1/listings/{id}``), never the path asked for, which may hold ids."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else UNMATCHED


@web.middleware
async def metrics_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Count each answered request by method, route and status, and time it (WebSockets are counted only)."""
    started = time.perf_counter()
    try:
        response = await handler(request)
    except web.HTTPException as exc:  # a redirect or the like, raised past the error middleware
        _count(request, exc.status, time.perf_counter() - started)
        raise
    socket = isinstance(response, web.WebSocketResponse)
    _count(request, response.status, None if socket else time.perf_counter() - started)
    return response


def _count(request: web.Request, status: int, seconds: float | None) -> None:
    metrics = request.app.get(METRICS)
    if metrics is not None:
        method = request.method if request.method in METHODS else "other"
        metrics.answered(method, _route(request), status, seconds)


def _local(request: web.Request) -> bool:
    """Whether the client is on this machine: loopback, directly or through a trusted proxy."""
    config = request.app[CONFIG]
    if any(name in request.headers for name in FORWARDING_HEADERS) and (
        not from_trusted_proxy(request) or config.proxy_header not in request.headers
    ):
        return False
    try:
        return ipaddress.ip_address(address(request)).is_loopback
    except ValueError:
        return False


def _token(request: web.Request) -> bool:
    """Whether the request carries ``Authorization: Bearer <metrics_token>`` (compared in constant time)."""
    token = request.app[CONFIG].metrics_token
    given = request.headers.get("Authorization", "")
    scheme, _, value = given.partition(" ")
    if not token or scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(value.strip().encode("utf-8", "replace"), token.encode("utf-8"))


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    """The Prometheus text page; raises auth.forbidden for a client that is neither local nor holds the token."""
    if not (_local(request) or _token(request)):
        raise RequestError(
            "metrics are served to this machine only, or with the operator's metrics_token", "auth.forbidden"
        )
    body = await request.app[METRICS].render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST, "Cache-Control": "no-store"})
