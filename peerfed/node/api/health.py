"""``GET /healthz`` and ``GET /readyz`` (spec §13.1, Health): operational probes, not protocol.

Neither needs a session, and neither says anything about members or other nodes. Answers are
never cached: a probe wants the state now.
"""

from __future__ import annotations

from aiohttp import web

from .common import HEALTH

__all__ = ["routes"]

routes = web.RouteTableDef()
NO_STORE = {"Cache-Control": "no-store"}


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    """Alive: the process answers. Touches nothing, so a slow database cannot make it fail."""
    return web.json_response({"status": "alive"}, headers=NO_STORE)


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    """Ready (200) or not (503), with each check's verdict: ``ok`` or the reason."""
    readiness = await request.app[HEALTH].readiness()
    body = {
        "status": "ready" if readiness.ready else "not ready",
        "checks": {"database": readiness.database, "outbox": readiness.outbox},
    }
    return web.json_response(body, status=200 if readiness.ready else 503, headers=NO_STORE)
