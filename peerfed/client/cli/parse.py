"""What people type and read: days, time windows, durations and dates (spec §5.3, §6.2, §8.3).

Listings carry availability windows (spec §6.2) as a day mask and minutes; terms carry an
``until`` time (spec §8.3); every time is Unix seconds (spec §5.3). People write
``mon-fri 18:00-21:00``, ``14d`` or ``2027-02-01`` instead, and read times in UTC.
"""

from __future__ import annotations

import datetime as dt
import re

from peerfed.protocol import Window

from ..device import DAY
from ..errors import ClientError

__all__ = ["parse_date", "parse_days", "parse_duration", "parse_span", "parse_window", "when"]

_DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def parse_days(text: str) -> int:
    """'mon-fri', 'sat,sun', 'weekdays', 'daily' -> a day mask (Monday is bit 0); raises ValueError."""
    text = text.lower()
    if text in ("daily", "every", "all"):
        return 127
    if text == "weekdays":
        return 0b0011111
    if text == "weekends":
        return 0b1100000
    mask = 0
    for part in text.split(","):
        if "-" in part:
            start, end = part.split("-", 1)
            i, j = _DAYS.index(start[:3]), _DAYS.index(end[:3])
            for k in range(i, j + 1) if i <= j else [*range(i, 7), *range(0, j + 1)]:
                mask |= 1 << k
        else:
            mask |= 1 << _DAYS.index(part[:3])
    return mask


def parse_window(text: str) -> Window:
    """'mon-fri 18:00-21:00', 'sat,sun 10:00-12:00', 'daily 20:00-24:00'; raises ClientError (``local.usage``)."""
    match = re.fullmatch(r"\s*(\S+)\s+(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*", text)
    if not match:
        raise ClientError(f"--when {text!r}: write it like 'mon-fri 18:00-21:00'", "local.usage")
    try:
        days = parse_days(match.group(1))
    except ValueError as exc:
        raise ClientError(f"--when {text!r}: days are mon..sun, weekdays, weekends or daily", "local.usage") from exc
    start = int(match.group(2)) * 60 + int(match.group(3))
    end = int(match.group(4)) * 60 + int(match.group(5))
    return Window(days, start, end)


def parse_duration(text: str, now: int) -> int:
    """'14d', '48h', '90m' or a date (YYYY-MM-DD, end of that day UTC) -> seconds from now."""
    match = re.fullmatch(r"(\d+)\s*([dhm])", text.strip().lower())
    if match:
        return int(match.group(1)) * {"d": DAY, "h": 3600, "m": 60}[match.group(2)]
    return parse_date(text) - now


def parse_span(text: str, option: str) -> int:
    """'30d', '12h', '90m' -> seconds; raises ClientError (``local.usage``) naming ``option``."""
    match = re.fullmatch(r"(\d{1,6})\s*([dhm])", text.strip().lower())
    if not match:
        raise ClientError(f"{option} {text!r}: write it like 30d, 12h or 90m", "local.usage")
    return int(match.group(1)) * {"d": DAY, "h": 3600, "m": 60}[match.group(2)]


def parse_date(text: str) -> int:
    """'2027-02-01' -> the last second of that day, UTC; raises ClientError (``local.usage``)."""
    try:
        day = dt.date.fromisoformat(text.strip())
    except ValueError as exc:
        raise ClientError(f"{text!r} is not a date like 2027-02-01", "local.usage") from exc
    return int(dt.datetime(day.year, day.month, day.day, 23, 59, 59, tzinfo=dt.UTC).timestamp())


def when(ts: int | None) -> str:
    """A Unix time as people read it, in UTC; '-' for none."""
    if not ts:
        return "-"
    return dt.datetime.fromtimestamp(ts, tz=dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
