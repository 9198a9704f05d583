"""Showing text from outside on a terminal: nothing raw, one line per item (spec §9.5).

Peer names, hellos, messages, listing text, report reasons and a node's error messages are
written by someone else. Printed raw, they could move the cursor (ESC, CSI), rewrite the line
(CR), start a line that looks like ours (LF then ``[me] ...``), reverse what follows (U+202E) or
hide characters (U+200B). ``visible`` shows every such character as a ``\\uXXXX`` escape: the
categories Cc (controls, C0 and C1, DEL), Cf (format: bidirectional marks and overrides,
zero-width characters, tags), Zl, Zp (line and paragraph separators) and Cs (lone surrogates).
Everything else is shown as written, so names and messages in any script read as they should.
``dumps`` does the same inside a JSON document, where such an escape is the JSON spelling of
the same character: a program reading ``--json`` gets the text unchanged.
"""

from __future__ import annotations

import json
import time
import unicodedata
from typing import Any

__all__ = ["HIDDEN_CATEGORIES", "dumps", "local_time", "visible", "visible_all"]

HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})


def _escape(char: str) -> str:
    point = ord(char)
    if point <= 0xFFFF:
        return f"\\u{point:04x}"
    # JSON has no escape above U+FFFF: spell it as its UTF-16 pair, which reads back as the character.
    point -= 0x10000
    return f"\\u{0xD800 + (point >> 10):04x}\\u{0xDC00 + (point & 0x3FF):04x}"


def _hidden(char: str) -> bool:
    return unicodedata.category(char) in HIDDEN_CATEGORIES


def visible(text: str) -> str:
    """``text`` with every control, format and separator character shown as an escape."""
    if text.isprintable():  # the common case: nothing to do (isprintable is False for all of them)
        return text
    return "".join(_escape(c) if _hidden(c) else c for c in text)


def visible_all(value: Any) -> Any:
    """``value`` (a JSON-like document) with ``visible`` applied to every string in it, keys included."""
    if isinstance(value, str):
        return visible(value)
    if isinstance(value, dict):
        return {visible_all(k): visible_all(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [visible_all(v) for v in value]
    return value


def dumps(value: Any) -> str:
    """``value`` as one line of JSON, with no control, format or separator character in it raw."""
    text = json.dumps(value, ensure_ascii=False)
    if text.isprintable():
        return text
    # Outside strings JSON holds only printable ASCII, so every hidden character is inside a string,
    # where its \\u escape means the same character.
    return "".join(_escape(c) if _hidden(c) else c for c in text)


def local_time(at: int) -> str:
    """A Unix time as this device's local date and time, to the minute."""
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(at))
