"""Where inputs come from, and the values they are made of.

A ``Source`` makes the choices: ``HypothesisSource`` under pytest, ``RandomSource`` (a seeded
``random.Random``) in ``fuzz_long.py``. Every generator draws through one, so the same generators
serve both.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, TypeVar

from hypothesis import strategies as st

__all__ = [
    "Source", "HypothesisSource", "RandomSource", "one_in", "blob", "STRINGS", "INTS", "FLOATS", "QUERY_INTS",
    "TOPICS", "LANGS", "FORMATS", "VOCAB", "SUMMARIES", "TZS", "METHODS", "CONTENT_TYPES", "LIVE_FRAME_LIMIT",
    "BODY_LIMIT"
]  # fmt: skip


T = TypeVar("T")


class Source(Protocol):
    def integer(self, lo: int, hi: int) -> int: ...

    def pick(self, options: Sequence[T]) -> T: ...

    def raw(self, lo: int, hi: int) -> bytes: ...

    def text(self, hi: int) -> str: ...


class HypothesisSource:
    """Choices drawn by Hypothesis. Every draw has the same shape whatever the world's state (how many
    listings it holds, how long an object is): an index in a fixed range, mapped onto the choices.
    Otherwise replaying an example after the world moved on would draw differently (a flaky test)."""

    SPAN = 2**20

    def __init__(self, data: st.DataObject) -> None:
        self.data = data

    def integer(self, lo: int, hi: int) -> int:
        if hi - lo >= self.SPAN:
            return self.data.draw(st.integers(lo, hi))
        return lo + self.data.draw(st.integers(0, self.SPAN - 1)) % (hi - lo + 1)

    def pick(self, options: Sequence[T]) -> T:
        return options[self.integer(0, len(options) - 1)]

    def raw(self, lo: int, hi: int) -> bytes:
        return self.data.draw(st.binary(min_size=lo, max_size=hi))

    def text(self, hi: int) -> str:
        return self.data.draw(st.text(max_size=hi))


class RandomSource:
    """Plain random choices, biased towards small sizes and boundaries, with lone surrogates in text."""

    def __init__(self, rng: Any) -> None:
        self.rng = rng

    def integer(self, lo: int, hi: int) -> int:
        r = self.rng.random()
        if r < 0.08:
            return lo
        if r < 0.16:
            return hi
        return int(self.rng.randint(lo, hi))

    def pick(self, options: Sequence[T]) -> T:
        return options[int(self.rng.randrange(len(options)))]

    def raw(self, lo: int, hi: int) -> bytes:
        size = self.rng.randint(lo, min(hi, lo + 24)) if self.rng.random() < 0.6 else self.rng.randint(lo, hi)
        return bytes(self.rng.randbytes(size))

    def text(self, hi: int) -> str:
        size = self.rng.randint(0, min(hi, 12)) if self.rng.random() < 0.6 else self.rng.randint(0, hi)
        return "".join(self._char() for _ in range(size))

    def _char(self) -> str:
        r = self.rng.random()
        if r < 0.6:
            return chr(self.rng.randint(0x20, 0x7E))
        if r < 0.7:
            return chr(self.rng.randint(0, 0x1F))
        if r < 0.88:
            return chr(self.rng.randint(0xA0, 0xD7FF))
        if r < 0.97:
            return chr(self.rng.randint(0xE000, 0x10FFFF))
        return chr(self.rng.randint(0xD800, 0xDFFF))  # a lone surrogate: JSON can carry one as \udXXX


def one_in(src: Source, n: int) -> bool:
    return src.integer(0, n - 1) == 0


def blob(src: Source, size: int) -> bytes:
    """A large body built from two small choices (Hypothesis cannot draw 100 kB cheaply)."""
    unit = src.raw(1, 16)
    return (unit * (size // len(unit) + 1))[:size]


# --- interesting values ------------------------------------------------------------------------------

# fmt: off
STRINGS = [
    "", " ", "a", "0", "-1", "1e9", "NaN", "null", "true", "[]", "{}", "offer", "request", "now", "soon",
    "scheduled", "text", "voice", "in-person", "en", "es", "EN-gb", "grief", "GRIEF", "panic attacks",
    "\u00df", "\u0130", "\u0131", "\ufb00", "\u212a", "\x00", "a\x00b", "\ud800", "\udfff", "x\ud83d", "\U0001f600",
    "%", "%00", "%zz", "'", '"', "\\", "' OR 1=1 --", "x" * 300, "\u00e9" * 40, "\u202e", "\r\n", "pf1",
    "https://", "auth", "ack", "listing", "key-bundle", "sealed", "\t", "\ufeff", "\uffff",
]
INTS = [
    0, 1, -1, 2, 49, 50, 51, 99, 100, 101, 499, 500, 501, 1000, 1001, 2**31 - 1, 2**31, 2**53, 2**63 - 1,
    2**63, 2**64, -(2**63), -(2**63) - 1, 10**20, 10**100,
]
# fmt: on
FLOATS = [0.5, -0.0, 1e308, 1e-308, float("nan"), float("inf"), float("-inf")]
QUERY_INTS = [
    "0",
    "1",
    "-1",
    "50",
    "100",
    "101",
    "500",
    "9" * 19,
    "9" * 20,
    "-" + "9" * 20,
    "1" + "0" * 400,
    "1e3",
    "0x10",
    "+5",
    " 7 ",
    "1_000",
    "\u0661\u0662",
    "",
    "ten",
    "nan",
    "9" * 5000,
]
TOPICS = ("panic attacks", "grief", "Sleep", "caring for a parent", "ataques de p\u00e1nico", "loneliness")
LANGS = ("en", "es", "en-GB", "es-MX", "de", "fr")
FORMATS = ("text", "voice", "video", "in-person", "sign")
VOCAB = ("anxiety", "grief", "panic-attacks", "sleep")
SUMMARIES = ("I can listen on weekday evenings.", "Someone to talk grief with.", "Night owl.", "\u00bfHablamos?")
TZS = ("UTC", "Europe/Madrid", "America/Mexico_City")
METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS")
CONTENT_TYPES = (
    b"application/json",
    b"application/octet-stream",
    b"text/plain; charset=utf-16",
    b"multipart/form-data; a=b",
    b"application/x-www-form-urlencoded",
    b"application/json; charset=latin-1",
    b"\xff\xfe",
)
LIVE_FRAME_LIMIT = 64 * 1024
BODY_LIMIT = 70_000
