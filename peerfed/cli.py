"""The ``peerfed`` command. Sub-commands arrive with the node and client."""

from __future__ import annotations

import argparse
import sys

from peerfed import __version__

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="peerfed", description=__doc__)
    parser.add_argument("--version", action="version", version=f"peerfed {__version__}")
    sub = parser.add_subparsers(dest="command")
    ident = sub.add_parser("peer-id", help="check a peer id's text form and print its key in hex")
    ident.add_argument("text")
    args = parser.parse_args(argv)
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
