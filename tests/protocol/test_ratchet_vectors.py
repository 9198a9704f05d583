"""ratchet.json holds for this implementation (spec §14, §11): read from the JSON alone, as another
implementation would, every agreement output, every byte of the run and every refusal."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from peerfed.protocol import EncryptionSecret, Identity, RemoteError, open_signed
from peerfed.protocol.crypto import aead_decrypt, x25519, x25519_public
from peerfed.protocol.encoding import pack, unpack
from peerfed.protocol.envelope import Context
from peerfed.protocol.identity import EncryptionKey
from peerfed.protocol.prekeys import initiate
from peerfed.protocol.sealing2 import Session, initiate_session, open_sealed2, seal2

VECTORS = Path(__file__).resolve().parents[2] / "spec" / "vectors"
DOC: dict[str, Any] = json.loads((VECTORS / "ratchet.json").read_text(encoding="utf-8"))
GROUPS = {g["type"]: g["tests"] for g in DOC["testGroups"]}
NOW: int = DOC["now"]


def from_typed(value: Any) -> Any:
    if value is None or isinstance(value, list):
        return value if value is None else [from_typed(v) for v in value]
    ((tag, inner),) = value.items()
    decoders: dict[str, Callable[[str], Any]] = {"int": int, "str": str, "bin": bytes.fromhex}
    return decoders[tag](inner)


def b(text: str) -> bytes:
    return bytes.fromhex(text)


KEYS = DOC["keys"]
SECRETS = {name: EncryptionSecret(b(k["x25519_secret"])) for name, k in KEYS.items()}
IDENTITIES = {name: Identity(b(k["ed25519_seed"])) for name, k in KEYS.items()}
PEERS = {name: i.peer_id for name, i in IDENTITIES.items()}


@pytest.mark.parametrize("case", GROUPS["Agreement"], ids=lambda c: c["comment"])
def test_agreement(case: dict[str, Any]) -> None:
    one_time = None if case["one_time"] is None else EncryptionKey(b(case["one_time"]))
    if one_time is not None:
        assert bytes(EncryptionSecret(b(case["one_time_secret"])).public) == bytes(one_time)
    e = b(case["ephemeral_secret"])
    secret, agreement = initiate(
        b(case["mailbox"]),
        b(case["connection"]),
        EncryptionKey(b(case["bundle_key"])),
        EncryptionKey(b(case["signed_prekey"])),
        one_time,
        identity=IDENTITIES["alice"],
        first_key=b(case["first_ratchet_key"]),
        ephemeral=e,
    )
    assert x25519_public(b(case["first_ratchet_secret"])).hex() == case["first_ratchet_key"]
    assert agreement.initiator.hex() == case["initiator"] == PEERS["alice"].hex
    signed = agreement.signed(b(case["mailbox"]), b(case["connection"]), b(case["first_ratchet_key"]))
    assert signed.hex() == case["signed"]
    agreement.verify(b(case["mailbox"]), b(case["connection"]), b(case["first_ratchet_key"]))
    assert agreement.ephemeral.hex() == case["ephemeral_public"]
    assert x25519(e, b(case["signed_prekey"])).hex() == case["dh1"]
    assert x25519(e, b(case["bundle_key"])).hex() == case["dh2"]
    assert (None if one_time is None else x25519(e, bytes(one_time)).hex()) == case["dh3"]
    assert secret.hex() == case["secret"]
    assert agreement.to_wire() == from_typed(case["agreement"])


class Side:
    def __init__(self, name: str, prekeys: list[EncryptionSecret], one_times: list[EncryptionSecret]) -> None:
        self.name, self.prekeys, self.one_times = name, prekeys, one_times
        self.sessions: dict[bytes, Session] = {}

    def open(self, data: bytes) -> Any:
        return open_sealed2(
            data,
            recipient=PEERS[self.name],
            secrets=[SECRETS[self.name]],
            signed_prekeys=self.prekeys,
            one_time_prekeys=self.one_times,
            sessions=self.sessions,
            now=NOW,
        )

    def copy(self) -> Side:
        twin = Side(self.name, list(self.prekeys), list(self.one_times))
        twin.sessions = dict(self.sessions)
        return twin


def replay(steps: int | None = None) -> dict[str, Side]:
    """The run's sides after its first ``steps`` steps (all of them for None), checking each byte."""
    (run,) = GROUPS["RatchetRun"]
    (first, *_) = GROUPS["Agreement"]
    prekey = EncryptionSecret(b(run["signed_prekey_secret"]))
    sides = {
        "alice": Side("alice", [], []),
        "bob": Side("bob", [prekey], [EncryptionSecret(b(s)) for s in run["one_time_secrets"]]),
    }
    conn = b(run["connection"])
    bundle = open_signed(b(run["bundle"]), context=Context.KEY_BUNDLE, now=NOW)
    sides["alice"].sessions[conn] = initiate_session(
        bundle,
        conn,
        sides["bob"].one_times[0].public,
        identity=IDENTITIES["alice"],
        now=NOW,
        ephemeral=b(first["ephemeral_secret"]),
        first=b(first["first_ratchet_secret"]),
    )
    for step in run["steps"][:steps]:
        if step["action"] == "send":
            sender = sides[step["from"]]
            inner = open_signed(b(step["inner"]), context=Context.SEALED, now=NOW)
            sealed, sender.sessions[conn] = seal2(
                inner,
                sender.sessions[conn],
                SECRETS[step["to"]].public,
                fresh=b(step["ratchet_secret"]),
                ephemeral=b(step["outer_ephemeral"]),
                nonce=b(step["nonce"]),
                inner_nonce=b(step["inner_nonce"]),
            )
            assert sealed.raw.hex() == step["sealed"], step["step"]
        else:
            side = sides[step["by"]]
            opened = side.open(sent(run, step["message"]))
            assert opened.inner.raw.hex() == step["inner"], step["step"]
            used = step["one_time_used"]
            assert (None if opened.one_time_used is None else opened.one_time_used.hex) == used
            side.sessions[conn] = opened.pending
            side.one_times = [k for k in side.one_times if k.public != opened.one_time_used]
    return sides


def sent(run: dict[str, Any], label: str) -> bytes:
    return b(next(s["sealed"] for s in run["steps"] if s["action"] == "send" and s["message"] == label))


def test_the_run_reproduces_every_byte_and_opens_every_delivered_message() -> None:
    sides = replay()
    (run,) = GROUPS["RatchetRun"]
    opened = {s["message"] for s in run["steps"] if s["action"] == "open"}
    assert opened == {s["message"] for s in run["steps"] if s["action"] == "send"} - {"a2"}  # a2 was lost
    # Each frame's ciphertext is the send's message nonce and what opens under its message key (spec §14.4).
    for step in run["steps"]:
        if step["action"] == "send":
            frame: Any = unpack(b(step["frame"]))
            conn, header, ciphertext = frame
            assert header == from_typed(step["header"])
            aad = b"peerfed/v1/ratchet\x00" + bytes(PEERS[step["to"]]) + conn + pack(header)
            assert ciphertext[:24].hex() == step["inner_nonce"]
            assert aead_decrypt(b(step["message_key"]), ciphertext[:24], ciphertext[24:], aad).hex() == step["inner"]
    assert all(s.sessions for s in sides.values())


@pytest.mark.parametrize("case", GROUPS["RejectedRatchetMessage"], ids=lambda c: c["comment"])
def test_rejected(case: dict[str, Any]) -> None:
    sides = replay(case["after"])
    side = sides[case["by"]]
    before = side.copy()
    with pytest.raises(RemoteError) as info:
        side.open(b(case["input"]))
    assert info.value.code == case["error"]
    assert side.sessions == before.sessions and side.one_times == before.one_times
