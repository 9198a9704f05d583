"""`peerfed conformance URL` against our node, and against mutants of it that each drop one check.

The suite runs as a subprocess, exactly as an implementer runs it. Against a `peerfed serve`
process every MUST case passes and it exits 0. Against an in-process node with one check
switched off (monkeypatched: a signature check, a spent challenge, the replay window, the time
window, the page-size range, the first-contact proof of work, live sockets per address, the items
per source and mailbox, undoing a move, one device at a time), it exits non-zero and its output names the failed case's
rule ids.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from peerfed.conformance.suite import AREAS, Case, Failed, Level, load_cases, run_case
from peerfed.node import contact
from peerfed.node.api import client as client_api
from peerfed.node.api import live as live_api
from peerfed.node.federation import verify
from peerfed.node.limits import RateLimiter
from peerfed.node.sessions import Sessions
from peerfed.node.store.members import MembersMixin
from peerfed.node.store.nodes import NodesMixin
from peerfed.node.store.rows import MemberStatus
from peerfed.protocol import Context, sign_in
from peerfed.protocol.envelope import decode_verified
from tests.node.harness import Clock, TestNode
from tests.processes import NodeProcesses

SUITE_TIMEOUT = 240  # seconds: a bound on one run of the suite, not a timing assertion


async def run_suite(url: str, *args: str) -> tuple[int, str]:
    """`peerfed conformance URL ARGS` in a subprocess; its exit status and stdout."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "peerfed", "conformance", url, *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), SUITE_TIMEOUT)
    assert proc.returncode is not None
    return proc.returncode, out.decode()


def test_our_node_passes_every_must_case(tmp_path: Path, node_processes: NodeProcesses) -> None:
    async def scenario() -> None:
        node = node_processes(tmp_path / "node")
        await node.start()
        status, out = await run_suite(node.url, "--json")
        report = json.loads(out)
        failed = [r for r in report["results"] if r["outcome"] != "PASS"]
        assert (status, failed) == (0, []), out
        assert report["passed"] is True and report["url"] == node.url
        assert {r["case"] for r in report["results"]} == {c.name for c in load_cases()}
        assert node.stop() == 0

    asyncio.run(scenario())


def test_every_case_names_its_rules_and_belongs_to_an_area() -> None:
    cases = load_cases()
    assert len(cases) >= 50
    for item in cases:
        assert item.rules, item.name
        if item.level is Level.MUST:  # a MUST case names numbered rules only (spec/coverage.py checks they exist)
            assert all(re.fullmatch(r"R-\d+(\.\d+)?-\d+", rule) for rule in item.rules), item.name
        else:  # only MUSTs are numbered: a SHOULD case names its section
            assert all(rule.startswith("§") for rule in item.rules), item.name
        assert item.body.__module__.rsplit(".cases_", 1)[-1] in AREAS, item.name


def test_a_failed_should_is_reported_skip_and_a_failed_must_fail() -> None:
    async def refuse(_: Any) -> None:
        raise Failed("the node said no")

    async def crash(_: Any) -> None:
        raise KeyError("status")

    async def judge() -> list[str]:
        target: Any = None  # the bodies above never touch it
        cases = [
            Case("x.should", ("§13.2",), Level.SHOULD, refuse),
            Case("x.must", ("R-13.4-3", "R-5.5-1"), Level.MUST, refuse),
            Case("x.nonsense", ("R-13.5-9",), Level.MUST, crash),  # a node's odd answer fails, never crashes the run
        ]
        return [(await run_case(target, item)).line() for item in cases]

    assert asyncio.run(judge()) == [
        "SKIP SHOULD x.should [§13.2] - the node said no",
        "FAIL MUST   x.must [R-13.4-3,R-5.5-1] - the node said no",
        "FAIL MUST   x.nonsense [R-13.5-9] - unexpected KeyError: 'status'",
    ]


def _skip_signature_check(data: bytes, *, context: Context, now: int, **_: Any) -> Any:
    return decode_verified(data, context=context)  # the mutant: decodes, never verifies


async def _always(*_: Any) -> bool:
    return True


def _int_query_without_range(request: Any, name: str, default: int | None, bounds: Any = None) -> int | None:
    value = request.query.get(name)
    return default if value in (None, "") else int(value)


def _address_from_any_forwarding_header(request: Any) -> str:
    return str(request.headers.get("X-Forwarded-For", request.remote))  # the mutant: believes any client


_hit = RateLimiter.hit


async def _no_count_per_source(self: RateLimiter, scope: str, subject: str, **limits: Any) -> None:
    if scope != "mailbox-items":  # the mutant: every other limit still counts
        await _hit(self, scope, subject, **limits)


_set_member = MembersMixin.set_member


async def _moves_stay(self: MembersMixin, peer: bytes, status: str, now: int, moved_to: str | None = None) -> None:
    current = await self.member(peer)
    if status == "member" and current is not None and current.status == MemberStatus.MOVED:
        return  # the mutant: signing in again never undoes a move
    await _set_member(self, peer, status, now, moved_to)


async def _any_device(*_: Any) -> None:
    return None  # the mutant: every device signs in, none is superseded


Mutant = Callable[[pytest.MonkeyPatch], None]

MUTANTS: dict[str, tuple[Mutant, str, str, str]] = {
    # name: (switch one check off, --only prefix, the case that must fail, its rule tags)
    "sign-in signature": (
        lambda mp: mp.setattr(sign_in, "open_signed", _skip_signature_check),
        "signin",
        "signin.bad_signature",
        "[R-13.4-3,R-5.5-1]",
    ),
    "spent challenge": (
        lambda mp: mp.setattr(MembersMixin, "take_challenge", _always),
        "signin",
        "signin.replayed_challenge",
        "[R-13.4-3]",
    ),
    "directory page range": (
        lambda mp: mp.setattr(client_api, "int_query", _int_query_without_range),
        "directory",
        "directory.limit_range",
        "[R-13.1-7]",
    ),
    "node-request replay": (
        lambda mp: mp.setattr(NodesMixin, "use_nonce", _always),
        "federation",
        "federation.replay",
        "[R-13.3-1]",
    ),
    "first-contact proof of work": (
        lambda mp: mp.setattr(contact, "check_work", lambda *_: None),
        "mailbox",
        "mailbox.first_contact_work",
        "[R-13.5-13]",
    ),
    "live sockets per address, by a forwarding header": (
        lambda mp: mp.setattr(live_api, "address", _address_from_any_forwarding_header),
        "live.per_address",
        "live.per_address",
        "[R-13.5-21,R-13.8-1]",
    ),
    "mailbox items per source": (
        lambda mp: mp.setattr(RateLimiter, "hit", _no_count_per_source),
        "mailbox.sender_quota",
        "mailbox.sender_quota",
        "[R-13.5-12]",
    ),
    "one device at a time": (
        lambda mp: mp.setattr(Sessions, "_one_device", _any_device),
        "signin.other_device",
        "signin.other_device",
        "[R-13.4-8,R-13.4-9]",
    ),
    "undoing a move": (
        lambda mp: mp.setattr(MembersMixin, "set_member", _moves_stay),
        "move.",
        "move.undo",
        "[R-13.5-23]",
    ),
    "node-request time window": (
        lambda mp: mp.setattr(verify, "CLOCK_SKEW", 10**6),
        "federation",
        "federation.time_window",
        "[R-13.3-1]",
    ),
}


@pytest.mark.parametrize("mutant", sorted(MUTANTS))
def test_a_node_with_one_check_off_fails_naming_the_rule(
    mutant: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    switch_off, area, case_name, rules = MUTANTS[mutant]
    switch_off(monkeypatch)

    async def scenario() -> None:
        node = await TestNode(tmp_path / "n", Clock()).start()
        try:
            status, out = await run_suite(node.url, "--only", area)
        finally:
            await node.stop()
        assert status == 1, out
        failed = [line for line in out.splitlines() if line.startswith("FAIL")]
        assert any(f" {case_name} {rules}" in line for line in failed), out
        assert "does NOT conform" in out.splitlines()[-1]

    asyncio.run(scenario())
