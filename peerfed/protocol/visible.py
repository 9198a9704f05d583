"""Showing a string from outside: control, bidirectional and zero-width characters made visible (spec §9.5, §6.1).

Peer names, hellos, messages, listing text, report reasons and another node's error messages
are written by someone else. Printed raw on a terminal or in a log, they could move the cursor
(ESC, CSI), rewrite the line (CR), start a line that looks like ours (LF then ``[me] ...``),
reverse what follows (U+202E) or hide characters (U+200B). ``visible`` shows every such
character as a ``\\uXXXX`` escape: the categories Cc (controls, C0 and C1, DEL), Cf (format:
bidirectional marks and overrides, zero-width characters, tags), Zl, Zp (line and paragraph
separators) and Cs (lone surrogates). Everything else is shown as written, so text in any
script reads as it should. ``dumps`` does the same inside a JSON document, where such an
escape is the JSON spelling of the same character: a program reading it gets the text unchanged.

Both the client (its terminal) and the node (its admin output and its log) show outside strings
through these functions, so the two sides escape alike.
"""

from __future__ import annotations

import json
import unicodedata
from typing import Any

__all__ = ["HIDDEN_CATEGORIES", "dumps", "visible", "visible_all"]

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


def dumps(value: Any, *, indent: int | None = None, default: Any = None) -> str:
    """``value`` as JSON with no control, format or separator character in it raw.

    ``indent`` and ``default`` are ``json.dumps``'s; with ``indent`` the layout's own line breaks
    are the only ones in the result. Raises TypeError for a value JSON cannot hold.
    """
    text = json.dumps(value, ensure_ascii=False, indent=indent, default=default)
    if text.isprintable():
        return text
    # Outside strings JSON holds only printable ASCII (and the layout's line breaks and spaces),
    # so every other hidden character is inside a string, where its \\u escape means the same.
    return "".join(_escape(c) if _hidden(c) and c not in "\n" else c for c in text)
