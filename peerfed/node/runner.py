"""Serving the app (spec §13.1): one node per data folder, bound before it starts, drained when it stops.

On SIGTERM or SIGINT the node stops accepting connections, lets every request in progress
finish (its body still arriving included, which aiohttp alone would cut off), then stops the
background loops and flushes and closes the store. The exit codes are EXIT_* below.

aiohttp answers requests it cannot parse (a request line over 8,190 bytes, a malformed header)
itself, before any middleware runs, with a plain-text 400 and an ERROR log line. Those are hostile
or broken clients, not node failures: this runner answers them with a JSON error body carrying a
spec code (spec §13.1) and logs them at debug level.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import signal
import socket
from collections.abc import Callable
from pathlib import Path

from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest
from aiohttp.web_server import Server

__all__ = [
    "EXIT_CANNOT_LISTEN",
    "EXIT_CONFIG",
    "EXIT_DATA_IN_USE",
    "EXIT_DATA_UNUSABLE",
    "DataLock",
    "DataInUse",
    "NodeRunner",
    "listening_socket",
    "serve_forever",
]

log = logging.getLogger("peerfed.node")

# What `peerfed serve` exits with, so a supervisor (systemd, a script) can tell failures apart.
# 0: stopped by SIGTERM or SIGINT after draining. 2 is also argparse's code for a bad command line.
EXIT_CONFIG = 2  # a setting is invalid: fix the config, retrying will not help
EXIT_DATA_IN_USE = 3  # another `peerfed serve` holds the data folder's lock
EXIT_CANNOT_LISTEN = 4  # the address or port cannot be bound (taken, or not this host's)
EXIT_DATA_UNUSABLE = 5  # the data folder, node key or database cannot be opened
LOCK_FILE = "serve.lock"


class DataInUse(Exception):
    """Another process holds the data folder's lock."""


class DataLock:
    """An exclusive, advisory lock on a data folder, held for the life of one `peerfed serve`.

    flock(2) on ``<data>/serve.lock``: the kernel drops it when the process ends however it
    ends (SIGKILL included), so a crash never leaves a stale lock to clear by hand. The file
    holds the holder's pid, for the operator's eyes only. ``peerfed admin`` does not take it:
    it works beside a running node, through SQLite's own locking (``backup`` included); only
    ``restore`` takes it, on the empty folder it fills.
    """

    def __init__(self, data: Path) -> None:
        self.path = data / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock, making the folder if needed; raises DataInUse if it is held, OSError if unusable."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise DataInUse(
                f"the data folder {self.path.parent} is in use by another peerfed serve (pid {holder}); "
                "one folder serves one node"
            ) from None
        except OSError:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None


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

    @property
    def busy(self) -> bool:
        """A request is being handled on this connection (its body may still be arriving)."""
        return self._request_in_progress

    async def shutdown(self, timeout: float | None = 15.0) -> None:
        # aiohttp's own shutdown stops reading before it waits for the handler; wait first.
        if self._request_in_progress and timeout:
            deadline = self._loop.time() + timeout
            waiter = self._handler_waiter = self._loop.create_future()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(waiter), timeout)
            self._handler_waiter = None
            timeout = max(0.0, deadline - self._loop.time())
        await super().shutdown(timeout)


class _Server(Server):
    def __call__(self) -> RequestHandler:
        return _Handler(self, loop=self._loop, **self._kwargs)

    def pre_shutdown(self) -> None:
        # Shutdown has begun. aiohttp would close every connection here, and a closed one stops
        # reading at once, cutting off a request whose body is still arriving. Idle connections
        # close now; a busy one reads on, and _Handler.shutdown closes it once it is answered.
        for conn in self.connections:
            if not (isinstance(conn, _Handler) and conn.busy):
                conn.close()


class NodeRunner(web.AppRunner):
    async def _make_server(self) -> Server:
        server = await super()._make_server()
        server.__class__ = _Server
        return server


def listening_socket(host: str, port: int, listen_fd: int | None = None) -> socket.socket:
    """The node's listening socket: bound to ``host:port``, or the inherited, listening ``listen_fd``.

    Bound before anything else starts, so a taken port fails the start at once, before the
    database is opened or any federation work begins. Raises OSError if it cannot be bound.
    """
    if listen_fd is not None:
        return socket.socket(fileno=listen_fd)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # SO_REUSEADDR (create_server sets it): a restart can bind while the last life's
    # connections sit in TIME_WAIT. It does not let two live listeners share the port.
    return socket.create_server((host, port), family=family, backlog=128)


async def serve_forever(
    app: web.Application,
    sock: socket.socket,
    idle_timeout: float,
    *,
    ready: Callable[[], None] | None = None,
    drain_timeout: float = 10.0,
) -> None:
    """Serve on ``sock`` until SIGINT or SIGTERM, then drain and shut down cleanly.

    Startup opens the store and migrates it (the app's cleanup_ctx) and only then accepts
    connections and calls ``ready``. On a signal the node stops accepting, lets requests in
    flight finish (up to ``drain_timeout`` seconds), then runs the cleanup that stops the
    background loops and flushes and closes the store. Raises StorageError (or KeyFileError) if
    the node cannot start.
    """
    runner = NodeRunner(
        app, handle_signals=False, keepalive_timeout=idle_timeout, access_log=None, shutdown_timeout=drain_timeout
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        # A signal while starting up stops the node as soon as it is up, not halfway.
        loop.add_signal_handler(sig, stop.set)
    try:
        await runner.setup()
        await web.SockSite(runner, sock).start()
        if ready is not None:
            ready()
        await stop.wait()
        open_now = len(runner.server.connections) if runner.server is not None else 0
        log.info(
            "stopping: no new connections; %d open, requests in flight finish (up to %g s)", open_now, drain_timeout
        )
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await runner.cleanup()
