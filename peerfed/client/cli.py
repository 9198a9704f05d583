"""The peer's verbs of the ``peerfed`` command.

Every verb takes ``--json`` and then prints exactly one JSON document on stdout. Errors go to
stderr as ``error CODE: message`` (or a JSON error under ``--json``) with exit status 1. Ids of
listings, connections and peers may be shortened to any unique prefix. Verbs that show or
change a connection first fetch and apply the mailbox.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import getpass
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import aiohttp

from peerfed.protocol import Listing, PeerfedError, Terms, Window, pack, unpack
from peerfed.protocol.listings import Format

from . import keyring as kr
from .peer import DAY, Peer, SyncReport
from .state import ClientError, LocalState, default_home
from .transport import NodeUnreachable

__all__ = ["PEER_VERBS", "add_peer_commands", "run_peer"]

PEER_VERBS = (
    "id",
    "offer",
    "request",
    "listings",
    "withdraw",
    "browse",
    "reach",
    "connections",
    "accept",
    "decline",
    "agree",
    "agreement",
    "send",
    "read",
    "end",
    "block",
    "report",
    "resources",
    "erase-me",
)
_DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


# --- parsing what people type -------------------------------------------------------------------


def parse_days(text: str) -> int:
    text = text.lower()
    if text in ("daily", "every", "all"):
        return 127
    if text == "weekdays":
        return 0b0011111
    if text == "weekends":
        return 0b1100000
    mask = 0
    for part in text.split(","):
        if "-" in part:
            start, end = part.split("-", 1)
            i, j = _DAYS.index(start[:3]), _DAYS.index(end[:3])
            for k in range(i, j + 1) if i <= j else [*range(i, 7), *range(0, j + 1)]:
                mask |= 1 << k
        else:
            mask |= 1 << _DAYS.index(part[:3])
    return mask


def parse_window(text: str) -> Window:
    """'mon-fri 18:00-21:00', 'sat,sun 10:00-12:00', 'daily 20:00-24:00'."""
    match = re.fullmatch(r"\s*(\S+)\s+(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*", text)
    if not match:
        raise ClientError(f"--when {text!r}: write it like 'mon-fri 18:00-21:00'", "local.usage")
    try:
        days = parse_days(match.group(1))
    except ValueError as exc:
        raise ClientError(f"--when {text!r}: days are mon..sun, weekdays, weekends or daily", "local.usage") from exc
    start = int(match.group(2)) * 60 + int(match.group(3))
    end = int(match.group(4)) * 60 + int(match.group(5))
    return Window(days, start, end)


def parse_duration(text: str, now: int) -> int:
    """'14d', '48h', '90m' or a date (YYYY-MM-DD, end of that day UTC) -> seconds from now."""
    match = re.fullmatch(r"(\d+)\s*([dhm])", text.strip().lower())
    if match:
        return int(match.group(1)) * {"d": DAY, "h": 3600, "m": 60}[match.group(2)]
    return parse_date(text) - now


def parse_date(text: str) -> int:
    try:
        day = dt.date.fromisoformat(text.strip())
    except ValueError as exc:
        raise ClientError(f"{text!r} is not a date like 2027-02-01", "local.usage") from exc
    return int(dt.datetime(day.year, day.month, day.day, 23, 59, 59, tzinfo=dt.UTC).timestamp())


# --- the parser -----------------------------------------------------------------------------


def add_peer_commands(sub: Any) -> None:
    def verb(name: str, help_text: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = sub.add_parser(name, help=help_text)
        parser.add_argument("--json", action="store_true", help="print one JSON document and nothing else")
        return parser

    ident = sub.add_parser("id", help="your identity: new, show, export, import, move")
    ids = ident.add_subparsers(dest="action", required=True)
    new = ids.add_parser("new", help="make a key pair and join a node")
    new.add_argument("--node", required=True, help="your home node's URL")
    new.add_argument("--name", help="a pseudonym others see (optional)")
    new.add_argument("--invite", help="an invite code, if the node asks for one")
    new.add_argument("--passphrase", action="store_true", help="encrypt your key at rest (asks, or PEERFED_PASSPHRASE)")
    for name, text in (
        ("show", "show your peer id and node"),
        ("export", "write an encrypted backup"),
        ("import", "restore a backup into an empty PEERFED_HOME"),
        ("move", "move to another node"),
    ):
        action = ids.add_parser(name, help=text)
        if name in ("export", "import"):
            action.add_argument("file", type=Path)
        if name == "move":
            action.add_argument("--node", required=True)
            action.add_argument("--invite")
    for action in ids.choices.values():
        action.add_argument("--json", action="store_true", help="print one JSON document and nothing else")

    for kind in ("offer", "request"):
        listing = verb(kind, f"publish an {kind}" if kind == "offer" else "publish a request")
        listing.add_argument("--topic", action="append", required=True, help="a lived experience, in your words")
        listing.add_argument("--vocab", action="append", default=[], help="a term from the node's vocabulary")
        listing.add_argument("--lang", action="append", default=None, help="a language (BCP 47), e.g. es")
        listing.add_argument("--format", action="append", default=None, choices=[f.value for f in Format])
        listing.add_argument("--timing", choices=["now", "soon", "scheduled"], default="soon")
        listing.add_argument("--when", action="append", default=[], help="e.g. 'mon-fri 18:00-21:00'")
        listing.add_argument("--tz", default="UTC", help="time zone of --when, e.g. Europe/Madrid")
        listing.add_argument("--capacity", type=int, default=1)
        listing.add_argument("--area", help="a coarse area, never an address")
        listing.add_argument("--summary", required=True)
        listing.add_argument("--expires", default="14d", help="14d, 48h, or a date (default 14d)")

    verb("listings", "your own listings")
    verb("withdraw", "take a listing down everywhere").add_argument("listing")
    browse = verb("browse", "search listings across federated nodes")
    browse.add_argument("--kind", choices=["offer", "request"])
    browse.add_argument("--topic")
    browse.add_argument("--lang")
    browse.add_argument("--format", choices=[f.value for f in Format])
    browse.add_argument("--timing", choices=["now", "soon", "scheduled"])
    reach = verb("reach", "reach out about a listing")
    reach.add_argument("listing")
    reach.add_argument("--hello", required=True, help="a short hello")
    verb("connections", "your support connections")
    accept = verb("accept", "accept a reach-out")
    accept.add_argument("connection")
    accept.add_argument("--reply")
    verb("decline", "decline a reach-out (no reason is sent)").add_argument("connection")
    agree = verb("agree", "propose terms, or countersign the other peer's")
    agree.add_argument("connection")
    agree.add_argument("--helps", help="what would help")
    agree.add_argument("--format", action="append", default=[], choices=[f.value for f in Format])
    agree.add_argument("--times", help="when, in words")
    agree.add_argument("--until", help="the agreement lapses after this date (YYYY-MM-DD)")
    agree.add_argument("--boundary", action="append", default=[])
    agree.add_argument("--ending", help="how either of you may end")
    agree.add_argument("--accept", action="store_true", help="countersign the terms the other peer proposed")
    verb("agreement", "the terms in force, and any proposal").add_argument("connection")
    send = verb("send", "send a message")
    send.add_argument("connection")
    send.add_argument("text")
    read = verb("read", "read a conversation")
    read.add_argument("connection")
    read.add_argument("--follow", action="store_true", help="keep reading live until Ctrl-C")
    end = verb("end", "end a connection (final, no reason needed)")
    end.add_argument("connection")
    end.add_argument("--erase", action="store_true", help="ask the other peer to delete the conversation")
    verb("block", "never hear from a peer again").add_argument("peer")
    report = verb("report", "report a listing or a peer to your node's moderators")
    report.add_argument("target", help="a listing id or a peer id (pf1...)")
    report.add_argument("--reason", required=True)
    report.add_argument("--disclose", help="show the moderators that peer's messages in this connection")
    verb("resources", "your community's support resources, in its own words")
    erase = verb("erase-me", "delete everything your node and its federation hold for you")
    erase.add_argument("--yes", action="store_true", help="do not ask for confirmation")


# --- running a verb ------------------------------------------------------------------------


def passphrase_for(prompt: str, *, confirm: bool = False) -> str | None:
    if os.environ.get("PEERFED_PASSPHRASE"):
        return os.environ["PEERFED_PASSPHRASE"]
    if not sys.stdin.isatty():
        return None
    first = getpass.getpass(prompt)
    if confirm and getpass.getpass("again: ") != first:
        raise ClientError("the two passphrases differ", "local.passphrase")
    return first


def progress(args: argparse.Namespace, text: str) -> None:
    if not getattr(args, "json", False) and sys.stderr.isatty():
        print(text, file=sys.stderr)


def run_peer(args: argparse.Namespace) -> int:
    try:
        result = asyncio.run(_run(args))
    except KeyboardInterrupt:
        return 130
    except (PeerfedError, NodeUnreachable, OSError) as exc:
        code = getattr(
            exc, "code", "local.unreachable" if isinstance(exc, NodeUnreachable | OSError) else "local.error"
        )
        if getattr(args, "json", False):
            print(json.dumps({"error": {"code": code, "message": str(exc)}}), file=sys.stderr)
        else:
            print(f"error {code}: {exc}", file=sys.stderr)
        return 1
    if result is None:
        return 0
    if getattr(args, "json", False):
        print(json.dumps(result, ensure_ascii=False))
    else:
        print(human(args, result))
    return 0


async def _run(args: argparse.Namespace) -> Any:
    home = default_home()
    async with aiohttp.ClientSession() as http:
        if args.command == "id" and args.action == "new":
            passphrase = passphrase_for("choose a passphrase: ", confirm=True) if args.passphrase else None
            if args.passphrase and not passphrase:
                raise ClientError("--passphrase needs a terminal or PEERFED_PASSPHRASE", "local.passphrase")
            peer = await Peer.create(
                home, http, node=args.node, name=args.name, invite=args.invite, passphrase=passphrase
            )
            try:
                return {**await peer.show(), "home": str(home)}
            finally:
                await peer.close()
        if args.command == "id" and args.action == "import":
            return await import_identity(home, args.file, http)
        passphrase = passphrase_for("passphrase: ") if await Peer.needs_passphrase(home) else None
        peer = await Peer.load(home, http, passphrase=passphrase)
        try:
            return await dispatch(peer, args, passphrase)
        finally:
            await peer.close()


async def synced(peer: Peer, args: argparse.Namespace) -> SyncReport:
    report = await peer.sync()
    if report.received:
        progress(args, f"{report.received} new from your mailbox")
    return report


async def dispatch(peer: Peer, args: argparse.Namespace, passphrase: str | None) -> Any:
    command = args.command
    if command == "id":
        if args.action == "show":
            return {**await peer.show(), "home": str(peer.state.home)}
        if args.action == "export":
            return await export_identity(peer, args.file, passphrase)
        if args.action == "move":
            return await peer.move(args.node, args.invite)
    if command in ("offer", "request"):
        listing = Listing(
            kind=command,
            topics=tuple(args.topic),
            vocab=tuple(args.vocab),
            languages=tuple(args.lang or ["en"]),
            formats=tuple(args.format or ["text"]),
            tz=args.tz,
            availability=tuple(parse_window(w) for w in args.when),
            timing=args.timing,
            capacity=args.capacity,
            area=args.area,
            summary=args.summary,
        )
        return await peer.post_listing(listing, parse_duration(args.expires, peer.now()))
    if command == "listings":
        return {"listings": await peer.my_listings()}
    if command == "withdraw":
        return await peer.withdraw(args.listing)
    if command == "browse":
        progress(args, "searching…")
        results = await peer.browse(
            kind=args.kind, topic=args.topic, lang=args.lang, format=args.format, timing=args.timing
        )
        return {"listings": results}
    if command == "resources":
        return await peer.resources()
    if command == "block":
        return await peer.block(args.peer)
    if command == "report":
        return await peer.report(args.target, args.reason, args.disclose)
    if command == "erase-me":
        if not args.yes and not args.json:
            if not sys.stdin.isatty():
                raise ClientError("erase-me needs --yes when not run at a terminal", "local.usage")
            if input("Delete everything your node holds for you? Type 'erase' to confirm: ") != "erase":
                return {"status": "cancelled"}
        return await peer.erase_me()
    await synced(peer, args)
    if command == "reach":
        return await peer.reach(args.listing, args.hello)
    if command == "connections":
        return {"connections": await peer.connections()}
    if command == "accept":
        return await peer.respond(args.connection, True, args.reply)
    if command == "decline":
        return await peer.respond(args.connection, False)
    if command == "agree":
        if args.accept:
            return await peer.agree(args.connection, None)
        if not args.helps:
            raise ClientError("say what would help with --helps, or countersign with --accept", "local.usage")
        terms = Terms(
            helps=args.helps,
            formats=tuple(args.format),
            times=args.times,
            until=parse_date(args.until) if args.until else None,
            boundaries=tuple(args.boundary),
            ending=args.ending,
        )
        return await peer.agree(args.connection, terms)
    if command == "agreement":
        return await peer.agreement(args.connection)
    if command == "send":
        return await peer.send(args.connection, args.text)
    if command == "read":
        if args.follow:
            await follow(peer, args)
            return None
        return await peer.messages(args.connection)
    if command == "end":
        return await peer.end(args.connection, args.erase)
    raise ClientError(f"unknown command {command}", "local.usage")


async def follow(peer: Peer, args: argparse.Namespace) -> None:
    seen: set[str] = set()

    async def show_new() -> None:
        for message in (await peer.messages(args.connection))["messages"]:
            if message["id"] not in seen:
                seen.add(message["id"])
                emit(args, message)

    await show_new()
    async for _ in peer.follow(args.connection):
        await show_new()


def emit(args: argparse.Namespace, message: dict[str, Any]) -> None:
    if args.json:
        print(json.dumps(message, ensure_ascii=False), flush=True)
    else:
        print(f"[{message['from']}] {message['text']}", flush=True)


# --- export and import ----------------------------------------------------------------------

_TABLES = {
    "peers": "peer, bundle, bundle_expires, home, name, blocked",
    "listings": "id, raw, author, origin, mine, expires_at, withdrawn, seen_at",
    "connections": "id, listing, peer, side, created_at, updated_at, read_seq",
    "events": "connection, inner_id, author, type, raw, at",
}


async def export_identity(peer: Peer, file: Path, passphrase: str | None) -> dict[str, Any]:
    """Everything this device holds, encrypted under a passphrase, in one file (mode 0600)."""
    secret = passphrase or passphrase_for("a passphrase for the backup: ", confirm=True)
    if not secret:
        raise ClientError(
            "a backup is always encrypted: set PEERFED_PASSPHRASE or run at a terminal", "local.passphrase"
        )
    tables: list[Any] = []
    for table, columns in _TABLES.items():
        rows = await peer.state._rows(f"SELECT {columns} FROM {table}")
        tables.append([table, [list(r) for r in rows]])
    meta = {k: v for k, v in (await peer.state.dump_meta()).items() if k not in ("keyring", "token")}
    payload = pack(["peerfed-export/1", peer.keys.to_bytes(), [[k, v] for k, v in meta.items()], tables])
    fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(kr.seal_blob(payload, secret))
    return {"file": str(file), "peer": peer.id.text, "connections": len(tables[2][1])}


async def import_identity(home: Path, file: Path, http: aiohttp.ClientSession) -> dict[str, Any]:
    if (home / "peer.sqlite3").exists():
        raise ClientError(f"{home} already holds an identity; import into an empty PEERFED_HOME", "local.exists")
    blob = file.read_bytes()
    secret = passphrase_for("the backup's passphrase: ")
    data: Any = unpack(kr.open_blob(blob, secret))
    if not isinstance(data, list) or len(data) != 4 or data[0] != "peerfed-export/1":
        raise ClientError("this is not a peerfed backup", "local.keyring")
    _, keyring_bytes, meta, tables = data
    keys = kr.Keyring.from_bytes(keyring_bytes)
    state = await LocalState.open(home)
    try:
        for key, value in meta:
            await state.set(key, value)
        await state.set("keyring", kr.lock(keys, secret))
        await state.set("token", None)
        for table, rows in tables:
            columns = _TABLES[table]
            marks = ", ".join("?" for _ in columns.split(","))
            for row in rows:
                await state._exec(f"INSERT OR IGNORE INTO {table} ({columns}) VALUES ({marks})", row)
    finally:
        await state.close()
    peer = await Peer.load(home, http, passphrase=secret)
    try:
        await peer.call(lambda: peer.api.mailbox(limit=1))  # signs in with the restored key
        return {**await peer.show(), "home": str(home)}
    finally:
        await peer.close()


# --- plain-text output ------------------------------------------------------------------------


def when(ts: int | None) -> str:
    if not ts:
        return "-"
    return dt.datetime.fromtimestamp(ts, tz=dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def human(args: argparse.Namespace, r: dict[str, Any]) -> str:
    command = args.command
    if command == "id":
        if "file" in r:
            return f"backup written to {r['file']} ({r['connections']} connections)"
        lines = [f"peer id:  {r['peer']}", f"node:     {r['node']}"]
        if r.get("name"):
            lines.append(f"name:     {r['name']}")
        if "encrypted" in r:
            lines.append("key:      " + ("encrypted with your passphrase" if r["encrypted"] else "not encrypted"))
        if r.get("home"):
            lines.append(f"stored in {r['home']}")
        return "\n".join(lines)
    if command in ("offer", "request"):
        return f"published {r['kind']} {r['id'][:12]} (expires {when(r['expires_at'])})"
    if command == "listings":
        return "\n".join(f"{x['id'][:12]}  {x['kind']:<7} {x['status']:<9} {x['summary']}" for x in r["listings"]) or (
            "no listings yet; publish one with: peerfed offer ... or peerfed request ..."
        )
    if command == "browse":
        if not r["listings"]:
            return "nothing matches yet"
        out = []
        for x in r["listings"]:
            who = x["name"] or x["author"][:12]
            out.append(
                f"{x['id'][:12]}  {x['kind']:<7} {', '.join(x['topics'])}  [{', '.join(x['languages'])}; "
                f"{', '.join(x['formats'])}; {x['timing']}] by {who} at {x['origin']}\n    {x['summary']}"
            )
        return "\n".join(out)
    if command == "connections":
        if not r["connections"]:
            return "no connections yet"
        return "\n".join(
            f"{c['id'][:12]}  {c['state']:<11} with {c['name'] or c['peer'][:12]}"
            + (f"  ({c['unread']} unread)" if c["unread"] else "")
            + (f'\n    "{c["hello"]}"' if c["state"] == "reached-out" else "")
            for c in r["connections"]
        )
    if command == "read":
        lines = [f"[{m['from']}] {m['text']}" for m in r["messages"]] or ["(no messages yet)"]
        return "\n".join([*lines, f"-- {r['state']}"])
    if command in ("agreement", "agree"):
        force = r.get("in_force")
        lines = [f"connection {r['connection'][:12]}: {r['state']}"]
        if force:
            lines.append(f"in force (version {force['version']}): {force['helps']}")
            lines += [f"  boundary: {b}" for b in force["boundaries"]]
        if r.get("pending"):
            p = r["pending"]
            lines.append(f"proposed by {p['proposed_by']} (version {p['version']}): {p['helps']}")
        if command == "agree" and not force:
            lines.append(f"signed version {r['version']}; in force once the other peer signs the same terms")
        return "\n".join(lines)
    if command == "resources":
        lines = [f"{r['name']} ({r['node']})"]
        for x in r["resources"]:
            police = {
                "never": "never involves emergency services",
                "on-request": "emergency services only if you ask",
                "may": "may involve emergency services",
            }[x["emergency"]]
            lines.append(
                f"- {x['name']}: {x['contact']}" + (f" ({x['hours']})" if x.get("hours") else "") + f" — {police}"
            )
        return "\n".join(lines if r["resources"] else [*lines, "this node lists no resources"])
    if command == "reach":
        return f"reached out: connection {r['connection'][:12]} waits for the listing's author to accept"
    if command in ("accept", "decline", "end"):
        extra = " (asked them to erase the conversation)" if r.get("erase") else ""
        return f"connection {r['connection'][:12]}: {r['state']}{extra}"
    if command == "send":
        return f"sent message {r['seq']} on {r['connection'][:12]}"
    if command == "withdraw":
        return f"withdrawn {r['id'][:12]} from every node that has it"
    if command == "block":
        return f"blocked {r['peer']}: nothing from them will reach you"
    if command == "report":
        return f"report {r['id']} sent to your node's moderators ({r['disclosed']} messages disclosed)"
    if command == "erase-me":
        return f"{r['status']}: {r.get('node', '')} and the nodes it federates with are deleting what they held for you"
    return "  ".join(f"{k}: {v}" for k, v in r.items())
