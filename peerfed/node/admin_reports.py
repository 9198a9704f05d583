"""The operator's `peerfed admin reports`: list, show the disclosed messages checked, resolve (spec §13.5).

A report is named by its id, or by the start of it when only one report's id starts so. ``show``
prints the report and each disclosed message decoded (author, signed time, type, text) with
which of its checks hold (``disclosure.read_disclosure``); ``resolve`` records the outcome the
reporter then reads with ``peerfed reports``.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from typing import Any

from peerfed.protocol import PeerId

from .disclosure import read_disclosure
from .store import Report, ReportStatus, ReportTarget, Store

__all__ = ["one_match", "render_show", "reports_command"]


def one_match(found: list[Any], what: str, given: str) -> Any:
    """The one match of ``given``; ValueError (``local.invalid``) for none or several."""
    if not found:
        raise ValueError(f"no {what} matches {given!r}")
    if len(found) > 1:
        raise ValueError(f"{len(found)} {what}s start with {given!r}; give more of it")
    return found[0]


async def find_report(store: Store, given: str) -> Report:
    """The report whose id is ``given``, or the only one whose id starts with it; ValueError otherwise."""
    given = given.strip()
    rows = await store.reports()
    exact = [r for r in rows if str(r.id) == given]
    found: Report = one_match(exact or [r for r in rows if str(r.id).startswith(given)], "report", given)
    return found


def _target(r: Report) -> str | None:
    if r.target is None:
        return None
    return PeerId(r.target).text if r.target_kind == ReportTarget.PEER else r.target.hex()


async def _target_author(store: Store, r: Report) -> bytes | None:
    """The key the disclosed messages should come from: the peer reported, or the listing's author."""
    if r.target is None:
        return None
    if r.target_kind == ReportTarget.PEER:
        return r.target
    held = await store.listing(r.target)
    return None if held is None else held.author


async def reports_command(args: argparse.Namespace, store: Store, now: int) -> Any:
    """Run ``reports list|show|resolve``; raises ValueError for an id that names no single report."""
    if args.action == "list":
        rows = await store.reports(status=None if args.all else ReportStatus.OPEN)
        return [
            {
                "id": r.id,
                "about": r.target_kind,
                "target": _target(r),
                "reason": r.reason,
                "disclosed": len(read_disclosure(r.disclosed, reporter=r.reporter, target=None)),
                "status": r.status,
                "outcome": r.outcome,
            }
            for r in rows
        ]
    report = await find_report(store, args.report)
    if args.action == "resolve":
        ok = await store.resolve_report(report.id, args.outcome, now)
        return {
            "ok": ok,
            "message": f"report {report.id} resolved; the reporter will see the outcome"
            if ok
            else f"report {report.id} is already resolved",
        }
    disclosed = read_disclosure(report.disclosed, reporter=report.reporter, target=await _target_author(store, report))
    return {
        "id": report.id,
        "reporter": PeerId(report.reporter).text,
        "about": report.target_kind,
        "target": _target(report),
        "reason": report.reason,
        "created_at": report.created_at,
        "status": report.status,
        "outcome": report.outcome,
        "disclosed": [dataclasses.asdict(d) for d in disclosed],
    }


def _when(at: int | None) -> str:
    return "?" if at is None else time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(at))


def _holds(value: bool | None) -> str:
    return "unknown" if value is None else "yes" if value else "NO"


def render_show(r: dict[str, Any]) -> str:
    """``reports show`` in words: the report, then one line per disclosed message with its checks.

    Every string in ``r`` must already be made visible (one line each): this only lays it out.
    """
    lines = [
        f"report {r['id']} ({r['status']}) about {r['about']} {r['target'] or '(erased)'}",
        f"reporter: {r['reporter']}",
        f"filed: {_when(r['created_at'])}",
        f"reason: {r['reason']}",
    ]
    if r["outcome"] is not None:
        lines.append(f"outcome: {r['outcome']}")
    lines.append(f"disclosed messages: {len(r['disclosed'])}")
    for n, d in enumerate(r["disclosed"], 1):
        if d["verified"]:
            checks = (
                f"signature verified; from the target: {_holds(d['from_target'])}; "
                f"to the reporter: {_holds(d['to_reporter'])}; one conversation: {_holds(d['one_conversation'])}"
            )
        else:
            checks = f"signature NOT verified ({d['error']}); nothing below is proved"
        said = f"{d['author']} at {_when(d['signed_at'])}, {d['type']}: {d['text']}"
        if d["type"] is None:
            said = "(unreadable)"
        lines.append(f"  {n}. [{checks}] {said}")
    return "\n".join(lines)
