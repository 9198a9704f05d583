"""Federation retry policy as pure functions over a persisted queue (spec §13.7).

Nothing here sleeps or reads a clock: the outbox worker passes ``now`` and a jitter draw.
"""

from __future__ import annotations

__all__ = ["breaker_until", "gives_up", "next_attempt", "schedule"]


def next_attempt(failures: int, now: float, *, base: float, cap: float, jitter: float) -> float:
    """When to try again after ``failures`` failed attempts (1 after the first failure).

    The delay doubles from ``base`` up to ``cap``, then grows by up to 25% of jitter (``jitter``
    is a draw in [0, 1)), so many nodes retrying one peer do not arrive together.
    """
    if failures < 1:
        raise ValueError("failures counts from 1")
    delay = min(cap, base * 2.0 ** min(failures - 1, 62))
    return float(now + delay * (1 + 0.25 * jitter))


def gives_up(created_at: float, now: float, bound: float) -> bool:
    """True once an item has waited longer than ``bound`` seconds since it was queued."""
    return now - created_at >= bound


def breaker_until(failures: int, now: float, *, threshold: int, base: float = 60.0, cap: float = 3600.0) -> float:
    """The per-destination circuit breaker: after ``threshold`` consecutive failures the
    destination is left alone until the returned time (doubling from ``base`` to ``cap``);
    0 means closed. When it reopens, one batch probes it (half-open)."""
    if failures < threshold:
        return 0.0
    return float(now + min(cap, base * 2.0 ** min(failures - threshold, 62)))


def schedule(base: float, cap: float, bound: float) -> list[float]:
    """The retry times (seconds after queueing, no jitter) until giving up, for the docs."""
    times: list[float] = []
    elapsed, failures = 0.0, 1
    while True:
        elapsed = next_attempt(failures, elapsed, base=base, cap=cap, jitter=0.0)
        if elapsed >= bound:
            return times
        times.append(elapsed)
        failures += 1
