"""The web client's files at ``/`` and CORS for browser clients of other origins (spec §13.10).

The built client lives in ``peerfed/web/dist`` (committed, shipped as package data), so a node
installed with pip serves it with nothing else to fetch. Only ``/`` (``index.html``) and files
directly under ``/assets/`` are served, with types from a closed table: nothing else on disk is
reachable. Every page goes out under a strict Content-Security-Policy (no inline script, no
third-party origin) because the client holds a person's keys: a script injected into it could take
them. When the build is missing, ``/`` is a plain page that says so, never a JSON refusal.

CORS is answered for the client API and the node document only: their requests carry a bearer
token in a header, never a cookie, so ``Access-Control-Allow-Origin: *`` lends a page of another
origin nothing it could not do itself. Federation, health and everything else stay same-origin.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

from peerfed.protocol.web_client import web_client_hash

__all__ = [
    "CLIENT_DIR",
    "CLIENT_FILES",
    "CORS_HEADERS",
    "CORS_METHODS",
    "CSP",
    "PAGE_HEADERS",
    "cors_middleware",
    "routes",
    "served_files",
    "served_hash",
]

routes = web.RouteTableDef()

CLIENT_FILES = Path(__file__).resolve().parents[2] / "web" / "dist"
CLIENT_DIR: web.AppKey[Path] = web.AppKey("client_files", Path)

# connect-src: the node itself, plus any https/wss node a person joins or moves to (spec §13.1:
# production nodes use https). Nothing else may be loaded from anywhere but this origin.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; font-src 'self'; "
    "connect-src 'self' https: wss:; object-src 'none'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    # A new release must reach people at once; files are small and revalidated.
    "Cache-Control": "no-cache",
}
_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".json": "application/json",
    ".webmanifest": "application/manifest+json",
    ".txt": "text/plain; charset=utf-8",
}
_ASSET = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")

CORS_METHODS = "GET, POST, PUT"
CORS_HEADERS = (
    "Authorization, Content-Type, X-Peerfed-Work, X-Peerfed-Invite, X-Peerfed-Destination, X-Peerfed-Device, "
    "X-Peerfed-Take-Over"
)
_CORS_MAX_AGE = "600"

_MISSING = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>peerfed</title></head>
<body><main>
<h1>This node is running</h1>
<p>The web app is not part of this installation, so there is nothing to show here yet.</p>
<p>You can still join this community with the peerfed command-line app. The person who runs this node
can add the web app by installing a released version of peerfed, or by running
<code>npm run build --prefix peerfed/web</code> in a copy of the source.</p>
</main></body></html>
"""


def served_files(directory: Path) -> dict[str, bytes] | None:
    """The built client as the node serves it: ``index.html`` and each file ``/assets/NAME`` reaches.

    Exactly the files ``asset`` would answer, so the published hash covers what a browser can load.
    None when there is no ``index.html`` (no build). Raises OSError when a file cannot be read.
    """
    if not (directory / "index.html").is_file():
        return None
    files = {"index.html": (directory / "index.html").read_bytes()}
    assets = directory / "assets"
    if assets.is_dir():
        files.update({f"assets/{p.name}": p.read_bytes() for p in assets.iterdir() if _servable(p)})
    return files


def _servable(path: Path) -> bool:
    return bool(_ASSET.fullmatch(path.name)) and ".." not in path.name and path.suffix in _TYPES and path.is_file()


def served_hash(directory: Path) -> bytes | None:
    """The hash the node document publishes for the client in ``directory`` (§13.10), or None.

    Raises OSError when a file cannot be read, InvalidValue when a file's name is not one served.
    """
    files = served_files(directory)
    return None if files is None else web_client_hash(files)


def _file(path: Path) -> web.Response:
    content_type = _TYPES[path.suffix]
    return web.Response(body=path.read_bytes(), headers={**PAGE_HEADERS, "Content-Type": content_type})


@routes.get("/")
async def index(request: web.Request) -> web.Response:
    """The client's page, or a plain page saying the build is missing (200 either way)."""
    page = request.app[CLIENT_DIR] / "index.html"
    if not page.is_file():
        return web.Response(text=_MISSING, headers={**PAGE_HEADERS, "Content-Type": "text/html; charset=utf-8"})
    return _file(page)


@routes.get("/assets/{name}")
async def asset(request: web.Request) -> web.Response:
    """One built file by plain name; any other name, type or a missing file is ``not_found``."""
    name = request.match_info["name"]
    path = request.app[CLIENT_DIR] / "assets" / name
    if not _ASSET.fullmatch(name) or ".." in name or path.suffix not in _TYPES or not path.is_file():
        raise web.HTTPNotFound(reason="no such file")
    return _file(path)


def _is_client_api(path: str) -> bool:
    return path.startswith("/api/v1/") or path == "/.well-known/peerfed"


@web.middleware
async def cors_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Answer preflights and mark client API answers (refusals too) readable by any origin."""
    if not _is_client_api(request.path):
        return await handler(request)
    if request.method == "OPTIONS":
        # A preflight needs no session and reaches no handler: it only says what may be asked.
        return web.Response(
            status=204,
            headers={
                "Access-Control-Allow-Origin": "*",
                "Access-Control-Allow-Methods": CORS_METHODS,
                "Access-Control-Allow-Headers": CORS_HEADERS,
                "Access-Control-Max-Age": _CORS_MAX_AGE,
            },
        )
    response = await handler(request)
    if not response.prepared:  # a WebSocket is already under way; browsers do not apply CORS to it
        response.headers["Access-Control-Allow-Origin"] = "*"
        response.headers["Access-Control-Expose-Headers"] = "Retry-After"
    return response
