"""Field checks shared by every body type (spec §6.1): labels, free text, sets, integers.

Each returns the value when it is allowed and raises InvalidValue otherwise.
"""

from __future__ import annotations

import enum
import re

from .encoding import Value
from .errors import InvalidValue

__all__ = [
    "LANG",
    "TZ",
    "VOCAB",
    "array",
    "binary",
    "boolean",
    "enum_of",
    "opt_text",
    "seq",
    "set_field",
    "text",
    "uint",
]


LANG = re.compile(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*\Z")
VOCAB = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*\Z")
TZ = re.compile(r"[A-Za-z0-9_+\-/]+\Z")
# Unicode's control (Cc: U+0000-U+001F, U+007F-U+009F) and surrogate (Cs) code points: one
# regular expression instead of a category lookup per character (it was most of the cost of
# opening a listing). Free text may also hold line feeds and tabs.
_LABEL_FORBIDDEN = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_FREE_FORBIDDEN = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


def text(value: object, name: str, max_bytes: int, *, free: bool = False) -> str:
    """A non-empty string of at most ``max_bytes`` UTF-8 bytes.

    A *label* (free=False) has no control characters and no surrounding white space; *free
    text* may hold line feeds and tabs.
    """
    if not isinstance(value, str):
        raise InvalidValue(f"{name} must be a string")
    size = len(value.encode("utf-8", "surrogatepass"))
    if not 1 <= size <= max_bytes:
        raise InvalidValue(f"{name} must be 1 to {max_bytes} UTF-8 bytes")
    if (_FREE_FORBIDDEN if free else _LABEL_FORBIDDEN).search(value):
        raise InvalidValue(f"{name} holds a control character")
    if not free and value != value.strip():
        raise InvalidValue(f"{name} has leading or trailing white space")
    return value


def opt_text(value: object, name: str, max_bytes: int, *, free: bool = False) -> str | None:
    return None if value is None else text(value, name, max_bytes, free=free)


def uint(value: object, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidValue(f"{name} must be an integer from {low} to {high}")
    return value


def binary(value: object, name: str, size: int) -> bytes:
    if not isinstance(value, bytes) or len(value) != size:
        raise InvalidValue(f"{name} must be {size} bytes of binary")
    return value


def boolean(value: object, name: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidValue(f"{name} must be a boolean")
    return value


def seq(value: object, name: str, low: int, high: int) -> tuple[object, ...]:
    """An array of ``low`` to ``high`` distinct items."""
    if not isinstance(value, (list, tuple)):
        raise InvalidValue(f"{name} must be an array")
    if not low <= len(value) <= high:
        raise InvalidValue(f"{name} must hold {low} to {high} items")
    items = tuple(value)
    if len(set(map(repr, items))) != len(items):
        raise InvalidValue(f"{name} holds the same item twice")
    return items


def enum_of(cls: type[enum.Enum], value: object, name: str) -> enum.Enum:
    if isinstance(value, cls):
        return value
    if isinstance(value, str):
        try:
            return cls(value)
        except ValueError:
            pass
    allowed = ", ".join(str(m.value) for m in cls)
    raise InvalidValue(f"{name} must be one of: {allowed}")


def array(value: Value, name: str, length: int) -> list[Value]:
    if not isinstance(value, list) or len(value) != length:
        raise InvalidValue(f"{name} must be an array of {length} items")
    return value


def set_field(obj: object, field: str, value: object) -> None:
    object.__setattr__(obj, field, value)
