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
    import dataclasses

    from peerfed.node.config import DURATIONS, Config, flag_name
    from peerfed.node.config_text import HELP

    serve = sub.add_parser(
        "serve",
        help="run a community node",
        description="Run a community node. Every setting is a flag here, a PEERFED_* variable (PEERFED_MAILBOX_TTL) "
        "and a key in --config FILE (mailbox_ttl); flags win, then variables, then the file. "
        "Durations: seconds, or 7d, 12h, 30m, 45s. See every setting with --print-config.",
    )
    serve.add_argument("--config", type=Path, help="a TOML settings file (or PEERFED_CONFIG)")
    serve.add_argument(
        "--print-config", action="store_true", help="print an example config file with every setting and stop"
    )
    # Every flag's value is text, turned into the setting by load_config exactly as a variable's
    # is: one parser, one error format, whichever way a setting arrives.
    for field in dataclasses.fields(Config):
        name = field.name
        if name == "resources":  # tables: the TOML file only
            continue
        help_text = HELP.get(name, "")
        if field.type in ("bool", bool):
            serve.add_argument(flag_name(name), dest=name, action=argparse.BooleanOptionalAction, help=help_text)
        elif str(field.type).startswith("tuple"):
            serve.add_argument(
                flag_name(name), dest=name, action="append", metavar="ITEM", help=help_text + " Repeatable."
            )
        else:
            numeric = field.type in ("int", "float", int, float)
            metavar = "DURATION" if name in DURATIONS else "N" if numeric else name.upper()
            serve.add_argument(flag_name(name), dest=name, metavar=metavar, help=help_text)
    serve.add_argument(
        "--listen-fd",
        dest="listen_fd",
        type=int,
        metavar="FD",
        help="serve on this inherited, already-listening socket instead of binding --host and --port",
    )
    # One of --workers' children (peerfed/node/workers.py): its parent holds the folder's lock.
    serve.add_argument("--worker-of", dest="worker_of", type=int, help=argparse.SUPPRESS)
    serve.add_argument("--secret-fd", dest="secret_fd", type=int, help=argparse.SUPPRESS)


def serve(args: argparse.Namespace) -> int:
    """Run the node until a signal; the exit code tells a supervisor why it ended (runner.EXIT_*)."""
    import asyncio

    from peerfed.node.app import create_app
    from peerfed.node.config import ConfigError, load_config
    from peerfed.node.keys import KeyFileError
    from peerfed.node.logs import configure_logging
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

    if args.print_config:
        from peerfed.node.config_text import example_config

        print(example_config(), end="")
        return 0
    # A repeated list flag is one list, as text with commas is in a variable.
    flags = {k: ",".join(v) if isinstance(v, list) else v for k, v in vars(args).items()}
    try:
        config = load_config(file=args.config, flags=flags)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    configure_logging(config.log_level)  # outside strings in a log line are made visible (spec §13.1)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    log = logging.getLogger("peerfed.node")
    # In this order: the folder's lock (one node per folder), the port (fails fast, before the
    # database or any federation work), then the store and key; "ready" only once all are up.
    from peerfed.node.app import remembered_database

    many = config.workers > 1 and args.worker_of is None
    if many and not (config.database or remembered_database(config.data)):
        print(
            "error: --workers above 1 needs a PostgreSQL database (--database postgresql://...): on SQLite one "
            "write lock serialises every process, so more workers would only add waiting (docs/postgresql.md)",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    lock = DataLock(config.data)
    try:
        if args.worker_of is None:
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

        if many:
            from peerfed.node.workers import supervise

            try:
                return supervise(args.argv, config.data, sock.fileno(), config.workers)
            finally:
                sock.close()

        def ready() -> None:
            log.info("node %s ready at %s (data in %s)", config.name, config.url, config.data)
            where = f"peerfed node '{config.name}' on {config.url} (data: {config.data})"
            print(f"{where}; Ctrl-C stops it", file=sys.stderr)

        secret = None
        if args.secret_fd is not None:  # one of --workers' processes: the secret they all share
            with os.fdopen(args.secret_fd, "rb") as pipe:
                secret = pipe.read(32)
        try:
            app = create_app(config, worker=args.worker_of, source_secret=secret)
            asyncio.run(serve_forever(app, sock, config.idle_timeout, ready=ready))
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
    from peerfed.conformance.suite import add_arguments as add_conformance_arguments

    add_conformance_arguments(
        sub.add_parser("conformance", help="check a node at URL against the spec, over the network (spec §13)")
    )
    ident = sub.add_parser("peer-id", help="check a peer id's text form and print its key in hex")
    ident.add_argument("text")
    web_hash = sub.add_parser(
        "web-hash", help="print the hash of a built web client, as a node document publishes it (spec §13.10)"
    )
    web_hash.add_argument("dir", nargs="?", type=Path, help="the built files (default: the ones this node serves)")
    raw = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(raw)
    if args.command == "serve":
        args.argv = raw[raw.index("serve") + 1 :]  # what --workers' children are started with
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
    if args.command == "conformance":
        from peerfed.conformance.suite import run as run_conformance

        return run_conformance(args)
    if args.command == "peer-id":
        from peerfed.protocol import PeerId, RemoteError

        try:
            print(PeerId.from_text(args.text).hex)
        except RemoteError as exc:
            print(f"error {exc.code}: {exc}", file=sys.stderr)
            return 2
        return 0
    if args.command == "web-hash":
        return _web_hash(args.dir)
    parser.print_help()
    return 0


def _web_hash(directory: Path | None) -> int:
    """Print the served client's hash in hex; 1 when there is no build there."""
    from peerfed.node.api.webclient import CLIENT_FILES, served_hash
    from peerfed.protocol import LocalError

    try:
        digest = served_hash(directory or CLIENT_FILES)
    except (OSError, LocalError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if digest is None:
        print(f"error: no built web client in {directory or CLIENT_FILES}", file=sys.stderr)
        return 1
    print(digest.hex())
    return 0
