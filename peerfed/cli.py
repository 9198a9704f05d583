"""The ``peerfed`` command (spec §13 node, §4.2 peer ids): ``serve``, ``admin``, and small checks.

The peer's verbs (offer, browse, reach, ...) live in ``peerfed.client``.
"""

from __future__ import annotations

import argparse
import errno
import logging
import os
import sys
from pathlib import Path

from peerfed import __version__

__all__ = ["main"]


def _serve_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    serve = sub.add_parser(
        "serve",
        help="run a community node",
        description="Run a community node. Settings come from --config FILE, PEERFED_* variables and these flags.",
    )
    serve.add_argument("--config", type=Path, help="a TOML settings file")
    serve.add_argument("--data", type=Path, help="data folder (default ./peerfed-data)")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default 8740)")
    serve.add_argument("--public-url", dest="public_url", help="the URL other nodes and peers reach this node at")
    serve.add_argument("--name", help="the community's name")
    serve.add_argument("--registration", choices=["open", "invite", "approval"], help="who may join")
    serve.add_argument("--federation", choices=["open", "allow-list", "block-list"], help="which nodes may federate")
    serve.add_argument(
        "--federate", action="append", metavar="URL", help="federate with another node (repeatable)", default=None
    )
    serve.add_argument("--log-level", dest="log_level", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    serve.add_argument(
        "--listen-fd",
        dest="listen_fd",
        type=int,
        metavar="FD",
        help="serve on this inherited, already-listening socket instead of binding --host and --port",
    )


def serve(args: argparse.Namespace) -> int:
    """Run the node until a signal; the exit code tells a supervisor why it ended (runner.EXIT_*)."""
    import asyncio

    from peerfed.node.app import create_app
    from peerfed.node.config import ConfigError, load_config
    from peerfed.node.keys import KeyFileError
    from peerfed.node.runner import (
        EXIT_CANNOT_LISTEN,
        EXIT_CONFIG,
        EXIT_DATA_IN_USE,
        EXIT_DATA_UNUSABLE,
        DataInUse,
        DataLock,
        listening_socket,
        serve_forever,
    )
    from peerfed.node.store import StorageError

    flags = {k: getattr(args, k) for k in ("data", "host", "port", "public_url", "name", "registration", "federation")}
    flags["federate"] = args.federate
    flags["log_level"] = args.log_level
    try:
        config = load_config(file=args.config, flags=flags)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    logging.basicConfig(
        level=config.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    log = logging.getLogger("peerfed.node")
    # In this order: the folder's lock (one node per folder), the port (fails fast, before the
    # database or any federation work), then the store and key; "ready" only once all are up.
    lock = DataLock(config.data)
    try:
        lock.acquire()
    except DataInUse as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_DATA_IN_USE
    except OSError as exc:
        print(f"error: cannot use the data folder {config.data}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_DATA_UNUSABLE
    try:
        try:
            sock = listening_socket(config.host, config.port, args.listen_fd)
        except OSError as exc:
            where = f"{config.host}:{config.port}" if args.listen_fd is None else f"inherited socket {args.listen_fd}"
            hint = "; another program (or node) is using that port" if exc.errno == errno.EADDRINUSE else ""
            reason = os.strerror(exc.errno) if exc.errno else str(exc)
            print(f"error: cannot listen on {where}: {reason}{hint}", file=sys.stderr)
            return EXIT_CANNOT_LISTEN

        def ready() -> None:
            log.info("node %s ready at %s (data in %s)", config.name, config.url, config.data)
            where = f"peerfed node '{config.name}' on {config.url} (data: {config.data})"
            print(f"{where}; Ctrl-C stops it", file=sys.stderr)

        try:
            asyncio.run(serve_forever(create_app(config), sock, config.idle_timeout, ready=ready))
        except (KeyFileError, StorageError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_DATA_UNUSABLE
        finally:
            sock.close()
    finally:
        lock.release()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="peerfed", description="Peer support across community nodes.")
    parser.add_argument("--version", action="version", version=f"peerfed {__version__}")
    sub = parser.add_subparsers(dest="command")
    _serve_parser(sub)
    from peerfed.client.cli import PEER_VERBS, add_peer_commands
    from peerfed.node.admin import add_admin_parser

    add_admin_parser(sub)
    add_peer_commands(sub)
    sub.add_parser("demo", help="watch two peers on two nodes find each other, agree, talk and end")
    ident = sub.add_parser("peer-id", help="check a peer id's text form and print its key in hex")
    ident.add_argument("text")
    args = parser.parse_args(argv)
    if args.command == "serve":
        return serve(args)
    if args.command == "admin":
        from peerfed.node.admin import run_admin

        return run_admin(args)
    if args.command in PEER_VERBS:
        from peerfed.client.cli import run_peer

        return run_peer(args)
    if args.command == "demo":
        from peerfed.client.demo import run_demo

        return run_demo()
    if args.command == "peer-id":
        from peerfed.protocol import PeerId, RemoteError

        try:
            print(PeerId.from_text(args.text).hex)
        except RemoteError as exc:
            print(f"error {exc.code}: {exc}", file=sys.stderr)
            return 2
        return 0
    parser.print_help()
    return 0
