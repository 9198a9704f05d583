"""Showing text from outside on a terminal: nothing raw, one line per item (spec §9.5).

The escaping itself is the protocol core's (``peerfed.protocol.visible``), shared with the node's
admin output and log, so both sides show a string alike; this module adds the device's local time.
``visible`` shows every control, bidirectional, zero-width and separator character (Unicode Cc,
Cf, Zl, Zp, Cs) as a ``\\uXXXX`` escape; ``dumps`` does the same inside one line of JSON, where
such an escape is JSON's own spelling of the character, so a program reading ``--json`` gets the
text unchanged.
"""

from __future__ import annotations

import time

from peerfed.protocol.visible import HIDDEN_CATEGORIES, dumps, visible, visible_all

__all__ = ["HIDDEN_CATEGORIES", "dumps", "local_time", "visible", "visible_all"]


def local_time(at: int) -> str:
    """A Unix time as this device's local date and time, to the minute."""
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(at))
