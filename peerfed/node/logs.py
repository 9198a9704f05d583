"""The node's log: one line per event, strings from outside made visible (spec §13.1, §9.5).

A log line may carry what another node or a peer wrote: a remote node's error message, a URL, a
request path. Written raw, such a string could clear the operator's terminal (ESC [ 2 J), forge
a log line of its own (CR, LF), or reverse what follows (U+202E). Every message, and every line
of a traceback (the exception's own text as one line), goes through the protocol's ``visible``
before it is written.
"""

from __future__ import annotations

import logging
import sys
import traceback
from types import TracebackType
from typing import TypeAlias

from peerfed.protocol.visible import visible

__all__ = ["FORMAT", "VisibleFormatter", "configure_logging"]

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_ExcInfo: TypeAlias = tuple[type[BaseException], BaseException, TracebackType | None] | tuple[None, None, None]


class VisibleFormatter(logging.Formatter):
    """A formatter whose message is one line with nothing raw in it; a traceback keeps its own lines."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = visible(record.message)
        return super().formatMessage(record)

    def formatException(self, ei: _ExcInfo) -> str:
        text = super().formatException(ei)
        # The exception's own line may hold a remote string with line breaks: it stays one line.
        # The frames above it are this program's files and code, shown a line each.
        tail = "".join(traceback.format_exception_only(ei[0], ei[1])).rstrip("\n") if ei[1] is not None else ""
        if not tail or not text.endswith(tail):
            tail = ""
        head = text[: len(text) - len(tail)]
        return "\n".join([*(visible(line) for line in head.splitlines()), *([visible(tail)] if tail else [])])


def configure_logging(level: int | str) -> None:
    """Log to stderr at ``level`` through a ``VisibleFormatter``, for every logger (aiohttp's too)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(VisibleFormatter(FORMAT))
    logging.basicConfig(level=level, handlers=[handler])
