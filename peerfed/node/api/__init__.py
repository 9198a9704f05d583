"""The node's HTTP and WebSocket surface (spec §13.5, §13.7): thin handlers over the node's parts.

``common`` holds the typed app keys, the error format and the parsing every handler shares;
``client`` the client API, ``live`` its WebSocket, ``federation`` the node-to-node API,
``health`` the operator's probes (spec §13.1, Health), ``metrics`` the operator's Prometheus page
and the middleware that counts every request (spec §13.1, Metrics), ``webclient`` the browser
client's files and CORS (spec §13.10).
"""

from __future__ import annotations

from aiohttp import web

from . import client, federation, health, live, metrics, webclient
from .common import NODE, error_middleware
from .metrics import metrics_middleware
from .webclient import CLIENT_DIR, CLIENT_FILES, cors_middleware

__all__ = ["CLIENT_DIR", "CLIENT_FILES", "NODE", "ROUTES", "cors_middleware", "error_middleware", "metrics_middleware"]

ROUTES: list[web.RouteTableDef] = [
    client.routes,
    live.routes,
    federation.routes,
    health.routes,
    metrics.routes,
    webclient.routes,
]
