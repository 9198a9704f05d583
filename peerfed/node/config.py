"""Node settings, the policies and limits its document publishes (spec §13.2): defaults, TOML, env, flags.

Every setting has a safe default, so `peerfed serve` alone runs a private node on loopback
with its data in ./peerfed-data. Each setting has one name, spelled three ways: the TOML key
(``mailbox_ttl``, at the top level), the environment variable (PEERFED_MAILBOX_TTL) and the
flag (--mailbox-ttl); only ``resources`` (arrays of tables) is TOML alone. Durations are
seconds or a number with d, h, m or s. Unknown TOML keys are refused, so a typo is an error,
not a silently ignored setting.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from peerfed.protocol.errors import LocalError, PeerfedError
from peerfed.protocol.node_bodies import Emergency, FederationPolicy, Registration, Resource, check_url

from .store.pg import is_postgres
from .tls import trusting

__all__ = [
    "DEFAULT_PORT",
    "DURATIONS",
    "Config",
    "ConfigError",
    "env_name",
    "flag_name",
    "load_config",
    "parse_duration",
]

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
    # Sealed items waiting unacknowledged in one mailbox; past it, the oldest item of whoever holds
    # the most is dropped to make room (spec §13.5, Mailbox quotas).
    mailbox_cap: int = 500
    # Items one source may put into one mailbox per hour: a local peer, and another node.
    mailbox_items_per_sender: int = 120
    mailbox_items_per_node: int = 600
    # Proof of work (leading zero bits over the sealed id) for a source's first item into a mailbox.
    first_contact_work_bits: int = 16
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
    # A PEM file of certificate authorities trusted for https to other nodes, besides the system's
    # (a community's own CA, or a test's); empty: the system's alone (peerfed/node/tls.py).
    ca_file: str = ""
    # A key look-up asks every federated node at once and waits this long in all (spec §13.7).
    key_lookup_deadline: float = 5.0
    # Where the node's rows live (spec §13.9, Storage back-ends): empty for SQLite in the data
    # folder (the default), or a postgresql:// address. It may hold a password: never logged.
    database: str = dataclasses.field(default="", repr=False)
    # Durability: FULL fsyncs every commit, so "accepted" survives a power cut (on PostgreSQL,
    # synchronous_commit on; NORMAL turns it off).
    synchronous: str = "FULL"
    # Read connections to the database, each with its own thread: searches run side by side. One
    # by default: on 2 cores a second one bought ~6-11% on the median search and cost ~38% on p99
    # (bench/README.md); a machine with cores to spare may set more.
    readers: int = 1
    # Node processes on one port and one PostgreSQL database (peerfed/node/workers.py); above 1
    # only on PostgreSQL.
    workers: int = 1
    verify_threads: int = 2
    log_level: str = "INFO"
    # /readyz answers 503 once a federation item has been due this long (s) without being sent.
    outbox_stuck_after: int = 900
    # /metrics answers loopback clients; anyone else needs "Authorization: Bearer" and this token.
    metrics_token: str = dataclasses.field(default="", repr=False)  # a secret: never in a log line

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
# Settings that are lengths of time: seconds, or "7d", "12h", "30m", "45s" and sums like "1h30m".
DURATIONS = frozenset(
    {
        "mailbox_ttl",
        "max_listing_lifetime",
        "session_ttl",
        "idle_timeout",
        "body_timeout",
        "live_auth_grace",
        "retry_base",
        "retry_cap",
        "give_up_after",
        "key_lookup_deadline",
        "outbox_stuck_after",
    }
)
_UNITS = {"d": 86_400, "h": 3_600, "m": 60, "s": 1}
_PART = re.compile(r"(\d+(?:\.\d+)?)([dhms])")


def env_name(name: str) -> str:
    """The environment variable for a setting: ``mailbox_ttl`` is PEERFED_MAILBOX_TTL."""
    return "PEERFED_" + name.upper()


def flag_name(name: str) -> str:
    """The `peerfed serve` flag for a setting: ``mailbox_ttl`` is --mailbox-ttl."""
    return "--" + name.replace("_", "-")


def parse_duration(value: Any) -> float:
    """Seconds in ``value``: a number (seconds), or "7d", "12h", "30m", "45s", "1h30m".

    Raises ValueError for anything else, or a negative or infinite length.
    """
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        text = str(value).strip().lower().replace(" ", "")
        try:
            seconds = float(text)
        except ValueError:
            parts = _PART.findall(text)
            if not parts or "".join(n + u for n, u in parts) != text:
                raise ValueError(
                    f"{value!r} is not a duration: write seconds, or a number with d, h, m or s (7d, 12h, 30m, 45s)"
                ) from None
            seconds = sum(float(n) * _UNITS[u] for n, u in parts)
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"{value!r} is not a duration of zero or more")
    return seconds


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE or text in _FALSE:
        return text in _TRUE
    raise ValueError(f"{value!r} is not true or false")


def _int(value: Any) -> int:
    # int() alone would take True as 1 and truncate 2.5 to 2 without a word.
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise ValueError(f"{value!r} is not a whole number")
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a whole number") from None


def _items(value: Any) -> list[str]:
    """A list setting: a TOML array, or text with commas (variables and flags)."""
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list | tuple):
        raise ValueError(f"{value!r} is not a list")
    return [str(v).strip() for v in value if str(v).strip()]


def _resources(value: Any) -> tuple[Resource, ...]:
    if not isinstance(value, list):
        raise ValueError("resources are set only in the TOML file, as [[resources]] tables")
    made = []
    for table in value:
        if not isinstance(table, dict) or "name" not in table or "contact" not in table:
            raise ValueError("each [[resources]] table needs a name and a contact")
        made.append(
            Resource(
                name=table["name"],
                contact=table["contact"],
                emergency=Emergency(table.get("emergency", "never")),
                hours=table.get("hours"),
                languages=tuple(table.get("languages", ())),
                note=table.get("note"),
            )
        )
    return tuple(made)


def _coerce(name: str, value: Any, where: str) -> Any:
    """``value`` for setting ``name`` as the Config holds it; raises ConfigError naming ``where``."""
    try:
        if name == "data":
            return Path(value)
        if name in DURATIONS:
            seconds = parse_duration(value)
            if name in _INT_FIELDS:
                if not seconds.is_integer():
                    raise ValueError(f"{value!r} is not a whole number of seconds")
                return int(seconds)
            return seconds
        if name in _INT_FIELDS:
            return _int(value)
        if name in _FLOAT_FIELDS:
            if isinstance(value, bool):
                raise ValueError(f"{value!r} is not a number")
            return float(value)
        if name in _BOOL_FIELDS:
            return _bool(value)
        if name == "registration":
            return Registration(value)
        if name == "federation":
            return FederationPolicy(value)
        if name == "federate":
            return tuple(check_url(u.rstrip("/"), "federate") for u in _items(value))
        if name == "trusted_proxies":
            return tuple(str(ipaddress.ip_network(v, strict=False)) for v in _items(value))
        if name == "vocabulary":
            return tuple(_items(value))
        if name == "resources":
            return _resources(value)
        if name == "ca_file":
            if not isinstance(value, str):
                raise ValueError(f"{value!r} is not a file name")
            trusting(value)  # refused at start, not at the first federation request
            return value
        if name == "public_url":
            return check_url(str(value).rstrip("/"), "public_url") if value else ""
        if not isinstance(value, str):
            raise ValueError(f"{value!r} is not text")
        return value.upper() if name in ("log_level", "synchronous") else value
    except (ValueError, KeyError, TypeError, PeerfedError) as exc:
        raise ConfigError(f"{where}: {exc}") from exc


def load_config(
    *, file: Path | None = None, env: Mapping[str, str] | None = None, flags: Mapping[str, Any] | None = None
) -> Config:
    """Merge defaults, the TOML file, PEERFED_* variables and flags (later wins).

    Raises ConfigError, with one line saying which setting, from where, and what is wrong.
    """
    names = [f.name for f in dataclasses.fields(Config)]
    values: dict[str, Any] = {}
    env = os.environ if env is None else env
    if file is None and env.get("PEERFED_CONFIG"):
        file = Path(env["PEERFED_CONFIG"])
    if file is not None:
        try:
            loaded = tomllib.loads(file.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read {file}: {exc.strerror or exc}") from exc
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{file} is not valid TOML: {exc}") from exc
        unknown = sorted(set(loaded) - set(names))
        if unknown:
            raise ConfigError(
                f"{file}: unknown setting {', '.join(map(repr, unknown))} (peerfed serve --print-config lists them)"
            )
        values.update({k: _coerce(k, v, f"{file}: setting {k}") for k, v in loaded.items()})
    for name in names:
        if env_name(name) in env:
            values[name] = _coerce(name, env[env_name(name)], env_name(name))
    for name, value in (flags or {}).items():
        if value is not None and name in names:
            values[name] = _coerce(name, value, flag_name(name))
    config = Config(**values)
    if not 0 < config.port < 65536:
        raise ConfigError("port must be between 1 and 65535")
    if config.proxy_header.lower() not in ("x-forwarded-for", "forwarded"):
        raise ConfigError("proxy_header must be X-Forwarded-For or Forwarded")
    if config.database and not is_postgres(config.database):
        raise ConfigError("database must be empty (SQLite in the data folder) or a postgresql:// address")
    if not 1 <= config.workers <= 64:
        raise ConfigError("workers must be between 1 and 64")
    if not 1 <= config.readers <= 64:
        raise ConfigError("readers must be between 1 and 64")
    if config.synchronous not in ("FULL", "NORMAL", "EXTRA"):
        raise ConfigError("synchronous must be FULL, NORMAL or EXTRA")
    if config.log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError("log_level must be DEBUG, INFO, WARNING or ERROR")
    return config
