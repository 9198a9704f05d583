"""Ephemeral keys and nonces are fresh for every seal (spec §12, Randomness; §7.1).

Sealing one inner object twice, as a sender does when it delivers a draft again (§9.5), gives two
sealed messages that share nothing random: another ephemeral key, another nonce, another id.
"""

from __future__ import annotations

import os

from peerfed.protocol import EncryptionSecret, Identity, Message, open_sealed, seal, sign

NOW = 1_800_000_000
SEALS = 32


def test_every_seal_has_its_own_ephemeral_key_and_nonce() -> None:
    alice, bob = Identity(os.urandom(32)), Identity(os.urandom(32))
    secret = EncryptionSecret(os.urandom(32))
    inner = sign(alice, Message(bob.peer_id, os.urandom(16), 1, "again"), created_at=NOW, expires_at=NOW + 3600)
    sealed = [seal(inner, secret.public) for _ in range(SEALS)]
    ephemerals = {s.payload[33:65] for s in sealed}  # head = scheme || R || E (spec §7.1)
    nonces = {s.payload[65:89] for s in sealed}
    assert len(ephemerals) == len(nonces) == len({s.id for s in sealed}) == SEALS
    for one in sealed:  # and each still opens to the same inner object
        assert open_sealed(one.raw, recipient=bob.peer_id, secrets=[secret], now=NOW).inner.id == inner.id
