"""Taking the identity over from another device: numbering past it, stale sessions let go (spec §9.5, §14.6).

A device that takes the identity over (``id import``, ``id take-over``) may hold conversations the
other device moved on meanwhile, and cannot tell how far. It numbers its messages from a floor
the other device, which took over earlier, could not have reached (R-9.5-5); and when no backup
came with the take-over, its scheme-2 sessions may be behind the other device's: they still open
what they can, and the next message of each connection goes with scheme 1, which tells the
other peer (R-9.5-6, R-14.5-2).
"""

from __future__ import annotations

from . import sessions
from .device import Device

__all__ = ["FLOOR_EPOCH", "floor", "took_over"]

FLOOR_EPOCH = 1_700_000_000  # seconds; the floor is the take-over's Unix time less this (R-9.5-5)
_FLOOR = "seq floor"  # meta key


async def took_over(device: Device, *, backup: bool) -> None:
    """Record a take-over that just succeeded: the new floor, and, without a backup taken in in the
    same step, every session marked as possibly behind (its connection's next message goes with
    scheme 1), and scheme-2 drafts sealed from them to be sealed again."""
    await device.state.set(_FLOOR, max(await floor(device), device.now() - FLOOR_EPOCH))
    if not backup:
        await sessions.mark_stale(device)


async def floor(device: Device) -> int:
    """The lowest ``seq`` this device may give its next message on any connection (0: none)."""
    value = await device.state.get(_FLOOR)
    return value if isinstance(value, int) else 0
