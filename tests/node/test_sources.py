"""A mailbox item's source is kept only as a keyed digest under a secret held in memory (spec §13.5).

What the mailbox table stores for who handed an item in names nobody: 16 bytes that hold neither
the sender's peer id nor a node's URL, and that another process (a restart) computes differently.
"""

from __future__ import annotations

import os

from peerfed.node.config import Config
from peerfed.node.contact import Contacts, Source
from peerfed.node.limits import RateLimiter
from peerfed.protocol import Identity


def test_a_source_is_stored_as_a_digest_that_a_restart_cannot_link() -> None:
    peer = Identity(os.urandom(32)).peer_id
    sources = [Source.peer(peer), Source.node("https://other.example")]
    running, restarted = Contacts(Config(), RateLimiter()), Contacts(Config(), RateLimiter())
    for source in sources:
        tag = running.tag(source)
        assert len(tag) == 16 and tag == running.tag(source)  # one source counts as one, while running
        assert bytes(peer) not in tag and source.label not in tag
        assert restarted.tag(source) != tag  # a new process's key: the stored digests are unlinkable
    assert running.tag(sources[0]) != running.tag(sources[1])
