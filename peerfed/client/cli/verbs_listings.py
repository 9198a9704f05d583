"""``peerfed offer``, ``request``, ``listings``, ``withdraw``, ``browse`` (spec §6, §13.5 directory).

An offer and a request are the same thing, a listing (spec §6.2), of two kinds: its public card
is exactly what these flags set. Browsing searches the home node's directory, which federated
nodes fill, and shows only listings whose signatures verify.
"""

from __future__ import annotations

import argparse
from typing import Any

from peerfed.protocol import Format, Listing

from .parse import parse_duration, parse_window, when
from .registry import Invocation, Verb, progress

__all__ = ["VERBS"]


def _listing_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--topic", action="append", required=True, help="a lived experience, in your words")
    parser.add_argument("--vocab", action="append", default=[], help="a term from the node's vocabulary")
    parser.add_argument("--lang", action="append", default=None, help="a language (BCP 47), e.g. es")
    parser.add_argument("--format", action="append", default=None, choices=[f.value for f in Format])
    parser.add_argument("--timing", choices=["now", "soon", "scheduled"], default="soon")
    parser.add_argument("--when", action="append", default=[], help="e.g. 'mon-fri 18:00-21:00'")
    parser.add_argument("--tz", default="UTC", help="time zone of --when, e.g. Europe/Madrid")
    parser.add_argument("--capacity", type=int, default=1)
    parser.add_argument("--area", help="a coarse area, never an address")
    parser.add_argument("--summary", required=True)
    parser.add_argument("--expires", default="14d", help="14d, 48h, or a date (default 14d)")


async def _post(call: Invocation) -> dict[str, Any]:
    args = call.args
    listing = Listing(
        kind=args.command,
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
    return await call.peer.post_listing(listing, parse_duration(args.expires, call.peer.now()))


def _render_post(args: argparse.Namespace, r: dict[str, Any]) -> str:
    return f"published {r['kind']} {r['id'][:12]} (expires {when(r['expires_at'])})"


async def _mine(call: Invocation) -> dict[str, Any]:
    return {"listings": await call.peer.my_listings()}


def _render_mine(args: argparse.Namespace, r: dict[str, Any]) -> str:
    return "\n".join(f"{x['id'][:12]}  {x['kind']:<7} {x['status']:<9} {x['summary']}" for x in r["listings"]) or (
        "no listings yet; publish one with: peerfed offer ... or peerfed request ..."
    )


def _withdraw_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("listing")


async def _withdraw(call: Invocation) -> dict[str, Any]:
    return await call.peer.withdraw(call.args.listing)


def _render_withdraw(args: argparse.Namespace, r: dict[str, Any]) -> str:
    return f"withdrawn {r['id'][:12]} from every node that has it"


def _browse_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kind", choices=["offer", "request"])
    parser.add_argument(
        "--topic",
        action="append",
        help="words a topic holds, whole, in any case (`panic` finds `panic attacks`); again for another topic",
    )
    parser.add_argument("--lang")
    parser.add_argument("--format", choices=[f.value for f in Format])
    parser.add_argument("--timing", choices=["now", "soon", "scheduled"])


async def _browse(call: Invocation) -> dict[str, Any]:
    args = call.args
    progress(args, "searching…")
    results = await call.peer.browse(
        kind=args.kind, topic=args.topic, lang=args.lang, format=args.format, timing=args.timing
    )
    return {"listings": results}


def _render_browse(args: argparse.Namespace, r: dict[str, Any]) -> str:
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


VERBS = (
    Verb("offer", "publish an offer", _post, _render_post, _listing_arguments),
    Verb("request", "publish a request", _post, _render_post, _listing_arguments),
    Verb("listings", "your own listings", _mine, _render_mine),
    Verb("withdraw", "take a listing down everywhere", _withdraw, _render_withdraw, _withdraw_arguments),
    Verb("browse", "search listings across federated nodes", _browse, _render_browse, _browse_arguments),
)
