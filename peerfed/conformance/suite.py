"""The conformance cases' registry, runner and report (spec §13): one line per case, exit 0 only if every MUST passed.

A case is a small async function registered with ``@case``: its name, the spec rules it checks
(the numbered rule ids of spec/peerfed-v1.md, such as ``"R-13.4-3"``; a SHOULD case names its
section, such as ``"§13.2"``, since only MUSTs are numbered) and whether the rule is a MUST or a
SHOULD. spec/coverage.py maps every rule to the cases that name it. A case raises ``Failed`` with a
short reason when the node does not behave; a SHOULD case that fails is reported SKIP and does not
change the exit status.
"""

from __future__ import annotations

import argparse
import asyncio
import enum
import json
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .target import Target

__all__ = [
    "AREAS",
    "CASES",
    "Case",
    "Failed",
    "Level",
    "Outcome",
    "Result",
    "case",
    "load_cases",
    "main",
    "run_case",
    "run_suite",
]

CASE_TIMEOUT = 30.0  # seconds: a node that hangs fails the case, it does not hang the suite


class Level(enum.StrEnum):
    MUST = "MUST"
    SHOULD = "SHOULD"


class Outcome(enum.StrEnum):
    PASS = "PASS"
    FAIL = "FAIL"
    SKIP = "SKIP"  # a SHOULD the node does not follow


class Failed(Exception):
    """The node did not behave as the rule says; the message is the short reason shown."""


CaseBody = Callable[["Target"], Awaitable[None]]


@dataclass(frozen=True)
class Case:
    name: str
    rules: tuple[str, ...]
    level: Level
    body: CaseBody


@dataclass(frozen=True)
class Result:
    case: Case
    outcome: Outcome
    reason: str = ""

    def line(self) -> str:
        rules = ",".join(self.case.rules)
        tail = f" - {self.reason}" if self.reason else ""
        return f"{self.outcome.value:4} {self.case.level.value:6} {self.case.name} [{rules}]{tail}"

    def to_json(self) -> dict[str, object]:
        return {
            "case": self.case.name,
            "rules": list(self.case.rules),
            "level": self.case.level.value,
            "outcome": self.outcome.value,
            "reason": self.reason,
        }


CASES: list[Case] = []


def case(name: str, rules: Sequence[str], level: Level = Level.MUST) -> Callable[[CaseBody], CaseBody]:
    """Register ``body`` as a case; cases run in the order their modules register them."""

    def register(body: CaseBody) -> CaseBody:
        if any(c.name == name for c in CASES):
            raise ValueError(f"two conformance cases are named {name}")
        CASES.append(Case(name, tuple(rules), level, body))
        return body

    return register


@dataclass
class Report:
    url: str
    results: list[Result] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(r.outcome is not Outcome.FAIL for r in self.results)

    def summary(self) -> str:
        count = {o: sum(r.outcome is o for r in self.results) for o in Outcome}
        verdict = "conforms" if self.passed else "does NOT conform"
        return (
            f"{self.url}: {verdict}: {count[Outcome.PASS]} passed, {count[Outcome.FAIL]} failed, "
            f"{count[Outcome.SKIP]} SHOULD not followed, of {len(self.results)} cases"
        )

    def to_json(self) -> dict[str, object]:
        return {"url": self.url, "passed": self.passed, "results": [r.to_json() for r in self.results]}


async def run_case(target: Target, item: Case) -> Result:
    """Run one case; a failed MUST is FAIL, a failed SHOULD is SKIP. Never raises for the node's faults."""
    try:
        await asyncio.wait_for(item.body(target), CASE_TIMEOUT)
    except Failed as exc:
        outcome = Outcome.FAIL if item.level is Level.MUST else Outcome.SKIP
        return Result(item, outcome, str(exc))
    except TimeoutError:
        return Result(item, Outcome.FAIL if item.level is Level.MUST else Outcome.SKIP, "no answer in time")
    except Exception as exc:  # a node answering nonsense must fail the case, not crash the suite
        outcome = Outcome.FAIL if item.level is Level.MUST else Outcome.SKIP
        return Result(item, outcome, f"unexpected {type(exc).__name__}: {exc}")
    return Result(item, Outcome.PASS)


AREAS = ("document", "signin", "directory", "mailbox", "prekeys", "federation")  # the order the report reads in


def _area_order(item: Case) -> int:
    """Cases run area by area (CASES keeps each area's order), whatever order the modules were imported in."""
    area = item.body.__module__.rsplit(".cases_", 1)[-1]
    return AREAS.index(area) if area in AREAS else len(AREAS)


def load_cases() -> list[Case]:
    """Every case, area by area; importing the case modules is what registers them."""
    from . import (  # noqa: F401
        cases_directory,
        cases_document,
        cases_federation,
        cases_mailbox,
        cases_prekeys,
        cases_signin,
    )

    return sorted(CASES, key=_area_order)


async def run_suite(url: str, *, only: str | None = None, emit: Callable[[Result], None] | None = None) -> Report:
    """Run every case (or those whose name starts with ``only``) against the node at ``url``."""
    from .target import Target

    report = Report(url)
    async with Target(url) as target:
        for item in load_cases():
            if only and not item.name.startswith(only):
                continue
            result = await run_case(target, item)
            report.results.append(result)
            if emit is not None:
                emit(result)
    return report


def main(argv: Sequence[str] | None = None) -> int:
    """``peerfed conformance URL [--json] [--only PREFIX]``; 0 only when every MUST case passed."""
    parser = argparse.ArgumentParser(prog="peerfed conformance", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("url", help="the node under test, e.g. http://127.0.0.1:8740 (its URL exactly as it signs it)")
    parser.add_argument("--json", action="store_true", help="print one JSON report instead of lines")
    parser.add_argument("--only", metavar="PREFIX", help="run only the cases whose name starts with PREFIX")


def run(args: argparse.Namespace) -> int:
    url = str(args.url).rstrip("/")

    def emit(result: Result) -> None:
        if not args.json:
            print(result.line(), flush=True)

    report = asyncio.run(run_suite(url, only=args.only, emit=emit))
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        print(report.summary())
    return 0 if report.passed else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
