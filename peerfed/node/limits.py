"""Rate limits per key and per address, in bounded memory (spec §13.8).

A fixed window counter per (scope, subject). The table holds at most ``max_entries``
subjects; the least recently used are forgotten first, so a flood of addresses cannot grow it.
"""

from __future__ import annotations

from collections import OrderedDict

from peerfed.protocol import RequestError

__all__ = ["RateLimiter"]


class RateLimiter:
    def __init__(self, max_entries: int = 50_000) -> None:
        self._windows: OrderedDict[tuple[str, str], tuple[float, int]] = OrderedDict()
        self._max = max_entries

    def hit(self, scope: str, subject: str, *, limit: int, window: float, now: float) -> None:
        """Count one use; raise RequestError (rate.limited) past ``limit`` uses per ``window``."""
        if limit <= 0:
            return
        key = (scope, subject)
        start, count = self._windows.pop(key, (now, 0))
        if now - start >= window:
            start, count = now, 0
        count += 1
        self._windows[key] = (start, count)
        while len(self._windows) > self._max:
            self._windows.popitem(last=False)
        if count > limit:
            retry = max(1, int(start + window - now))
            raise RequestError(f"too many {scope} requests; try again in {retry} s", "rate.limited")

    def clear(self) -> None:
        """Forget every count (an operator's or a test's fresh start)."""
        self._windows.clear()

    def __len__(self) -> int:
        return len(self._windows)
