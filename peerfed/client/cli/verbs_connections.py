"""``peerfed reach``, ``accept``, ``decline``, ``agree``, ``send``, ``read``, ``end`` ... (spec §8, §9).

Each verb is one step of the support connection (spec §9.1) or a look at it; every one first
fetches and applies the mailbox, so it acts on the connection as it is now (or, with the home
node out of reach, on what the device holds: spec §9.5). A step the state machine refuses is
refused here, before anything leaves the device.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from peerfed.protocol import Format, Terms, UnavailableError
from peerfed.protocol.messages import MAX_FORGET, MIN_FORGET

from ..device import DAY
from ..display import dumps, local_time, visible_all
from ..inbox import reconnect_delay
from ..state import ClientError
from ..transport import NodeUnreachable
from .parse import parse_date, parse_span
from .registry import Invocation, Needs, Verb, warn

__all__ = ["VERBS"]


def _connection_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("connection")


def _reach_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("listing")
    parser.add_argument("--hello", required=True, help="a short hello")


async def _reach(call: Invocation) -> dict[str, Any]:
    return await call.peer.reach(call.args.listing, call.args.hello)


def _render_reach(args: argparse.Namespace, r: dict[str, Any]) -> str:
    return f"reached out: connection {r['connection'][:12]} waits for the listing's author to accept"


async def _connections(call: Invocation) -> dict[str, Any]:
    return {"connections": await call.peer.connections()}


def _render_connections(args: argparse.Namespace, r: dict[str, Any]) -> str:
    if not r["connections"]:
        return "no connections yet"
    return "\n".join(
        f"{c['id'][:12]}  {c['state']:<11} with {c['name'] or c['peer'][:12]}"
        + (f"  ({c['unread']} unread)" if c["unread"] else "")
        + (f'\n    "{c["hello"]}"' if c["state"] == "reached-out" else "")
        + (f'\n    they replied: "{c["reply"]}"' if c.get("reply") and c["side"] == "reacher" else "")
        for c in r["connections"]
    )


def _accept_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("connection")
    parser.add_argument("--reply")


async def _accept(call: Invocation) -> dict[str, Any]:
    return await call.peer.respond(call.args.connection, True, call.args.reply)


async def _decline(call: Invocation) -> dict[str, Any]:
    return await call.peer.respond(call.args.connection, False)


def _render_state(args: argparse.Namespace, r: dict[str, Any]) -> str:
    extra = " (asked them to erase the conversation)" if r.get("erase") else ""
    return f"connection {r['connection'][:12]}: {r['state']}{extra}"


def _agree_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("connection")
    parser.add_argument("--helps", help="what would help")
    parser.add_argument("--format", action="append", default=[], choices=[f.value for f in Format])
    parser.add_argument("--times", help="when, in words")
    parser.add_argument("--until", help="the agreement lapses after this date (YYYY-MM-DD)")
    parser.add_argument("--boundary", action="append", default=[])
    parser.add_argument("--ending", help="how either of you may end")
    parser.add_argument(
        "--forget",
        help="each of you deletes every message this long after it was sent (1h to 365d, e.g. 30d);"
        " a promise the protocol cannot check on the other device",
    )
    parser.add_argument("--accept", action="store_true", help="countersign the terms the other peer proposed")


async def _agree(call: Invocation) -> dict[str, Any]:
    args = call.args
    if args.accept:
        return await call.peer.agree(args.connection, None)
    if not args.helps:
        raise ClientError("say what would help with --helps, or countersign with --accept", "local.usage")
    terms = Terms(
        helps=args.helps,
        formats=tuple(args.format),
        times=args.times,
        until=parse_date(args.until) if args.until else None,
        boundaries=tuple(args.boundary),
        ending=args.ending,
        forget=_forget(args.forget),
    )
    if terms.forget is not None:  # said when proposing, as spec §8.3 asks
        warn(
            "forget is a promise: each device deletes the messages when the time comes, once both of you"
            " sign these terms; nothing can check the other device, and an older client refuses these terms"
        )
    return await call.peer.agree(args.connection, terms)


def _forget(text: str | None) -> int | None:
    """``--forget`` in seconds (spec §8.3). Raises ClientError (``local.usage``) outside 1h … 365d."""
    if text is None:
        return None
    seconds = parse_span(text, "--forget")
    if not MIN_FORGET <= seconds <= MAX_FORGET:
        raise ClientError(f"--forget {text!r}: choose from 1h to 365d", "local.usage")
    return seconds


def _forget_line(terms: dict[str, Any]) -> list[str]:
    seconds = terms.get("forget")
    if seconds is None:
        return []
    span = f"{seconds // DAY} day(s)" if seconds % DAY == 0 else f"{seconds // 3600} hour(s) {seconds % 3600 // 60} min"
    return [f"  forget: each of you deletes every message {span} after it was sent"]


async def _agreement(call: Invocation) -> dict[str, Any]:
    return await call.peer.agreement(call.args.connection)


def _render_agreement(args: argparse.Namespace, r: dict[str, Any]) -> str:
    force = r.get("in_force")
    lines = [f"connection {r['connection'][:12]}: {r['state']}"]
    if force:
        lines.append(f"in force (version {force['version']}): {force['helps']}")
        lines += [f"  boundary: {b}" for b in force["boundaries"]]
        lines += _forget_line(force)
    if r.get("pending"):
        p = r["pending"]
        lines.append(f"proposed by {p['proposed_by']} (version {p['version']}): {p['helps']}")
        lines += _forget_line(p)
    if args.command == "agree" and not force:
        lines.append(f"signed version {r['version']}; in force once the other peer signs the same terms")
    return "\n".join(lines)


def _send_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("connection")
    parser.add_argument("text")


async def _send(call: Invocation) -> dict[str, Any]:
    return await call.peer.send(call.args.connection, call.args.text)


def _render_send(args: argparse.Namespace, r: dict[str, Any]) -> str:
    return f"sent message {r['seq']} on {r['connection'][:12]}"


def _read_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("connection")
    parser.add_argument("--follow", action="store_true", help="keep reading live until Ctrl-C")


async def _read(call: Invocation) -> dict[str, Any] | None:
    if call.args.follow:
        await _follow(call)
        return None
    return await call.peer.messages(call.args.connection)


async def _follow(call: Invocation) -> None:
    """Print each message once, as it arrives, until interrupted: one line (or JSON line) each.

    When the home node goes away (or closes the live connection), says so on stderr and
    reconnects after ``reconnect_delay``; it never ends on its own with status 0 (spec §9.5).
    Raises what is not a matter of waiting (a refused session, a damaged database).
    """
    seen: set[str] = set()
    peer = call.peer

    async def show_new() -> None:
        async with peer.device.lock:  # marks the messages read: a write, in turn with other commands
            shown = await peer.messages(call.args.connection)
        for message in shown["messages"]:
            if message["id"] not in seen:
                seen.add(message["id"])
                if call.args.json:
                    print(dumps(message), flush=True)
                else:
                    print(message_line(visible_all(message)), flush=True)

    await show_new()
    failures = 0
    while True:
        try:
            async for _ in peer.follow(call.args.connection):
                if failures:
                    warn(f"reconnected to {peer.api.url}")
                    failures = 0
                await show_new()
            raise NodeUnreachable(f"{peer.api.url} closed the live connection")
        except UnavailableError as exc:
            delay = reconnect_delay(failures)
            failures += 1
            warn(f"lost the home node ({exc}); reconnecting in {delay:g}s (attempt {failures})")
            await asyncio.sleep(delay)


def message_line(m: dict[str, Any]) -> str:
    """One message on one line: local time, whose, then the text (spec §9.5).

    ``me``/``them`` comes before the name, so no name a peer chooses can pass for the other side.
    """
    who = m["from"] + (f" ({m['name']})" if m.get("name") else "")
    draft = " [draft: not delivered yet]" if m.get("draft") else ""
    return f"[{local_time(m['at'])}] {who}: {m['text']}{draft}"


def opening_line(o: dict[str, Any]) -> str:
    """The reach-out's hello, or the answer to it, on one line (spec §9.5)."""
    who = o["from"] + (f" ({o['name']})" if o.get("name") else "")
    said = f": {o['text']}" if o.get("text") else ""
    return f"[{local_time(o['at'])}] {who} {o['kind'].replace('-', ' ')}{said}"


def _render_read(args: argparse.Namespace, r: dict[str, Any]) -> str:
    lines = [message_line(m) for m in r["messages"]] or ["(no messages yet)"]
    if r.get("forward_secret") is False and r["state"] in ("accepted", "agreed"):
        # Said plainly (spec §14.5): the other side has no scheme-2 session (an older client, a
        # restored device), so a stolen key could still open what is sent from here on.
        lines.append("(not forward secret: the other side's client cannot keep a ratchet, so this uses scheme 1)")
    return "\n".join([*(opening_line(o) for o in r.get("opening", ())), *lines, f"-- {r['state']}"])


def _end_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("connection")
    parser.add_argument("--erase", action="store_true", help="ask the other peer to delete the conversation")


async def _end(call: Invocation) -> dict[str, Any]:
    return await call.peer.end(call.args.connection, call.args.erase)


_SYNCED = Needs.SYNCED
VERBS = (
    Verb("reach", "reach out about a listing", _reach, _render_reach, _reach_arguments, _SYNCED),
    Verb("connections", "your support connections", _connections, _render_connections, None, _SYNCED),
    Verb("accept", "accept a reach-out", _accept, _render_state, _accept_arguments, _SYNCED),
    Verb("decline", "decline a reach-out (no reason is sent)", _decline, _render_state, _connection_argument, _SYNCED),
    Verb(
        "agree", "propose terms, or countersign the other peer's", _agree, _render_agreement, _agree_arguments, _SYNCED
    ),
    Verb(
        "agreement",
        "the terms in force, and any proposal",
        _agreement,
        _render_agreement,
        _connection_argument,
        _SYNCED,
    ),
    Verb("send", "send a message", _send, _render_send, _send_arguments, _SYNCED),
    Verb("read", "read a conversation", _read, _render_read, _read_arguments, _SYNCED),
    Verb("end", "end a connection (final, no reason needed)", _end, _render_state, _end_arguments, _SYNCED),
)
