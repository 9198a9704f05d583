"""Node settings, the policies and limits its document publishes (spec §13.2): defaults, TOML, env, flags.

Every setting has a safe default, so `peerfed serve` alone runs a private node on loopback
with its data in ./peerfed-data. Environment variables are PEERFED_<NAME> in upper case
(PEERFED_PORT=8740); the TOML file holds the same names in lower case at the top level,
with lists for `federate` and `resources` as arrays of tables.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from peerfed.protocol.errors import LocalError
from peerfed.protocol.node_bodies import Emergency, FederationPolicy, Registration, Resource, check_url

__all__ = ["DEFAULT_PORT", "Config", "ConfigError", "load_config"]

DEFAULT_PORT = 8740
DAY = 86_400


class ConfigError(LocalError):
    """A setting has a value the node cannot run with."""


@dataclass(frozen=True)
class Config:
    data: Path = Path("peerfed-data")
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    public_url: str = ""
    name: str = "A peerfed community"
    description: str = "A community node for peer support."
    contact: str = "The operator has not set a contact yet."
    registration: Registration = Registration.OPEN
    code_of_conduct: str = (
        "Treat each other as equals. Nobody here is a professional; nobody diagnoses. "
        "Respect the terms you agree and end kindly. Never share what another peer told you."
    )
    federation: FederationPolicy = FederationPolicy.OPEN
    federate: tuple[str, ...] = ()
    resources: tuple[Resource, ...] = ()
    vocabulary: tuple[str, ...] = ()
    mailbox_ttl: int = 14 * DAY
    max_listing_lifetime: int = 30 * DAY
    session_ttl: int = 30 * DAY
    max_request_bytes: int = 70_000
    # Rate limits, each "count per window seconds", per key and per address.
    join_per_hour: int = 20
    listings_per_hour: int = 60
    sends_per_minute: int = 240
    # Sealed items waiting unacknowledged in one mailbox; past it, senders are told to retry later.
    mailbox_cap: int = 500
    # Proof of work for joining (leading zero bits; 0 = off). Open nodes may turn it on against floods.
    join_work_bits: int = 0
    # A connection must complete a request within idle_timeout s (slow-loris), a body within body_timeout.
    idle_timeout: float = 15.0
    body_timeout: float = 30.0
    max_live_connections: int = 5000
    max_live_per_peer: int = 5
    # Live sockets open at once from one address, and how long one may stay open without signing in.
    max_live_per_address: int = 20
    live_auth_grace: float = 10.0
    # What other nodes send, per origin node (spec §13.8): past these, items are refused rate.limited
    # and the sender retries them later.
    node_listings_per_hour: int = 600
    node_bundles_per_hour: int = 600
    node_bytes_per_minute: int = 8_000_000
    mailbox_bytes_per_node: int = 1_000_000  # into one mailbox from one node, per hour
    # Who may follow: nodes known at once (not counting blocked ones) and nodes per host.
    max_followers: int = 150
    follows_per_host: int = 2
    # Key bundles a peer may publish per hour (four times that per address).
    keys_per_hour: int = 20
    # Reverse proxies (addresses or networks) whose forwarding header names the real client.
    trusted_proxies: tuple[str, ...] = ()
    proxy_header: str = "X-Forwarded-For"
    # Federation delivery.
    retry_base: float = 10.0
    retry_cap: float = 3600.0
    give_up_after: int = 3 * DAY
    breaker_threshold: int = 5
    batch_size: int = 100
    # Where this node may connect to other nodes (spec §13.7, Discovery). By default only public
    # addresses over https; loopback too (over http) when this node itself runs on loopback.
    # allow_private_addresses: nodes on a private network (10/8, 192.168/16, fd00::/8, ...).
    # allow_plain_http: http to hosts that are not loopback, for development only.
    allow_private_addresses: bool = False
    allow_plain_http: bool = False
    # A key look-up asks every federated node at once and waits this long in all (spec §13.7).
    key_lookup_deadline: float = 5.0
    # SQLite durability: FULL fsyncs every commit, so "accepted" survives a power cut.
    synchronous: str = "FULL"
    verify_threads: int = 2
    log_level: str = "INFO"
    extra: Mapping[str, Any] = field(default_factory=dict)
    # /readyz answers 503 once a federation item has been due this long (s) without being sent.
    outbox_stuck_after: int = 900

    def __post_init__(self) -> None:
        object.__setattr__(self, "registration", Registration(self.registration))
        object.__setattr__(self, "federation", FederationPolicy(self.federation))
        object.__setattr__(self, "data", Path(self.data))

    @property
    def url(self) -> str:
        return self.public_url or f"http://{self.host}:{self.port}"


_INT_FIELDS = {f.name for f in dataclasses.fields(Config) if f.type in ("int", int)}
_FLOAT_FIELDS = {f.name for f in dataclasses.fields(Config) if f.type in ("float", float)}
_BOOL_FIELDS = {f.name for f in dataclasses.fields(Config) if f.type in ("bool", bool)}
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off", "")


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE or text in _FALSE:
        return text in _TRUE
    raise ValueError(f"{value!r} is not true or false")


def _coerce(name: str, value: Any) -> Any:
    try:
        if name == "data":
            return Path(value)
        if name in _INT_FIELDS:
            return int(value)
        if name in _FLOAT_FIELDS:
            return float(value)
        if name in _BOOL_FIELDS:
            return _bool(value)
        if name == "registration":
            return Registration(value)
        if name == "federation":
            return FederationPolicy(value)
        if name == "federate":
            items = value.split(",") if isinstance(value, str) else value
            return tuple(check_url(str(u).strip().rstrip("/"), "federate") for u in items if str(u).strip())
        if name == "trusted_proxies":
            items = value.split(",") if isinstance(value, str) else value
            return tuple(str(ipaddress.ip_network(str(v).strip(), strict=False)) for v in items if str(v).strip())
        if name == "vocabulary":
            items = value.split(",") if isinstance(value, str) else value
            return tuple(str(v).strip() for v in items if str(v).strip())
        if name == "resources":
            return tuple(
                Resource(
                    name=r["name"],
                    contact=r["contact"],
                    emergency=Emergency(r.get("emergency", "never")),
                    hours=r.get("hours"),
                    languages=tuple(r.get("languages", ())),
                    note=r.get("note"),
                )
                for r in value
            )
        if name == "public_url":
            return check_url(str(value).rstrip("/"), "public_url") if value else ""
        return str(value)
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"setting {name!r}: {exc}") from exc


def load_config(
    *, file: Path | None = None, env: Mapping[str, str] | None = None, flags: Mapping[str, Any] | None = None
) -> Config:
    """Merge defaults, the TOML file, PEERFED_* variables and flags (later wins)."""
    names = {f.name for f in dataclasses.fields(Config)} - {"extra"}
    values: dict[str, Any] = {}
    env = os.environ if env is None else env
    if file is None and env.get("PEERFED_CONFIG"):
        file = Path(env["PEERFED_CONFIG"])
    if file is not None:
        try:
            loaded = tomllib.loads(file.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read {file}: {exc}") from exc
        unknown = set(loaded) - names
        if unknown:
            raise ConfigError(f"unknown settings in {file}: {', '.join(sorted(unknown))}")
        values.update({k: _coerce(k, v) for k, v in loaded.items()})
    for name in names:
        key = "PEERFED_" + name.upper()
        if key in env:
            values[name] = _coerce(name, env[key])
    for name, value in (flags or {}).items():
        if value is not None and name in names:
            values[name] = _coerce(name, value)
    config = Config(**values)
    if not 0 < config.port < 65536:
        raise ConfigError("port must be between 1 and 65535")
    if config.proxy_header.lower() not in ("x-forwarded-for", "forwarded"):
        raise ConfigError("proxy_header must be X-Forwarded-For or Forwarded")
    if config.synchronous not in ("FULL", "NORMAL", "EXTRA"):
        raise ConfigError("synchronous must be FULL, NORMAL or EXTRA")
    return config
