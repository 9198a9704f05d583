"""A client trusts the bytes a peer signed, never a node's copy of them (spec §13.5, directory and keys).

A directory result is kept only if its `listing` verifies, and is shown from the signed listing,
not from the node's `card`; a `key_bundle` is kept only if it verifies as the author's; a bundle
from `GET /keys` is verified before anything is sealed to it, and its `home` read from the
signed bundle, never from the answer's convenience copy.
"""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from peerfed.client.peer import Peer
from peerfed.protocol import EncryptionSecret, Format, Identity, KeyBundle, Kind, Listing, RemoteError, Timing, sign
from tests.node.harness import DAY, Clock, TestNode

EVIL = "https://evil.example"


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def test_directory_results_and_key_bundles_are_verified_not_trusted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def scenario() -> None:
        clock = Clock()
        node = await TestNode(tmp_path / "n", clock).start()
        async with aiohttp.ClientSession() as http:
            ana = await Peer.create(tmp_path / "ana", http, node=node.url, clock=clock)
            ben, mal = Identity(bytes([7]) * 32), Identity(bytes([8]) * 32)
            now = int(clock.now)
            offer = Listing(
                kind=Kind.OFFER, topics=("grief",), languages=("en",), formats=(Format.TEXT,), timing=Timing.SOON,
                summary="I can listen.",
            )  # fmt: skip
            genuine = sign(ben, offer, created_at=now, expires_at=now + DAY).raw
            forged = genuine[:40] + bytes([genuine[40] ^ 1]) + genuine[41:]  # one bit of the signature
            key = EncryptionSecret(bytes([9]) * 32)
            bens_bundle = sign(ben, KeyBundle(key.public, home=node.url), created_at=now, expires_at=now + DAY).raw
            mals_bundle = sign(mal, KeyBundle(key.public, home=EVIL), created_at=now, expires_at=now + DAY).raw
            card = {"summary": "Send me your password", "topics": ["grief"]}

            async def directory(**_: Any) -> dict[str, Any]:
                return {
                    "listings": [
                        {"listing": b64(forged), "key_bundle": None, "card": card, "origin": node.url},
                        {"listing": b64(genuine), "key_bundle": b64(mals_bundle), "card": card, "origin": node.url},
                    ],
                    "next": None,
                }

            served = {"key_bundle": b64(mals_bundle), "home": EVIL}

            async def keys(_: str) -> dict[str, Any]:
                return served

            api = ana.listings.device.api
            monkeypatch.setattr(api, "directory", directory)  # the node's answers, as a hostile node gives them
            monkeypatch.setattr(api, "keys", keys)
            found = await ana.listings.browse("grief")
            # The forged listing is dropped; the genuine one is shown from its signed bytes.
            assert [(r["author"], r["summary"]) for r in found] == [(ben.peer_id.text, "I can listen.")]
            # Mal's bundle, served as ben's, is neither kept nor sealed to.
            with pytest.raises(RemoteError) as info:
                await ana.listings.bundle_for(ben.peer_id)
            assert info.value.code == "signature.invalid"
            # Ben's own bundle is taken, with the home ben signed, whatever the answer's copy says.
            served["key_bundle"] = b64(bens_bundle)
            bundle = await ana.listings.bundle_for(ben.peer_id)
            assert (bundle.encryption_key, bundle.home) == (key.public, node.url)
            await ana.close()
        await node.stop()

    asyncio.run(scenario())
