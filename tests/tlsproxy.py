"""A real TLS reverse proxy for tests (spec §13.1: production nodes use https): a test CA and nginx.

``Authority`` is a certificate authority made with the openssl command line, and a server
certificate it signs for 127.0.0.1 and localhost. ``Nginx`` runs the system's nginx with a
config written here (the one docs/operating.md shows, on loopback), its prefix, pid, logs and
temporary files in the test's folder. It listens on sockets the test binds first and hands over
through nginx's own inherited-socket variable (``NGINX="fd;fd;"``, as its binary upgrade does),
so there is no free-port race; the test's copies are closed once nginx has them.

A missing nginx or openssl fails the test with how to install it; it never skips (CI installs
both: .ci/run).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import ssl
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

__all__ = ["Authority", "Nginx", "Site", "require"]

START_POLLS = 200  # 50 ms apart: the bound on waiting for nginx to answer through every site
LOCAL_SUBJECT = "subjectAltName=IP:127.0.0.1,DNS:localhost"


def require(tool: str, package: str) -> str:
    """The path of ``tool``; fails the test (never skips) with the install command if it is missing."""
    found = shutil.which(tool) or next(
        (p for p in (f"/usr/sbin/{tool}", f"/sbin/{tool}") if os.access(p, os.X_OK)), None
    )
    if found is None:
        pytest.fail(
            f"{tool} is not installed; this test runs the real one. On Debian or Ubuntu, as root: "
            f"apt-get update && apt-get install -y {package}  (.ci/run does this in CI)"
        )
    return found


def _openssl(*args: str, cwd: Path) -> None:
    out = subprocess.run(
        [require("openssl", "openssl"), *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 0, f"openssl {' '.join(args)}:\n{out.stderr}"


@dataclass(frozen=True)
class Authority:
    """A test CA (``ca``) and a server certificate it signed for 127.0.0.1 and localhost."""

    ca: Path
    cert: Path
    key: Path

    @classmethod
    def make(cls, folder: Path) -> Authority:
        """Make a CA and a server certificate in ``folder`` (P-256 keys, valid for two days)."""
        folder.mkdir(parents=True, exist_ok=True)
        ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
        _openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
                 "-subj", "/CN=peerfed test CA", "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=folder)  # fmt: skip
        _openssl("req", "-new", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost",
                 cwd=folder)  # fmt: skip
        # The extensions a strict verifier wants of a server certificate, names included.
        (folder / "server.ext").write_text(
            f"{LOCAL_SUBJECT}\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
            "extendedKeyUsage=serverAuth\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid:always\n",
            encoding="utf-8",
        )
        _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                 "-out", "server.pem", "-days", "2", "-extfile", "server.ext", cwd=folder)  # fmt: skip
        return cls(folder / "ca.pem", folder / "server.pem", folder / "server.key")

    def context(self) -> ssl.SSLContext:
        """A client context trusting this CA (and the system's)."""
        context = ssl.create_default_context()
        context.load_verify_locations(cafile=str(self.ca))
        return context


class Site:
    """One https address nginx will serve: a socket bound now on 127.0.0.1, and the node behind it."""

    def __init__(self, upstream_port: int = 0) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port = int(self.sock.getsockname()[1])
        self.url = f"https://127.0.0.1:{self.port}"
        self.upstream_port = upstream_port


def site_config(site: Site, authority: Authority) -> str:
    """One server block: TLS on the site's port, everything passed to the node, WebSockets too."""
    return f"""
    server {{
        listen 127.0.0.1:{site.port} ssl;
        ssl_certificate {authority.cert};
        ssl_certificate_key {authority.key};
        ssl_protocols TLSv1.2 TLSv1.3;
        client_max_body_size 1m;

        location / {{
            proxy_pass http://127.0.0.1:{site.upstream_port};
            proxy_http_version 1.1;
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_read_timeout 1h;
            proxy_buffering off;
        }}
    }}
"""


class Nginx:
    """The system's nginx in the foreground, serving ``sites`` with ``authority``'s certificate."""

    def __init__(self, folder: Path, authority: Authority, sites: list[Site]) -> None:
        self.folder = folder
        self.sites = sites
        self.authority = authority
        self.error_log = folder / "error.log"
        self.proc: subprocess.Popen[bytes] | None = None
        folder.mkdir(parents=True, exist_ok=True)
        temp = folder / "temp"
        for part in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (temp / part).mkdir(parents=True, exist_ok=True)
        # As root, nginx's workers would switch to an unprivileged user that cannot enter the
        # test's private folder; a test's nginx keeps the user that started it.
        user = "user root;\n" if os.geteuid() == 0 else ""
        self.config = folder / "nginx.conf"
        self.config.write_text(
            f"""daemon off;
{user}worker_processes 1;
pid {folder / "nginx.pid"};
error_log {self.error_log} info;
events {{ worker_connections 256; }}
http {{
    access_log {folder / "access.log"};
    client_body_temp_path {temp / "body"};
    proxy_temp_path {temp / "proxy"};
    fastcgi_temp_path {temp / "fastcgi"};
    uwsgi_temp_path {temp / "uwsgi"};
    scgi_temp_path {temp / "scgi"};
    map $http_upgrade $connection_upgrade {{
        default upgrade;
        ''      close;
    }}
{"".join(site_config(s, authority) for s in sites)}
}}
""",
            encoding="utf-8",
        )

    def start(self) -> None:
        """Start nginx on the sites' sockets, then give up the test's copies of them."""
        binary = require("nginx", "nginx")
        fds = tuple(s.sock.fileno() for s in self.sites)
        env = {**os.environ, "NGINX": "".join(f"{fd};" for fd in fds)}
        with (self.folder / "stderr.log").open("ab") as out:
            self.proc = subprocess.Popen(
                [binary, "-p", str(self.folder), "-c", str(self.config), "-e", str(self.error_log)],
                env=env,
                pass_fds=fds,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        # With the test's copies closed, a dead nginx means a refused connection, not a hang.
        for site in self.sites:
            site.sock.close()

    def wait_answering(self, path: str = "/healthz") -> None:
        """Wait (bounded) until every site answers ``path`` with 200 over https; fails with nginx's log."""
        assert self.proc is not None
        context = self.authority.context()
        waiting = list(self.sites)
        for _ in range(START_POLLS):
            if self.proc.poll() is not None:
                break
            try:
                with urllib.request.urlopen(waiting[0].url + path, context=context, timeout=5) as answer:
                    if answer.status == 200:
                        waiting.pop(0)
                        if not waiting:
                            return
                        continue
            except (urllib.error.URLError, OSError):
                pass
            _pause(self.proc)
        raise AssertionError(f"nginx did not answer {waiting[0].url}{path}:\n{self.log()}")

    def log(self) -> str:
        parts = [p.read_text(errors="replace") for p in (self.folder / "stderr.log", self.error_log) if p.exists()]
        return "\n".join(parts)

    def stop(self) -> None:
        """Stop nginx (SIGTERM: at once, live sockets included) and wait; kill it if it will not go."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=15)


def _pause(proc: subprocess.Popen[bytes]) -> None:
    """Wait 50 ms, or less if nginx exits meanwhile (then the loop reports it)."""
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=0.05)
