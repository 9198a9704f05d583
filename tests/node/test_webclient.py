"""The web client's files at ``/`` and CORS for browser clients (spec §13.10), against a real node on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
from aiohttp import web

from peerfed.node.api.webclient import CLIENT_FILES, CORS_HEADERS, CSP
from peerfed.node.app import create_app
from peerfed.node.config import Config
from peerfed.node.runner import NodeRunner

from .harness import free_socket

Body = Callable[[str, aiohttp.ClientSession], Awaitable[None]]


def serve(tmp: Path, client_files: Path, body: Body) -> None:
    """One node whose web client is read from ``client_files``; ``body`` gets its URL and a session."""

    async def scenario() -> None:
        sock = free_socket()
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        config = Config(data=tmp / "node", host="127.0.0.1", port=sock.getsockname()[1], public_url=url)
        runner = NodeRunner(create_app(config, background=False, client_files=client_files), handle_signals=False)
        await runner.setup()
        await web.SockSite(runner, sock).start()
        try:
            async with aiohttp.ClientSession() as http:
                await body(url, http)
        finally:
            await runner.cleanup()

    asyncio.run(scenario())


def built(tmp: Path) -> Path:
    files = tmp / "dist"
    (files / "assets").mkdir(parents=True)
    (files / "index.html").write_text('<!doctype html><script type="module" src="assets/app.js"></script>')
    (files / "assets" / "app.js").write_text("export {};\n")
    (files / "assets" / "app.css").write_text("body{}\n")
    (files / "assets" / "notes.exe").write_text("MZ")
    (tmp / "secret.txt").write_text("outside the client's folder")
    return files


def assert_page_headers(response: aiohttp.ClientResponse) -> None:
    assert response.headers["Content-Security-Policy"] == CSP
    assert "script-src 'self';" in CSP and "'unsafe-inline'" not in CSP and "frame-ancestors 'none'" in CSP
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"


def test_the_built_client_is_served_with_its_types_and_a_strict_policy(tmp_path: Path) -> None:
    async def body(url: str, http: aiohttp.ClientSession) -> None:
        async with http.get(url + "/") as response:
            assert response.status == 200
            assert response.headers["Content-Type"] == "text/html; charset=utf-8"
            assert_page_headers(response)
            assert "assets/app.js" in await response.text()
        for name, kind in [("app.js", "text/javascript"), ("app.css", "text/css")]:
            async with http.get(f"{url}/assets/{name}") as response:
                assert response.status == 200
                assert response.headers["Content-Type"] == f"{kind}; charset=utf-8"
                assert_page_headers(response)
        # Nothing else on disk: an unknown type, a missing file, a way out of the folder.
        for path in ["/assets/notes.exe", "/assets/none.js", "/assets/..%2Fsecret.txt", "/assets/.hidden.js"]:
            async with http.get(url + path) as response:
                assert response.status == 404, path
                assert (await response.json())["error"]["code"] == "not_found"

    serve(tmp_path, built(tmp_path), body)


def test_a_node_without_the_build_answers_a_plain_page_not_json(tmp_path: Path) -> None:
    async def body(url: str, http: aiohttp.ClientSession) -> None:
        async with http.get(url + "/") as response:
            assert response.status == 200
            assert response.headers["Content-Type"] == "text/html; charset=utf-8"
            assert_page_headers(response)
            text = await response.text()
            assert "This node is running" in text and "<script" not in text

    serve(tmp_path, tmp_path / "not-built", body)


def test_the_client_api_answers_preflights_and_any_origin(tmp_path: Path) -> None:
    origin = {"Origin": "https://app.example"}
    preflight = {**origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "x-peerfed-work"}

    async def body(url: str, http: aiohttp.ClientSession) -> None:
        for path in ["/api/v1/session", "/api/v1/send", "/.well-known/peerfed"]:
            async with http.options(url + path, headers=preflight) as response:
                assert response.status == 204, path
                assert response.headers["Access-Control-Allow-Origin"] == "*"
                assert response.headers["Access-Control-Allow-Methods"] == "GET, POST, PUT"
                assert response.headers["Access-Control-Allow-Headers"] == CORS_HEADERS
                # Every header a client sends: a browser page elsewhere must be able to sign in as one device (§13.4).
                for name in [
                    "Authorization",
                    "Content-Type",
                    "X-Peerfed-Work",
                    "X-Peerfed-Device",
                    "X-Peerfed-Take-Over",
                ]:
                    assert name in CORS_HEADERS
        async with http.get(url + "/.well-known/peerfed", headers=origin) as response:
            assert response.status == 200 and response.headers["Access-Control-Allow-Origin"] == "*"
        async with http.post(url + "/api/v1/challenge", headers=origin) as response:
            assert response.status == 200 and response.headers["Access-Control-Allow-Origin"] == "*"
        # A refusal is readable too, so a page of another origin can act on its code.
        async with http.get(url + "/api/v1/mailbox", headers=origin) as response:
            assert response.status == 401 and response.headers["Access-Control-Allow-Origin"] == "*"
            assert (await response.json())["error"]["code"] == "auth.required"

    serve(tmp_path, built(tmp_path), body)


def test_federation_health_and_pages_stay_same_origin(tmp_path: Path) -> None:
    preflight = {"Origin": "https://app.example", "Access-Control-Request-Method": "POST"}

    async def body(url: str, http: aiohttp.ClientSession) -> None:
        for path in ["/federation/v1/follow", "/federation/v1/batch", "/healthz", "/"]:
            async with http.options(url + path, headers=preflight) as response:
                assert response.status == 400, path
                assert "Access-Control-Allow-Origin" not in response.headers
                assert (await response.json())["error"]["code"] == "request.invalid"
        for path in ["/healthz", "/", "/federation/v1/listings"]:
            async with http.get(url + path, headers={"Origin": "https://app.example"}) as response:
                assert "Access-Control-Allow-Origin" not in response.headers, path

    serve(tmp_path, built(tmp_path), body)


def test_the_default_client_folder_is_inside_the_package() -> None:
    import peerfed

    assert Path(peerfed.__file__).resolve().parent / "web" / "dist" == CLIENT_FILES


def test_the_committed_build_is_what_a_node_serves_by_default(tmp_path: Path) -> None:
    async def body(url: str, http: aiohttp.ClientSession) -> None:
        async with http.get(url + "/") as response:
            page = await response.text()
            assert response.status == 200 and 'src="assets/app.js"' in page and "<script>" not in page
        async with http.get(url + "/assets/app.js") as response:
            assert response.status == 200
            assert await response.read() == (CLIENT_FILES / "assets" / "app.js").read_bytes()

    serve(tmp_path, CLIENT_FILES, body)
