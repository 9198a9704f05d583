"""Talking to B below any client library: one raw HTTP/1.1 request, one WebSocket conversation.

Header bytes an HTTP client library would refuse to send still reach the node this way.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Sequence
from typing import Any

import aiohttp

from .cases import Answer, Case
from .oracle import Problem, is_b64, judge_live_reply
from .sources import LIVE_FRAME_LIMIT

__all__ = ["http", "dechunk", "ws_reply", "converse"]


async def http(port: int, method: str, target: str, headers: Sequence[tuple[str, bytes]], body: bytes) -> Answer:
    """One HTTP/1.1 request over a fresh connection, header bytes exactly as given."""
    head = f"{method} {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n".encode("ascii")
    for name, value in headers:
        head += name.encode("ascii") + b": " + value + b"\r\n"
    if body or method in ("POST", "PUT", "PATCH", "DELETE"):
        head += b"Content-Length: %d\r\n" % len(body)
    answer = Answer()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError as exc:
        answer.error = f"cannot connect: {exc!r}"
        return answer
    try:
        writer.write(head + b"\r\n" + body)
        with contextlib.suppress(ConnectionError):  # the node may answer (413) before reading everything
            await writer.drain()
        data = await asyncio.wait_for(reader.read(), 60)
    except (ConnectionError, TimeoutError) as exc:
        answer.error = f"{type(exc).__name__}: {exc}"
        return answer
    finally:
        writer.close()
    head_bytes, _, rest = data.partition(b"\r\n\r\n")
    lines = head_bytes.split(b"\r\n")
    try:
        answer.status = int(lines[0].split()[1])
    except (IndexError, ValueError):
        answer.error = f"not HTTP: {data[:200]!r}"
        return answer
    for line in lines[1:]:
        key, _, value = line.partition(b":")
        answer.headers[key.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
    if answer.headers.get("transfer-encoding", "").lower() == "chunked":
        rest = dechunk(rest)
    answer.body = rest
    try:
        answer.payload = json.loads(rest)
        answer.json_ok = True
    except ValueError:
        answer.json_ok = False
    return answer


def dechunk(data: bytes) -> bytes:
    out = b""
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out, data = out + data[:size], data[size + 2 :]
    return out


async def ws_reply(ws: aiohttp.ClientWebSocketResponse, answer: Answer, problems: list[Problem]) -> Any:
    """The node's next reply that is not a pushed mailbox item; None if the connection ended."""
    while True:
        try:
            message = await ws.receive(timeout=15)
        except TimeoutError:
            problems.append(Problem("websocket", "no reply within 15 s"))
            return None
        if message.type != aiohttp.WSMsgType.TEXT:
            return None
        try:
            data = json.loads(message.data)
        except ValueError:
            problems.append(Problem("non-JSON answer", f"live: {message.data[:200]!r}"))
            continue
        answer.replies.append(data)
        if isinstance(data, dict) and data.get("type") == "item":
            if not (set(data) == {"type", "seq", "id", "sealed", "received_at"} and is_b64(data["sealed"])):
                problems.append(Problem("bad success body", f"live item {data!r}"[:300]))
            continue
        return data


async def converse(session: aiohttp.ClientSession, url: str, case: Case) -> tuple[Answer, list[Problem]]:
    """One WebSocket conversation: every frame gets a coded answer, and the connection stays open."""
    answer = Answer()
    problems: list[Problem] = []
    authed = False
    unsure = False  # a failed auth with a good token may or may not have signed in
    limited = False
    assert case.frames is not None
    try:
        async with session.ws_connect(url + "/api/v1/live", max_msg_size=0, autoping=True) as ws:
            for kind, payload, meta in case.frames:
                if kind == "ping":
                    await ws.ping()
                    continue
                if kind == "close":
                    await ws.close()
                    return answer, problems
                if kind == "text":
                    await ws.send_str(payload)
                else:
                    await ws.send_bytes(payload)
                reply = await ws_reply(ws, answer, problems)
                if reply is None:
                    if len(payload) > LIVE_FRAME_LIMIT and ws.close_code == 1009:
                        return answer, problems  # too big: closing with 1009 is the WebSocket answer
                    if limited:
                        return answer, problems  # too many live readers: rate.limited, then closed
                    problems.append(
                        Problem("websocket", f"the node dropped the connection after a {meta['kind']} frame")
                    )
                    return answer, problems
                problems += judge_live_reply(reply, meta, authed=authed, unsure=unsure)
                kind_of = reply.get("type") if isinstance(reply, dict) else None
                if kind_of == "ready":
                    authed, unsure = True, False
                elif kind_of == "acked" and isinstance(reply.get("deleted"), int):
                    answer.deleted += reply["deleted"]
                elif kind_of == "error" and meta["kind"] == "auth-good" and not authed:
                    unsure = True
                limited = kind_of == "error" and reply.get("code") == "rate.limited"
            # Still open: a probe gets an answer.
            await ws.send_str('{"type": "probe"}')
            reply = await ws_reply(ws, answer, problems)
            if reply is None:
                problems.append(Problem("websocket", "the connection was closed after the conversation"))
            elif not (isinstance(reply, dict) and reply.get("type") == "error"):
                problems.append(Problem("websocket", f"a probe got {reply!r}"))
            await ws.close()
    except (aiohttp.ClientError, TimeoutError, ConnectionError) as exc:
        problems.append(Problem("websocket", f"{type(exc).__name__}: {exc}"))
    return answer, problems
