"""``peerfed block``, ``report``, ``reports``, ``resources``, ``erase-me`` (spec §13.2, §13.5, §13.6).

The peer's own safety tools and the community around them: blocking stays on this device;
a report goes to the home node's moderators, and ``reports`` shows what they did (spec
§13.5); the support resources are the community's own words from its node document (spec
§13.2); erasure asks the node and its federation to delete everything they hold for this key
(spec §13.6).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..display import local_time
from ..state import ClientError
from ..wipe import wipe_home
from .registry import Invocation, Verb

__all__ = ["VERBS"]


def _block_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("peer")


async def _block(call: Invocation) -> dict[str, Any]:
    return await call.peer.block(call.args.peer)


def _render_block(args: argparse.Namespace, r: dict[str, Any]) -> str:
    return f"blocked {r['peer']}: nothing from them will reach you"


def _report_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", help="a listing id or a peer id (pf1...)")
    parser.add_argument("--reason", required=True)
    parser.add_argument("--disclose", help="show the moderators that peer's messages in this connection")


async def _report(call: Invocation) -> dict[str, Any]:
    return await call.peer.report(call.args.target, call.args.reason, call.args.disclose)


def _render_report(args: argparse.Namespace, r: dict[str, Any]) -> str:
    return f"report {r['id']} sent to your node's moderators ({r['disclosed']} messages disclosed)"


async def _reports(call: Invocation) -> dict[str, Any]:
    return await call.peer.reports()


def _render_reports(args: argparse.Namespace, r: dict[str, Any]) -> str:
    if not r["reports"]:
        return "you have made no reports"
    lines = []
    for x in r["reports"]:
        about = f"{x['target_kind']} {x['target']}" if x.get("target") else x["target_kind"]
        line = f"report {x['id']} about {about}, {local_time(x['created_at'])}: {x['status']}"
        if x.get("outcome"):
            line += f" — the moderators: {x['outcome']}"
        lines.append(line)
    return "\n".join(lines)


async def _resources(call: Invocation) -> dict[str, Any]:
    return await call.peer.resources()


_EMERGENCY = {
    "never": "never involves emergency services",
    "on-request": "emergency services only if you ask",
    "may": "may involve emergency services",
}


def _render_resources(args: argparse.Namespace, r: dict[str, Any]) -> str:
    lines = [f"{r['name']} ({r['node']})"]
    for x in r["resources"]:
        police = _EMERGENCY[x["emergency"]]
        lines.append(f"- {x['name']}: {x['contact']}" + (f" ({x['hours']})" if x.get("hours") else "") + f" — {police}")
    return "\n".join(lines if r["resources"] else [*lines, "this node lists no resources"])


def _erase_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    parser.add_argument(
        "--keep-device", action="store_true", help="keep this device's copy (identity and conversations)"
    )


async def _erase(call: Invocation) -> dict[str, Any]:
    """Consent is asked, or given with --yes: an output format (--json) is never consent."""
    args = call.args
    if not args.yes:
        if not sys.stdin.isatty():
            raise ClientError("erase-me needs --yes when not run at a terminal", "local.usage")
        if input("Delete everything your node holds for you? Type 'erase' to confirm: ") != "erase":
            return {"status": "cancelled"}
    result = await call.peer.erase_me()
    if not args.keep_device:
        # What the node deleted is gone from this device too, and the home is free for a new identity.
        await call.peer.close()
        result["device"] = wipe_home(call.home)
    return result


def _render_erase(args: argparse.Namespace, r: dict[str, Any]) -> str:
    said = f"{r['status']}: {r.get('node', '')} and the nodes it federates with are deleting what they held for you"
    if r.get("device") == "wiped":
        said += "\nthis device's copy is deleted too; `peerfed id new` starts again"
    return said


VERBS = (
    Verb("block", "never hear from a peer again", _block, _render_block, _block_arguments),
    Verb("report", "report a listing or a peer to your node's moderators", _report, _render_report, _report_arguments),
    Verb("reports", "your reports and what the moderators did", _reports, _render_reports),
    Verb("resources", "your community's support resources, in its own words", _resources, _render_resources),
    Verb(
        "erase-me",
        "delete everything your node and its federation hold for you",
        _erase,
        _render_erase,
        _erase_arguments,
    ),
)
