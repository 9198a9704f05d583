"""Field rules that a faster implementation must keep exactly (spec §6.1)."""

from __future__ import annotations

import unicodedata

import pytest

from peerfed.protocol import InvalidValue
from peerfed.protocol.fields import text


def forbidden(char: str, free: bool) -> bool:
    """The rule as the spec states it: Unicode categories Cc and Cs; free text allows LF and TAB."""
    return unicodedata.category(char) in ("Cc", "Cs") and not (free and char in "\n\t")


@pytest.mark.parametrize("free", [False, True])
def test_control_and_surrogate_characters_are_refused_exactly_by_unicode_category(free: bool) -> None:
    wrong = []
    for code in range(0x110000):
        char = chr(code)
        value = f"a{char}b"
        try:
            text(value, "field", 16, free=free)
            refused = False
        except InvalidValue as exc:
            refused = "control character" in str(exc)
        if refused != forbidden(char, free):
            wrong.append(hex(code))
    assert wrong == []
