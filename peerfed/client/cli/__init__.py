"""The peer's verbs of the ``peerfed`` command (spec §13.5 is what they drive; §10 the codes they print).

Every verb takes ``--json`` and then prints exactly one JSON document on stdout. Errors go to
stderr as ``error CODE: message`` (or a JSON error under ``--json``) with exit status 1. Ids of
listings, connections and peers may be shortened to any unique prefix. Verbs that show or
change a connection first fetch and apply the mailbox.

Each verb is one entry in a registry (``registry.Verb``): its arguments, its run and its
render, grouped by what they act on in ``verbs_id``, ``verbs_listings``, ``verbs_connections``,
``verbs_outbox`` and ``verbs_community``. ``peerfed.cli`` adds them to the command with
``add_peer_commands`` and runs one with ``run_peer``.
"""

from __future__ import annotations

import argparse
from typing import Any

from . import verbs_community, verbs_connections, verbs_id, verbs_listings, verbs_outbox
from .registry import Verb, add_verbs, run_verb

__all__ = ["PEER_VERBS", "VERBS", "add_peer_commands", "run_peer"]

# In the order the command's help lists them.
VERBS: tuple[Verb, ...] = (
    *verbs_id.VERBS,
    *verbs_listings.VERBS,
    *verbs_connections.VERBS,
    *verbs_outbox.VERBS,
    *verbs_community.VERBS,
)
PEER_VERBS = tuple(verb.name for verb in VERBS)


def add_peer_commands(sub: Any) -> None:
    """Add the peer's verbs to the ``peerfed`` command's subparsers."""
    add_verbs(sub, VERBS)


def run_peer(args: argparse.Namespace) -> int:
    """Run the peer's verb ``args.command``; the exit status."""
    return run_verb(args, VERBS)
