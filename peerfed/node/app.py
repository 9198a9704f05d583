"""The node's application factory: its parts in typed AppKeys, background work in cleanup_ctx (spec §13).

``create_app(config)`` opens the store, loads (or makes) the node key, builds the node's parts
(``service.Node``) and puts each part the handlers use under its own AppKey. Unless told
otherwise it runs three background loops: the federation outbox, federation maintenance
(follows, catch-up pulls) and retention purges (spec §13.9). Tests pass ``background=False`` and
a fake ``clock``, and drive the loops by hand; ``client_files`` is where the built web client is
(spec §13.10).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from aiohttp import WSCloseCode, web

from .api import CLIENT_DIR, CLIENT_FILES, ROUTES, cors_middleware, error_middleware, metrics_middleware
from .api.common import (
    CATCHUP,
    CONFIG,
    DIRECTORY,
    DOCUMENT,
    HEALTH,
    INBOUND,
    LIVE_SOCKETS,
    MAILBOX,
    METRICS,
    MODERATION,
    NODE,
    PREKEYS,
    SESSIONS,
)
from .api.webclient import served_hash
from .bus import Bus, LocalBus, PgBus
from .config import Config
from .federation.addresses import AddressPolicy, guarded_session
from .federation.transport import NodeClient
from .health import Health
from .keys import load_or_create_key
from .limits import LiveSockets
from .metrics import Metrics
from .service import Node
from .store import StorageError, Store
from .store.gauges import SharedSockets
from .store.windows import SharedWindows
from .tls import trusting

__all__ = ["DATABASE_FILE", "create_app", "purge_once", "remember_database", "remembered_database"]

log = logging.getLogger("peerfed.node")
DATABASE_FILE = "node.sqlite3"
DATABASE_ADDRESS_FILE = "database.url"  # a PostgreSQL node's address (remember_database)
STOP_WAIT = 5.0  # seconds a stopping node waits for its background rounds, then goes on
REPORT_RETENTION = 90 * 86_400
OUTBOX_RETENTION = 30 * 86_400


async def purge_once(node: Node) -> dict[str, int]:
    """Delete every row past its time (spec §13.9), then checkpoint; returns rows deleted per table."""
    counts = await node.store.purge(node.now(), report_retention=REPORT_RETENTION, outbox_retention=OUTBOX_RETENTION)
    await node.store.checkpoint()  # and what was purged leaves the WAL
    removed = {k: v for k, v in counts.items() if v}
    if removed:
        log.info("retention purge removed %s", ", ".join(f"{v} {k}" for k, v in removed.items()))
    return counts


async def _rounds(node: Node, bus: Bus) -> None:
    """The background rounds, in the one process that leads (bus.py); on one process, always."""
    while True:
        await bus.lead()
        node.leading = True
        node.wakeup.set()  # whatever was queued while another process led
        rounds = [
            asyncio.create_task(_outbox_loop(node), name="outbox"),
            asyncio.create_task(_maintenance_loop(node), name="maintenance"),
            asyncio.create_task(_purge_loop(node), name="purge"),
        ]
        try:
            await bus.lost()
        finally:
            node.leading = False
            for task in rounds:
                task.cancel()
            await asyncio.wait(rounds, timeout=STOP_WAIT)


async def _outbox_loop(node: Node) -> None:
    while True:
        node.wakeup.clear()
        try:
            await node.sender.deliver_due()
            following = await node.store.next_due()
        except Exception:  # the database away (a restart) must not end the loop: it tries again
            log.exception("federation delivery failed")
            following = node.clock() + 1.0
        wait = 60.0 if following is None else min(60.0, max(0.05, following - node.clock()))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(node.wakeup.wait(), wait)


async def _maintenance_loop(node: Node) -> None:
    while True:
        node.maintain_soon.clear()
        # Every 30 s; every 5 s while a follow is still unanswered (or the database was away);
        # at once when a node joins.
        try:
            await node.catchup.maintain()
            wait = 5.0 if await node.store.nodes("requested") else 30.0
        except Exception:
            log.exception("federation maintenance failed")
            wait = 5.0
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(node.maintain_soon.wait(), wait)


async def _purge_loop(node: Node) -> None:
    while True:
        try:
            await purge_once(node)
        except Exception:
            log.exception("retention purge failed")
        await asyncio.sleep(300)


def remember_database(data: Path, address: str) -> None:
    """Keep a PostgreSQL node's address in its data folder (mode 0600, beside node.key), so
    ``peerfed admin --data`` and the next ``peerfed serve --data`` find the database the node
    serves. Deleting the file takes the folder's node back to its SQLite file."""
    path = data / DATABASE_ADDRESS_FILE
    if remembered_database(data) == address:
        return  # already kept (each of --workers' processes starts with the same address)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")  # its own: processes starting together never share one
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, address.encode("utf-8") + b"\n")
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _without_password(address: str) -> str:
    """The address for a log line: any password between ':' and '@' replaced."""
    head, at, rest = address.partition("@")
    if not at:
        return address
    scheme, _, user = head.partition("://")
    return f"{scheme}://{user.split(':', 1)[0]}:***@{rest}" if ":" in user else address


def remembered_database(data: Path) -> str:
    """The PostgreSQL address the node on ``data`` last served, or "" (SQLite, or never started)."""
    try:
        return (data / DATABASE_ADDRESS_FILE).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return ""


def create_app(
    config: Config,
    *,
    clock: Callable[[], float] = time.time,
    background: bool = True,
    client_files: Path = CLIENT_FILES,
    worker: int | None = None,
    source_secret: bytes | None = None,
) -> web.Application:
    # CORS outermost, so a refusal from the client API reaches a browser page of another origin too;
    # the metrics middleware next, so it counts the error middleware's refusals.
    app = web.Application(
        middlewares=[cors_middleware, metrics_middleware, error_middleware], client_max_size=config.max_request_bytes
    )
    app[CLIENT_DIR] = client_files
    if worker is not None:  # one of --workers' processes: every answer says which (an operator's aid)

        async def name_worker(request: web.Request, response: web.StreamResponse) -> None:
            response.headers["X-Peerfed-Worker"] = str(worker)

        app.on_response_prepare.append(name_worker)
    for routes in ROUTES:
        app.add_routes(routes)
    app[LIVE_SOCKETS] = LiveSockets()
    metrics = app[METRICS] = Metrics()

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        identity, created = load_or_create_key(config.data)
        if created:
            log.info("made a new node key in %s", config.data / "node.key")
        # The database setting, else the PostgreSQL database this folder's node moved to (or last
        # served), else SQLite in the folder.
        address = config.database or remembered_database(config.data)
        store = await Store.open(
            address or config.data / DATABASE_FILE, synchronous=config.synchronous, readers=config.readers
        )
        if address:
            log.info("serving the PostgreSQL database %s", _without_password(address))
            remember_database(config.data, address)
        policy = AddressPolicy.for_config(config)
        session = guarded_session(policy, trusting(config.ca_file) if config.ca_file else None)
        client = NodeClient(session, lambda: node.identity, config.url, clock, policy=policy)
        # Hashed once at start: the document then publishes exactly the files this process serves.
        web_client = served_hash(client_files)
        node = Node(
            config, store, identity, clock=clock, client=client, web_client=web_client, source_secret=source_secret
        )
        bus: Bus = LocalBus()
        windows: SharedWindows | None = None
        gauges: SharedSockets | None = None
        if address:  # other processes may serve this database too: hear them, and elect who leads
            try:
                bus = await PgBus.open(address, node.hear)
            except Exception as exc:
                await store.close()
                raise StorageError(f"cannot listen on the PostgreSQL database ({type(exc).__name__})") from exc
            try:  # and count rate limits together with them, while there are others, and live sockets
                windows = await SharedWindows.open(address, identity.seed)
                try:
                    gauges = await SharedSockets.open(address, identity.seed)
                except StorageError:
                    await windows.close()
                    raise
            except StorageError:
                await bus.close()
                await store.close()
                raise
            app[LIVE_SOCKETS].share(gauges)
            node.limiter.share(windows)
            node.attach(bus)
        await node.start()
        app[NODE] = node
        app[CONFIG] = config
        app[DOCUMENT] = node.document
        app[SESSIONS] = node.sessions
        app[DIRECTORY] = node.directory
        app[MAILBOX] = node.mailbox
        app[MODERATION] = node.moderation
        app[INBOUND] = node.inbound
        app[CATCHUP] = node.catchup
        app[PREKEYS] = node.prekeys
        app[HEALTH] = Health(store, clock, config.outbox_stuck_after)
        metrics.bind(store, app[LIVE_SOCKETS], clock)
        node.sender.observe = metrics.delivered
        tasks = []
        if background:
            tasks = [asyncio.create_task(_rounds(node, bus), name="rounds")]
        log.info("node %s at %s: store open and migrated (data in %s)", config.name, config.url, config.data)
        if web_client is not None:
            log.info("serving the web client with hash %s (spec §13.10)", web_client.hex())
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            # Bounded: a round stuck on a database that went away must not keep the node from
            # stopping (a supervisor would have to kill it).
            if tasks:
                _, stuck = await asyncio.wait(tasks, timeout=STOP_WAIT)
                if stuck:
                    log.warning("the background rounds did not stop in %g s; stopping without them", STOP_WAIT)
            metrics.unbind()
            try:
                await asyncio.wait_for(bus.close(), STOP_WAIT)
            except TimeoutError:
                log.warning("the other workers' connections did not close in %g s", STOP_WAIT)
            if gauges is not None:
                try:
                    await asyncio.wait_for(app[LIVE_SOCKETS].settle(), STOP_WAIT)
                except TimeoutError:
                    log.warning("the live-connection counts were not all given back in %g s", STOP_WAIT)
                try:
                    await asyncio.wait_for(gauges.close(), STOP_WAIT)
                except TimeoutError:
                    log.warning("the live-connection counts' connection did not close in %g s", STOP_WAIT)
            if windows is not None:
                try:
                    await asyncio.wait_for(windows.close(), STOP_WAIT)
                except TimeoutError:
                    log.warning("the shared rate windows' connection did not close in %g s", STOP_WAIT)
            await session.close()
            node.close()
            await store.close()
            groups, writes = store.write_stats
            log.info("node stopped cleanly (%d writes in %d transactions)", writes, groups)

    async def going_away(app: web.Application) -> None:
        # A live reader never hangs up by itself: close each socket with 1001 "going away" as
        # the node stops, so its handler ends, the drain does not wait it out, and the client
        # knows to reconnect (spec §13.5, Live mailbox).
        for ws in list(app[LIVE_SOCKETS].open):
            with contextlib.suppress(ConnectionError, RuntimeError):
                await ws.close(code=WSCloseCode.GOING_AWAY, message=b"node stopping")

    app.on_shutdown.append(going_away)
    app.cleanup_ctx.append(lifecycle)
    return app
