"""The operator's tools feel finished (issue 16 item 6): ids by unique prefix, names, readable times.

Before: `members approve` and `invites revoke` needed a full peer id or the invite code itself
(which `invites list` never shows, so a listed invite could not be revoked), members were listed
without names, and times were raw numbers. Each case runs the real `peerfed admin` process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from peerfed.node.admin import add_admin_parser
from peerfed.protocol import RemoteError

from .harness import Clock, Peer, TestNode


def admin(data: Path, *args: str, json_out: bool = True) -> subprocess.CompletedProcess[str]:
    flags = ("--json",) if json_out else ()
    return subprocess.run(
        [sys.executable, "-m", "peerfed", "admin", "--data", str(data), *flags, *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_members_by_prefix_with_names_and_invites_revoked_by_their_listed_id(tmp_path: Path) -> None:
    data = tmp_path / "n"
    invite = json.loads(admin_ready(data, "invites", "create", "--uses", "1").stdout)["code"]
    listed = json.loads(admin(data, "invites", "list").stdout)
    spare = json.loads(admin(data, "invites", "create", "--uses", "3").stdout)["code"]

    async def scenario() -> tuple[str, str]:
        node = await TestNode(data, Clock(), registration="approval").start()
        try:
            async with aiohttp.ClientSession() as http:
                ana = await Peer("Ana", node, http, 1).join(invite=invite)  # an invite admits at once
                ben = Peer("Ben", node, http, 2)
                with pytest.raises(RemoteError) as info:
                    await ben.join()
                assert info.value.code == "auth.pending"
                return ana.id.text, ben.id.text
        finally:
            await node.stop()

    ana_id, ben_id = asyncio.run(scenario())
    members = {m["peer"]: m for m in json.loads(admin(data, "members", "list").stdout)}
    assert (members[ana_id]["name"], members[ana_id]["status"]) == ("Ana", "member")
    assert (members[ben_id]["name"], members[ben_id]["status"]) == (None, "pending")
    # Text output shows times as readable UTC times; JSON keeps the numbers.
    text = admin(data, "members", "list", json_out=False).stdout
    assert re.search(r"joined_at=\d{4}-\d\d-\d\d \d\d:\d\d UTC", text), text
    assert isinstance(members[ana_id]["joined_at"], int)

    # Approve by the start of the pending id, as `members list --pending` shows it.
    approved = admin(data, "members", "approve", ben_id[:12])
    assert approved.returncode == 0, approved.stderr
    assert {m["peer"]: m["status"] for m in json.loads(admin(data, "members", "list").stdout)}[ben_id] == "member"
    # Too short or matching nothing pending: a clear error, nothing approved.
    refused = admin(data, "members", "approve", "pf1")
    assert refused.returncode == 2 and json.loads(refused.stderr)["error"]["code"] == "local.invalid"

    # Revoke by the id `invites list` shows; the spare invite stays usable.
    shown = [i["invite"] for i in json.loads(admin(data, "invites", "list").stdout)]
    spare_id = next(i for i in shown if i != listed[0]["invite"])
    assert admin(data, "invites", "revoke", spare_id).returncode == 0
    after = {i["invite"]: i["revoked"] for i in json.loads(admin(data, "invites", "list").stdout)}
    assert after == {listed[0]["invite"]: False, spare_id: True}
    missing = admin(data, "invites", "revoke", "ffffffffffff")
    assert missing.returncode == 1 and json.loads(missing.stderr)["error"]["code"] == "local.not_found"
    assert spare  # the code itself was never needed to revoke it


def admin_ready(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The first admin command, once the node has made its database."""

    async def make() -> None:
        node = await TestNode(data, Clock(), registration="approval").start()
        await node.stop()

    asyncio.run(make())
    out = admin(data, *args)
    assert out.returncode == 0, out.stderr
    return out


def test_every_admin_command_and_option_says_what_it_does() -> None:
    # Walk the real parser the command line uses: a command or option with no help text is one an
    # operator has to read the source to understand.
    root = argparse.ArgumentParser()
    add_admin_parser(root.add_subparsers())
    missing: list[str] = []

    def walk(parser: argparse.ArgumentParser, path: str) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                described = {choice.dest for choice in action._choices_actions if choice.help}
                for name, child in action.choices.items():
                    if name not in described:
                        missing.append(f"{path} {name}")
                    walk(child, f"{path} {name}")
            elif not isinstance(action, argparse._HelpAction) and not action.help:
                missing.append(f"{path} {'/'.join(action.option_strings) or action.dest}")

    walk(root, "peerfed")
    assert missing == []
    # The walk does reach the commands (so an empty list is not an empty walk).
    text = subprocess.run(
        [sys.executable, "-m", "peerfed", "admin", "invites", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "stop an invite code working" in text
