"""The web client's hash in the node document (spec §13.2 field 14, §13.10 Checking the web client).

A node hashes the files it serves once at start and signs the value into its document; these tests
check the value against the files fetched over HTTP, hashed independently here (``hashlib``), and
against the coreutils one-liner the README gives for a release.
"""

from __future__ import annotations

import base64
import hashlib
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

from peerfed.node.api.webclient import CLIENT_FILES
from peerfed.protocol.document import open_document

from .test_webclient import built, serve


async def published(url: str, http: aiohttp.ClientSession) -> bytes | None:
    """The hash in the signed document, after checking the summary agrees with it."""
    async with http.get(url + "/.well-known/peerfed") as response:
        payload = await response.json()
    doc, _ = open_document(base64.b64decode(payload["document"]), url, int(time.time()))
    assert payload["summary"]["web_client"] == (None if doc.web_client is None else doc.web_client.hex())
    return doc.web_client


async def hashed_over_http(url: str, http: aiohttp.ClientSession, names: list[str]) -> bytes:
    """SHA-256 of sha256sum's lines for the files as served, computed here without peerfed's code."""
    lines = []
    for path in sorted(names):
        async with http.get(f"{url}/" + ("" if path == "index.html" else path)) as response:  # the page is /
            assert response.status == 200, path
            lines.append(f"{hashlib.sha256(await response.read()).hexdigest()}  {path}\n")
    return hashlib.sha256("".join(lines).encode()).digest()


def test_the_document_publishes_the_hash_of_exactly_the_files_served(tmp_path: Path) -> None:
    files = built(tmp_path)  # with assets/notes.exe, which the node does not serve, so does not hash

    async def body(url: str, http: aiohttp.ClientSession) -> None:
        served = ["index.html", "assets/app.css", "assets/app.js"]
        assert await published(url, http) == await hashed_over_http(url, http, served)

    serve(tmp_path, files, body)


def test_a_node_without_the_build_publishes_no_hash(tmp_path: Path) -> None:
    async def body(url: str, http: aiohttp.ClientSession) -> None:
        assert await published(url, http) is None

    serve(tmp_path, tmp_path / "not-built", body)


def test_a_changed_file_changes_the_published_hash(tmp_path: Path) -> None:
    files = built(tmp_path)
    seen: list[bytes | None] = []

    async def body(url: str, http: aiohttp.ClientSession) -> None:
        seen.append(await published(url, http))

    serve(tmp_path, files, body)
    (files / "assets" / "app.js").write_text("export const other = 1;\n")
    serve(tmp_path, files, body)
    assert seen[0] is not None and seen[1] is not None and seen[0] != seen[1]


def test_the_committed_build_hashes_to_the_published_value_by_every_route(tmp_path: Path) -> None:
    names = ["index.html", *(f"assets/{p.name}" for p in (CLIENT_FILES / "assets").iterdir())]
    command = [sys.executable, "-m", "peerfed", "web-hash"]
    cli = subprocess.run(command, capture_output=True, text=True, check=True, timeout=60).stdout.strip()
    # The README's check for a release, with nothing but coreutils.
    shell = "find index.html assets -maxdepth 1 -type f | LC_ALL=C sort | xargs sha256sum | sha256sum"
    coreutils = subprocess.run(
        ["sh", "-c", shell], cwd=CLIENT_FILES, capture_output=True, text=True, check=True, timeout=60
    ).stdout.split()[0]

    async def body(url: str, http: aiohttp.ClientSession) -> None:
        value = await published(url, http)
        assert value is not None
        assert value.hex() == cli == coreutils
        assert value == await hashed_over_http(url, http, names)

    serve(tmp_path, CLIENT_FILES, body)


def test_the_readme_gives_this_versions_hash() -> None:
    # The release's own statement of its build (spec §12): a rebuilt dist/ without the README
    # updated fails here, so the published value never goes stale.
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    command = [sys.executable, "-m", "peerfed", "web-hash"]
    value = subprocess.run(command, capture_output=True, text=True, check=True, timeout=60).stdout.strip()
    assert f"This version's web client hashes to `{value}`" in readme


def test_web_hash_says_when_there_is_no_build(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "peerfed", "web-hash", str(tmp_path)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "no built web client" in done.stderr and done.stdout == ""
