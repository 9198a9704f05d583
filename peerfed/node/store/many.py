"""Statements of many rows (spec §13.9): a burst of writes in a few statements, not a few each.

On PostgreSQL each statement is work for the driver and the server, and on SQLite a step of the
virtual machine more; a statement of 64 rows costs little more than one of one. A statement's
rows come from a VALUES list that the statement joins to the tables (its columns are named
column1, column2 ... in both dialects). The lengths of those lists are powers of two, so a
statement takes a handful of forms, each parsed and planned once.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TypeVar

__all__ = ["PIECE", "pieces", "values"]

T = TypeVar("T")

# One statement's rows at most: 64 rows of 9 columns are 576 parameters, far below either
# database's limit (SQLite's is 32,766).
PIECE = 64


def pieces(rows: Sequence[T]) -> Iterator[Sequence[T]]:
    """``rows`` in slices whose lengths are powers of two, at most PIECE: 100 rows go as 64, 32, 4."""
    at = 0
    while at < len(rows):
        size = min(PIECE, 1 << ((len(rows) - at).bit_length() - 1))
        yield rows[at : at + size]
        at += size


def values(width: int, count: int) -> str:
    """The placeholders of ``count`` rows of ``width`` columns: ``(?, ?), (?, ?)``."""
    return ", ".join(["(" + ", ".join(["?"] * width) + ")"] * count)
