"""Serving the app (spec §13.1): an aiohttp runner whose HTTP-level refusals speak the error format.

aiohttp answers requests it cannot parse (a request line over 8,190 bytes, a malformed header)
itself, before any middleware runs, with a plain-text 400 and an ERROR log line. Those are hostile
or broken clients, not node failures: this runner answers them with a JSON error body carrying a
spec code (spec §13.1) and logs them at debug level.
"""

from __future__ import annotations

import asyncio
import json
import signal
import socket
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest
from aiohttp.web_server import Server

__all__ = ["NodeRunner", "serve_forever"]


class _Handler(RequestHandler):
    def handle_error(
        self, request: BaseRequest, status: int = 500, exc: BaseException | None = None, message: str | None = None
    ) -> web.StreamResponse:
        if not 400 <= status < 500:
            return super().handle_error(request, status, exc, message)
        self.logger.debug("refused a malformed HTTP request from %s: %s", request.remote, exc)
        code, status = ("size.too_large", 413) if status == 413 else ("request.invalid", 400)
        text = (message or "malformed HTTP request").splitlines()[0][:200]
        response = web.Response(
            status=status,
            text=json.dumps({"error": {"code": code, "message": f"not a valid HTTP request: {text}"}}),
            content_type="application/json",
        )
        response.force_close()
        return response


class _Server(Server):
    def __call__(self) -> RequestHandler:
        return _Handler(self, loop=self._loop, **self._kwargs)


class NodeRunner(web.AppRunner):
    async def _make_server(self) -> Server:
        server = await super()._make_server()
        server.__class__ = _Server
        return server


async def serve_forever(
    app: web.Application, host: str, port: int, idle_timeout: float, ready: Any = None, listen_fd: int | None = None
) -> None:
    """Serve until SIGINT or SIGTERM, then shut down cleanly (cleanup_ctx runs).

    With ``listen_fd``, serve on that inherited socket, already bound and listening, instead of
    binding ``host:port``: a parent that holds the port (a supervisor, or a test restarting the
    node) then keeps it between lives. Raises OSError if the port or the descriptor cannot be used.
    """
    runner = NodeRunner(app, handle_signals=False, keepalive_timeout=idle_timeout, access_log=None, shutdown_timeout=10)
    await runner.setup()
    try:
        if listen_fd is None:
            await web.TCPSite(runner, host, port).start()
        else:
            await web.SockSite(runner, socket.socket(fileno=listen_fd)).start()
        if ready is not None:
            ready()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
    finally:
        await runner.cleanup()
