"""The operator's `peerfed admin` tools: reports, members, invites, federation (spec §13.5, §13.7).

It works on the node's database directly, so it runs beside a live node (SQLite WAL allows
it); a running node picks up federation changes within a minute.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nacl.utils

from peerfed.protocol import Context, KeyBundle, PeerId, RemoteError, open_signed
from peerfed.protocol.errors import UnavailableError
from peerfed.protocol.node_bodies import check_url
from peerfed.protocol.visible import dumps, visible, visible_all

from .admin_reports import one_match, render_show, reports_command
from .app import (
    DATABASE_ADDRESS_FILE,
    DATABASE_FILE,
    OUTBOX_RETENTION,
    REPORT_RETENTION,
    remember_database,
    remembered_database,
)
from .backup import BackupError, backup, restore
from .keys import load_or_create_key, rotate_key
from .runner import DataInUse, DataLock
from .sessions import token_hash
from .store import MemberStatus, NodeStatus, OutboxItem, OutboxState, Store
from .store.move import move_to_postgres
from .store.pg import is_postgres

__all__ = ["FAILING_AFTER", "add_admin_parser", "run_admin"]

FAILING_AFTER = 3  # failed attempts after which a pending item is shown as failing (about 2 minutes)


def add_admin_parser(sub: Any) -> None:
    admin = sub.add_parser("admin", help="moderate and manage a node (run on the node's machine)")
    admin.add_argument("--data", type=Path, default=Path("peerfed-data"), help="the node's data folder")
    admin.add_argument(
        "--database",
        default=os.environ.get("PEERFED_DATABASE", ""),
        help="the node's postgresql:// address (default: PEERFED_DATABASE, else the one the data folder's node"
        " last served, else SQLite in the data folder)",
    )
    admin.add_argument("--json", action="store_true", help="print one JSON document")
    groups = admin.add_subparsers(dest="group", required=True)

    listings = groups.add_parser("listings", help="list or remove listings").add_subparsers(
        dest="action", required=True
    )
    listings.add_parser("list", help="the newest listings held here, local and federated").add_argument(
        "--limit", type=int, default=50, help="how many (default 50)"
    )
    listings.add_parser("remove", help="take a listing down from this node").add_argument(
        "listing", help="listing id (hex)"
    )

    reports = groups.add_parser("reports", help="reports from peers").add_subparsers(dest="action", required=True)
    reports.add_parser("list", help="open reports (the newest first)").add_argument(
        "--all", action="store_true", help="include resolved reports"
    )
    reports.add_parser("show", help="a report and its disclosed messages, checked").add_argument(
        "report", help="a report id, or its start"
    )
    resolve = reports.add_parser("resolve", help="close a report with the outcome the reporter will see")
    resolve.add_argument("report", help="a report id, or its start")
    resolve.add_argument("--outcome", required=True, help="what was done; the reporter sees this")

    invites = groups.add_parser("invites", help="invite codes").add_subparsers(dest="action", required=True)
    create = invites.add_parser("create", help="make an invite code (shown once)")
    create.add_argument("--uses", type=int, default=1, help="how many people it lets in (default 1)")
    create.add_argument("--days", type=int, default=14, help="how long it works (default 14 days)")
    create.add_argument("--note", default=None, help="a note for the operators, never shown to the invited")
    invites.add_parser("revoke", help="stop an invite code working").add_argument(
        "code", help="the code, or the id `invites list` shows (or its start)"
    )
    invites.add_parser("list", help="invite codes by id, with their uses left and expiry")

    federation = groups.add_parser("federation", help="other nodes").add_subparsers(dest="action", required=True)
    federation.add_parser("list", help="known nodes: the last exchange that worked, the last error with its code")
    for action, what in (
        ("add", "follow a node and ask it to follow back"),
        ("allow", "let a node federate under the allow-list policy"),
        ("block", "refuse a node, drop its queue and the keys learnt from it"),
    ):
        federation.add_parser(action, help=what).add_argument("url", help="the node's URL")
    federation.add_parser("failures", help="deliveries still failing, given up or refused")

    members = groups.add_parser("members", help="peers of this node").add_subparsers(dest="action", required=True)
    members.add_parser("list", help="members with their names and when they joined").add_argument(
        "--pending", action="store_true", help="only those waiting for approval"
    )
    members.add_parser("approve", help="let a pending member in").add_argument(
        "peer", help="a peer id, or the start of a pending one's"
    )

    keys = groups.add_parser("keys", help="the node key").add_subparsers(dest="action", required=True)
    keys.add_parser("rotate", help="make a new node key; the old one stays valid for a while")
    keys.add_parser("show", help="the node's public keys")

    for name, what in (("backup", "write a backup"), ("restore", "restore a backup into an empty --data folder")):
        one = groups.add_parser(name, help=f"{what} (holds the node's secret key: keep it safe)")
        one.add_argument("file", type=Path, help="the backup file")
        # Also accepted after the command (`admin restore FILE --data DIR`); the group's value otherwise.
        one.add_argument("--data", type=Path, default=argparse.SUPPRESS, help="the node's data folder")
        one.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print one JSON document")
        if name == "backup":
            one.add_argument("--force", action="store_true", help="replace FILE if it exists")

    groups.add_parser("stats", help="plain statistics")
    database = groups.add_parser("database", help="where the node's rows live").add_subparsers(
        dest="action", required=True
    )
    database.add_parser(
        "move", help="move a stopped node's rows from SQLite into an empty PostgreSQL database (docs/postgresql.md)"
    ).add_argument("address", help="postgresql://user:password@host/name")
    groups.add_parser("purge", help="run the retention purge now")


def run_admin(args: argparse.Namespace) -> int:
    """Run one admin command; its result goes to stdout, an error to stderr. The exit status.

    Errors print as ``error CODE: message`` (a JSON ``{"error": {"code", "message"}}`` under
    ``--json``): 2 when the command could not run, 1 when it ran and found nothing to act on.
    A PostgreSQL node's database is the one its data folder names, unless ``--database`` says.
    """
    args.database = args.database or remembered_database(args.data)
    if args.database and args.group in ("backup", "restore"):
        hint = "back a PostgreSQL node up with pg_dump and its data folder's node.key (docs/postgresql.md)"
        return _error(args, "local.postgresql", hint, 2)
    if args.group == "restore":
        return _finish(args, lambda: restore(args.file, args.data))
    if args.group == "database":
        return _move(args)
    if not args.database and not (args.data / DATABASE_FILE).exists():
        hint = f"start the node once with: peerfed serve --data {args.data}"
        return _error(args, "local.no_database", f"no node database in {args.data} ({hint})", 2)
    if args.group == "backup":
        return _finish(args, lambda: backup(args.data, args.file, force=args.force, now=int(time.time())))
    return _finish(args, lambda: asyncio.run(_run(args)))


def _finish(args: argparse.Namespace, command: Callable[[], Any]) -> int:
    """Run ``command`` and print its result or its error; the exit status."""
    try:
        result = command()
    except (RemoteError, UnavailableError, BackupError) as exc:
        return _error(args, exc.code, str(exc), 2)
    except ValueError as exc:
        return _error(args, "local.invalid", str(exc), 2)
    if isinstance(result, dict) and result.get("ok") is False:
        return _error(args, "local.not_found", str(result.get("message", "nothing to act on")), 1)
    # Reasons, disclosed messages, names and other nodes' errors were written by someone else:
    # never raw on the operator's terminal (spec §13.1); JSON spells them as its own escapes.
    if args.json:
        print(dumps(result, indent=2, default=str))
    elif args.group == "reports" and args.action == "show":
        print(render_show(visible_all(result)))
    else:
        _print(visible_all(result))
    return 0


def _error(args: argparse.Namespace, code: str, message: str, status: int) -> int:
    if args.json:
        print(dumps({"error": {"code": code, "message": message}}), file=sys.stderr)
    else:
        print(f"error {visible(code)}: {visible(message)}", file=sys.stderr)
    return status


def _print(result: Any) -> None:
    if isinstance(result, dict) and "message" in result:
        print(result["message"])
        result = {k: v for k, v in result.items() if k not in ("message", "ok")}
    if isinstance(result, list):
        if not result:
            print("(none)")
        for row in result:
            print("  ".join(f"{k}={_shown(k, v)}" for k, v in row.items()))
    elif isinstance(result, dict):
        for key, value in result.items():
            text = json.dumps(value, default=str) if isinstance(value, dict | list) else _shown(key, value)
            print(f"{key}: {text}")


def _move(args: argparse.Namespace) -> int:
    """``database move``: the node's SQLite rows into PostgreSQL, with the node stopped."""
    if args.database:
        return _error(
            args, "local.postgresql", f"this node's database is already PostgreSQL ({DATABASE_ADDRESS_FILE})", 2
        )
    if not is_postgres(args.address):
        return _error(args, "local.bad_address", "the address must start with postgresql://", 2)
    if not (args.data / DATABASE_FILE).exists():
        return _error(args, "local.no_database", f"no node database in {args.data}", 2)
    lock = DataLock(args.data)
    try:
        lock.acquire()
    except DataInUse as exc:
        return _error(args, "local.in_use", f"{exc}: stop the node, then move its database", 3)

    def move() -> dict[str, Any]:
        moved = move_to_postgres(args.data / DATABASE_FILE, args.address)
        remember_database(args.data, args.address)
        rows = sum(moved.values())
        return {
            "message": f"moved {rows} rows in {len(moved)} tables; peerfed serve --data {args.data} now serves "
            f"PostgreSQL ({DATABASE_FILE} is left as it was: delete it once the node serves well)",
            "rows": moved,
        }

    try:
        return _finish(args, move)
    finally:
        lock.release()


def _shown(key: str, value: Any) -> Any:
    """A time (a field named ``*_at``) as a readable UTC time; JSON output keeps the number."""
    if key.endswith("_at") and isinstance(value, int) and not isinstance(value, bool):
        return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(value))
    return value


async def _run(args: argparse.Namespace) -> Any:
    # Only `serve` migrates (or creates a PostgreSQL schema), under its lock.
    store = await Store.open(args.database or args.data / DATABASE_FILE, migrating=False)
    try:
        return await _dispatch(args, store, int(time.time()))
    finally:
        await store.close()


async def _dispatch(args: argparse.Namespace, store: Store, now: int) -> Any:
    group, action = args.group, getattr(args, "action", None)
    if group == "listings" and action == "list":
        return [
            {
                "id": s.id.hex(),
                "author": PeerId(s.author).text,
                "kind": s.kind,
                "origin": s.origin or "local",
                "expires_at": s.expires_at,
            }
            for s in await store.listings_page(args.limit)
        ]
    if group == "listings" and action == "remove":
        listing = bytes.fromhex(args.listing)
        held = await store.listing(listing)
        if held is None:
            return {"ok": False, "message": "no such listing"}
        outbox = (
            []
            if held.origin
            else [OutboxItem(n.url, "takedown", listing, listing) for n in await store.nodes(NodeStatus.ACTIVE)]
        )
        await store.remove_listing(listing, outbox, now)
        return {"message": f"removed {args.listing}" + (f"; telling {len(outbox)} nodes" if outbox else "")}
    if group == "reports":
        return await reports_command(args, store, now)
    if group == "invites" and action == "create":
        code = base64.b32encode(nacl.utils.random(10)).decode("ascii").lower()
        await store.create_invite(token_hash(code), now, now + args.days * 86_400, args.uses, args.note)
        return {"message": f"invite code: {code}", "code": code, "uses": args.uses, "days": args.days}
    if group == "invites" and action == "revoke":
        # By the code itself, or by the id `invites list` shows (the start of the code's hash).
        given = args.code.strip().lower()
        if await store.revoke_invite(token_hash(given)):
            return {"message": "revoked"}
        shown = [i.code_hash for i in await store.invites() if len(given) >= 6 and i.code_hash.hex().startswith(given)]
        if not shown:
            return {"ok": False, "message": "no such invite (give the code, or the id `invites list` shows)"}
        await store.revoke_invite(one_match(shown, "invite", given))
        return {"message": "revoked"}
    if group == "invites" and action == "list":
        return [
            {
                "invite": i.code_hash.hex()[:12],
                "uses_left": i.uses_left,
                "expires_at": i.expires_at,
                "revoked": i.revoked,
                "note": i.note,
            }
            for i in await store.invites()
        ]
    if group == "federation" and action == "list":
        # The last exchange that worked (a push taken, a pull page had, a follow answered) and the
        # last that failed, each with its time: both are kept, so the newer one tells the state.
        return [
            {
                "url": n.url,
                "status": n.status.value,
                "added_at": n.added_at,
                "last_ok_at": n.last_ok,
                "last_error_at": n.last_error_at,
                "last_error_code": n.last_error_code,
                "last_error": n.last_error,
                "failures_in_a_row": n.failures,
            }
            for n in await store.nodes()
        ]
    if group == "federation" and action in ("add", "allow"):
        url = check_url(args.url.rstrip("/"), "url")
        await store.set_node_status(url, "requested", now)
        return {"message": f"{url}: federation requested; a running node asks it within a minute"}
    if group == "federation" and action == "block":
        url = check_url(args.url.rstrip("/"), "url")
        await store.set_node_status(url, "blocked", now)
        dropped = await store.reject_outbox_for(url, "blocked by the operator", now)
        return {"message": f"{url}: blocked ({dropped} queued items dropped, its keys forgotten)"}
    if group == "federation" and action == "failures":
        # Items still retried after repeated failures come first: they are what can still be
        # saved (a refusal the other operator can fix, a node that is down), then the finished ones.
        return [
            {
                "destination": g.destination,
                "state": "retrying" if g.state == OutboxState.PENDING else g.state.value,
                "kind": g.kind,
                "item": g.item.hex()[:16],
                "queued_at": g.created_at,
                "attempts": g.attempts,
                "error": g.last_error,
            }
            for g in [*await store.failing(FAILING_AFTER), *await store.gave_up()]
        ]
    if group == "members" and action == "list":
        return [
            {
                "peer": PeerId(m.peer).text,
                "name": await _name(store, m.peer, now),
                "status": m.status,
                "joined_at": m.joined_at,
                "moved_to": m.moved_to,
            }
            for m in await store.members(MemberStatus.PENDING if args.pending else None)
        ]
    if group == "members" and action == "approve":
        given = args.peer.strip()
        try:
            peer = PeerId.from_text(given)
        except RemoteError:
            pending = [PeerId(m.peer) for m in await store.members(MemberStatus.PENDING)]
            starting = [p for p in pending if len(given) >= 6 and p.text.startswith(given)]
            peer = one_match(starting, "pending peer", given)
        await store.set_member(bytes(peer), "member", now)
        return {"message": f"{peer.text} approved; they can sign in now"}
    if group == "keys" and action == "show":
        identity, _ = load_or_create_key(args.data)
        return {"key": identity.peer_id.hex, "previous": [k.key.hex() for k in await store.own_keys()]}
    if group == "keys" and action == "rotate":
        old, new = rotate_key(args.data)
        await store.record_own_key(bytes(old.peer_id), now - 300, now + 7 * 86_400)
        return {"message": "rotated; restart the node to sign with the new key", "new": new.peer_id.hex}
    if group == "stats":
        return {"counts": await store.counts(), "outbox": await store.outbox_stats()}
    if group == "purge":
        return await store.purge(now, report_retention=REPORT_RETENTION, outbox_retention=OUTBOX_RETENTION)
    raise ValueError(f"unknown command {group} {action}")


async def _name(store: Store, peer: bytes, now: int) -> str | None:
    """The pseudonym a member signed into their live key bundle, if any (spec §4.3)."""
    held = await store.key_bundle(peer, now)
    if held is None:
        return None
    try:
        body = open_signed(held.raw, context=Context.KEY_BUNDLE, now=now).body
    except RemoteError:
        return None
    return body.pseudonym if isinstance(body, KeyBundle) else None
