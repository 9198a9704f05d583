"""The registry the peer's verbs are entered in, and the one place they run (spec §10 codes on errors).

A verb is one entry: its arguments (parser setup), its run (calls the Peer) and its render
(human text). Running a verb is the same for all of them: open the device (unless the verb
makes one), fetch the mailbox first if the verb shows or changes a connection, run, then print
exactly one JSON document under ``--json`` or the verb's text. Every error the peer can meet is
printed here, as ``error CODE: message`` on stderr (or a JSON error under ``--json``), exit 1.
"""

from __future__ import annotations

import argparse
import asyncio
import enum
import getpass
import json
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from peerfed.protocol import PeerfedError

from ..peer import Peer
from ..state import ClientError, default_home
from ..transport import NodeUnreachable

__all__ = [
    "JSON_HELP",
    "Invocation",
    "Needs",
    "Verb",
    "add_verbs",
    "passphrase_for",
    "progress",
    "run_verb",
]

JSON_HELP = "print one JSON document and nothing else"


class Needs(enum.Enum):
    """What a verb needs before it runs."""

    HOME = "home"  # nothing but the folder: the verb makes the identity itself
    PEER = "peer"  # the identity on this device, loaded
    SYNCED = "synced"  # the identity, with the mailbox fetched and applied first


@dataclass
class Invocation:
    """One run of a verb: what was typed, and what it runs against."""

    args: argparse.Namespace
    home: Path
    http: aiohttp.ClientSession
    passphrase: str | None = None
    loaded: Peer | None = None

    @property
    def peer(self) -> Peer:
        assert self.loaded is not None, "a verb that needs the peer was entered with Needs.HOME"
        return self.loaded


@dataclass(frozen=True)
class Verb:
    """One verb: ``arguments`` sets up its parser, ``run`` does it, ``render`` says it in words.

    ``run`` returns the JSON document to print, or None when it printed as it went (``read
    --follow``). A verb with ``actions`` (``id``) is a group: the action names the entry that runs.
    """

    name: str
    help: str
    run: Callable[[Invocation], Awaitable[Any]] | None = None
    render: Callable[[argparse.Namespace, dict[str, Any]], str] | None = None
    arguments: Callable[[argparse.ArgumentParser], None] | None = None
    needs: Needs = Needs.PEER
    json_last: bool = False  # where --json appears in the help, as it always has
    actions: Sequence[Verb] = field(default_factory=tuple)


def add_verbs(sub: Any, verbs: Sequence[Verb]) -> None:
    """Add every verb's parser to ``sub`` (an argparse subparsers action)."""
    for verb in verbs:
        parser: argparse.ArgumentParser = sub.add_parser(verb.name, help=verb.help)
        if verb.actions:
            actions = parser.add_subparsers(dest="action", required=True)
            for action in verb.actions:
                _add_one(actions.add_parser(action.name, help=action.help), action)
        else:
            _add_one(parser, verb)


def _add_one(parser: argparse.ArgumentParser, verb: Verb) -> None:
    if not verb.json_last:
        parser.add_argument("--json", action="store_true", help=JSON_HELP)
    if verb.arguments is not None:
        verb.arguments(parser)
    if verb.json_last:
        parser.add_argument("--json", action="store_true", help=JSON_HELP)


def passphrase_for(prompt: str, *, confirm: bool = False) -> str | None:
    """PEERFED_PASSPHRASE, else ask at a terminal, else None. Raises ClientError if two answers differ."""
    if os.environ.get("PEERFED_PASSPHRASE"):
        return os.environ["PEERFED_PASSPHRASE"]
    if not sys.stdin.isatty():
        return None
    first = getpass.getpass(prompt)
    if confirm and getpass.getpass("again: ") != first:
        raise ClientError("the two passphrases differ", "local.passphrase")
    return first


def progress(args: argparse.Namespace, text: str) -> None:
    """A word on stderr while a person waits at a terminal; never under --json."""
    if not getattr(args, "json", False) and sys.stderr.isatty():
        print(text, file=sys.stderr)


def run_verb(args: argparse.Namespace, verbs: Sequence[Verb]) -> int:
    """Run the verb ``args`` names and print its result or its error; the exit status."""
    verb = _entry(args, verbs)
    try:
        result = asyncio.run(_run(verb, args))
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
        assert verb.render is not None
        print(verb.render(args, result))
    return 0


def _entry(args: argparse.Namespace, verbs: Sequence[Verb]) -> Verb:
    verb = next(v for v in verbs if v.name == args.command)
    if verb.actions:
        verb = next(a for a in verb.actions if a.name == args.action)
    return verb


async def _run(verb: Verb, args: argparse.Namespace) -> Any:
    assert verb.run is not None
    home = default_home()
    async with aiohttp.ClientSession() as http:
        call = Invocation(args, home, http)
        if verb.needs is Needs.HOME:
            return await verb.run(call)
        call.passphrase = passphrase_for("passphrase: ") if await Peer.needs_passphrase(home) else None
        call.loaded = await Peer.load(home, http, passphrase=call.passphrase)
        try:
            if verb.needs is Needs.SYNCED:
                report = await call.peer.sync()
                if report.received:
                    progress(args, f"{report.received} new from your mailbox")
            return await verb.run(call)
        finally:
            await call.peer.close()
