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
import os
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from peerfed.protocol import MovedError, PeerfedError, UnavailableError

from ..display import dumps, local_time, visible, visible_all
from ..lock import HomeLock
from ..peer import Peer
from ..state import ClientError, default_home
from ..transport import NodeUnreachable, http_session

__all__ = [
    "JSON_HELP",
    "Invocation",
    "Needs",
    "Verb",
    "add_verbs",
    "device_clock",
    "NO_PASSPHRASE_HELP",
    "new_passphrase",
    "passphrase_for",
    "progress",
    "run_verb",
    "warn",
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


def device_clock() -> Callable[[], float]:
    """This device's clock: the system's, moved by PEERFED_CLOCK_OFFSET seconds when that is set.

    For trying out what a command does at a later time (the tests of forgetting, spec §9.7, move
    the clock this way); it moves nothing but this process's own reading of the time.
    Raises ClientError (``local.usage``) if the offset is not a whole number.
    """
    text = os.environ.get("PEERFED_CLOCK_OFFSET", "").strip()
    if not text:
        return time.time
    try:
        offset = int(text)
    except ValueError as exc:
        raise ClientError(f"PEERFED_CLOCK_OFFSET={text!r} is not a whole number of seconds", "local.usage") from exc
    return lambda: time.time() + offset


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


NO_PASSPHRASE_HELP = (
    "keep your keys and history unencrypted on this device: anyone who can read this folder "
    "can act as you and read what you wrote"
)


def new_passphrase(args: argparse.Namespace) -> str | None:
    """The passphrase to lock new keys with (spec §9.6, R-9.6-1): PEERFED_PASSPHRASE, else asked twice at a
    terminal; None only when the person said ``--no-passphrase`` (``id new`` says back what it means).

    Raises ClientError: ``local.passphrase`` if the two answers differ or the answer is empty,
    ``local.passphrase_required`` with no terminal, no PEERFED_PASSPHRASE and no ``--no-passphrase``.
    """
    if getattr(args, "no_passphrase", False):
        return None
    if not os.environ.get("PEERFED_PASSPHRASE") and not sys.stdin.isatty():
        raise ClientError(
            "new keys are encrypted under a passphrase: set PEERFED_PASSPHRASE, run at a terminal, "
            "or pass --no-passphrase to keep them unencrypted",
            "local.passphrase_required",
        )
    passphrase = passphrase_for("choose a passphrase: ", confirm=True)
    if not passphrase:
        raise ClientError(
            "an empty passphrase protects nothing; to go without one, pass --no-passphrase", "local.passphrase"
        )
    return passphrase


def progress(args: argparse.Namespace, text: str) -> None:
    """A word on stderr while a person waits at a terminal; never under --json."""
    if not getattr(args, "json", False) and sys.stderr.isatty():
        print(visible(text), file=sys.stderr)


def warn(text: str) -> None:
    """A word on stderr that matters even under --json: the node is out of reach, drafts wait."""
    print(f"peerfed: {visible(text)}", file=sys.stderr, flush=True)


def run_verb(args: argparse.Namespace, verbs: Sequence[Verb]) -> int:
    """Run the verb ``args`` names and print its result or its error; the exit status."""
    verb = _entry(args, verbs)
    try:
        result, moved = asyncio.run(_run(verb, args))
    except KeyboardInterrupt:
        return 130
    except (PeerfedError, NodeUnreachable, OSError) as exc:
        code = getattr(
            exc, "code", "local.unreachable" if isinstance(exc, NodeUnreachable | OSError) else "local.error"
        )
        # A node's or a peer's words may be in the message: never raw on the terminal (spec §9.5).
        if getattr(args, "json", False):
            print(dumps({"error": {"code": visible(str(code)), "message": str(exc)}}), file=sys.stderr)
        else:
            print(f"error {visible(str(code))}: {visible(str(exc))}", file=sys.stderr)
        return 1
    if result is None:
        return 0
    if getattr(args, "json", False):
        print(dumps(result))
    else:
        assert verb.render is not None
        # Every string is made visible before the render lays it out: the render's own line
        # breaks are the only ones printed, so one message is one line.
        print(verb.render(args, visible_all(result)))
    # What the device holds was shown, but this device no longer receives: never a quiet success.
    return 1 if moved else 0


def _entry(args: argparse.Namespace, verbs: Sequence[Verb]) -> Verb:
    verb = next(v for v in verbs if v.name == args.command)
    if verb.actions:
        verb = next(a for a in verb.actions if a.name == args.action)
    return verb


async def _run(verb: Verb, args: argparse.Namespace) -> tuple[Any, bool]:
    """Run ``verb`` holding the home's lock (spec §9.5); ``read --follow`` takes it per unit of work.

    Returns what the verb returned, and whether the sync before it found that another device
    took this identity over (spec §13.4): a verb that only shows the device's history still runs.
    """
    home = default_home()
    lock = HomeLock.of(home)
    if getattr(args, "follow", False):
        return await _run_unlocked(verb, args, home, lock)
    await lock.acquire(lambda: progress(args, "waiting for another peerfed command on this home..."))
    try:
        return await _run_unlocked(verb, args, home, lock)
    finally:
        lock.release()


async def _run_unlocked(verb: Verb, args: argparse.Namespace, home: Path, lock: HomeLock) -> tuple[Any, bool]:
    assert verb.run is not None
    async with http_session() as http:
        call = Invocation(args, home, http)
        if verb.needs is Needs.HOME:
            return await verb.run(call), False
        call.passphrase = passphrase_for("passphrase: ") if await Peer.needs_passphrase(home) else None
        async with lock:
            call.loaded = await Peer.load(home, http, passphrase=call.passphrase, clock=device_clock())
            await call.loaded.forget_due()  # on every command that opens the device (spec §9.7)
        moved = False
        try:
            if verb.needs is Needs.SYNCED:
                async with lock:
                    moved = await _sync(call, verb)
            return await verb.run(call), moved
        finally:
            await call.peer.close()


# The verbs that only show what the device holds: after a move to another device they still do.
SHOWS_HISTORY = frozenset({"read", "connections", "agreement"})


async def _sync(call: Invocation, verb: Verb) -> bool:
    """Fetch the mailbox first; with the home node out of reach, go on from what the device holds (spec §9.5).

    True if another device took this identity over (spec §13.4): said on stderr, and a verb
    that only shows the device's history goes on; any other raises the MovedError (``auth.moved``).
    """
    try:
        report = await call.peer.sync()
    except MovedError as exc:
        if verb.name not in SHOWS_HISTORY or getattr(call.args, "follow", False):
            raise
        warn(f"auth.moved: {exc}")
        return True
    except UnavailableError as exc:
        synced = await call.peer.state.get("synced_at")
        when = "never" if synced is None else local_time(int(synced))
        warn(f"offline: {visible(str(exc))}; showing what this device holds (last synced: {when})")
        return False
    if report.received:
        progress(call.args, f"{report.received} new from your mailbox")
    if report.sent:
        progress(call.args, f"{report.sent} draft(s) delivered")
    if report.drafts:
        warn(f"{report.drafts} message(s) still kept as drafts; see: peerfed outbox list")
    if report.renewed:
        progress(call.args, "your encryption key was renewed and published")
    return False
