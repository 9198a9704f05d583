"""The live WebSocket: mailbox items as they arrive, acks, and publishing and sending (spec §13.5, Live mailbox).

Publishes and sends are answered out of order, each by its ``ref``, once durably stored; up to
LIVE_WINDOW run at once per connection, which is what lets one socket keep the node's group
commit full.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from typing import Any

from aiohttp import WSCloseCode, WSMessage, WSMsgType, web

from peerfed.protocol import MovedError, PeerId, RemoteError, RequestError
from peerfed.protocol.errors import UnavailableError

from .. import views
from ..limits import Ticket
from ..mailbox import Closed, LiveEvent
from .common import (
    CONFIG,
    DIRECTORY,
    LIVE_SOCKETS,
    MAILBOX,
    SESSIONS,
    address,
    decode_b64,
    parse_json,
    text_of,
    url_of,
)

__all__ = ["LIVE_FRAME_BYTES", "LIVE_WINDOW", "routes"]

log = logging.getLogger("peerfed.node")
LIVE_FRAME_BYTES = 100_000  # one 65,536-byte object in base64, with its JSON around it
LIVE_WINDOW = 64  # publishes and sends one live connection may have in flight

routes = web.RouteTableDef()


@routes.get("/api/v1/live")
async def live(request: web.Request) -> web.WebSocketResponse:
    """Live connection: authenticate first, then receive mailbox items, ack, publish and send.

    Raises rate.limited (before the upgrade) past the sockets allowed per address or in all.
    """
    config, sockets = request.app[CONFIG], request.app[LIVE_SOCKETS]
    where = address(request)
    ticket = await sockets.take(where, per_address=config.max_live_per_address, total=config.max_live_connections)
    if ticket is None:
        raise RequestError("too many live connections; close one or try again later", "rate.limited")
    try:
        return await _live(request, where)
    finally:
        sockets.give_back(ticket)


async def _next(ws: web.WebSocketResponse, deadline: float | None) -> WSMessage | None:
    """The next frame; None once ``deadline`` (the loop's time) has passed without one."""
    if deadline is None:
        return await ws.receive()
    remaining = deadline - asyncio.get_running_loop().time()
    if remaining <= 0:
        return None
    try:
        return await ws.receive(timeout=remaining)
    except TimeoutError:
        return None


async def _live(request: web.Request, where: str) -> web.WebSocketResponse:
    sessions, directory, mailbox = request.app[SESSIONS], request.app[DIRECTORY], request.app[MAILBOX]
    ws = web.WebSocketResponse(heartbeat=30, max_msg_size=LIVE_FRAME_BYTES)
    await ws.prepare(request)
    request.app[LIVE_SOCKETS].open.add(ws)  # closed with 1001 if the node stops meanwhile
    # Until it signs in a socket is a stranger's: it gets a few seconds, whatever it sends meanwhile.
    grace_until = asyncio.get_running_loop().time() + request.app[CONFIG].live_auth_grace
    peer: PeerId | None = None
    reading: Ticket | None = None  # this reader, counted against the peer's cap
    bearer = ""
    pushed: set[int] = set()
    sending: set[asyncio.Task[None]] = set()
    window = asyncio.Semaphore(LIVE_WINDOW)

    async def quietly(coro: Coroutine[Any, Any, Any]) -> None:
        # A reader that went away while an item was on its way is not an error.
        with contextlib.suppress(ConnectionError, RuntimeError, asyncio.CancelledError):
            await coro

    def spawn(coro: Coroutine[Any, Any, Any]) -> None:
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
                env = await directory.publish(signed_in, decode_b64(data.get("object"), "object"), where)
                reply = {"type": "accepted", "ref": ref, "id": env.id.hex(), "object_type": env.type}
            else:
                destination = data.get("destination")

                def route() -> str | None:
                    return url_of(destination, "destination") if destination is not None else None

                raw = decode_b64(data.get("sealed"), "sealed")
                work = data.get("work")
                if work is not None:
                    work = text_of(work, "work", 64)
                outcome = await mailbox.submit(signed_in, raw, route, where, work)
                reply = {"type": "sent", "ref": ref, **views.sent(outcome)}
        except (RemoteError, UnavailableError) as exc:
            reply = {"type": "error", "ref": ref, "code": exc.code, "message": str(exc)}
        except Exception:
            log.exception("a live %s failed", data["type"])
            reply = {"type": "error", "ref": ref, "code": "node.internal", "message": "a fault in the node"}
        finally:
            window.release()
        await ws.send_json(reply)

    def push(event: LiveEvent) -> None:
        nonlocal reading
        if isinstance(event, Closed):
            if reading is not None:  # this reader is gone now: the peer's next one is not held back by it
                request.app[LIVE_SOCKETS].give_back(reading)
                reading = None
            spawn(ws.close())
            return
        if event.seq not in pushed:
            pushed.add(event.seq)
            spawn(ws.send_json({"type": "item", **views.mailbox_item(event)}))

    try:
        while True:
            message = await _next(ws, grace_until if peer is None else None)
            if message is None:
                await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"sign in within the grace period")
                break
            if message.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                break
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
                    bearer = "Bearer " + text_of(data.get("token", ""), "token", 256)
                    peer = await sessions.authenticate(bearer)
                    per_peer = request.app[CONFIG].max_live_per_peer
                    reading = await request.app[LIVE_SOCKETS].take_reader(bytes(peer).hex(), per_peer)
                    if reading is None or not mailbox.add_reader(peer, push):
                        await ws.send_json(
                            {"type": "error", "code": "rate.limited", "message": "too many live readers"}
                        )
                        peer = None
                        break
                    await ws.send_json({"type": "ready"})
                    for item in await mailbox.items(peer, after, 500):
                        push(item)
                elif data.get("type") in ("publish", "send"):
                    await window.acquire()  # at most LIVE_WINDOW in flight: past it, stop reading
                    spawn(submit(peer, data))
                elif data.get("type") == "ack":
                    ids = data.get("ids")
                    if not isinstance(ids, list):
                        raise RequestError("ids is a list", "request.invalid")
                    # Nothing is acknowledged from a device another one took over from (spec §13.4),
                    # even by an ack already on its way when the take-over closed this socket.
                    await sessions.authenticate(bearer)
                    await ws.send_json({"type": "acked", "deleted": await mailbox.ack(peer, ids)})
                else:
                    raise RequestError("unknown message type", "request.invalid")
            except MovedError as exc:
                await ws.send_json({"type": "error", "code": exc.code, "message": str(exc), "moved_at": exc.moved_at})
            except (RemoteError, UnavailableError) as exc:
                await ws.send_json({"type": "error", "code": exc.code, "message": str(exc)})
            except (ValueError, TypeError) as exc:
                await ws.send_json({"type": "error", "code": "request.invalid", "message": str(exc)})
    except ConnectionError:
        pass  # the reader went away mid-answer: nothing to do but forget it
    finally:
        request.app[LIVE_SOCKETS].open.discard(ws)
        if peer is not None:
            mailbox.remove_reader(peer, push)
        if reading is not None:
            request.app[LIVE_SOCKETS].give_back(reading)
    return ws
