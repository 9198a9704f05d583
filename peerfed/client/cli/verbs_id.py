"""``peerfed id``: a new identity, showing it, backup and restore, moving (spec §4, §13.4, §13.5).

A new identity is a key pair made here and a first sign-in to the home node (spec §13.4); a
backup is everything on this device, always sealed under a passphrase; moving keeps the
identity and its connections and changes the home node (spec §13.5).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from ..peer import Peer
from ..state import ClientError
from .registry import NO_PASSPHRASE_HELP, Invocation, Needs, Verb, new_passphrase, passphrase_for

__all__ = ["VERBS"]


def _new_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--node", required=True, help="your home node's URL")
    parser.add_argument("--name", help="a pseudonym others see (optional)")
    parser.add_argument("--invite", help="an invite code, if the node asks for one")
    choice = parser.add_mutually_exclusive_group()
    # Encryption is the default; the flag stays so older scripts that pass it still run.
    choice.add_argument(
        "--passphrase",
        action="store_true",
        help="encrypt your keys and history (the default: asks, or PEERFED_PASSPHRASE)",
    )
    choice.add_argument("--no-passphrase", action="store_true", help=NO_PASSPHRASE_HELP)


async def _new(call: Invocation) -> dict[str, Any]:
    args = call.args
    # Asked before anything is written or sent: a refusal leaves no keys behind (R-9.6-1).
    passphrase = new_passphrase(args)
    peer = await Peer.create(
        call.home, call.http, node=args.node, name=args.name, invite=args.invite, passphrase=passphrase
    )
    try:
        return {**await peer.show(), "home": str(call.home)}
    finally:
        await peer.close()


async def _show(call: Invocation) -> dict[str, Any]:
    return {**await call.peer.show(), "home": str(call.peer.state.home)}


async def _status(call: Invocation) -> dict[str, Any]:
    """Where this peer stands with its node, asking it again if approval was pending (spec §13.4)."""
    await call.peer.account.standing(ask=True)
    return {**await call.peer.show(), "home": str(call.peer.state.home)}


async def _take_over(call: Invocation) -> dict[str, Any]:
    """Move the identity (back) to this device: the node delivers here, and not to the other (spec §13.4)."""
    behind = await call.peer.account.take_over()
    where = "already this one" if behind is None else "this one"
    return {**await call.peer.show(), "home": str(call.peer.state.home), "device": where, "behind": behind or 0}


def _passphrase_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-passphrase", action="store_true", help=NO_PASSPHRASE_HELP)


async def _passphrase(call: Invocation) -> dict[str, Any]:
    """Lock the keys under a new passphrase, or none if the person says so (spec §9.6, R-9.6-1).

    The current one unlocks them as for any command (PEERFED_PASSPHRASE, or asked); the new one is
    PEERFED_NEW_PASSPHRASE, or asked twice at a terminal. Raises ClientError (``local.passphrase``,
    ``local.passphrase_required``).
    """
    if call.args.no_passphrase:
        new = None
    else:
        new = os.environ.get("PEERFED_NEW_PASSPHRASE")
        if new is None and not sys.stdin.isatty():
            raise ClientError(
                "set PEERFED_NEW_PASSPHRASE, run at a terminal, or pass --no-passphrase", "local.passphrase_required"
            )
        new = new if new is not None else passphrase_for("the new passphrase: ", confirm=True)
        if not new:
            raise ClientError(
                "an empty passphrase protects nothing; to go without one, pass --no-passphrase", "local.passphrase"
            )
    await call.peer.account.set_passphrase(new)
    return {**await call.peer.show(), "home": str(call.peer.state.home)}


def _file_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path)


async def _export(call: Invocation) -> dict[str, Any]:
    """Everything this device holds, encrypted under a passphrase, in one file (mode 0600)."""
    secret = call.passphrase or passphrase_for("a passphrase for the backup: ", confirm=True)
    if not secret:
        raise ClientError(
            "a backup is always encrypted: set PEERFED_PASSPHRASE or run at a terminal", "local.passphrase"
        )
    return await call.peer.export_backup(call.args.file, secret)


async def _import(call: Invocation) -> dict[str, Any]:
    home = call.home
    if (home / "peer.sqlite3").exists():
        raise ClientError(f"{home} already holds an identity; import into an empty PEERFED_HOME", "local.exists")
    blob = call.args.file.read_bytes()
    peer = await Peer.restore(home, call.http, blob, passphrase_for("the backup's passphrase: "))
    try:
        return {**await peer.show(), "home": str(home)}
    finally:
        await peer.close()


def _move_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--node", required=True)
    parser.add_argument("--invite")


async def _move(call: Invocation) -> dict[str, Any]:
    return await call.peer.move(call.args.node, call.args.invite)


_UNENCRYPTED = "NOT encrypted (no passphrase): anyone who can read this folder can act as you and read what you wrote"


def render(args: argparse.Namespace, r: dict[str, Any]) -> str:
    if "file" in r:
        return f"backup written to {r['file']} ({r['connections']} connections)"
    lines = [f"peer id:  {r['peer']}", f"node:     {r['node']}"]
    if r.get("standing") == "pending":
        lines.append("joining:  waiting for the node's operator to approve you; run `peerfed id status` later")
    if r.get("name"):
        lines.append(f"name:     {r['name']}")
    if "encrypted" in r:
        lines.append("key:      " + ("encrypted with your passphrase" if r["encrypted"] else _UNENCRYPTED))
    if r.get("home"):
        lines.append(f"stored in {r['home']}")
    if r.get("device") == "already this one":
        lines.append("your mail already comes to this device; nothing changed")
    elif r.get("device"):
        lines.append("your mail now comes to this device; any other device you used no longer receives")
        lines.append("what reached the other device meanwhile stays there")
    if r.get("behind"):
        lines.append(
            f"{r['behind']} conversation(s) may have moved on there: your next message in each goes"
            " without forward secrecy, and so does the rest of that conversation"
        )
    return "\n".join(lines)


VERBS = (
    Verb(
        "id",
        "your identity: new, show, export, import, move, passphrase, take-over",
        actions=(
            Verb("new", "make a key pair and join a node", _new, render, _new_arguments, Needs.HOME, json_last=True),
            Verb("show", "show your peer id and node", _show, render, json_last=True),
            Verb("status", "ask your node whether you are a member yet", _status, render, json_last=True),
            Verb("export", "write an encrypted backup", _export, render, _file_argument, json_last=True),
            Verb(
                "import",
                "restore a backup into an empty PEERFED_HOME",
                _import,
                render,
                _file_argument,
                Needs.HOME,
                json_last=True,
            ),
            Verb("move", "move to another node", _move, render, _move_arguments, json_last=True),
            Verb(
                "passphrase",
                "encrypt your keys under a new passphrase (PEERFED_NEW_PASSPHRASE, or asked)",
                _passphrase,
                render,
                _passphrase_arguments,
                json_last=True,
            ),
            Verb(
                "take-over",
                "make this device the one your mail goes to (after an import elsewhere)",
                _take_over,
                render,
                json_last=True,
            ),
        ),
    ),
)
