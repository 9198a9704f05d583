"""What each node setting means, for flags' help and `peerfed serve --print-config` (spec §13.2, §13.8).

One sentence per setting, kept beside the example file it becomes, so the flag's help, the
example config and the README say the same thing. ``example_config()`` is a TOML file with
every setting commented out at its default: uncommenting any line gives a valid setting.
"""

from __future__ import annotations

import dataclasses
import json
import textwrap
from enum import Enum
from typing import Any

from .config import DURATIONS, Config, env_name, flag_name

__all__ = ["HELP", "example_config", "format_duration"]

HELP: dict[str, str] = {
    "data": "The data folder: the node key (node.key: back it up, keep it private), the database, the lock.",
    "host": "The address to listen on; 0.0.0.0 or :: for every interface (put a TLS proxy in front).",
    "port": "The port to listen on.",
    "public_url": "The URL other nodes and peers reach this node at (scheme, host, port; no path). "
    "Empty: http://HOST:PORT, for loopback use only.",
    "name": "The community's name, as peers and other nodes see it.",
    "description": "A sentence or two about the community.",
    "contact": "How to reach the operator (an email address or a web page).",
    "registration": "Who may join: open, invite (an invite code) or approval (an operator approves).",
    "code_of_conduct": "The rules every member agrees to when joining.",
    "federation": "Which nodes may federate: open, allow-list (only those in federate) or block-list.",
    "federate": "Nodes to follow (their URLs).",
    "resources": "Help outside peerfed (crisis lines and the like), shown to peers; TOML only: "
    "[[resources]] tables with name, contact, hours, languages, emergency (never, on-request, may), note.",
    "vocabulary": "Extra topic words this community uses, beyond the shared vocabulary.",
    "mailbox_ttl": "How long sealed mail waits for a member who does not collect it.",
    "max_listing_lifetime": "The longest a listing may stay up before its author renews it.",
    "session_ttl": "How long a member stays signed in.",
    "max_request_bytes": "The largest request body accepted, in bytes.",
    "join_per_hour": "Sign-ins and joins per hour, per key and per address.",
    "listings_per_hour": "Listings a member may publish per hour.",
    "sends_per_minute": "Sealed messages a member may send per minute.",
    "mailbox_cap": "Items waiting in one mailbox; past it the oldest item of whoever holds the most is dropped "
    "(a full mailbox never refuses, so no answer tells a sender whether someone has read).",
    "mailbox_items_per_sender": "Items one member may put into one mailbox per hour (0 = no count).",
    "mailbox_items_per_node": "Items one other node may put into one mailbox per hour (0 = no count).",
    "first_contact_work_bits": "Proof of work on a sender's first item into a mailbox, in leading zero bits "
    "(0 = off); clients and nodes pay it once per mailbox.",
    "join_work_bits": "Proof of work to join, in leading zero bits (0 = off); against join floods.",
    "idle_timeout": "A connection must complete a request within this time (against slow clients).",
    "body_timeout": "A request body must arrive within this time.",
    "max_live_connections": "Live WebSockets open at once, in all.",
    "max_live_per_peer": "Live WebSockets one member may hold open.",
    "max_live_per_address": "Live WebSockets open at once from one address.",
    "live_auth_grace": "How long a live WebSocket may stay open without signing in.",
    "node_listings_per_hour": "Listings accepted per hour from one other node.",
    "node_bundles_per_hour": "Key bundles accepted per hour from one other node.",
    "node_bytes_per_minute": "Bytes accepted per minute from one other node.",
    "mailbox_bytes_per_node": "Bytes one other node may put into one mailbox per hour.",
    "max_followers": "Nodes known at once (blocked ones not counted); past it, new follows are refused.",
    "follows_per_host": "Nodes on one host that may follow this one.",
    "keys_per_hour": "Key bundles a member may publish per hour (four times that per address).",
    "trusted_proxies": "Reverse proxies (addresses or networks) whose forwarding header names the real client.",
    "proxy_header": "The header those proxies write: X-Forwarded-For or Forwarded.",
    "retry_base": "The first wait before a failed federation delivery is retried (it doubles each time).",
    "retry_cap": "The longest wait between retries of a federation delivery.",
    "give_up_after": "How long a federation delivery is retried before it is given up.",
    "breaker_threshold": "Failures in a row after which a node is left alone for a while.",
    "batch_size": "Items sent to another node in one request.",
    "allow_private_addresses": "Reach nodes on private networks (10/8, 192.168/16, fd00::/8, ...).",
    "allow_plain_http": "Reach nodes that are not on loopback over plain http (development only).",
    "ca_file": "A PEM file of certificate authorities to trust for https to other nodes, besides the system's "
    "(a community's own CA); certificates are always checked.",
    "key_lookup_deadline": "How long a key look-up waits for every federated node in all.",
    "database": "Empty: SQLite in the data folder. Or a postgresql://user:password@host/name address "
    "(pip install 'peerfed[postgresql]'; docs/postgresql.md).",
    "synchronous": "Durability: FULL (every acknowledged write survives a power cut), NORMAL or EXTRA.",
    "readers": "Read connections to the database, each its own thread; reads go to the least busy (1 to 64). "
    "More than 1 helps only with cores to spare.",
    "workers": "Node processes sharing the port and the database (PostgreSQL only above 1); one of them "
    "runs the background rounds.",
    "verify_threads": "Threads checking signatures off the event loop (0 on a single core).",
    "log_level": "DEBUG, INFO, WARNING or ERROR.",
    "outbox_stuck_after": "/readyz answers 503 once a federation item has been due this long without being sent.",
    "metrics_token": "A bearer token that lets a client not on this machine read /metrics (empty: loopback only).",
}

_HEADER = """\
# peerfed node settings, every one at its default (peerfed serve --print-config).
#
# Each setting has one name, spelled three ways, and the later wins:
#   this file (--config FILE, or PEERFED_CONFIG=FILE):  mailbox_ttl = "7d"
#   an environment variable, PEERFED_ and the name in upper case:  PEERFED_MAILBOX_TTL=7d
#   a flag, -- and the name with - for _:  peerfed serve --mailbox-ttl 7d
# Durations are seconds, or a number with d, h, m or s: "7d", "12h", "30m", "45s", "1h30m".
# Lists are arrays here and text with commas elsewhere (PEERFED_FEDERATE=https://a.example,https://b.example).
# A key this file does not know is an error, so a typo cannot pass unnoticed.
"""

_RESOURCE_EXAMPLE = """\
# [[resources]]
# name = "Samaritans"
# contact = "116 123"
# hours = "24/7"
# languages = ["en"]
# emergency = "on-request"
# note = "Free, from any phone."
"""


def format_duration(seconds: float) -> str:
    """``seconds`` in the largest unit that divides it exactly: 1209600 is "14d", 90 is "90s"."""
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s" if float(seconds).is_integer() else f"{seconds}s"


def _toml(name: str, value: Any) -> str:
    if name in DURATIONS:
        return json.dumps(format_duration(value))
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, tuple):
        return "[" + ", ".join(json.dumps(str(v)) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)  # JSON's string escapes are TOML's too


def example_config() -> str:
    """A TOML file with every setting, commented out at its default, each with what it means."""
    out = [_HEADER]
    defaults = Config()
    for field in dataclasses.fields(Config):
        name = field.name
        out.extend(f"# {line}" for line in textwrap.wrap(HELP.get(name, "Undocumented."), 96))
        if name == "resources":  # a TOML table ends the top level: its example goes last
            out.append("# (this file only; see the example at the end)\n")
            continue
        out.append(f"# ({env_name(name)}, {flag_name(name)})")
        out.append(f"# {name} = {_toml(name, getattr(defaults, name))}\n")
    out.append(_RESOURCE_EXAMPLE)
    return "\n".join(out)
